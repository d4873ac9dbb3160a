/**
 * Test support for the CT nodule pipeline: the two shared LIDC cases as Volumes, their reference marks, and a small
 * nodule inserter for synthetic-insertion tests (the full simulator for training lives in models/ct/insert.ts).
 * Test-only: nothing in radnode imports it at run time.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unpackedFile } from '../../../test/helpers/paths.ts';
import { readInstance } from '../../dicom/instance.ts';
import { buildVolumes, patientToVoxel, type Vec3, type Volume } from '../../dicom/volume.ts';

export type LidcCase = 'LIDC-IDRI-0001' | 'LIDC-IDRI-0002';

export async function loadLidc(id: LidcCase): Promise<Volume> {
  const dir = unpackedFile(`ct/lidc/${id}/dicom`);
  const instances = readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => readInstance(new Uint8Array(readFileSync(join(dir, f)))));
  const { volumes } = await buildVolumes(instances);
  if (volumes.length !== 1) throw new Error(`${id}: expected one volume, got ${volumes.length}`);
  return volumes[0];
}

/** LUNA16 annotations.csv, the one consensus nodule of LIDC-IDRI-0001 (patient LPS mm, diameter mm). */
export const LUNA_0001 = { patient: [56.20840547, 86.34341278, -115.8675792] as Vec3, diameterMm: 23.35064438 };
/** LUNA16 annotations_excluded.csv: the two single-reader marks of the ≥ 3 mm nodule of LIDC-IDRI-0002. */
export const LIDC_0002_MARKS = [
  { patient: [59.77586628, 71.53102562, -104.1027259] as Vec3, diameterMm: 23.32221915 },
  { patient: [59.40267185, 70.18377372, -104.3877531] as Vec3, diameterMm: 24.08464915 },
];

export const dist = (a: Vec3, b: Vec3): number => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

export const voxelOf = (v: Volume, p: Vec3): Vec3 => patientToVoxel(v.affine, p);

/** A copy of the volume with its own voxel buffer (insertions must not leak between tests). */
export function cloneVolume(v: Volume): Volume {
  return { ...v, voxels: v.voxels.slice() as Int16Array | Float32Array };
}

/**
 * Writes an ellipsoid nodule (semi-axes in mm along column, row and slice) of density `hu` into the volume,
 * anti-aliased: each voxel gets the fraction of its footprint inside the ellipsoid (4×4×4 sub-samples), mixed with the
 * tissue already there, which is what the scanner's partial-volume effect does to a real nodule's rim. `noiseHu` adds
 * deterministic Gaussian noise of that SD to the nodule's density (a real nodule is not flat).
 * Returns the exact ellipsoid volume in mm³.
 */
export function insertEllipsoid(v: Volume, centre: Vec3, semiAxesMm: Vec3, hu: number, noiseHu = 0, seed = 1): number {
  let state = seed >>> 0 || 1;
  const uniform = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 4294967296;
  };
  const gauss = (): number => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const [C, R, S] = v.dims;
  const sp: Vec3 = [v.pixelSpacingMm[1], v.pixelSpacingMm[0], v.sliceSpacingMm];
  const lo = [0, 1, 2].map((a) => Math.max(0, Math.floor(centre[a] - semiAxesMm[a] / sp[a] - 1)));
  const hi = [0, 1, 2].map((a) => Math.min(v.dims[a] - 1, Math.ceil(centre[a] + semiAxesMm[a] / sp[a] + 1)));
  const sub = 4;
  for (let k = lo[2]; k <= hi[2]; k++)
    for (let j = lo[1]; j <= hi[1]; j++)
      for (let i = lo[0]; i <= hi[0]; i++) {
        let inside = 0;
        for (let c = 0; c < sub; c++)
          for (let b = 0; b < sub; b++)
            for (let a = 0; a < sub; a++) {
              const x = ((i + (a + 0.5) / sub - 0.5 - centre[0]) * sp[0]) / semiAxesMm[0];
              const y = ((j + (b + 0.5) / sub - 0.5 - centre[1]) * sp[1]) / semiAxesMm[1];
              const z = ((k + (c + 0.5) / sub - 0.5 - centre[2]) * sp[2]) / semiAxesMm[2];
              if (x * x + y * y + z * z <= 1) inside++;
            }
        if (!inside) continue;
        const w = inside / sub ** 3;
        const idx = (k * R + j) * C + i;
        v.voxels[idx] = Math.round((1 - w) * v.voxels[idx] + w * (hu + (noiseHu ? noiseHu * gauss() : 0)));
      }
  return (4 / 3) * Math.PI * semiAxesMm[0] * semiAxesMm[1] * semiAxesMm[2];
}

/**
 * Deterministic places of clean parenchyma to insert a nodule into: voxels on a coarse grid whose ball of `radiusMm`
 * lies wholly in the lung mask with every voxel below −500 HU (no vessel, no wall) and a mean below −750 HU, at least
 * `minSepMm` apart. Scanned from the middle slice outwards so that the first places are mid-lung.
 */
export function cleanLungSpots(v: Volume, mask: Uint8Array, radiusMm: number, count: number, minSepMm = 30): Vec3[] {
  const [C, R, S] = v.dims;
  const sp: Vec3 = [v.pixelSpacingMm[1], v.pixelSpacingMm[0], v.sliceSpacingMm];
  const step = [0, 1, 2].map((a) => Math.max(1, Math.round(7 / sp[a])));
  const rv = [0, 1, 2].map((a) => Math.ceil(radiusMm / sp[a]));
  const out: Vec3[] = [];
  const ks: number[] = [];
  const mid = Math.floor(S / 2);
  for (let d = 0; d < S; d += step[2]) {
    if (mid + d < S - rv[2]) ks.push(mid + d);
    if (d && mid - d >= rv[2]) ks.push(mid - d);
  }
  for (const k of ks)
    for (let j = rv[1]; j < R - rv[1]; j += step[1])
      for (let i = rv[0]; i < C - rv[0]; i += step[0]) {
        if (out.length >= count) return out;
        if (!mask[(k * R + j) * C + i]) continue;
        const p: Vec3 = [i, j, k];
        if (out.some((q) => Math.hypot((q[0] - i) * sp[0], (q[1] - j) * sp[1], (q[2] - k) * sp[2]) < minSepMm)) continue;
        let ok = true;
        let sum = 0;
        let n = 0;
        for (let c = -rv[2]; c <= rv[2] && ok; c++)
          for (let b = -rv[1]; b <= rv[1] && ok; b++)
            for (let a = -rv[0]; a <= rv[0]; a++) {
              if (Math.hypot(a * sp[0], b * sp[1], c * sp[2]) > radiusMm) continue;
              const idx = ((k + c) * R + j + b) * C + i + a;
              if (!mask[idx] || v.voxels[idx] >= -500) {
                ok = false;
                break;
              }
              sum += v.voxels[idx];
              n++;
            }
        if (ok && sum / n < -750) out.push(p);
      }
  return out;
}

/**
 * A place on the lateral chest wall for a juxtapleural nodule of radius r: on slice k, along row j, the outermost lung
 * voxel towards the image edge, moved `r·inset` back into the lung, so that the nodule touches the wall. The nodule
 * then abuts soft tissue, which is what makes juxtapleural nodules hard for blob filters.
 */
export function wallSpot(v: Volume, mask: Uint8Array, k: number, j: number, rMm: number, inset = 0.8): Vec3 | undefined {
  const [C, R] = v.dims;
  for (let i = C - 1; i > C / 2; i--) {
    const idx = (k * R + j) * C + i;
    if (!mask[idx]) continue;
    // the lung edge: find where HU rises into the wall
    let edge = i;
    while (edge > C / 2 && v.voxels[(k * R + j) * C + edge] > -500) edge--;
    return [edge - (rMm * inset) / v.pixelSpacingMm[1], j, k];
  }
  return undefined;
}
