import { RadnodeError } from '../errors.ts';
import type { EncapsulatedPixelData } from './parser.ts';
import type { PixelEncoding } from './transfer-syntax.ts';

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Does this fragment open a new compressed frame? Used only when neither offset table can say (PS3.5 A.4). */
function startsFrame(f: Uint8Array, encoding: PixelEncoding): boolean {
  if (f.length < 4) return false;
  switch (encoding) {
    case 'jpeg-baseline':
    case 'jpeg-extended':
    case 'jpeg-progressive':
    case 'jpeg-lossless':
    case 'jpeg-ls':
      return f[0] === 0xff && f[1] === 0xd8 && f[2] === 0xff;
    case 'jpeg-2000':
    case 'htj2k':
      // a raw codestream (SOC, SIZ) or a JP2 signature box
      return (f[0] === 0xff && f[1] === 0x4f && f[2] === 0xff && f[3] === 0x51) || (f.length >= 12 && f[4] === 0x6a && f[5] === 0x50);
    default:
      return false;
  }
}

function group(fragments: Uint8Array[], starts: number[]): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < starts.length; i++) frames.push(concatBytes(fragments.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : fragments.length)));
  return frames;
}

/**
 * Splits encapsulated pixel data into one byte string per frame: by the Extended Offset Table, else the Basic Offset
 * Table, else one fragment per frame, else by the codec's start-of-image marker (a multi-frame file with an empty BOT
 * and frames over several fragments, e.g. cornerstone's CT0012).
 */
export function splitFrames(
  pixel: EncapsulatedPixelData,
  numberOfFrames: number,
  encoding: PixelEncoding,
  extendedOffsets?: number[],
): Uint8Array[] {
  const { fragments, fragmentOffsets, basicOffsetTable } = pixel;
  if (fragments.length === 0) throw new RadnodeError('RN_DICOM_MALFORMED', 'encapsulated pixel data has no fragments');
  if (numberOfFrames <= 1) return [concatBytes(fragments)];

  // A map, not indexOf per frame: tens of thousands of frames made the lookup quadratic.
  let fragmentAt: Map<number, number> | undefined;
  const fromOffsets = (offsets: number[]): Uint8Array[] | undefined => {
    if (offsets.length !== numberOfFrames) return undefined;
    fragmentAt ??= new Map(fragmentOffsets.map((o, i) => [o, i] as const).reverse());
    const starts: number[] = [];
    for (const off of offsets) {
      const idx = fragmentAt.get(off) ?? -1;
      if (idx < 0 || (starts.length > 0 && idx <= starts[starts.length - 1])) return undefined;
      starts.push(idx);
    }
    return starts[0] === 0 ? group(fragments, starts) : undefined;
  };

  if (extendedOffsets) {
    const r = fromOffsets(extendedOffsets);
    if (r) return r;
  }
  if (basicOffsetTable.length > 0) {
    const r = fromOffsets(basicOffsetTable);
    if (r) return r;
  }
  if (fragments.length === numberOfFrames) return fragments.slice();
  const starts: number[] = [];
  fragments.forEach((f, i) => {
    if (startsFrame(f, encoding)) starts.push(i);
  });
  if (starts.length === numberOfFrames && starts[0] === 0) return group(fragments, starts);
  throw new RadnodeError(
    'RN_DICOM_DECODE_FAILED',
    `cannot tell where each of ${numberOfFrames} frames starts among ${fragments.length} fragments (no usable offset table)`,
  );
}
