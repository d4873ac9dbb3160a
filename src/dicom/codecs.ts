import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RadnodeError } from '../errors.ts';

/**
 * Thin wrappers over the WASM codecs (toolchain.md section 2). Each takes one frame's compressed bytes and returns the
 * decoded samples (pixel-interleaved, little-endian, 1 or 2 bytes per sample) with the codec's own frame info; the
 * DICOM attributes are applied afterwards, in decode.ts, because they win over what a codestream claims
 * (J2K_pixelrep_mismatch, TOSHIBA_J2K_SIZ1_PixRep0).
 */

export interface CodecFrame {
  bytes: Uint8Array;
  /** Samples stored colour-by-plane (CharLS with interleave mode 0 returns planes). */
  planar?: boolean;
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

interface FrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

interface WasmDecoder {
  getInterleaveMode?: () => number;
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): FrameInfo;
  delete(): void;
}

type WasmModule = Record<string, unknown> & { getExceptionMessage?: (e: number) => unknown };
type WasmFactory = (opts?: Record<string, unknown>) => Promise<WasmModule>;

const require = createRequire(import.meta.url);

interface LosslessDecoder {
  decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): ArrayBufferView;
  frame: { dimX: number; dimY: number; precision: number; numComp: number };
}
// jpeg-lossless-decoder-js ships types its package exports do not expose under NodeNext resolution.
const { Decoder: JpegLosslessDecoder } = require('jpeg-lossless-decoder-js') as { Decoder: new () => LosslessDecoder };

const CODECS = {
  charls: { path: '@cornerstonejs/codec-charls/decodewasmjs', decoder: 'JpegLSDecoder' },
  openjpeg: { path: '@cornerstonejs/codec-openjpeg/decodewasmjs', decoder: 'J2KDecoder' },
  libjpegTurbo: { path: '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs', decoder: 'JPEGDecoder' },
  openjph: { path: '@cornerstonejs/codec-openjph/wasmjs', decoder: 'HTJ2KDecoder' },
} as const;
export type WasmCodecName = keyof typeof CODECS;

const loaded = new Map<WasmCodecName, Promise<WasmModule>>();

function load(name: WasmCodecName): Promise<WasmModule> {
  let p = loaded.get(name);
  if (!p) {
    const factory = require(CODECS[name].path) as WasmFactory;
    // OpenJPEG prints "[INFO] ..." lines on every decode (toolchain.md section 2): swallow the codecs' console.
    const quiet = () => undefined;
    p = factory({ print: quiet, printErr: quiet });
    loaded.set(name, p);
  }
  return p;
}

function describe(mod: WasmModule, err: unknown): string {
  if (typeof err === 'number' && typeof mod.getExceptionMessage === 'function') {
    try {
      return String(mod.getExceptionMessage(err));
    } catch {
      return `codec exception ${err}`;
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/** Runs one WASM decoder on one frame; any failure, including a WASM trap, becomes RN_DICOM_DECODE_FAILED. */
export async function wasmDecode(name: WasmCodecName, encoded: Uint8Array): Promise<CodecFrame> {
  const mod = await load(name);
  const Ctor = mod[CODECS[name].decoder] as new () => WasmDecoder;
  let decoder: WasmDecoder | undefined;
  try {
    decoder = new Ctor();
    decoder.getEncodedBuffer(encoded.length).set(encoded);
    decoder.decode();
    const info = decoder.getFrameInfo();
    const bytes = decoder.getDecodedBuffer().slice();
    const planar = name === 'charls' && info.componentCount > 1 && decoder.getInterleaveMode?.() === 0;
    return { bytes, planar, width: info.width, height: info.height, bitsPerSample: info.bitsPerSample, componentCount: info.componentCount, isSigned: info.isSigned };
  } catch (err) {
    throw new RadnodeError('RN_DICOM_DECODE_FAILED', `${name} could not decode the frame: ${describe(mod, err)}`, { cause: err });
  } finally {
    try {
      decoder?.delete();
    } catch {
      // a decoder whose construction failed has nothing to free
    }
  }
}

/**
 * jpeg-lossless-decoder-js 2.1.2 leaves the last pixel at 0 when the entropy-coded data ends right before EOI with the
 * encoder's zero fill (cornerstone's CTImage...4.70.dcm: last pixel 0 instead of -2000; the "last pixel is 0" defect
 * of the issue). Eight zero bytes inserted before EOI give its bit reader room to finish; they lie after the last
 * code, so they cannot change any decoded value.
 */
export function padBeforeEoi(encoded: Uint8Array): Uint8Array {
  let eoi = -1;
  for (let i = encoded.length - 2; i >= Math.max(0, encoded.length - 16); i--) {
    if (encoded[i] === 0xff && encoded[i + 1] === 0xd9) {
      eoi = i;
      break;
    }
  }
  const body = eoi >= 0 ? encoded.subarray(0, eoi) : encoded;
  const out = new Uint8Array(body.length + 10);
  out.set(body);
  out[out.length - 2] = 0xff;
  out[out.length - 1] = 0xd9;
  return out;
}

/** JPEG lossless (processes 14 and 14 SV1) with jpeg-lossless-decoder-js, with the last-pixel workaround. */
export function jpegLosslessDecode(encoded: Uint8Array, bitsAllocated: number, options: { padBeforeEoi?: boolean } = {}): CodecFrame {
  try {
    const d = new JpegLosslessDecoder();
    const bytesPerSample = bitsAllocated <= 8 ? 1 : 2;
    const copy = options.padBeforeEoi === false ? encoded.slice() : padBeforeEoi(encoded);
    const out = d.decode(copy.buffer as ArrayBuffer, 0, copy.byteLength, bytesPerSample);
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    const frame = d.frame;
    return { bytes, width: frame.dimX, height: frame.dimY, bitsPerSample: frame.precision, componentCount: frame.numComp };
  } catch (err) {
    throw new RadnodeError('RN_DICOM_DECODE_FAILED', `JPEG lossless decoder failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Marker segment facts about a JPEG (ITU T.81) stream that choose the decoder and the colour handling. */
export interface JpegStreamInfo {
  sof: number; // 0xC0..0xCF, or 0xF7 (JPEG-LS SOF55)
  precision: number;
  /** The frame's size as the SOF segment declares it (height 0: given later by a DNL marker). */
  height: number;
  width: number;
  components: number;
  componentIds: number[];
  hasJfif: boolean;
  adobeTransform?: number;
  /** SOS Ss: the predictor of a lossless (SOF3) stream (ITU T.81 H.1.2.1). */
  predictor?: number;
  /** Byte offsets of the component ids in the SOF and SOS segments, to relabel components. */
  idOffsets: number[];
}

/**
 * The image size a compressed frame declares, read before decoding: the WASM codecs allocate whatever the stream
 * claims (a 500 KB file claiming 23000² pixels took 2 GB that the WASM heap never gave back). JPEG and JPEG-LS: the
 * start-of-frame segment (SOFn, SOF55); JPEG 2000 and HTJ2K: SIZ. Undefined when the stream is too short to say.
 */
export function declaredFrameSize(b: Uint8Array): { width: number; height: number; components: number } | undefined {
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51) {
    if (b.length < 42) return undefined;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { width: dv.getUint32(8) - dv.getUint32(16), height: dv.getUint32(12) - dv.getUint32(20), components: dv.getUint16(40) };
  }
  const info = jpegStreamInfo(b);
  return info && { width: info.width, height: info.height, components: info.components };
}

export function jpegStreamInfo(b: Uint8Array): JpegStreamInfo | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let pos = 2;
  const info: JpegStreamInfo = { sof: 0, precision: 0, height: 0, width: 0, components: 0, componentIds: [], hasJfif: false, idOffsets: [] };
  while (pos + 4 <= b.length) {
    if (b[pos] !== 0xff) return info.sof ? info : undefined;
    const marker = b[pos + 1];
    if (marker === 0xff) {
      pos++;
      continue;
    }
    const len = (b[pos + 2] << 8) | b[pos + 3];
    if (marker === 0xe0 && b[pos + 4] === 0x4a && b[pos + 5] === 0x46) info.hasJfif = true;
    if (marker === 0xee && pos + 15 < b.length && String.fromCharCode(b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7], b[pos + 8]) === 'Adobe') {
      info.adobeTransform = b[pos + 15];
    }
    if ((marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7) {
      info.sof = marker;
      info.precision = b[pos + 4];
      info.height = (b[pos + 5] << 8) | b[pos + 6];
      info.width = (b[pos + 7] << 8) | b[pos + 8];
      info.components = b[pos + 9];
      for (let i = 0; i < info.components; i++) {
        info.componentIds.push(b[pos + 10 + i * 3]);
        info.idOffsets.push(pos + 10 + i * 3);
      }
    }
    if (marker === 0xda) {
      const n = b[pos + 4];
      for (let i = 0; i < n; i++) info.idOffsets.push(pos + 5 + i * 2);
      info.predictor = b[pos + 5 + n * 2];
      return info;
    }
    pos += 2 + len;
  }
  return info.sof ? info : undefined;
}

/**
 * libjpeg assumes YCbCr for a 3-component stream with neither JFIF nor Adobe marker unless the component ids are
 * 'R','G','B' (jdapimin.c default_decompress_parms). For a DICOM RGB image encoded without colour transform
 * (pydicom SC_jpeg_no_color_transform) relabel the components as R, G, B so that libjpeg leaves them alone.
 */
export function relabelAsRgb(b: Uint8Array, info: JpegStreamInfo): Uint8Array {
  const copy = b.slice();
  const map = new Map<number, number>();
  info.componentIds.forEach((id, i) => map.set(id, [0x52, 0x47, 0x42][i]));
  for (const off of info.idOffsets) copy[off] = map.get(copy[off]) ?? copy[off];
  return copy;
}

interface ItkImage {
  data: ArrayLike<number> | null;
  size: number[];
}

/**
 * JPEG 12-bit (extended .51, progressive .53/.55) through GDCM compiled to WASM (@itk-wasm/image-io), which
 * decodes them pixel-exact against dcmtk (issue-corrections, toolchain.md section 4). It reads files only, so the
 * frame is wrapped in a minimal single-frame Part 10 file without rescale attributes, in a private temp folder.
 */
export async function gdcmDecodeJpeg(
  encoded: Uint8Array,
  attrs: { rows: number; columns: number; bitsAllocated: number; bitsStored: number; pixelRepresentation: number; samplesPerPixel: number; photometric: string; transferSyntaxUID: string },
): Promise<CodecFrame> {
  const dir = mkdtempSync(join(tmpdir(), 'radnode-gdcm-'));
  const file = join(dir, 'frame.dcm');
  try {
    writeFileSync(file, minimalPart10(encoded, attrs));
    const io = (await import('@itk-wasm/image-io')) as unknown as { gdcmReadImageNode(path: string): Promise<{ image: ItkImage }> };
    let image: ItkImage;
    try {
      image = (await io.gdcmReadImageNode(file)).image;
    } catch (err) {
      throw new RadnodeError('RN_DICOM_DECODE_FAILED', `GDCM could not decode the JPEG frame: ${describeUnknown(err)}`, { cause: err });
    }
    const data = image.data;
    if (!data) throw new RadnodeError('RN_DICOM_DECODE_FAILED', 'GDCM returned no pixel data');
    const n = attrs.rows * attrs.columns * attrs.samplesPerPixel;
    if (data.length !== n) throw new RadnodeError('RN_DICOM_DECODE_FAILED', `GDCM returned ${data.length} samples, expected ${n}`);
    const bytesPerSample = attrs.bitsAllocated <= 8 ? 1 : 2;
    const out = new Uint8Array(n * bytesPerSample);
    if (bytesPerSample === 1) for (let i = 0; i < n; i++) out[i] = data[i] & 0xff;
    else {
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, Math.round(data[i]) & 0xffff, true);
    }
    return { bytes: out, width: attrs.columns, height: attrs.rows, bitsPerSample: attrs.bitsStored, componentCount: attrs.samplesPerPixel };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function describeUnknown(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Explicit VR Little Endian element writer for the few tags minimalPart10 needs. */
function element(group: number, elem: number, vr: string, value: Uint8Array): Uint8Array {
  const long = vr === 'OB' || vr === 'OW' || vr === 'UN' || vr === 'SQ';
  const padded = value.length % 2 === 0 ? value : concat([value, new Uint8Array([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
  const head = new Uint8Array(long ? 12 : 8);
  const dv = new DataView(head.buffer);
  dv.setUint16(0, group, true);
  dv.setUint16(2, elem, true);
  head[4] = vr.charCodeAt(0);
  head[5] = vr.charCodeAt(1);
  if (long) dv.setUint32(8, padded.length, true);
  else dv.setUint16(6, padded.length, true);
  return concat([head, padded]);
}

function us(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, true);
  return b;
}
function str(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function minimalPart10(
  frame: Uint8Array,
  a: { rows: number; columns: number; bitsAllocated: number; bitsStored: number; pixelRepresentation: number; samplesPerPixel: number; photometric: string; transferSyntaxUID: string },
): Uint8Array {
  const sopClass = '1.2.840.10008.5.1.4.1.1.7';
  const sopInstance = '2.25.1';
  const metaBody = concat([
    element(0x0002, 0x0001, 'OB', new Uint8Array([0, 1])),
    element(0x0002, 0x0002, 'UI', str(sopClass)),
    element(0x0002, 0x0003, 'UI', str(sopInstance)),
    element(0x0002, 0x0010, 'UI', str(a.transferSyntaxUID)),
  ]);
  const groupLength = new Uint8Array(4);
  new DataView(groupLength.buffer).setUint32(0, metaBody.length, true);
  const item = (value: Uint8Array): Uint8Array => {
    const v = value.length % 2 === 0 ? value : concat([value, new Uint8Array([0])]);
    const h = new Uint8Array(8);
    const dv = new DataView(h.buffer);
    dv.setUint16(0, 0xfffe, true);
    dv.setUint16(2, 0xe000, true);
    dv.setUint32(4, v.length, true);
    return concat([h, v]);
  };
  const pixelHeader = new Uint8Array([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const seqDelim = new Uint8Array([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  return concat([
    new Uint8Array(128),
    str('DICM'),
    element(0x0002, 0x0000, 'UL', groupLength),
    metaBody,
    element(0x0008, 0x0016, 'UI', str(sopClass)),
    element(0x0008, 0x0018, 'UI', str(sopInstance)),
    element(0x0028, 0x0002, 'US', us(a.samplesPerPixel)),
    element(0x0028, 0x0004, 'CS', str(a.photometric)),
    ...(a.samplesPerPixel > 1 ? [element(0x0028, 0x0006, 'US', us(0))] : []),
    element(0x0028, 0x0010, 'US', us(a.rows)),
    element(0x0028, 0x0011, 'US', us(a.columns)),
    element(0x0028, 0x0100, 'US', us(a.bitsAllocated)),
    element(0x0028, 0x0101, 'US', us(a.bitsStored)),
    element(0x0028, 0x0102, 'US', us(a.bitsStored - 1)),
    element(0x0028, 0x0103, 'US', us(a.pixelRepresentation)),
    pixelHeader,
    item(new Uint8Array(0)),
    item(frame),
    seqDelim,
  ]);
}
