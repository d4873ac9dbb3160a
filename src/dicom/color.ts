import { RadnodeError } from '../errors.ts';
import type { DataSetView } from './dataset.ts';

function clamp8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** YBR_FULL → RGB in place on 8-bit interleaved samples (PS3.3 C.7.6.3.1.2, the JFIF equations). */
export function ybrFullToRgb(data: Uint8Array): void {
  for (let i = 0; i + 2 < data.length; i += 3) {
    const y = data[i];
    const cb = data[i + 1] - 128;
    const cr = data[i + 2] - 128;
    data[i] = clamp8(y + 1.402 * cr);
    data[i + 1] = clamp8(y - 0.344136 * cb - 0.714136 * cr);
    data[i + 2] = clamp8(y + 1.772 * cb);
  }
}

/** Native YBR_FULL_422 (Y1 Y2 Cb Cr per pair of pixels, PS3.3 C.7.6.3.1.2) → interleaved YBR_FULL. */
export function ybr422ToYbrFull(src: Uint8Array, rows: number, columns: number): Uint8Array {
  const out = new Uint8Array(rows * columns * 3);
  let s = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c += 2) {
      const y1 = src[s];
      const y2 = src[s + 1];
      const cb = src[s + 2];
      const cr = src[s + 3];
      s += 4;
      const o = (r * columns + c) * 3;
      out[o] = y1;
      out[o + 1] = cb;
      out[o + 2] = cr;
      if (c + 1 < columns) {
        out[o + 3] = y2;
        out[o + 4] = cb;
        out[o + 5] = cr;
      }
    }
  }
  return out;
}

export interface PaletteLut {
  entries: number;
  firstMapped: number;
  bits: number;
  red: Uint16Array;
  green: Uint16Array;
  blue: Uint16Array;
}

function words(view: DataSetView, tag: number): Uint16Array | undefined {
  const el = view.element(tag);
  if (!el?.value || el.value.length < 2) return undefined;
  const n = el.value.length >> 1;
  const out = new Uint16Array(n);
  const dv = new DataView(el.value.buffer, el.value.byteOffset, el.value.byteLength);
  for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, el.littleEndian);
  return out;
}

/** Expands a Segmented Palette Colour LUT (PS3.3 C.7.9.2): discrete, linear and indirect segments. */
export function expandSegmentedLut(data: Uint16Array, entries: number): Uint16Array {
  const out: number[] = [];
  // Indirect segments re-read earlier ones: nested, they multiply (K^4 work from a few kilobytes). One budget for the
  // whole expansion bounds it by the data and the table size.
  let budget = 4 * (data.length + entries) + 64;
  const run = (start: number, end: number, depth: number): void => {
    if (depth > 4) throw new RadnodeError('RN_DICOM_DECODE_FAILED', 'segmented LUT indirection nested too deep');
    let i = start;
    while (i < end && out.length <= entries) {
      if (--budget < 0) throw new RadnodeError('RN_DICOM_DECODE_FAILED', 'segmented LUT segments refer to each other more than the table needs');
      const op = data[i];
      const len = data[i + 1];
      if (op === 0) {
        for (let k = 0; k < len; k++) out.push(data[i + 2 + k]);
        i += 2 + len;
      } else if (op === 1) {
        const y0 = out.length > 0 ? out[out.length - 1] : 0;
        const y1 = data[i + 2];
        for (let k = 1; k <= len; k++) out.push(Math.round(y0 + ((y1 - y0) * k) / len));
        i += 3;
      } else if (op === 2) {
        const offset = data[i + 2] | (data[i + 3] << 16);
        // `len` segments starting at word `offset`
        let p = offset;
        for (let s = 0; s < len && p < data.length && out.length <= entries; s++) {
          const o = data[p];
          const l = data[p + 1];
          const segEnd = p + (o === 0 ? 2 + l : o === 1 ? 3 : 4);
          run(p, segEnd, depth + 1);
          p = segEnd;
        }
        i += 4;
      } else {
        throw new RadnodeError('RN_DICOM_DECODE_FAILED', `segmented LUT opcode ${op} is not defined`);
      }
    }
  };
  run(0, data.length, 0);
  return Uint16Array.from(out.slice(0, entries));
}

/** Reads the red, green and blue Palette Colour LUTs (PS3.3 C.7.6.3.1.5-6), normal or segmented. */
export function readPalette(view: DataSetView): PaletteLut {
  const desc = view.numbers(0x00281101);
  if (desc.length < 3) throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', 'PALETTE COLOR without a Red Palette Color Lookup Table Descriptor');
  const entries = desc[0] === 0 ? 65536 : desc[0];
  // The first-mapped value is US or SS by Pixel Representation; as US it reads 16 bits unsigned.
  const firstMapped = desc[1];
  const bits = desc[2];
  const channel = (dataTag: number, segTag: number): Uint16Array => {
    const plain = words(view, dataTag);
    if (plain) {
      if (bits === 8 && plain.length * 2 === entries) {
        // 8-bit entries packed two per word
        const out = new Uint16Array(entries);
        for (let i = 0; i < entries; i++) out[i] = (plain[i >> 1] >> ((i & 1) * 8)) & 0xff;
        return out;
      }
      return plain;
    }
    const seg = words(view, segTag);
    if (seg) return expandSegmentedLut(seg, entries);
    throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', `palette LUT data (${dataTag.toString(16)}) is missing`);
  };
  return {
    entries,
    firstMapped,
    bits,
    red: channel(0x00281201, 0x00281221),
    green: channel(0x00281202, 0x00281222),
    blue: channel(0x00281203, 0x00281223),
  };
}

/** Maps palette indices to interleaved RGB; indices below/above the table take its first/last entry. */
export function applyPalette(indices: ArrayLike<number>, lut: PaletteLut): Uint8Array | Uint16Array {
  const n = indices.length;
  const out = lut.bits > 8 ? new Uint16Array(n * 3) : new Uint8Array(n * 3);
  const last = Math.min(lut.red.length, lut.green.length, lut.blue.length) - 1;
  for (let i = 0; i < n; i++) {
    let k = indices[i] - lut.firstMapped;
    if (k < 0) k = 0;
    else if (k > last) k = last;
    out[i * 3] = lut.red[k];
    out[i * 3 + 1] = lut.green[k];
    out[i * 3 + 2] = lut.blue[k];
  }
  return out;
}
