/**
 * Rasterising the heatmap picture: the source shown with its VOI window, the detector's heatmap blended in as a
 * colour map, finding outlines and the burned-in label. Pure functions on RGB buffers (8 bits, interleaved, row-major).
 */
import type { SourceImage } from '../source-pixels.ts';
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyphRows, textWidth } from './font.ts';

export type Rgb = { width: number; height: number; data: Uint8Array };
export type Color = readonly [number, number, number];

export const OUTLINE: Color = [255, 255, 0];
export const LABEL_TEXT: Color = [255, 255, 255];
export const LABEL_BACKGROUND: Color = [0, 0, 0];
/** Heatmap values below this stay invisible, above it the colour fades in up to HEATMAP_MAX_ALPHA. */
export const HEATMAP_THRESHOLD = 0.2;
export const HEATMAP_MAX_ALPHA = 0.5;

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** Output size: the source size with its long side capped (DESIGN §1: 2048). */
export function outputSize(rows: number, columns: number, maxSide: number): { width: number; height: number; scale: number } {
  const scale = Math.min(1, maxSide / Math.max(rows, columns));
  return { width: Math.max(1, Math.round(columns * scale)), height: Math.max(1, Math.round(rows * scale)), scale };
}

/** PS3.3 §C.11.2.1.2.1 linear VOI function to 8 bits; without a window, the frame's min..max. MONOCHROME1 inverted. */
export function toDisplay(values: Float32Array, image: Pick<SourceImage, 'photometric' | 'window'>): Uint8Array {
  let c: number;
  let w: number;
  if (image.window) {
    c = image.window.center;
    w = image.window.width;
  } else {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    w = Math.max(2, hi - lo + 1);
    c = lo + (hi - lo + 1) / 2;
  }
  const out = new Uint8Array(values.length);
  const lower = c - 0.5 - (w - 1) / 2;
  const upper = c - 0.5 + (w - 1) / 2;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    const y = x <= lower ? 0 : x > upper ? 255 : Math.round(((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
    out[i] = image.photometric === 'MONOCHROME1' ? 255 - y : y;
  }
  return out;
}

/** Bilinear resampling with pixel centres aligned (used for the picture and for the heatmap). */
export function resample(src: ArrayLike<number>, sw: number, sh: number, dw: number, dh: number): Float32Array {
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const fy = Math.min(sh - 1, Math.max(0, ((y + 0.5) * sh) / dh - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(sh - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < dw; x++) {
      const fx = Math.min(sw - 1, Math.max(0, ((x + 0.5) * sw) / dw - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(sw - 1, x0 + 1);
      const tx = fx - x0;
      const top = src[y0 * sw + x0] * (1 - tx) + src[y0 * sw + x1] * tx;
      const bottom = src[y1 * sw + x0] * (1 - tx) + src[y1 * sw + x1] * tx;
      out[y * dw + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

/** The "jet" colour map, value 0..1 → RGB 0..255. */
export function jet(v: number): Color {
  const t = clamp01(v);
  return [Math.round(255 * clamp01(1.5 - Math.abs(4 * t - 3))), Math.round(255 * clamp01(1.5 - Math.abs(4 * t - 2))), Math.round(255 * clamp01(1.5 - Math.abs(4 * t - 1)))];
}

export function heatmapAlpha(v: number): number {
  return HEATMAP_MAX_ALPHA * clamp01((v - HEATMAP_THRESHOLD) / (1 - HEATMAP_THRESHOLD));
}

/** Gray picture with the heatmap (already at picture size) blended in. */
export function composeRgb(gray: ArrayLike<number>, width: number, height: number, heat?: Float32Array): Rgb {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const g = Math.round(gray[i]);
    let r = g;
    let gg = g;
    let b = g;
    if (heat) {
      const a = heatmapAlpha(heat[i]);
      if (a > 0) {
        const [cr, cg, cb] = jet(heat[i]);
        r = Math.round(g * (1 - a) + cr * a);
        gg = Math.round(g * (1 - a) + cg * a);
        b = Math.round(g * (1 - a) + cb * a);
      }
    }
    data[3 * i] = r;
    data[3 * i + 1] = gg;
    data[3 * i + 2] = b;
  }
  return { width, height, data };
}

export function setPixel(img: Rgb, x: number, y: number, c: Color): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const i = 3 * (y * img.width + x);
  img.data[i] = c[0];
  img.data[i + 1] = c[1];
  img.data[i + 2] = c[2];
}

export function fillRect(img: Rgb, x: number, y: number, w: number, h: number, c: Color): void {
  for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) setPixel(img, xx, yy, c);
}

/** A line `thickness` pixels wide (Bresenham with a square brush). */
export function drawLine(img: Rgb, x0: number, y0: number, x1: number, y1: number, c: Color, thickness: number): void {
  let x = Math.round(x0);
  let y = Math.round(y0);
  const xe = Math.round(x1);
  const ye = Math.round(y1);
  const dx = Math.abs(xe - x);
  const dy = -Math.abs(ye - y);
  const sx = x < xe ? 1 : -1;
  const sy = y < ye ? 1 : -1;
  let err = dx + dy;
  const half = Math.floor(thickness / 2);
  for (;;) {
    fillRect(img, x - half, y - half, thickness, thickness, c);
    if (x === xe && y === ye) break;
    const e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y += sy;
    }
  }
}

export function drawPolyline(img: Rgb, pts: [number, number][], c: Color, thickness: number): void {
  for (let i = 1; i < pts.length; i++) drawLine(img, pts[i - 1][0], pts[i - 1][1], pts[i][0], pts[i][1], c, thickness);
}

/** An ellipse given as SCOORD ELLIPSE end points (major axis, then minor axis; PS3.3 §C.18.6.1.2). */
export function drawEllipse(img: Rgb, p: [number, number][], c: Color, thickness: number): void {
  const cx = (p[0][0] + p[1][0]) / 2;
  const cy = (p[0][1] + p[1][1]) / 2;
  const ax = (p[1][0] - p[0][0]) / 2;
  const ay = (p[1][1] - p[0][1]) / 2;
  const bx = (p[3][0] - p[2][0]) / 2;
  const by = (p[3][1] - p[2][1]) / 2;
  const n = 96;
  const pts: [number, number][] = [];
  for (let k = 0; k <= n; k++) {
    const t = (2 * Math.PI * k) / n;
    pts.push([cx + ax * Math.cos(t) + bx * Math.sin(t), cy + ay * Math.cos(t) + by * Math.sin(t)]);
  }
  drawPolyline(img, pts, c, thickness);
}

/** A point as an open cross, so the pixel itself stays visible. */
export function drawPointMark(img: Rgb, x: number, y: number, c: Color, size: number, thickness: number): void {
  const gap = Math.max(2, Math.round(size / 3));
  drawLine(img, x - size, y, x - gap, y, c, thickness);
  drawLine(img, x + gap, y, x + size, y, c, thickness);
  drawLine(img, x, y - size, x, y - gap, c, thickness);
  drawLine(img, x, y + gap, x, y + size, c, thickness);
}

/** Text with the 5×7 font at an integer scale. */
export function drawText(img: Rgb, x: number, y: number, text: string, scale: number, c: Color): void {
  let cx = x;
  for (const ch of text) {
    const rows = glyphRows(ch);
    for (let r = 0; r < GLYPH_HEIGHT; r++) {
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        if (rows[r] & (1 << (GLYPH_WIDTH - 1 - col))) fillRect(img, cx + col * scale, y + r * scale, scale, scale, c);
      }
    }
    cx += (GLYPH_WIDTH + 1) * scale;
  }
}

/** The label block in the top left corner: black box, white lines of text; the scale grows with the picture. */
export function drawLabel(img: Rgb, lines: string[]): { x: number; y: number; width: number; height: number; scale: number } {
  let scale = Math.max(2, Math.floor(Math.max(img.width, img.height) / 300));
  const widest = () => Math.max(...lines.map((l) => textWidth(l, scale)));
  while (scale > 1 && widest() + 4 * scale > img.width) scale--;
  const pad = 2 * scale;
  const lineHeight = (GLYPH_HEIGHT + 3) * scale;
  const box = { x: 0, y: 0, width: Math.min(img.width, widest() + 2 * pad), height: Math.min(img.height, lines.length * lineHeight + 2 * pad - 3 * scale), scale };
  fillRect(img, box.x, box.y, box.width, box.height, LABEL_BACKGROUND);
  lines.forEach((l, i) => drawText(img, pad, pad + i * lineHeight, l, scale, LABEL_TEXT));
  return box;
}
