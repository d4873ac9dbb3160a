/**
 * Small hostile files that once cost the process its memory or its time: each must end in a typed error, quickly.
 * Built here byte by byte (Explicit VR Little Endian, PS3.5 7.1.2); never kept on disk.
 */
import { readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { sharedFile } from '../../test/helpers/paths.ts';
import { describe, expect, it } from 'vitest';
import { RadnodeError } from '../errors.ts';
import { expandSegmentedLut } from './color.ts';
import { decodeFrames } from './decode.ts';
import { modalityLut, physicalValues, voiLutTables } from './grayscale.ts';
import { readHeader, readInstance } from './instance.ts';
import { MAX_ELEMENTS } from './parser.ts';

type El = { group: number; element: number; vr: string; value: Uint8Array; undefinedLength?: boolean };
const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);
const ascii = (s: string) => Uint8Array.from(Buffer.from(s.length % 2 ? `${s}\0` : s, 'latin1'));
const us = (...v: number[]) => Uint8Array.from(Buffer.concat(v.map((x) => Buffer.from(Uint16Array.of(x).buffer))));

function encode(els: El[]): Buffer {
  return Buffer.concat(
    els.map((e) => {
      const long = LONG.has(e.vr);
      const h = Buffer.alloc(long ? 12 : 8);
      h.writeUInt16LE(e.group, 0);
      h.writeUInt16LE(e.element, 2);
      h.write(e.vr, 4, 'latin1');
      if (long) h.writeUInt32LE(e.undefinedLength ? 0xffffffff : e.value.length, 8);
      else h.writeUInt16LE(e.value.length, 6);
      return Buffer.concat([h, e.value]);
    }),
  );
}

function part10(tsUid: string, dataset: Buffer): Uint8Array {
  const metaEls = encode([
    { group: 2, element: 0x0001, vr: 'OB', value: Uint8Array.of(0, 1) },
    { group: 2, element: 0x0002, vr: 'UI', value: ascii('1.2.840.10008.5.1.4.1.1.7') },
    { group: 2, element: 0x0003, vr: 'UI', value: ascii('1.2.3.4') },
    { group: 2, element: 0x0010, vr: 'UI', value: ascii(tsUid) },
  ]);
  const groupLength = encode([{ group: 2, element: 0x0000, vr: 'UL', value: Uint8Array.from(Buffer.from(Uint32Array.of(metaEls.length).buffer)) }]);
  return Uint8Array.from(Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), groupLength, metaEls, dataset]));
}

const image = (over: Partial<Record<string, Uint8Array>> = {}): El[] => [
  { group: 0x0008, element: 0x0016, vr: 'UI', value: ascii('1.2.840.10008.5.1.4.1.1.7') },
  { group: 0x0008, element: 0x0018, vr: 'UI', value: ascii('1.2.3.4') },
  { group: 0x0028, element: 0x0002, vr: 'US', value: us(1) },
  { group: 0x0028, element: 0x0004, vr: 'CS', value: ascii('MONOCHROME2') },
  { group: 0x0028, element: 0x0008, vr: 'IS', value: over.frames ?? ascii('1') },
  { group: 0x0028, element: 0x0010, vr: 'US', value: us(1) },
  { group: 0x0028, element: 0x0011, vr: 'US', value: us(1) },
  { group: 0x0028, element: 0x0100, vr: 'US', value: us(8) },
  { group: 0x0028, element: 0x0101, vr: 'US', value: us(8) },
  { group: 0x0028, element: 0x0102, vr: 'US', value: us(7) },
  { group: 0x0028, element: 0x0103, vr: 'US', value: us(0) },
  { group: 0x7fe0, element: 0x0010, vr: 'OB', value: over.pixels ?? new Uint8Array(2) },
];

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'no error';
  } catch (err) {
    expect(err).toBeInstanceOf(RadnodeError);
    return (err as RadnodeError).code;
  }
}

describe('hostile input ends in a typed error', () => {
  it('Number of Frames 999999999 over two bytes of pixels: refused before any frame list is built', async () => {
    const file = part10('1.2.840.10008.1.2.1', encode(image({ frames: ascii('999999999') })));
    expect(await codeOf(decodeFrames(readInstance(file)))).toBe('RN_DICOM_MALFORMED');
  });

  it('High Bit outside the container or below the stored bits: refused, not read as garbage', async () => {
    for (const highBit of [8, 3]) {
      const els = image().map((e) => (e.element === 0x0102 && e.group === 0x0028 ? { ...e, value: us(highBit) } : e));
      await expect(decodeFrames(readInstance(part10('1.2.840.10008.1.2.1', encode(els))))).rejects.toThrow(`High Bit ${highBit} with Bits Stored 8`);
    }
  });

  it(`more than ${MAX_ELEMENTS} items (8 MB of empty ones): RN_DICOM_TOO_LARGE, not the heap`, async () => {
    const item = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
    const items = Buffer.alloc(item.length * (MAX_ELEMENTS + 1));
    for (let i = 0; i < MAX_ELEMENTS + 1; i++) item.copy(items, i * item.length);
    const seq = Buffer.concat([encode([{ group: 0x0009, element: 0x1001, vr: 'SQ', value: new Uint8Array(0), undefinedLength: true }]), items, Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0])]);
    const file = part10('1.2.840.10008.1.2.1', Buffer.concat([encode(image().slice(0, 2)), seq]));
    expect(await codeOf(() => readHeader(file))).toBe('RN_DICOM_TOO_LARGE');
  });

  it('a deflated dataset that would inflate 1000-fold (300 MiB of zeros in 300 kB) is refused', async () => {
    const dataset = encode([...image().slice(0, 2), { group: 0x0009, element: 0x1002, vr: 'OB', value: new Uint8Array(300 * 1024 ** 2) }]);
    const file = part10('1.2.840.10008.1.2.1.99', deflateRawSync(dataset));
    expect(file.length).toBeLessThan(1024 ** 2);
    expect(await codeOf(() => readHeader(file))).toBe('RN_DICOM_TOO_LARGE');
  });

  it('a JPEG-LS frame that declares 20000×20000 under a 64×64 header is refused before the codec allocates', async () => {
    const file = new Uint8Array(readFileSync(sharedFile('dicom/pydicom/MR_small_jpeg_ls_lossless.dcm')));
    const sof = file.findIndex((b, i) => b === 0xff && file[i + 1] === 0xf7);
    expect(sof).toBeGreaterThan(0);
    file.set([20000 >> 8, 20000 & 0xff, 20000 >> 8, 20000 & 0xff], sof + 5);
    const t = performance.now();
    await expect(decodeFrames(readInstance(file))).rejects.toThrow(/declares 20000×20000×1, the header says 64×64×1/);
    expect(performance.now() - t).toBeLessThan(1000);
  });

  it('nested indirect segments of a Segmented Palette LUT stop within a budget (they cost K^4 before)', async () => {
    const K = 160;
    const w: number[] = [];
    const region = (level: number) => 4 + level * 4 * K;
    w.push(2, K, region(0), 0);
    for (let level = 0; level < 3; level++) for (let s = 0; s < K; s++) w.push(2, K, region(level + 1), 0);
    for (let s = 0; s < K; s++) w.push(0, 0, 0, 0);
    const t = performance.now();
    const code = await codeOf(() => expandSegmentedLut(Uint16Array.from(w), 256));
    expect(['RN_DICOM_DECODE_FAILED', 'no error']).toContain(code);
    expect(performance.now() - t).toBeLessThan(2000);
    // A real segmented table still expands: a discrete run, a linear ramp, and an indirect copy of the first segment.
    expect([...expandSegmentedLut(Uint16Array.of(0, 2, 10, 20, 1, 2, 40, 2, 1, 0, 0), 7)]).toEqual([10, 20, 30, 40, 10, 20]);
  });
});

describe('Modality LUT Sequence as PS3.3 C.11.1.1.1 stores it (compared with dcmtk dcm2pnm)', () => {
  const withLut = (pixel: { bits: number; signed: boolean; values: Uint8Array }, lut: { desc: Uint8Array; data: Uint8Array }, sequence = 0x3000) => {
    const item = encode([
      { group: 0x0028, element: 0x3002, vr: 'US', value: lut.desc },
      { group: 0x0028, element: 0x3006, vr: 'OW', value: lut.data },
    ]);
    const header = Buffer.alloc(8);
    header.writeUInt32LE(0xe000fffe, 0);
    header.writeUInt32LE(item.length, 4);
    const seq = Buffer.concat([encode([{ group: 0x0028, element: sequence, vr: 'SQ', value: new Uint8Array(0) }]).subarray(0, 8), Buffer.alloc(4), header, item]);
    seq.writeUInt32LE(header.length + item.length, 8);
    const els = image({ pixels: pixel.values }).map((e) => (e.element === 0x0011 ? { ...e, value: us(4) } : e.element === 0x0100 ? { ...e, value: us(pixel.bits) } : e.element === 0x0101 ? { ...e, value: us(pixel.bits) } : e.element === 0x0102 ? { ...e, value: us(pixel.bits - 1) } : e.element === 0x0103 ? { ...e, value: us(pixel.signed ? 1 : 0) } : e));
    const pixelData = els.pop()!;
    return readInstance(part10('1.2.840.10008.1.2.1', Buffer.concat([encode(els), seq, encode([pixelData])])));
  };
  it('a signed image: the first mapped value is signed (stored US 63488 means -2048)', async () => {
    const stored = Uint8Array.from(Buffer.from(Int16Array.of(-2048, -1, 0, 2047).buffer));
    const table = Uint8Array.from(Buffer.from(Uint16Array.from({ length: 4096 }, (_, i) => i).buffer));
    const inst = withLut({ bits: 16, signed: true, values: stored }, { desc: us(4096, 63488, 16), data: table });
    const [frame] = await decodeFrames(inst);
    expect([...physicalValues(frame, modalityLut(inst))]).toEqual([0, 2047, 2048, 4095]);
  });
  it('a VOI LUT Sequence under a signed image: its first mapped value is signed too', async () => {
    // Same encoding as the Modality LUT Sequence, at (0028,3010): 4096 entries from -2048.
    const table = Uint8Array.from(Buffer.from(Uint16Array.from({ length: 4096 }, (_, i) => i).buffer));
    const stored = Uint8Array.from(Buffer.from(Int16Array.of(-2048, -1, 0, 2047).buffer));
    const inst = withLut({ bits: 16, signed: true, values: stored }, { desc: us(4096, 63488, 16), data: table }, 0x3010);
    expect(voiLutTables(inst).map((t) => [t.firstMapped, t.data.length, t.bits])).toEqual([[-2048, 4096, 16]]);
  });
  it('8-bit entries two to a word', async () => {
    const table = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
    const inst = withLut({ bits: 8, signed: false, values: Uint8Array.of(0, 1, 2, 255) }, { desc: us(256, 0, 8), data: table });
    const [frame] = await decodeFrames(inst);
    expect([...physicalValues(frame, modalityLut(inst))]).toEqual([255, 254, 253, 0]);
  });
});
