import type { Volume } from '../../dicom/volume.ts';
import { close, components3D, fillHoles2D, type Grid } from './morphology.ts';
import type { LungMask } from './types.ts';

/**
 * Lung segmentation (issue 7, item 2), classical and fast, on a grid downsampled 2× in-plane (0.7 mm pixels become
 * 1.4 mm: a quarter of the voxels, and the lung border needs no finer grain):
 *
 * 1. air = HU < −400 (the lung parenchyma is −950..−700, soft tissue −100..+100);
 * 2. per slice, air reachable from the image border (room air, the table, the padding outside the field of view) is
 *    outside; what is left is the air inside the body: lungs, airways, bowel gas;
 * 3. the airway tree is grown from the trachea (the central air tube of the cranial slices) with a leak-controlled
 *    threshold ladder (a lumen is −1000, parenchyma −850: the largest threshold whose airway does not explode) and
 *    removed with a one-voxel margin, which separates the lungs at the carina;
 * 4. the lungs are the largest 3D components whose cranial end reaches the upper half of the largest one (bowel and
 *    stomach gas lie below the lungs, so their top is low);
 * 5. each lung, per axial slice, is closed with a 10 mm disc and its holes filled: vessels and nodules inside the
 *    lung, and juxtapleural nodules up to about 20 mm wide on the wall, come back inside the mask.
 */

export type LungMaskOptions = {
  /** Air threshold, HU. */
  airHu?: number;
  /** Radius of the per-slice closing that brings juxtapleural nodules back in, mm. */
  closingMm?: number;
};

export type LungMaskDetail = LungMask & {
  /** Airway voxels removed (full grid count), and the threshold the airway grow settled on. */
  airwayMl: number;
  airwayHu?: number;
  /** Number of lung components found (2 when the airway removal separated them, 1 when they touch). */
  lungCount: number;
};

/** 2×2 block mean of each slice (or the slice itself when it is small); Int16 HU. */
export function downsampleInPlane(volume: Volume, factor: number): { hu: Int16Array; nx: number; ny: number; nz: number } {
  const [C, R, S] = volume.dims;
  const nx = Math.ceil(C / factor);
  const ny = Math.ceil(R / factor);
  const hu = new Int16Array(nx * ny * S);
  const src = volume.voxels;
  const plane = C * R;
  for (let k = 0; k < S; k++) {
    const base = k * plane;
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        let sum = 0;
        let n = 0;
        for (let dy = 0; dy < factor; dy++) {
          const j = y * factor + dy;
          if (j >= R) break;
          for (let dx = 0; dx < factor; dx++) {
            const i = x * factor + dx;
            if (i >= C) break;
            sum += src[base + j * C + i];
            n++;
          }
        }
        const v = Math.round(sum / n);
        hu[(k * ny + y) * nx + x] = v < -32768 ? -32768 : v > 32767 ? 32767 : v;
      }
  }
  return { hu, nx, ny, nz: S };
}

export const inPlaneFactor = (volume: Volume): number => (Math.max(volume.dims[0], volume.dims[1]) >= 384 ? 2 : 1);

export function lungMask(volume: Volume, options: LungMaskOptions = {}): LungMaskDetail {
  const airHu = options.airHu ?? -400;
  const closingMm = options.closingMm ?? 10;
  const f = inPlaneFactor(volume);
  const { hu, nx, ny, nz } = downsampleInPlane(volume, f);
  const plane = nx * ny;
  const n = plane * nz;
  const sx = volume.pixelSpacingMm[1] * f;
  const sy = volume.pixelSpacingMm[0] * f;
  const sz = volume.sliceSpacingMm || 1;
  const voxelMl = (sx * sy * sz) / 1000;

  // 1–2: air inside the body
  const inner = new Uint8Array(n);
  const queue = new Int32Array(plane);
  const seen = new Uint8Array(plane);
  for (let z = 0; z < nz; z++) {
    const off = z * plane;
    seen.fill(0);
    let head = 0;
    let tail = 0;
    const push = (p: number): void => {
      if (!seen[p] && hu[off + p] < airHu) {
        seen[p] = 1;
        queue[tail++] = p;
      }
    };
    for (let x = 0; x < nx; x++) (push(x), push((ny - 1) * nx + x));
    for (let y = 0; y < ny; y++) (push(y * nx), push(y * nx + nx - 1));
    while (head < tail) {
      const p = queue[head++];
      const x = p % nx;
      if (x > 0) push(p - 1);
      if (x < nx - 1) push(p + 1);
      if (p >= nx) push(p - nx);
      if (p < plane - nx) push(p + nx);
    }
    for (let p = 0; p < plane; p++) inner[off + p] = hu[off + p] < airHu && !seen[p] ? 1 : 0;
  }

  // 3: airway tree from the trachea
  const cranialUp = (volume.affine[10] ?? 1) >= 0; // slice index grows towards the head (LPS +z)
  const airway = growAirway(hu, inner, nx, ny, nz, sx, sy, cranialUp, voxelMl);
  if (airway.mask) {
    // one voxel of margin: the airway wall's partial volume is below the lumen threshold
    const m = airway.mask;
    for (let p = 0; p < n; p++) {
      if (!m[p]) continue;
      inner[p] = 0;
      const x = p % nx;
      const y = ((p - x) / nx) % ny;
      if (x > 0) inner[p - 1] = 0;
      if (x < nx - 1) inner[p + 1] = 0;
      if (y > 0) inner[p - nx] = 0;
      if (y < ny - 1) inner[p + nx] = 0;
      if (p >= plane) inner[p - plane] = 0;
      if (p < n - plane) inner[p + plane] = 0;
    }
  }

  // 4: the lungs among the inner air components
  const { labels, sizes } = components3D(inner, nx, ny, nz);
  const top = new Int32Array(sizes.length).fill(cranialUp ? -1 : nz);
  const bottom = new Int32Array(sizes.length).fill(cranialUp ? nz : -1);
  for (let p = 0; p < n; p++) {
    const l = labels[p];
    if (!l) continue;
    const z = Math.floor(p / plane);
    if (cranialUp) {
      if (z > top[l]) top[l] = z;
      if (z < bottom[l]) bottom[l] = z;
    } else {
      if (z < top[l]) top[l] = z;
      if (z > bottom[l]) bottom[l] = z;
    }
  }
  const order = sizes.map((s, l) => ({ s, l })).filter((c) => c.l > 0).sort((a, b) => b.s - a.s);
  const kept: number[] = [];
  if (order.length > 0) {
    const big = order[0];
    const mid = (top[big.l] + bottom[big.l]) / 2;
    for (const c of order.slice(0, 4)) {
      if (c.s < 0.05 * big.s || c.s * voxelMl < 50) continue;
      const reachesUpperHalf = cranialUp ? top[c.l] >= mid : top[c.l] <= mid;
      if (c === big || reachesUpperHalf) kept.push(c.l);
    }
  }

  // When the lungs touch (one component), the closing works on each side of the component's centroid column apart,
  // so that it never bridges the mediastinum between them.
  const lungCount = kept.length;
  if (kept.length === 1) {
    const l = kept[0];
    let sx0 = 0;
    let cnt = 0;
    for (let p = 0; p < n; p++) if (labels[p] === l) (sx0 += p % nx), cnt++;
    const mid = Math.round(sx0 / cnt);
    const right = sizes.length;
    for (let p = 0; p < n; p++) if (labels[p] === l && p % nx >= mid) labels[p] = right;
    kept.push(right);
  }

  // 5: per lung, per slice: closing and hole filling
  const ds = new Uint8Array(n);
  const g2: Grid = { nx, ny, nz: 1, sx, sy, sz: 1 };
  const margin = Math.ceil(closingMm / Math.min(sx, sy)) + 2;
  for (const l of kept) {
    for (let z = 0; z < nz; z++) {
      const off = z * plane;
      let x0 = nx;
      let x1 = -1;
      let y0 = ny;
      let y1 = -1;
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < nx; x++)
          if (labels[off + y * nx + x] === l) {
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
          }
      if (x1 < 0) continue;
      const bx0 = Math.max(0, x0 - margin);
      const by0 = Math.max(0, y0 - margin);
      const bw = Math.min(nx - 1, x1 + margin) - bx0 + 1;
      const bh = Math.min(ny - 1, y1 + margin) - by0 + 1;
      const box = new Uint8Array(bw * bh);
      for (let y = 0; y < bh; y++)
        for (let x = 0; x < bw; x++) box[y * bw + x] = labels[off + (by0 + y) * nx + bx0 + x] === l ? 1 : 0;
      const closed = close(box, { ...g2, nx: bw, ny: bh }, closingMm);
      fillHoles2D(closed, bw, bh);
      for (let y = 0; y < bh; y++)
        for (let x = 0; x < bw; x++) if (closed[y * bw + x]) ds[off + (by0 + y) * nx + bx0 + x] = 1;
    }
  }

  // back to the volume's own grid (nearest)
  const [C, R, S] = volume.dims;
  const mask = new Uint8Array(C * R * S);
  let count = 0;
  for (let k = 0; k < S; k++)
    for (let j = 0; j < R; j++) {
      const srow = (k * ny + Math.floor(j / f)) * nx;
      const drow = (k * R + j) * C;
      for (let i = 0; i < C; i++)
        if (ds[srow + Math.floor(i / f)]) {
          mask[drow + i] = 1;
          count++;
        }
    }
  const fullVoxelMl = (volume.pixelSpacingMm[0] * volume.pixelSpacingMm[1] * sz) / 1000;
  let airwayCount = 0;
  if (airway.mask) for (let p = 0; p < n; p++) airwayCount += airway.mask[p];
  return {
    dims: [C, R, S],
    mask,
    volumeMl: count * fullVoxelMl,
    airwayMl: airwayCount * voxelMl,
    airwayHu: airway.hu,
    lungCount,
  };
}

/**
 * The trachea: on the cranial slices (top 40 %), the first 2D blob of inner air of 50–900 mm² whose centroid lies in
 * the middle third of the body's width. Then a 3D grow from it over HU < T for T = −1000, −975, …, −850, keeping the
 * last T before the grown volume jumps (more than doubles once past 10 ml, or passes 250 ml): that jump is the grow
 * leaking into the parenchyma.
 */
function growAirway(
  hu: Int16Array,
  inner: Uint8Array,
  nx: number,
  ny: number,
  nz: number,
  sx: number,
  sy: number,
  cranialUp: boolean,
  voxelMl: number,
): { mask?: Uint8Array; hu?: number } {
  const plane = nx * ny;
  const pxMm2 = sx * sy;
  const seen = new Uint8Array(plane);
  const queue = new Int32Array(plane);
  let seeds: number[] | undefined;
  const span = Math.ceil(nz * 0.4);
  for (let s = 0; s < span && !seeds; s++) {
    const z = cranialUp ? nz - 1 - s : s;
    const off = z * plane;
    // body width on this slice: the columns holding any non-air (> −400 HU) pixel
    let bx0 = nx;
    let bx1 = -1;
    for (let p = 0; p < plane; p++)
      if (hu[off + p] > -400) {
        const x = p % nx;
        if (x < bx0) bx0 = x;
        if (x > bx1) bx1 = x;
      }
    if (bx1 < 0) continue;
    const third = (bx1 - bx0) / 3;
    seen.fill(0);
    let best: { pts: number[]; d: number } | undefined;
    for (let p0 = 0; p0 < plane; p0++) {
      if (!inner[off + p0] || seen[p0]) continue;
      let head = 0;
      let tail = 0;
      queue[tail++] = p0;
      seen[p0] = 1;
      let cx = 0;
      while (head < tail) {
        const p = queue[head++];
        const x = p % nx;
        cx += x;
        const nb = [x > 0 ? p - 1 : -1, x < nx - 1 ? p + 1 : -1, p >= nx ? p - nx : -1, p < plane - nx ? p + nx : -1];
        for (const q of nb) if (q >= 0 && !seen[q] && inner[off + q]) (seen[q] = 1), (queue[tail++] = q);
      }
      const area = tail * pxMm2;
      cx /= tail;
      if (area < 50 || area > 900 || cx < bx0 + third || cx > bx1 - third) continue;
      const d = Math.abs(cx - (bx0 + bx1) / 2);
      if (!best || d < best.d) best = { pts: Array.from(queue.subarray(0, tail), (p) => off + p), d };
    }
    if (best) seeds = best.pts;
  }
  if (!seeds) return {};

  const n = plane * nz;
  const maxVoxels = Math.ceil(250 / voxelMl);
  const grow = (t: number): Uint8Array | 'leak' | undefined => {
    const m = new Uint8Array(n);
    const q = new Int32Array(maxVoxels + 8);
    let head = 0;
    let tail = 0;
    for (const s of seeds!) if (hu[s] < t) (m[s] = 1), (q[tail++] = s);
    while (head < tail) {
      const p = q[head++];
      const x = p % nx;
      const y = ((p - x) / nx) % ny;
      const nb = [x > 0 ? p - 1 : -1, x < nx - 1 ? p + 1 : -1, y > 0 ? p - nx : -1, y < ny - 1 ? p + nx : -1, p >= plane ? p - plane : -1, p < n - plane ? p + plane : -1];
      for (const r of nb) {
        if (r < 0 || m[r] || !inner[r] || hu[r] >= t) continue;
        if (tail >= maxVoxels) return 'leak';
        m[r] = 1;
        q[tail++] = r;
      }
    }
    return tail > 0 ? m : undefined;
  };
  let kept: { mask: Uint8Array; hu: number; count: number } | undefined;
  const filledVoxels = 10 / voxelMl;
  for (let t = -1000; t <= -850; t += 25) {
    const m = grow(t);
    if (m === 'leak') break; // past 250 ml: into the parenchyma
    if (!m) continue; // nothing that dark yet: the lumen is noisy, try a higher threshold
    let c = 0;
    for (let p = 0; p < n; p++) c += m[p];
    // a trachea fills progressively as the threshold rises; once it holds 10 ml, a doubling is a leak
    if (kept && kept.count > filledVoxels && c > 2 * kept.count) break;
    kept = { mask: m, hu: t, count: c };
  }
  return kept ? { mask: kept.mask, hu: kept.hu } : {};
}
