/**
 * Pure mammogram steps between the imaging core and a model (issue 6), the TypeScript half of the contract written
 * in models/mammo/train.py: chest wall at column 0, crop to the breast, stretch into the model input, and the way
 * back from model cells to stored pixels. No I/O; the worker chains them.
 */
import { mammographyOrientation, reorient, turnedPointToStored, type DicomInstance, type MammoOrientation } from '../dicom/index.ts';
import { argMax, connectedBounds, resizeToInput } from './image.ts';

/** Grid and tissue threshold of the breast crop: the same constants as train.py (GRID, TISSUE). */
const GRID = 64;
const TISSUE = 0.12;

export type Box = { r0: number; r1: number; c0: number; c1: number };

/**
 * The breast: the bounding box of the largest 4-connected group of cells (a 64 × 64 grid) whose mean display
 * value exceeds 0.12. Film labels, markers and padding are separate small groups and fall outside the box.
 */
export function breastBox(d: Float32Array, rows: number, columns: number): Box {
  const rb = Array.from({ length: GRID + 1 }, (_, i) => Math.floor((i * rows) / GRID));
  const cb = Array.from({ length: GRID + 1 }, (_, j) => Math.floor((j * columns) / GRID));
  const mask = new Uint8Array(GRID * GRID);
  for (let i = 0; i < GRID; i++) {
    for (let j = 0; j < GRID; j++) {
      let sum = 0;
      let n = 0;
      for (let r = rb[i]; r < rb[i + 1]; r++) for (let c = cb[j]; c < cb[j + 1]; c++) { sum += d[r * columns + c]; n++; }
      mask[i * GRID + j] = n > 0 && sum / n > TISSUE ? 1 : 0;
    }
  }
  const seen = new Uint8Array(GRID * GRID);
  let best: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    const cells: number[] = [];
    const stack = [start];
    seen[start] = 1;
    while (stack.length) {
      const k = stack.pop()!;
      cells.push(k);
      const a = Math.floor(k / GRID);
      const b = k % GRID;
      for (const [da, db] of [[1, 0], [-1, 0], [0, 1], [0, -1]] as const) {
        const x = a + da;
        const y = b + db;
        if (x < 0 || x >= GRID || y < 0 || y >= GRID) continue;
        const q = x * GRID + y;
        if (mask[q] && !seen[q]) { seen[q] = 1; stack.push(q); }
      }
    }
    // Strictly larger: ties keep the first group in raster order, as train.py does.
    if (cells.length > best.length) best = cells;
  }
  if (!best.length) return { r0: 0, r1: rows, c0: 0, c1: columns };
  let i0 = GRID, i1 = -1, j0 = GRID, j1 = -1;
  for (const k of best) {
    const a = Math.floor(k / GRID);
    const b = k % GRID;
    i0 = Math.min(i0, a); i1 = Math.max(i1, a); j0 = Math.min(j0, b); j1 = Math.max(j1, b);
  }
  return { r0: rb[i0], r1: rb[i1 + 1], c0: cb[j0], c1: cb[j1 + 1] };
}

/** Without Patient Orientation: the side of the breast box whose outer 10% of columns is brighter is the chest wall. */
export function chestWallOnRight(d: Float32Array, rows: number, columns: number): boolean {
  const { r0, r1, c0, c1 } = breastBox(d, rows, columns);
  const band = Math.max(1, Math.floor(0.1 * (c1 - c0)));
  let left = 0;
  let right = 0;
  for (let r = r0; r < r1; r++) {
    for (let c = 0; c < band; c++) { left += d[r * columns + c0 + c]; right += d[r * columns + c1 - band + c]; }
  }
  return right > left;
}

/**
 * How the stored image is turned so the chest wall is at column 0: from Patient Orientation when it names the
 * anterior/posterior axis (the imaging core's rule, PS3.3 C.8.11.7), else from the content. Either way only a
 * transpose and flips: an exact permutation of pixels, so a mirrored or rotated copy of an image that says how it
 * was stored gives the model the very same input.
 */
export function orientationOf(instance: DicomInstance, display: Float32Array, rows: number, columns: number): MammoOrientation {
  const po = instance.header.strings('PatientOrientation').map((s) => s.toUpperCase());
  if (po.length === 2 && po.some((s) => s.includes('A') || s.includes('P'))) return mammographyOrientation(instance);
  const base = mammographyOrientation(instance, { data: display, rows, columns }, { usePatientOrientation: false });
  return { ...base, flipHorizontal: chestWallOnRight(display, rows, columns), flipVertical: false, transpose: false, source: 'content' };
}

/** From the model input back to the stored image. */
export type MammoGeometry = {
  orientation: Pick<MammoOrientation, 'transpose' | 'flipHorizontal' | 'flipVertical'>;
  /** Size of the oriented image. */
  orientedRows: number;
  orientedColumns: number;
  box: Box;
  inputHeight: number;
  inputWidth: number;
};

/** Oriented (x, y) → stored (column, row), continuous pixel coordinates (edges at integers). */
export function orientedToStored(g: MammoGeometry, x: number, y: number): [number, number] {
  return turnedPointToStored(g.orientation, g.orientedRows, g.orientedColumns, x, y);
}

/** Model input (x, y) → stored (column, row). */
export function inputToStored(g: MammoGeometry, x: number, y: number): [number, number] {
  const ox = g.box.c0 + (x * (g.box.c1 - g.box.c0)) / g.inputWidth;
  const oy = g.box.r0 + (y * (g.box.r1 - g.box.r0)) / g.inputHeight;
  return orientedToStored(g, ox, oy);
}

/** Image-content facts the detector uses to refuse what is not a mammogram (see mammogramInput). */
export type MammoContent = { flatFraction: number; boxFraction: number };

/** The display image (0..1, stored orientation) → normalised model input and its geometry. */
export function mammogramInput(
  instance: DicomInstance, display: Float32Array, rows: number, columns: number,
  size: [number, number], norm: { mean: number; std: number },
): { data: Float32Array; geometry: MammoGeometry; orientation: MammoOrientation; content: MammoContent } {
  const orientation = orientationOf(instance, display, rows, columns);
  const o = reorient(display, rows, columns, orientation);
  const box = breastBox(o.data, o.rows, o.columns);
  const w = box.c1 - box.c0;
  const h = box.r1 - box.r0;
  const crop = new Float32Array(w * h);
  for (let r = 0; r < h; r++) crop.set(o.data.subarray((box.r0 + r) * o.columns + box.c0, (box.r0 + r) * o.columns + box.c1), r * w);
  // Flat fraction: horizontal neighbours inside the breast box with identical display values, not counting pairs
  // that are both background (display 0: processed digital images store the air as one value, which says nothing
  // about the breast). Film and detector noise keeps it low in mammograms (all 322 mini-MIAS films 0.14-0.32, GH133
  // 0.04, GH133 cut to 8 bits 0.28, OutOfBoundsOverlay 0.02); synthetic images (test patterns, flat fields) are mostly
  // flat (the cornerstone3D pattern: 0.71). The detector refuses above 0.5. (Counting background too, GH133 gave
  // 0.40 and its 8-bit copy 0.55, close to the pattern's 0.74.)
  let flat = 0;
  let pairs = 0;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c + 1 < w; c++) {
      const a = crop[r * w + c];
      const b = crop[r * w + c + 1];
      if (a === 0 && b === 0) continue;
      pairs++;
      if (a === b) flat++;
    }
  }
  const content = { flatFraction: pairs > 0 ? flat / pairs : 1, boxFraction: (w * h) / (o.rows * o.columns) };
  const [height, width] = size;
  const { data } = resizeToInput(crop, h, w, height, width, 'stretch');
  for (let i = 0; i < data.length; i++) data[i] = (data[i] - norm.mean) / norm.std;
  return { data, orientation, content, geometry: { orientation, orientedRows: o.rows, orientedColumns: o.columns, box, inputHeight: height, inputWidth: width } };
}

/**
 * The cell map (h × w over the model input, 0..1) drawn on the stored image (rows × columns): bilinear between
 * cell centres inside the breast box, 0 outside it.
 */
export function mammoCamToStored(cam: Float32Array, h: number, w: number, g: MammoGeometry, rows: number, columns: number): Float32Array {
  const out = new Float32Array(rows * columns);
  const { box } = g;
  const cellW = (box.c1 - box.c0) / w;
  const cellH = (box.r1 - box.r0) / h;
  const o = g.orientation;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      // Stored → oriented: the inverse of orientedToStored.
      let x = o.transpose ? r + 0.5 : c + 0.5;
      let y = o.transpose ? c + 0.5 : r + 0.5;
      if (o.flipHorizontal) x = g.orientedColumns - x;
      if (o.flipVertical) y = g.orientedRows - y;
      if (x < box.c0 || x >= box.c1 || y < box.r0 || y >= box.r1) continue;
      const fx = Math.min(w - 1, Math.max(0, (x - box.c0) / cellW - 0.5));
      const fy = Math.min(h - 1, Math.max(0, (y - box.r0) / cellH - 0.5));
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      const x1 = Math.min(w - 1, x0 + 1);
      const y1 = Math.min(h - 1, y0 + 1);
      const ax = fx - x0;
      const ay = fy - y0;
      const v = (cam[y0 * w + x0] * (1 - ax) + cam[y0 * w + x1] * ax) * (1 - ay) + (cam[y1 * w + x0] * (1 - ax) + cam[y1 * w + x1] * ax) * ay;
      out[r * columns + c] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}

export type MammoPeak = {
  value: number;
  /** Peak cell centre on the stored image (column, row). */
  centre: [number, number];
  /**
   * The 4-connected cells around the peak at ≥ half the peak, as an ellipse on the stored image: 4 points (major
   * axis ends, then minor axis ends), axis-aligned in the stored frame.
   */
  ellipse: [number, number][];
};

export function mammoPeak(cam: Float32Array, h: number, w: number, g: MammoGeometry): MammoPeak {
  const k = argMax(cam);
  const peak = cam[k];
  const { r0, r1, c0, c1 } = connectedBounds(cam, h, w, k, peak * 0.5);
  const cw = g.inputWidth / w;
  const ch = g.inputHeight / h;
  const centre = inputToStored(g, ((k % w) + 0.5) * cw, (Math.floor(k / w) + 0.5) * ch);
  const a = inputToStored(g, c0 * cw, r0 * ch);
  const b = inputToStored(g, (c1 + 1) * cw, (r1 + 1) * ch);
  const [xa, xb] = [Math.min(a[0], b[0]), Math.max(a[0], b[0])];
  const [ya, yb] = [Math.min(a[1], b[1]), Math.max(a[1], b[1])];
  const cx = (xa + xb) / 2;
  const cy = (ya + yb) / 2;
  const round = (p: [number, number]): [number, number] => [Math.round(p[0] * 10) / 10, Math.round(p[1] * 10) / 10];
  const horiz: [number, number][] = [[xa, cy], [xb, cy]];
  const vert: [number, number][] = [[cx, ya], [cx, yb]];
  const ellipse = (xb - xa >= yb - ya ? [...horiz, ...vert] : [...vert, ...horiz]).map(round);
  return { value: peak, centre: round(centre), ellipse };
}
