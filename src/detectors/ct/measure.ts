import { voxelToPatient, type Vec3, type Volume } from '../../dicom/volume.ts';
import { gaussianBlur } from './candidates.ts';
import { components3D, dilate, open, type Grid } from './morphology.ts';
import type { LungMask, NoduleMeasurement, NoduleType } from './types.ts';

/**
 * Nodule segmentation and measurement (issue 7, item 4), on the volume's own voxels in a box around the candidate.
 *
 * Thresholds are half-way between the local lung background and the nodule's own density (a blurred edge crosses
 * half its contrast where the true edge is, so half-maximum boundaries give unbiased sizes whatever the scanner's
 * sharpness):
 * - background = median HU of the lung-mask voxels in the outer 3 mm shell of the search sphere (clamped to
 *   −950..−700), so a dependent or emphysematous lung moves it;
 * - the whole lesion: a region grow from the densest voxel within 1.5 mm of the centre over HU ≥ T_low = background
 *   + ½·(min(core, −550) − background), on a copy smoothed with σ = 0.7 mm (noise, the bubbly texture of ground
 *   glass); core = 90th percentile of that copy within 1–3 mm of the centre, at least 100 HU over the background or
 *   there is nothing to measure. A ground-glass lesion is cut at its half maximum, a solid one keeps its halo;
 * - the solid component, when the lesion holds at least a 3 mm sphere's worth of voxels at −300 HU or more: a grow on
 *   the raw HU over HU ≥ T_solid = max(−450, background + ½·(density − background)), density = the median of those
 *   voxels (capped at 100), from the densest voxel near the centre;
 * - both grows are 6-connected, inside the lung mask (so a juxtapleural nodule stops at the chest wall) and the search
 *   sphere, then opened with a ball of OPENING_FRACTION × the grown lesion's equivalent radius (0.7–3 mm, 2 mm at most
 *   around a subsolid core; smaller when nothing survives) and cut to the component holding the seed: vessels thinner than the ball come off. The
 *   sphere grows ×1.5 (up to 30 mm) while the lesion covers a quarter of its outer shell.
 * Type: no solid component → ground-glass. Solid when what lies beyond the solid component's blur halo (max(1.5 mm,
 * one slice) + σ/2), kept only where it is a layer at least 2 mm thick (an opening by a 1 mm ball: spicules, vessel
 * stumps and partial-volume rims are thinner), is under 30 % of the solid volume; measured on the solid component.
 * Otherwise part-solid, measured on the whole lesion, with the solid component's own mean diameter.
 * A lesion whose mean HU stands less than 120 HU over the background, or smaller than a 3 mm sphere, is none.
 * Subsolid lesions are measured again from their own centre when the candidate was more than 2 mm off it.
 * Sizes: key slice = the axial slice of largest area; long axis = the largest in-plane distance between two pixels
 * (max Feret over pixel centres, plus one pixel for the pixels' own extent); short axis = the longest chord
 * perpendicular to it (same correction); mean diameter = (long + short)/2 rounded to 0.1 mm; volume = the voxel
 * count corrected for the partial volume of the border voxels (pvVolumeMm3), mm³.
 */

export type MeasureOptions = {
  /** Start radius of the search sphere, mm (default from the candidate scale). */
  searchRadiusMm?: number;
  /** σ (mm) of the Gaussian that smooths the box before thresholding: noise and the bubbles of ground glass. */
  smoothMm?: number;
  /** Keep the search sphere as given: a lesion that fills `maxShellFill` of its shell is then no measurement at all. */
  fixedRadius?: boolean;
  /** The share of the search sphere's (lung) outer shell a lesion may cover before the sphere is too small. */
  maxShellFill?: number;
};

/**
 * The opening ball's radius as a fraction of the grown lesion's equivalent-sphere radius. Chosen on inserted nodules
 * (24 per volume and round, 4–10 mm, solid, ground-glass, juxtapleural, measured from the candidate's centre): 0.3
 * left attached vessels on (mean |error| of the mean diameter 0.75 mm for solid nodules, 10 of 72 off by > 1.5 mm),
 * 0.45 cut them (0.39 mm, 1 of 72), 0.6 began to eat the nodules (insertion-study.ts reproduces these figures).
 */
export const OPENING_FRACTION = 0.45;

type Box = { i0: number; j0: number; k0: number; nx: number; ny: number; nz: number; sx: number; sy: number; sz: number; c: Vec3 };

function percentile(values: number[], q: number): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.floor(q * (s.length - 1))))];
}

/** 6-connected grow over local voxels with allowed[p] && hu[p] ≥ t, from seed. */
function grow(hu: Float32Array, allowed: Uint8Array, b: Box, seed: number, t: number): Uint8Array {
  const n = b.nx * b.ny * b.nz;
  const out = new Uint8Array(n);
  if (!allowed[seed] || hu[seed] < t) return out;
  const q = new Int32Array(n);
  const plane = b.nx * b.ny;
  let head = 0;
  let tail = 0;
  q[tail++] = seed;
  out[seed] = 1;
  while (head < tail) {
    const p = q[head++];
    const x = p % b.nx;
    const y = ((p - x) / b.nx) % b.ny;
    const z = (p - x - y * b.nx) / plane;
    const nb = [x > 0 ? p - 1 : -1, x < b.nx - 1 ? p + 1 : -1, y > 0 ? p - b.nx : -1, y < b.ny - 1 ? p + b.nx : -1, z > 0 ? p - plane : -1, z < b.nz - 1 ? p + plane : -1];
    for (const r of nb) if (r >= 0 && !out[r] && allowed[r] && hu[r] >= t) (out[r] = 1), (q[tail++] = r);
  }
  return out;
}

const count = (m: Uint8Array): number => {
  let c = 0;
  for (let i = 0; i < m.length; i++) c += m[i];
  return c;
};

/** Opening by a ball of radius ρ mm, then the 6-connected component that holds the seed (or the largest). */
function openKeep(m: Uint8Array, b: Box, rho: number, seed: number): Uint8Array {
  const g: Grid = { nx: b.nx, ny: b.ny, nz: b.nz, sx: b.sx, sy: b.sy, sz: b.sz };
  // a lesion too small for the ball: a smaller ball (the grow as it is below 0.5 mm)
  let o = open(m, g, rho);
  while (!count(o) && rho > 0.5) {
    rho /= 2;
    o = rho > 0.5 ? open(m, g, rho) : m;
  }
  const { labels, sizes } = components3D(o, b.nx, b.ny, b.nz);
  let keep = labels[seed];
  if (!keep) {
    // the seed was shaved off: the component nearest the seed
    let best = Infinity;
    const sx = seed % b.nx;
    const sy = Math.floor(seed / b.nx) % b.ny;
    const sz = Math.floor(seed / (b.nx * b.ny));
    for (let p = 0; p < labels.length; p++) {
      if (!labels[p]) continue;
      const x = p % b.nx;
      const y = Math.floor(p / b.nx) % b.ny;
      const z = Math.floor(p / (b.nx * b.ny));
      const d = ((x - sx) * b.sx) ** 2 + ((y - sy) * b.sy) ** 2 + ((z - sz) * b.sz) ** 2;
      if (d < best) (best = d), (keep = labels[p]);
    }
  }
  const out = new Uint8Array(m.length);
  if (!keep || !sizes[keep]) return out;
  for (let p = 0; p < out.length; p++) out[p] = labels[p] === keep ? 1 : 0;
  return out;
}

type Axes = { keySlice: number; longMm: number; shortMm: number; longAxis: [[number, number], [number, number]]; shortAxis: [[number, number], [number, number]] };

/** Long and short axis on the slice of largest area (see the module comment), end points in volume pixels. */
function axes(m: Uint8Array, b: Box): Axes | undefined {
  const plane = b.nx * b.ny;
  let bestZ = -1;
  let bestA = 0;
  for (let z = 0; z < b.nz; z++) {
    let a = 0;
    for (let p = z * plane; p < (z + 1) * plane; p++) a += m[p];
    if (a > bestA) (bestA = a), (bestZ = z);
  }
  if (bestZ < 0) return undefined;
  const off = bestZ * plane;
  const xs: number[] = [];
  const ys: number[] = [];
  const bx: number[] = [];
  const by: number[] = [];
  for (let y = 0; y < b.ny; y++)
    for (let x = 0; x < b.nx; x++) {
      const p = off + y * b.nx + x;
      if (!m[p]) continue;
      xs.push(x * b.sx);
      ys.push(y * b.sy);
      const edge = x === 0 || y === 0 || x === b.nx - 1 || y === b.ny - 1 || !m[p - 1] || !m[p + 1] || !m[p - b.nx] || !m[p + b.nx];
      if (edge) (bx.push(x * b.sx), by.push(y * b.sy));
    }
  // max Feret over the boundary pixels
  let best = -1;
  let pa = 0;
  let pb = 0;
  for (let u = 0; u < bx.length; u++)
    for (let w = u + 1; w < bx.length; w++) {
      const d = (bx[u] - bx[w]) ** 2 + (by[u] - by[w]) ** 2;
      if (d > best) (best = d), (pa = u), (pb = w);
    }
  const px = Math.sqrt(b.sx * b.sy);
  let ux = 1;
  let uy = 0;
  let longCentres = 0;
  if (bx.length >= 2 && best > 0) {
    longCentres = Math.sqrt(best);
    ux = (bx[pb] - bx[pa]) / longCentres;
    uy = (by[pb] - by[pa]) / longCentres;
  } else pb = pa;
  const longMm = longCentres + px;
  // the longest chord perpendicular to it: pixels binned by their position along the long axis (half-pixel bins)
  const vx = -uy;
  const vy = ux;
  const bins = new Map<number, { lo: number; hi: number; t: number; ilo: number; ihi: number }>();
  const binW = px / 2;
  for (let q = 0; q < xs.length; q++) {
    const t = xs[q] * ux + ys[q] * uy;
    const s = xs[q] * vx + ys[q] * vy;
    const key = Math.round(t / binW);
    const e = bins.get(key);
    if (!e) bins.set(key, { lo: s, hi: s, t, ilo: q, ihi: q });
    else {
      if (s < e.lo) (e.lo = s), (e.ilo = q);
      if (s > e.hi) (e.hi = s), (e.ihi = q);
    }
  }
  let shortCentres = 0;
  let chord = { lo: 0, hi: 0, t: 0, ilo: 0, ihi: 0 };
  for (const e of bins.values())
    if (e.hi - e.lo > shortCentres) {
      shortCentres = e.hi - e.lo;
      chord = e;
    }
  const shortMm = Math.min(longMm, shortCentres + px);
  const toPixel = (xMm: number, yMm: number): [number, number] => [b.i0 + xMm / b.sx, b.j0 + yMm / b.sy];
  const h = px / 2;
  const longAxis: Axes['longAxis'] = [toPixel(bx[pa] - ux * h, by[pa] - uy * h), toPixel(bx[pb] + ux * h, by[pb] + uy * h)];
  // the short axis drawn on the chord's own line, centred on the long-axis position of its bin
  const tMid = chord.t;
  const sLo = chord.lo - h;
  const sHi = chord.hi + h;
  const shortAxis: Axes['shortAxis'] = [toPixel(tMid * ux + sLo * vx, tMid * uy + sLo * vy), toPixel(tMid * ux + sHi * vx, tMid * uy + sHi * vy)];
  return { keySlice: b.k0 + bestZ, longMm, shortMm, longAxis, shortAxis };
}


/**
 * Volume with partial-volume correction: voxels inside the region whose six neighbours are all inside count whole;
 * the region's border voxels and the ring just outside it (inside the lung) count the fraction
 * (HU − background)/(density − background), clipped to 0..1, of nodule they hold. With 2.5 mm slices a 5 mm nodule
 * is two or three slices, and counting whole voxels errs by a third of its volume depending on where the slices cut it.
 */
function pvVolumeMm3(region: Uint8Array, hu: Float32Array, allowed: Uint8Array, b: Box, bg: number, density: number): number {
  const plane = b.nx * b.ny;
  const span = Math.max(1, density - bg);
  let sum = 0;
  const n = region.length;
  for (let p = 0; p < n; p++) {
    const x = p % b.nx;
    const y = ((p - x) / b.nx) % b.ny;
    const z = (p - x - y * b.nx) / plane;
    const nb = [x > 0 ? p - 1 : -1, x < b.nx - 1 ? p + 1 : -1, y > 0 ? p - b.nx : -1, y < b.ny - 1 ? p + b.nx : -1, z > 0 ? p - plane : -1, z < b.nz - 1 ? p + plane : -1];
    if (region[p]) {
      if (nb.every((q) => q >= 0 && region[q])) sum += 1;
      else sum += Math.min(1, Math.max(0, (hu[p] - bg) / span));
    } else if (allowed[p] && nb.some((q) => q >= 0 && region[q])) sum += Math.min(1, Math.max(0, (hu[p] - bg) / span));
  }
  return sum * b.sx * b.sy * b.sz;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

export function measureNodule(volume: Volume, mask: LungMask, centreVoxel: Vec3, scaleMm?: number, options: MeasureOptions = {}): NoduleMeasurement | undefined {
  const first = measureOnce(volume, mask, centreVoxel, scaleMm, options);
  if (!first || first.type === 'solid' || options.searchRadiusMm !== undefined) return first;
  // A candidate off a subsolid lesion's centre (a large or heterogeneous ground-glass lesion answers the blob filter
  // off-centre) sees only part of it: measure again from the segmentation's own centre, twice at most, while that
  // moves by more than 2 mm and finds more. Solid nodules are centred by the filter; re-measuring them from a centre
  // pulled by an attached vessel made them worse on inserted nodules.
  let best = first;
  for (let round = 0; round < 2; round++) {
    const moved = Math.hypot(
      (best.centreVoxel[0] - centreVoxel[0]) * volume.pixelSpacingMm[1],
      (best.centreVoxel[1] - centreVoxel[1]) * volume.pixelSpacingMm[0],
      (best.centreVoxel[2] - centreVoxel[2]) * (volume.sliceSpacingMm || 1),
    );
    if (moved <= 2) break;
    centreVoxel = best.centreVoxel;
    const again = measureOnce(volume, mask, centreVoxel, Math.max(scaleMm ?? 0, best.meanDiameterMm), options);
    if (!again || again.volumeMm3 <= best.volumeMm3) break;
    best = again;
  }
  return best;
}

function measureOnce(volume: Volume, mask: LungMask, centreVoxel: Vec3, scaleMm: number | undefined, options: MeasureOptions): NoduleMeasurement | undefined {
  const [C, R, S] = volume.dims;
  const sx = volume.pixelSpacingMm[1];
  const sy = volume.pixelSpacingMm[0];
  const sz = volume.sliceSpacingMm || 1;
  let radius = options.searchRadiusMm ?? Math.min(22, Math.max(8, 0.9 * (scaleMm ?? 10) + 4));
  for (let attempt = 0; attempt < 4; attempt++) {
    const r = measureWithin(volume, mask, centreVoxel, radius, [sx, sy, sz], [C, R, S], options.smoothMm ?? 0.7, options.maxShellFill ?? 0.25);
    if (r === 'grow' && radius < 30 && !options.fixedRadius) {
      radius = Math.min(30, radius * 1.5);
      continue;
    }
    return r === 'grow' ? undefined : r;
  }
  return undefined;
}

function measureWithin(
  volume: Volume,
  mask: LungMask,
  centre: Vec3,
  radius: number,
  [sx, sy, sz]: [number, number, number],
  [C, R, S]: [number, number, number],
  smoothMm: number,
  maxShellFill: number,
): NoduleMeasurement | undefined | 'grow' {
  const ci = Math.round(centre[0]);
  const cj = Math.round(centre[1]);
  const ck = Math.round(centre[2]);
  if (ci < 0 || cj < 0 || ck < 0 || ci >= C || cj >= R || ck >= S) return undefined;
  const ri = Math.ceil(radius / sx);
  const rj = Math.ceil(radius / sy);
  const rk = Math.ceil(radius / sz);
  const i0 = Math.max(0, ci - ri);
  const j0 = Math.max(0, cj - rj);
  const k0 = Math.max(0, ck - rk);
  const b: Box = { i0, j0, k0, nx: Math.min(C - 1, ci + ri) - i0 + 1, ny: Math.min(R - 1, cj + rj) - j0 + 1, nz: Math.min(S - 1, ck + rk) - k0 + 1, sx, sy, sz, c: centre };
  const n = b.nx * b.ny * b.nz;
  const hu = new Float32Array(n);
  const allowed = new Uint8Array(n);
  const dist = new Float32Array(n);
  const shell: number[] = [];
  for (let z = 0; z < b.nz; z++)
    for (let y = 0; y < b.ny; y++)
      for (let x = 0; x < b.nx; x++) {
        const p = (z * b.ny + y) * b.nx + x;
        const g = ((k0 + z) * R + j0 + y) * C + i0 + x;
        hu[p] = volume.voxels[g];
        const d = Math.hypot((i0 + x - centre[0]) * sx, (j0 + y - centre[1]) * sy, (k0 + z - centre[2]) * sz);
        dist[p] = d;
        const inLung = mask.mask[g] === 1;
        allowed[p] = inLung && d <= radius ? 1 : 0;
        if (inLung && d <= radius && d > radius - 3) shell.push(hu[p]);
      }
  // the whole-lesion grow and its core run on a lightly smoothed copy (noise, the bubbly texture of ground glass);
  // the solid component and every reported density use the raw HU
  const huS = hu.slice();
  if (smoothMm > 0) gaussianBlur(huS, b, smoothMm, new Float32Array(n));
  const bg = Math.min(-700, Math.max(-950, shell.length >= 20 ? percentile(shell, 0.5) : -850));

  // the core: the 90th percentile within 1–3 mm of the centre (smoothed); the seed: the densest voxel within 1.5 mm
  const coreR = Math.min(3, Math.max(1.2, 0.15 * radius));
  const coreValsS: number[] = [];
  let seed = -1;
  for (let p = 0; p < n; p++) {
    if (dist[p] > coreR) continue;
    coreValsS.push(huS[p]);
    if (dist[p] <= 1.5 && allowed[p] && (seed < 0 || hu[p] > hu[seed])) seed = p;
  }
  if (seed < 0) return undefined;
  const coreS = percentile(coreValsS, 0.9);
  // contrast on the smoothed core: the raw 90th percentile of noisy parenchyma alone reaches 150 HU over its median
  if (coreS - bg < 100) return undefined;
  const tLow = bg + 0.5 * (Math.min(coreS, -550) - bg);
  let low = grow(huS, allowed, b, seed, tLow);
  let lowCount = count(low);
  if (!lowCount) return undefined;
  const rEq = Math.cbrt((3 * lowCount * sx * sy * sz) / (4 * Math.PI));
  // a subsolid core gets a ball of at most 2 mm: a real ground-glass lesion is bubbly, and a 3 mm ball cut the
  // 0002 nodule to 14 mm (readers: 23 mm; 20 mm with 2 mm) while costing inserted ground-glass nodules 0.1–0.4 mm
  low = openKeep(low, b, Math.min(coreS < -300 ? 2 : 3, Math.max(0.7, OPENING_FRACTION * rEq)), seed);
  lowCount = count(low);
  if (!lowCount) return undefined;
  // the lesion covers much of the sphere's outer shell (the lung part of it): the sphere was too small. A vessel
  // crossing the shell covers a few per cent of it, and growing the sphere for it would only cost time.
  let outer = 0;
  let shellN = 0;
  for (let p = 0; p < n; p++)
    if (allowed[p] && dist[p] > 0.85 * radius) {
      shellN++;
      if (low[p]) outer++;
    }
  if (outer > maxShellFill * shellN) return 'grow';

  const lowVals: number[] = [];
  for (let p = 0; p < n; p++) if (low[p]) lowVals.push(hu[p]);
  // a solid component: at least a 3 mm sphere's worth of voxels at −300 HU or more; its density is their median,
  // and its threshold half-way from the lung to it, never below −450 HU (ground glass around it is −750..−350)
  const denseVals = lowVals.filter((x) => x >= -300);
  let solid: Uint8Array | undefined;
  let solidDensity = NaN;
  if (denseVals.length * sx * sy * sz >= (Math.PI / 6) * 27) {
    solidDensity = percentile(denseVals, 0.5);
    const tSolid = Math.max(-450, bg + 0.5 * (Math.min(solidDensity, 100) - bg));
    let sSeed = -1;
    for (let p = 0; p < n; p++) if (low[p] && dist[p] <= Math.max(2, 0.5 * rEq) && hu[p] >= tSolid && (sSeed < 0 || hu[p] > hu[sSeed])) sSeed = p;
    if (sSeed >= 0) {
      const s = grow(hu, low, b, sSeed, tSolid);
      const sEq = Math.cbrt((3 * count(s) * sx * sy * sz) / (4 * Math.PI));
      solid = openKeep(s, b, Math.min(3, Math.max(0.7, OPENING_FRACTION * sEq)), sSeed);
      if (!count(solid)) solid = undefined;
    }
  }
  let type: NoduleType;
  let region: Uint8Array;
  if (!solid) {
    type = 'ground-glass';
    region = low;
  } else {
    // ground glass around the solid part: what lies beyond the solid part's blur halo, as a layer at least 3 mm
    // thick (an opening by a 1.5 mm ball: spicules, attached vessel stumps and partial-volume rims are thinner)
    const g: Grid = { nx: b.nx, ny: b.ny, nz: b.nz, sx, sy, sz };
    const halo = dilate(solid, g, Math.max(1.5, sz) + 0.5 * smoothMm);
    const outside = new Uint8Array(n);
    for (let p = 0; p < n; p++) outside[p] = low[p] && !halo[p] ? 1 : 0;
    const beyond = count(open(outside, g, 1.0));
    const solidCount = count(solid);
    if (beyond < 0.3 * solidCount) {
      type = 'solid';
      region = solid;
    } else {
      type = 'part-solid';
      region = low;
    }
  }
  const voxelCount = count(region);
  const voxelMm3 = sx * sy * sz;
  // under 3 mm (a sphere of 14 mm³) is not a nodule to report
  if (voxelCount * voxelMm3 < (4 / 3) * Math.PI * 1.5 ** 3) return undefined;
  const ax = axes(region, b);
  if (!ax) return undefined;
  // a lesion must stand out of its lung by 120 HU on average (the faintest ground glass, −700 in −850 lung, by 150):
  // below that the grow has followed noise or a slightly denser patch of parenchyma
  let regionSum = 0;
  for (let p = 0; p < n; p++) if (region[p]) regionSum += hu[p];
  if (regionSum / voxelCount - bg < 120) return undefined;
  const regionVals: number[] = [];
  for (let p = 0; p < n; p++) if (region[p]) regionVals.push(hu[p]);
  // the density the partial-volume fractions are taken against: the solid component's, else the lesion's own
  const density = Math.min(100, type === 'solid' ? solidDensity : percentile(regionVals, type === 'ground-glass' ? 0.75 : 0.5));
  let cx = 0;
  let cy = 0;
  let cz = 0;
  let sumHu = 0;
  for (let p = 0; p < n; p++) {
    if (!region[p]) continue;
    const x = p % b.nx;
    const y = Math.floor(p / b.nx) % b.ny;
    const z = Math.floor(p / (b.nx * b.ny));
    cx += x;
    cy += y;
    cz += z;
    sumHu += hu[p];
  }
  const centreVoxel: Vec3 = [i0 + cx / voxelCount, j0 + cy / voxelCount, k0 + cz / voxelCount];
  const m: NoduleMeasurement = {
    centreVoxel,
    centrePatient: voxelToPatient(volume.affine, centreVoxel),
    keySlice: ax.keySlice,
    longAxis: ax.longAxis,
    shortAxis: ax.shortAxis,
    longMm: round1(ax.longMm),
    shortMm: round1(ax.shortMm),
    meanDiameterMm: round1((ax.longMm + ax.shortMm) / 2),
    volumeMm3: Math.round(pvVolumeMm3(region, hu, allowed, b, bg, density)),
    type,
    meanHu: Math.round(sumHu / voxelCount),
    voxelCount,
  };
  if (type === 'part-solid' && solid) {
    const sa = axes(solid, b);
    if (sa) m.solidMeanDiameterMm = round1((sa.longMm + sa.shortMm) / 2);
  }
  return m;
}
