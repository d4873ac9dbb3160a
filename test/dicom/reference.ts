/**
 * Independent reference decodes for the imaging-core tests: dcmtk (dcmdjpeg, dcmdjpls, dcmdrle, dcmdump +W), GDCM
 * (gdcmconv --raw) and OpenJPEG (opj_decompress), always run on a temporary copy. Reference values are computed on
 * the fly, never checked in (issue 3, "How it is checked").
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RefAttributes {
  Rows: number;
  Columns: number;
  BitsAllocated: number;
  BitsStored: number;
  HighBit: number;
  PixelRepresentation: number;
  SamplesPerPixel: number;
  PhotometricInterpretation: string;
  PlanarConfiguration: number;
  NumberOfFrames: number;
}

export interface Reference {
  attrs: RefAttributes;
  /** Pixel Data bytes as dcmtk writes them (+W: little endian). */
  raw: Uint8Array;
}

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

export function withTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'radnode-ref-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Image attributes as dcmdump prints them. */
export function dcmdumpAttributes(file: string): RefAttributes {
  const out = run('dcmdump', ['-q', '+L', '-M', ...['0028,0010', '0028,0011', '0028,0100', '0028,0101', '0028,0102', '0028,0103', '0028,0002', '0028,0004', '0028,0006', '0028,0008'].flatMap((t) => ['+P', t]), file]);
  const values = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^\s*\(([0-9a-f]{4},[0-9a-f]{4})\) \w\w (\[([^\]]*)\]|(\S+))/.exec(line);
    if (m && !values.has(m[1])) values.set(m[1], (m[3] ?? m[4]).trim());
  }
  const num = (tag: string, dflt: number): number => (values.has(tag) ? Number(values.get(tag)) : dflt);
  const ba = num('0028,0100', 16);
  const bs = num('0028,0101', ba);
  return {
    Rows: num('0028,0010', 0),
    Columns: num('0028,0011', 0),
    BitsAllocated: ba,
    BitsStored: bs,
    HighBit: num('0028,0102', bs - 1),
    PixelRepresentation: num('0028,0103', 0),
    SamplesPerPixel: num('0028,0002', 1),
    PhotometricInterpretation: values.get('0028,0004') ?? '',
    PlanarConfiguration: num('0028,0006', 0),
    NumberOfFrames: num('0028,0008', 1),
  };
}

/** The top-level Pixel Data of a native file, via dcmdump +W (the last .raw it writes; icons come first). */
export function dcmdumpRaw(file: string, dir: string): Uint8Array {
  const out = join(dir, 'raw');
  rmSync(out, { recursive: true, force: true });
  run('mkdir', ['-p', out]);
  run('dcmdump', ['-q', '+W', out, file]);
  const raws = readdirSync(out)
    .filter((f) => f.endsWith('.raw'))
    .sort((a, b) => Number(a.split('.').slice(-2)[0]) - Number(b.split('.').slice(-2)[0]));
  if (raws.length === 0) throw new Error(`dcmdump +W wrote no pixel data for ${file}`);
  return new Uint8Array(readFileSync(join(out, raws[raws.length - 1])));
}

export type ReferenceTool = 'native' | 'dcmdjpeg' | 'dcmdjpls' | 'dcmdrle' | 'gdcm';

/** Decompresses a temp copy with the named tool, then reads attributes and raw pixels back with dcmdump. */
export function referenceDecode(file: string, tool: ReferenceTool): Reference {
  return withTemp((dir) => {
    const src = join(dir, 'in.dcm');
    copyFileSync(file, src);
    const dst = join(dir, 'out.dcm');
    switch (tool) {
      case 'native':
        copyFileSync(src, dst);
        break;
      case 'dcmdjpeg':
        run('dcmdjpeg', ['+px', src, dst]);
        break;
      case 'dcmdjpls':
        run('dcmdjpls', ['+px', src, dst]);
        break;
      case 'dcmdrle':
        run('dcmdrle', [src, dst]);
        break;
      case 'gdcm':
        run('gdcmconv', ['--raw', src, dst]);
        break;
    }
    return { attrs: dcmdumpAttributes(dst), raw: dcmdumpRaw(dst, dir) };
  });
}

/** OpenJPEG's decode of a J2K/HTJ2K codestream, as 8-bit PGM/PPM samples (interleaved). */
export function opjDecode8(codestream: Uint8Array): { width: number; height: number; channels: number; data: Uint8Array } {
  return withTemp((dir) => {
    const src = join(dir, 'in.j2k');
    writeFileSync(src, codestream);
    const out = join(dir, 'out.pnm');
    run('opj_decompress', ['-i', src, '-o', out, '-quiet']);
    const b = readFileSync(out);
    // P5/P6 header: magic, width, height, maxval, one whitespace byte
    const header = /^(P[56])\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s/.exec(b.subarray(0, 128).toString('latin1'));
    if (!header) throw new Error('unexpected opj_decompress output');
    const start = header[0].length;
    return { width: Number(header[2]), height: Number(header[3]), channels: header[1] === 'P6' ? 3 : 1, data: new Uint8Array(b.subarray(start)) };
  });
}

/** Stored values from reference bytes by PS3.5 8.1.1 (Bits Stored mask, High Bit, sign), the rule radnode applies. */
export function storedValues(raw: Uint8Array, a: RefAttributes): Float64Array {
  const bytes = a.BitsAllocated / 8;
  const n = Math.floor(raw.length / bytes);
  const out = new Float64Array(n);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const shift = a.HighBit + 1 - a.BitsStored;
  const range = 2 ** a.BitsStored;
  for (let i = 0; i < n; i++) {
    const u = bytes === 1 ? raw[i] : bytes === 2 ? dv.getUint16(i * 2, true) : dv.getUint32(i * 4, true);
    let v = Math.floor(u / 2 ** shift) % range;
    if (a.PixelRepresentation === 1 && v >= range / 2) v -= range;
    out[i] = v;
  }
  return out;
}

export interface Diff {
  maxAbs: number;
  meanAbs: number;
  count: number;
}

export function compare(a: ArrayLike<number>, b: ArrayLike<number>): Diff {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let maxAbs = 0;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) count++;
    if (d > maxAbs) maxAbs = d;
    sum += d;
  }
  return { maxAbs, meanAbs: a.length ? sum / a.length : 0, count };
}

/** Raw-inflates bytes with Python's zlib, an implementation independent of Node's. */
export function pythonInflateRaw(data: Uint8Array): Uint8Array {
  const r = spawnSync('python3', ['-c', 'import sys,zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read(), -15))'], { input: data, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`python3 zlib failed: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}
