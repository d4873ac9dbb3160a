/**
 * Pure 2D image steps between the imaging core and a model: resize into the model's input, normalise, and map a
 * class activation map back onto the source image. No I/O; the worker (worker.ts) chains them.
 */

/** Where the model input sits on the source image: input pixel (x, y) ↔ source (x·sx + ox, y·sy + oy). */
export type InputGeometry = {
  /** Source pixels per input pixel along columns and rows. */
  sx: number;
  sy: number;
  /** Source coordinate of the input's (0, 0) edge (negative for letterbox padding). */
  ox: number;
  oy: number;
  inputWidth: number;
  inputHeight: number;
};

/**
 * One axis of a separable resampler with a triangle kernel widened by the scale when shrinking: bilinear upward,
 * area-like (antialiased) downward, as PIL's BILINEAR resize and torchvision's `antialias=True` do. A 1024 px film
 * brought to 224 px by plain bilinear sampling would alias the rib edges the model has never seen that way.
 */
function axisWeights(srcLen: number, dstStart: number, dstLen: number, scale: number, offset: number): { first: Int32Array; weights: Float32Array[] } {
  // scale: source pixels per destination pixel; offset: source coordinate of destination edge 0.
  const support = Math.max(1, scale);
  const first = new Int32Array(dstLen);
  const weights: Float32Array[] = [];
  for (let i = 0; i < dstLen; i++) {
    const centre = offset + (dstStart + i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(srcLen - 1, Math.ceil(centre + support));
    const w = new Float32Array(Math.max(0, hi - lo + 1));
    let sum = 0;
    for (let j = lo; j <= hi; j++) {
      const d = Math.abs(j + 0.5 - centre) / support;
      const v = d < 1 ? 1 - d : 0;
      w[j - lo] = v;
      sum += v;
    }
    if (sum > 0) for (let k = 0; k < w.length; k++) w[k] /= sum;
    first[i] = lo;
    weights.push(w);
  }
  return { first, weights };
}

/**
 * Resizes 0..1 display values (rows × columns) into a height × width model input. 'stretch' scales each axis on
 * its own; 'letterbox' keeps the aspect ratio and pads the short side with 0 (black, as film outside the collimator).
 */
export function resizeToInput(values: Float32Array, rows: number, columns: number, height: number, width: number, mode: 'letterbox' | 'stretch' = 'stretch'): { data: Float32Array; geometry: InputGeometry } {
  let sx = columns / width;
  let sy = rows / height;
  let ox = 0;
  let oy = 0;
  let x0 = 0;
  let x1 = width;
  let y0 = 0;
  let y1 = height;
  if (mode === 'letterbox') {
    const s = Math.max(sx, sy);
    sx = sy = s;
    const contentW = Math.min(width, Math.round(columns / s));
    const contentH = Math.min(height, Math.round(rows / s));
    x0 = Math.floor((width - contentW) / 2);
    y0 = Math.floor((height - contentH) / 2);
    x1 = x0 + contentW;
    y1 = y0 + contentH;
    ox = -x0 * s;
    oy = -y0 * s;
  }
  const cw = axisWeights(columns, x0, x1 - x0, sx, ox);
  const rw = axisWeights(rows, y0, y1 - y0, sy, oy);
  // Rows first over columns (horizontal pass), then vertical: the intermediate is rows × (x1 - x0).
  const midW = x1 - x0;
  const mid = new Float32Array(rows * midW);
  for (let r = 0; r < rows; r++) {
    const base = r * columns;
    for (let i = 0; i < midW; i++) {
      const w = cw.weights[i];
      const f = cw.first[i];
      let acc = 0;
      for (let k = 0; k < w.length; k++) acc += values[base + f + k] * w[k];
      mid[r * midW + i] = acc;
    }
  }
  const out = new Float32Array(width * height);
  for (let j = 0; j < y1 - y0; j++) {
    const w = rw.weights[j];
    const f = rw.first[j];
    const dst = (y0 + j) * width + x0;
    for (let i = 0; i < midW; i++) {
      let acc = 0;
      for (let k = 0; k < w.length; k++) acc += mid[(f + k) * midW + i] * w[k];
      out[dst + i] = acc;
    }
  }
  return { data: out, geometry: { sx, sy, ox, oy, inputWidth: width, inputHeight: height } };
}

/** (x − mean) / std in place: the manifest's normalisation after the 0..1 display scaling. */
export function normalise(data: Float32Array, mean: number, std: number): Float32Array {
  for (let i = 0; i < data.length; i++) data[i] = (data[i] - mean) / std;
  return data;
}

/** Bilinear sample of a (h × w) map at fractional cell coordinates, clamped at the edges. */
function sample(map: Float32Array, h: number, w: number, y: number, x: number): number {
  const yc = Math.min(h - 1, Math.max(0, y));
  const xc = Math.min(w - 1, Math.max(0, x));
  const y0 = Math.floor(yc);
  const x0 = Math.floor(xc);
  const y1 = Math.min(h - 1, y0 + 1);
  const x1 = Math.min(w - 1, x0 + 1);
  const fy = yc - y0;
  const fx = xc - x0;
  const top = map[y0 * w + x0] * (1 - fx) + map[y0 * w + x1] * fx;
  const bottom = map[y1 * w + x0] * (1 - fx) + map[y1 * w + x1] * fx;
  return top * (1 - fy) + bottom * fy;
}

/**
 * A class activation map (h × w cells over the model input) upsampled bilinearly to the source image (rows ×
 * columns), through the same geometry as the input: a heatmap drawn over the film where the model looked.
 * Values are clamped to 0..1 (the manifest promises a CAM in 0..1; a model that overshoots is not trusted past it).
 */
export function camToSource(cam: Float32Array, h: number, w: number, g: InputGeometry, rows: number, columns: number): Float32Array {
  const out = new Float32Array(rows * columns);
  const cellW = g.inputWidth / w;
  const cellH = g.inputHeight / h;
  const xs = new Float32Array(columns);
  for (let c = 0; c < columns; c++) xs[c] = ((c + 0.5 - g.ox) / g.sx) / cellW - 0.5;
  for (let r = 0; r < rows; r++) {
    const y = ((r + 0.5 - g.oy) / g.sy) / cellH - 0.5;
    for (let c = 0; c < columns; c++) {
      const v = sample(cam, h, w, y, xs[c]);
      out[r * columns + c] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}

export type HotRegion = {
  /** Top-left and bottom-right corners in source pixels (column, row), DICOM SCOORD convention. */
  box: [[number, number], [number, number]];
  /** Centre of the region in source pixels (column, row). */
  centre: [number, number];
  peak: number;
};

/**
 * The hottest region of a CAM: the 4-connected cells around the peak whose value is at least half-way between the
 * map's median and its peak, as a box on the source image. Half-way to the median (not to the minimum) keeps a
 * diffusely warm map from yielding a box over the whole chest.
 */
export function hotRegion(cam: Float32Array, h: number, w: number, g: InputGeometry, rows: number, columns: number): HotRegion {
  const peakIdx = argMax(cam);
  const sorted = Float32Array.from(cam).sort();
  const median = sorted[Math.floor(sorted.length / 2)];
  const peak = cam[peakIdx];
  const cut = median + (peak - median) * 0.5;
  const { r0, r1, c0, c1 } = connectedBounds(cam, h, w, peakIdx, cut);
  const cellW = g.inputWidth / w;
  const cellH = g.inputHeight / h;
  const toSrcX = (cell: number) => Math.min(columns, Math.max(0, cell * cellW * g.sx + g.ox));
  const toSrcY = (cell: number) => Math.min(rows, Math.max(0, cell * cellH * g.sy + g.oy));
  const box: HotRegion['box'] = [[toSrcX(c0), toSrcY(r0)], [toSrcX(c1 + 1), toSrcY(r1 + 1)]];
  const pr = Math.floor(peakIdx / w);
  const pc = peakIdx % w;
  return { box, centre: [toSrcX(pc + 0.5), toSrcY(pr + 0.5)], peak };
}

/** Index of the largest value of a map. */
export function argMax(values: Float32Array): number {
  let k = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[k]) k = i;
  return k;
}

/**
 * The bounding cells (inclusive) of the 4-connected region around `start` whose values are at least `cut`: the hot
 * region of a CAM, shared by every detector that turns a heatmap peak into a place on the image.
 */
export function connectedBounds(map: Float32Array, h: number, w: number, start: number, cut: number): { r0: number; r1: number; c0: number; c1: number } {
  const seen = new Uint8Array(map.length);
  const stack = [start];
  seen[start] = 1;
  let r0 = h, r1 = -1, c0 = w, c1 = -1;
  while (stack.length) {
    const i = stack.pop()!;
    const r = Math.floor(i / w);
    const c = i % w;
    r0 = Math.min(r0, r); r1 = Math.max(r1, r); c0 = Math.min(c0, c); c1 = Math.max(c1, c);
    for (const [dr, dc] of [[1, 0], [-1, 0], [0, 1], [0, -1]] as const) {
      const rr = r + dr;
      const cc = c + dc;
      if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
      const j = rr * w + cc;
      if (!seen[j] && map[j] >= cut) {
        seen[j] = 1;
        stack.push(j);
      }
    }
  }
  return { r0, r1, c0, c1 };
}
