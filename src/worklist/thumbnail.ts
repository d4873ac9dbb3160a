import { readFile } from 'node:fs/promises';
import { encode } from 'fast-png';
import { decodeFrames, readInstance } from '../dicom/index.ts';

/** Longest side of a worklist thumbnail, in pixels: a 2x display of the row's 64-pixel cell. */
export const THUMBNAIL_MAX_PX = 128;

/**
 * Box-filter downscale of an 8-bit RGB or grayscale frame to at most `maxPx` on its longest side (a heatmap is
 * smooth; averaging keeps its colours where nearest-neighbour would alias the burned-in outlines).
 */
export function downscaleRgb(data: ArrayLike<number>, columns: number, rows: number, samples: 1 | 3, maxPx: number): { width: number; height: number; rgb: Uint8Array } {
  const scale = Math.max(1, Math.max(columns, rows) / maxPx);
  const width = Math.max(1, Math.round(columns / scale));
  const height = Math.max(1, Math.round(rows / scale));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const y0 = Math.floor((y * rows) / height);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * rows) / height));
    for (let x = 0; x < width; x++) {
      const x0 = Math.floor((x * columns) / width);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * columns) / width));
      let r = 0, g = 0, b = 0, n = 0;
      for (let yy = y0; yy < y1; yy++) {
        for (let xx = x0; xx < x1; xx++) {
          const i = (yy * columns + xx) * samples;
          r += data[i];
          g += data[samples === 3 ? i + 1 : i];
          b += data[samples === 3 ? i + 2 : i];
          n++;
        }
      }
      const o = (y * width + x) * 3;
      rgb[o] = Math.round(r / n);
      rgb[o + 1] = Math.round(g / n);
      rgb[o + 2] = Math.round(b / n);
    }
  }
  return { width, height, rgb };
}

/** A small PNG of the first frame of a stored heatmap SC (8-bit RGB, written by src/results/heatmap). */
export async function heatmapThumbnailPng(path: string, maxPx = THUMBNAIL_MAX_PX): Promise<Uint8Array> {
  const inst = readInstance(await readFile(path));
  const [frame] = await decodeFrames(inst, { frames: [0], maxDecodedBytes: 256 * 1024 ** 2 });
  const samples = frame.samplesPerPixel === 3 ? 3 : 1;
  const small = downscaleRgb(frame.data, frame.columns, frame.rows, samples, maxPx);
  return encode({ width: small.width, height: small.height, data: small.rgb, channels: 3, depth: 8 });
}
