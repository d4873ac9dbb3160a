/**
 * Simulated nodules inserted into real CT volumes: the training signal of the CT nodule model (issue 7 item 3; the
 * shared data holds two real nodules ≥ 3 mm, both ≈ 23 mm, far too few to learn from).
 *
 * What a nodule looks like here, and why:
 * - size: equivalent-sphere diameter mostly 4–10 mm (the Lung-RADS 3/4A band the issue cares about), some 10–30 mm;
 * - shape: an ellipsoid (axis ratios ≈ ±12 %) at a random orientation, its radius modulated by a few low-order
 *   angular harmonics (lobulation), scaled so that the enclosed volume gives exactly the drawn diameter;
 * - density: solid cores −60..+80 HU with a mild low-frequency texture, ground-glass −750..−450 HU, part-solid =
 *   ground-glass with an off-centre solid component of 30–60 % of the diameter (Fleischner 2017 categories);
 * - edge: an erf profile of σ 0.35–0.7 mm, the in-plane blur of a standard reconstruction kernel;
 * - partial volume along z: each slice integrates the shape over its own thickness (5 sub-slices at the slice
 *   spacing, a rectangular slice profile), so a 4 mm nodule on 2.5 mm slices is as faint as on the real scanner;
 * - noise: the scan's own. A voxel becomes bg + f·max(0, target − mean3x3(bg)): the nodule replaces the local mean
 *   density but keeps the scan's noise and texture, and a vessel denser than the nodule stays visible through it;
 * - place: in aerated lung parenchyma (given lung mask), away from the real LIDC marks and from each other; a share
 *   touches the pleura (juxtapleural) and a share abuts a vessel (juxtavascular), the two kinds a blob filter and a
 *   classifier find hardest.
 */
import type { Vec3, Volume } from '../../src/dicom/volume.ts';
import { voxelToPatient } from '../../src/dicom/volume.ts';
import type { NoduleType } from '../../src/detectors/ct/types.ts';
import { rng as makeRng, type Rng } from './rng.ts';

export type Placement = 'parenchymal' | 'juxtapleural' | 'juxtavascular';

export type InsertedNodule = {
  id: number;
  type: NoduleType;
  placement: Placement;
  centreVoxel: Vec3;
  centrePatient: Vec3;
  /** Diameter of the sphere of equal volume (the shape's ρ ≤ 1 region), mm: the LUNA16-style reference size. */
  diameterMm: number;
  /** Long and short axis (perpendicular) of the axial section through the centre, and their mean (Lung-RADS). */
  axialLongMm: number;
  axialShortMm: number;
  axialMeanDiameterMm: number;
  volumeMm3: number;
  /** Density of the core (solid) or of the ground glass, HU. */
  coreHu: number;
  /** Part-solid: the solid component's equivalent diameter and density. */
  solidDiameterMm?: number;
  solidHu?: number;
  edgeSigmaMm: number;
};

export type InsertOptions = {
  seed: number;
  count: number;
  /** Lung mask on the volume's grid (1 = lung, vessels inside it included). */
  lung: Uint8Array;
  /** Places to keep away from (real reader marks): a nodule's edge stays marginMm beyond radiusMm. */
  avoid?: { patient: Vec3; radiusMm: number }[];
  /** Mixes (fractions, summing to 1). */
  typeMix?: Partial<Record<NoduleType, number>>;
  placementMix?: Partial<Record<Placement, number>>;
  /** Share of nodules drawn from 10–30 mm (the rest 4–10 mm). */
  largeShare?: number;
  /** Fixed diameter range (overrides the mix; tests). */
  diameterRangeMm?: [number, number];
};

type Shape = {
  centreMm: Vec3;
  /** Rotation (rows = the shape's axes in the volume's mm frame) and semi-axes, mm. */
  rot: number[][];
  semi: Vec3;
  harmonics: { v: Vec3; n: number; a: number; phase: number }[];
};

const DEFAULT_TYPES: Record<NoduleType, number> = { solid: 0.6, 'ground-glass': 0.25, 'part-solid': 0.15 };
const DEFAULT_PLACES: Record<Placement, number> = { parenchymal: 0.5, juxtapleural: 0.3, juxtavascular: 0.2 };

function drawFrom<K extends string>(r: Rng, mix: Record<K, number>): K {
  const keys = Object.keys(mix) as K[];
  const total = keys.reduce((s, k) => s + mix[k], 0);
  let u = r.next() * total;
  for (const k of keys) {
    u -= mix[k];
    if (u <= 0) return k;
  }
  return keys[keys.length - 1];
}

function unit(r: Rng): Vec3 {
  const v: Vec3 = [r.normal(), r.normal(), r.normal()];
  const n = Math.hypot(...v) || 1;
  return [v[0] / n, v[1] / n, v[2] / n];
}

function randomRotation(r: Rng): number[][] {
  const [a, b, c, d] = (() => {
    const q = [r.normal(), r.normal(), r.normal(), r.normal()];
    const n = Math.hypot(...q);
    return q.map((x) => x / n);
  })();
  return [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
  ];
}

/** The radius modulation r(û) of the lobulated surface, ≥ 0.6. */
function lobe(shape: Shape, u: Vec3): number {
  let r = 1;
  for (const h of shape.harmonics) {
    const c = Math.max(-1, Math.min(1, u[0] * h.v[0] + u[1] * h.v[1] + u[2] * h.v[2]));
    r += h.a * Math.cos(h.n * Math.acos(c) + h.phase);
  }
  return Math.max(0.6, r);
}

/** Normalised radius ρ of a point (mm, relative to the centre): ρ ≤ 1 inside. Homogeneous of degree 1 along a ray. */
function rho(shape: Shape, x: number, y: number, z: number): number {
  const R = shape.rot;
  const a = (R[0][0] * x + R[0][1] * y + R[0][2] * z) / shape.semi[0];
  const b = (R[1][0] * x + R[1][1] * y + R[1][2] * z) / shape.semi[1];
  const c = (R[2][0] * x + R[2][1] * y + R[2][2] * z) / shape.semi[2];
  const n = Math.hypot(a, b, c);
  if (n === 0) return 0;
  return n / lobe(shape, [a / n, b / n, c / n]);
}

/** Fibonacci-sphere directions: an even, deterministic cover of the unit sphere. */
export function sphereDirections(n: number): Vec3[] {
  const out: Vec3[] = [];
  const g = Math.PI * (3 - Math.sqrt(5));
  for (let i = 0; i < n; i++) {
    const z = 1 - (2 * (i + 0.5)) / n;
    const r = Math.sqrt(1 - z * z);
    out.push([r * Math.cos(g * i), r * Math.sin(g * i), z]);
  }
  return out;
}

const VOLUME_DIRS = sphereDirections(2000);

/** Volume of the ρ ≤ 1 region, mm³ (mean of r³ over directions × the ellipsoid's volume, exact for a star shape). */
function shapeVolume(shape: Shape): number {
  let s = 0;
  for (const d of VOLUME_DIRS) {
    const rr = 1 / rho(shape, d[0], d[1], d[2]);
    s += rr ** 3;
  }
  return (4 / 3) * Math.PI * (s / VOLUME_DIRS.length);
}

function makeShape(r: Rng, centreMm: Vec3, diameterMm: number, lobulation: number): Shape {
  const e = [Math.exp(0.12 * r.normal()), Math.exp(0.12 * r.normal()), Math.exp(0.12 * r.normal())];
  const g = Math.cbrt(e[0] * e[1] * e[2]);
  const shape: Shape = {
    centreMm,
    rot: randomRotation(r),
    semi: [e[0] / g, e[1] / g, e[2] / g],
    harmonics: Array.from({ length: 4 }, () => ({ v: unit(r), n: 2 + r.int(4), a: r.uniform(0, lobulation), phase: r.uniform(0, 2 * Math.PI) })),
  };
  const scale = Math.cbrt((Math.PI / 6) * diameterMm ** 3 / shapeVolume(shape));
  shape.semi = shape.semi.map((s) => s * scale) as Vec3;
  return shape;
}

/** Long axis and the longest extent perpendicular to it, of the axial section through the centre, mm. */
function axialAxes(shape: Shape): [number, number] {
  const pts: [number, number][] = [];
  for (let t = 0; t < 360; t++) {
    const a = (t * Math.PI) / 180;
    const d: Vec3 = [Math.cos(a), Math.sin(a), 0];
    const rr = 1 / rho(shape, d[0], d[1], d[2]);
    pts.push([rr * d[0], rr * d[1]]);
  }
  let long = 0;
  let dir: [number, number] = [1, 0];
  for (let i = 0; i < pts.length; i++)
    for (let j = i + 1; j < pts.length; j++) {
      const l = Math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]);
      if (l > long) {
        long = l;
        dir = [(pts[j][0] - pts[i][0]) / l, (pts[j][1] - pts[i][1]) / l];
      }
    }
  const perp = pts.map((p) => -p[0] * dir[1] + p[1] * dir[0]);
  return [long, Math.max(...perp) - Math.min(...perp)];
}

function erfc(x: number): number {
  // Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7): plenty for an edge profile.
  const z = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * z);
  const y = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-z * z);
  return x >= 0 ? y : 2 - y;
}

type Grid = { dims: [number, number, number]; mm: Vec3 };

const gridOf = (v: Volume): Grid => ({ dims: v.dims, mm: [v.pixelSpacingMm[1], v.pixelSpacingMm[0], v.sliceSpacingMm] });

/** A placement probe: along each direction, where the lung mask ends and how dense the tissue is within reach. */
function probe(vol: Volume, lung: Uint8Array, g: Grid, c: Vec3, reachMm: number, dirs: Vec3[]): { exitMm: number[]; denseShare: number; denseNear: number } | undefined {
  const [cols, rows] = g.dims;
  // The whole nodule and its surroundings must lie in the volume: no nodule cut by the first or last slice.
  for (let a = 0; a < 3; a++) if (c[a] - (reachMm + 1) / g.mm[a] < 0 || c[a] + (reachMm + 1) / g.mm[a] > g.dims[a] - 1) return undefined;
  const exitMm: number[] = [];
  let dense = 0;
  let samples = 0;
  let denseNear = 0;
  for (const d of dirs) {
    let exit = Infinity;
    for (let t = 0.5; t <= reachMm; t += 0.5) {
      const i = Math.round(c[0] + (d[0] * t) / g.mm[0]);
      const j = Math.round(c[1] + (d[1] * t) / g.mm[1]);
      const k = Math.round(c[2] + (d[2] * t) / g.mm[2]);
      const idx = k * rows * cols + j * cols + i;
      if (!lung[idx]) {
        exit = Math.min(exit, t);
        break;
      }
      samples++;
      if (vol.voxels[idx] > -300) {
        dense++;
        if (t < reachMm * 0.5) denseNear++;
      }
    }
    exitMm.push(exit);
  }
  return { exitMm, denseShare: samples ? dense / samples : 1, denseNear };
}

const PROBE_DIRS = sphereDirections(64);

/**
 * Tries to find a centre (voxel coordinates) for a nodule of radius R with the wanted placement. Returns undefined
 * when 1500 random tries fail (a caller falls back to another placement).
 */
function place(
  r: Rng,
  vol: Volume,
  lung: Uint8Array,
  lungIdx: Int32Array,
  g: Grid,
  R: number,
  want: Placement,
  taken: { mm: Vec3; radiusMm: number }[],
): Vec3 | undefined {
  const [cols, rows] = g.dims;
  for (let attempt = 0; attempt < 1500; attempt++) {
    const idx = lungIdx[r.int(lungIdx.length)];
    const k = Math.floor(idx / (rows * cols));
    const j = Math.floor((idx - k * rows * cols) / cols);
    const i = idx - k * rows * cols - j * cols;
    const c: Vec3 = [i + r.uniform(-0.5, 0.5), j + r.uniform(-0.5, 0.5), k + r.uniform(-0.5, 0.5)];
    if (vol.voxels[idx] > -600) continue;
    const mm: Vec3 = [c[0] * g.mm[0], c[1] * g.mm[1], c[2] * g.mm[2]];
    if (taken.some((t) => Math.hypot(mm[0] - t.mm[0], mm[1] - t.mm[1], mm[2] - t.mm[2]) < R + t.radiusMm + 4)) continue;
    const p = probe(vol, lung, g, c, R + 3, PROBE_DIRS);
    if (!p) continue;
    const inside = p.exitMm.filter((e) => e === Infinity).length / p.exitMm.length;
    if (want === 'parenchymal') {
      if (inside === 1 && p.denseShare < 0.04) return c;
    } else if (want === 'juxtapleural') {
      // Touching the wall: a few directions leave the lung between 0.6 R and R + 1 mm, none much nearer
      // (the centre stays in the lung, most of the nodule too).
      const minExit = Math.min(...p.exitMm);
      if (minExit >= 0.6 * R && minExit <= R + 1 && inside >= 0.6 && p.denseShare < 0.15) return c;
    } else {
      // Abutting a vessel: dense tissue within reach but not through the centre, all inside the lung.
      if (inside === 1 && p.denseShare >= 0.03 && p.denseShare < 0.3 && p.denseNear <= 4) return c;
    }
  }
  return undefined;
}

function targetHu(type: NoduleType, r: Rng): { core: number; solid?: number } {
  if (type === 'solid') return { core: r.uniform(-60, 80) };
  if (type === 'ground-glass') return { core: r.uniform(-750, -450) };
  return { core: r.uniform(-700, -450), solid: r.uniform(-60, 60) };
}

/** Inserts `count` nodules; returns new voxels (same type as the volume's) and the ground truth. */
export function insertNodules(vol: Volume, options: InsertOptions): { voxels: Int16Array | Float32Array; nodules: InsertedNodule[] } {
  const r = makeRng(options.seed);
  const g = gridOf(vol);
  const out = vol.voxels instanceof Int16Array ? new Int16Array(vol.voxels) : new Float32Array(vol.voxels);
  const lungIdx = (() => {
    let n = 0;
    for (let i = 0; i < options.lung.length; i++) n += options.lung[i];
    const idx = new Int32Array(n);
    let m = 0;
    for (let i = 0; i < options.lung.length; i++) if (options.lung[i]) idx[m++] = i;
    return idx;
  })();
  if (lungIdx.length === 0) throw new Error('insertNodules: empty lung mask');
  const taken: { mm: Vec3; radiusMm: number }[] = (options.avoid ?? []).map((a) => {
    // Patient → voxel mm frame through the affine's inverse is not needed: the avoid list is small, so compare in
    // voxel mm via the voxel index of the mark.
    const inv = invertAffine(vol.affine);
    const v = inv(a.patient);
    return { mm: [v[0] * g.mm[0], v[1] * g.mm[1], v[2] * g.mm[2]] as Vec3, radiusMm: a.radiusMm };
  });
  const typeMix = { ...DEFAULT_TYPES, ...(options.typeMix ?? {}) };
  const placeMix = { ...DEFAULT_PLACES, ...(options.placementMix ?? {}) };
  const nodules: InsertedNodule[] = [];

  for (let n = 0; n < options.count; n++) {
    const type = drawFrom(r, typeMix);
    let diameterMm: number;
    if (options.diameterRangeMm) diameterMm = r.uniform(...options.diameterRangeMm);
    else if (r.next() < (options.largeShare ?? 0.15)) diameterMm = Math.exp(r.uniform(Math.log(10), Math.log(30)));
    else diameterMm = r.uniform(4, 10);
    const R = diameterMm / 2;
    let placement = drawFrom(r, placeMix);
    let c = place(r, vol, options.lung, lungIdx, g, R, placement, taken);
    if (!c && placement !== 'parenchymal') {
      placement = 'parenchymal';
      c = place(r, vol, options.lung, lungIdx, g, R, placement, taken);
    }
    if (!c) continue;
    const centreMm: Vec3 = [c[0] * g.mm[0], c[1] * g.mm[1], c[2] * g.mm[2]];
    const shape = makeShape(r, centreMm, diameterMm, r.uniform(0, 0.12));
    const hu = targetHu(type, r);
    let solidShape: Shape | undefined;
    let solidDiameterMm: number | undefined;
    if (hu.solid !== undefined) {
      solidDiameterMm = diameterMm * r.uniform(0.3, 0.6);
      const off = unit(r).map((x) => x * r.uniform(0, 0.3) * R) as Vec3;
      solidShape = makeShape(r, [centreMm[0] + off[0], centreMm[1] + off[1], centreMm[2] + off[2]], solidDiameterMm, r.uniform(0, 0.1));
    }
    const sigma = r.uniform(0.35, 0.7);
    const textureAmp = type === 'solid' ? 15 : 35;
    const waves = Array.from({ length: 3 }, () => {
      const d = unit(r);
      const f = (2 * Math.PI) / r.uniform(3, 6);
      return { k: d.map((x) => x * f) as Vec3, phase: r.uniform(0, 2 * Math.PI) };
    });
    render(vol, out, g, shape, solidShape, hu, sigma, textureAmp, waves);
    const volumeMm3 = (Math.PI / 6) * diameterMm ** 3;
    const [axialLongMm, axialShortMm] = axialAxes(shape);
    taken.push({ mm: centreMm, radiusMm: R * 1.2 });
    nodules.push({
      id: nodules.length,
      type,
      placement,
      centreVoxel: c,
      centrePatient: voxelToPatient(vol.affine, c),
      diameterMm,
      axialLongMm,
      axialShortMm,
      axialMeanDiameterMm: Math.round(((axialLongMm + axialShortMm) / 2) * 10) / 10,
      volumeMm3,
      coreHu: hu.core,
      solidDiameterMm,
      solidHu: hu.solid,
      edgeSigmaMm: sigma,
    });
  }
  return { voxels: out, nodules };
}

function render(
  vol: Volume,
  out: Int16Array | Float32Array,
  g: Grid,
  shape: Shape,
  solid: Shape | undefined,
  hu: { core: number; solid?: number },
  sigma: number,
  textureAmp: number,
  waves: { k: Vec3; phase: number }[],
): void {
  const [cols, rows] = g.dims;
  const plane = rows * cols;
  const reach = Math.max(...shape.semi) * 1.45 + 3 * sigma + 1;
  const lo = [0, 1, 2].map((a) => Math.max(0, Math.floor((shape.centreMm[a] - reach) / g.mm[a]) - 1));
  const hi = [0, 1, 2].map((a) => Math.min(g.dims[a] - 1, Math.ceil((shape.centreMm[a] + reach) / g.mm[a]) + 1));
  const SUB = 5;
  const edge = (s: Shape, x: number, y: number, z: number, radius: number): number => {
    const p = rho(s, x - s.centreMm[0], y - s.centreMm[1], z - s.centreMm[2]);
    return 0.5 * erfc(((p - 1) * radius) / (sigma * Math.SQRT2));
  };
  const R = Math.cbrt(shape.semi[0] * shape.semi[1] * shape.semi[2]);
  const Rs = solid ? Math.cbrt(solid.semi[0] * solid.semi[1] * solid.semi[2]) : 0;
  const src = vol.voxels;
  for (let k = lo[2]; k <= hi[2]; k++) {
    for (let j = lo[1]; j <= hi[1]; j++) {
      for (let i = lo[0]; i <= hi[0]; i++) {
        const x = i * g.mm[0];
        const y = j * g.mm[1];
        let f = 0;
        let fs = 0;
        // Partial volume: the slice integrates the object over its thickness (taken = spacing).
        for (let q = 0; q < SUB; q++) {
          const z = (k - 0.5 + (q + 0.5) / SUB) * g.mm[2];
          f += edge(shape, x, y, z, R);
          if (solid) fs += edge(solid, x, y, z, Rs);
        }
        f /= SUB;
        fs /= SUB;
        if (f < 1e-3) continue;
        const z = k * g.mm[2];
        let tex = 0;
        for (const w of waves) tex += Math.cos(w.k[0] * x + w.k[1] * y + w.k[2] * z + w.phase);
        const target = hu.solid !== undefined ? hu.core + (fs / Math.max(f, 1e-6)) * (hu.solid - hu.core) : hu.core;
        const t = target + (textureAmp * tex) / Math.sqrt(waves.length);
        const idx = k * plane + j * cols + i;
        // Local mean of the background (3×3 in-plane): the nodule replaces it, the noise around it stays.
        let m = 0;
        let cnt = 0;
        for (let dj = -1; dj <= 1; dj++)
          for (let di = -1; di <= 1; di++) {
            const ii = i + di;
            const jj = j + dj;
            if (ii < 0 || jj < 0 || ii >= cols || jj >= rows) continue;
            m += src[k * plane + jj * cols + ii];
            cnt++;
          }
        m /= cnt;
        const delta = Math.max(0, t - m);
        const v = out[idx] + f * delta;
        out[idx] = out instanceof Int16Array ? Math.round(Math.min(32767, v)) : v;
      }
    }
  }
}

function invertAffine(affine: number[]): (p: Vec3) => Vec3 {
  const a = [
    [affine[0], affine[1], affine[2]],
    [affine[4], affine[5], affine[6]],
    [affine[8], affine[9], affine[10]],
  ];
  const det =
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const inv = [
    [(a[1][1] * a[2][2] - a[1][2] * a[2][1]) / det, (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / det, (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / det],
    [(a[1][2] * a[2][0] - a[1][0] * a[2][2]) / det, (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / det, (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / det],
    [(a[1][0] * a[2][1] - a[1][1] * a[2][0]) / det, (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / det, (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / det],
  ];
  return (p) => {
    const t = [p[0] - affine[3], p[1] - affine[7], p[2] - affine[11]];
    return [0, 1, 2].map((r) => inv[r][0] * t[0] + inv[r][1] * t[1] + inv[r][2] * t[2]) as Vec3;
  };
}
