import type { Vec3, Volume } from '../../dicom/volume.ts';
import { PATCH_SIZE, PATCH_SPACING_MM, PATCH_VOXELS } from './types.ts';

/**
 * The false-positive-reduction model's input (issue 7, item 3). The training data dump (models/ct/dump.ts) and the
 * detector both call this one function, so a model sees at run time exactly what it was trained on.
 *
 * A patch is a cube of PATCH_SIZE³ = 32³ samples spaced PATCH_SPACING_MM = 1.0 mm apart (a 32 mm field: a 30 mm
 * nodule fits, and a 4 mm one still spans 4 samples), centred on a point given in the volume's continuous voxel
 * coordinates (i column, j row, k slice; integer = voxel centre). Its axes are the volume's own: a along the column
 * direction (image x), b along the row direction (image y), c along the slice direction (increasing k), so that
 * sample (a, b, c) lies at voxel
 *
 *     i = ci + (a − 15.5) · 1.0 / columnSpacing,  j = cj + (b − 15.5) · 1.0 / rowSpacing,  k = ck + (c − 15.5) · 1.0 / sliceSpacing
 *
 * (the centre falls between samples 15 and 16 on each axis) and is stored at index (c·32 + b)·32 + a, i.e. the
 * layout [D, H, W] = [slice, row, column] of an NCDHW tensor with N = C = 1.
 * Values: HU interpolated trilinearly (voxels beyond the volume count as air, −1000 HU), then clipped to
 * [HU_MIN, HU_MAX] = [−1000, 400] and scaled to [0, 1] by (HU + 1000) / 1400: air 0, lung ≈ 0.1, water ≈ 0.71,
 * anything at or above 400 HU (bone, calcium, contrast) 1. Deterministic: the same volume and centre give the same
 * floats on any machine (plain float64 arithmetic, stored as float32).
 */

export const HU_MIN = -1000;
export const HU_MAX = 400;

/**
 * Writes one patch into out[offset .. offset + PATCH_VOXELS) (a fresh array when out is not given). `spacingMm`
 * other than PATCH_SPACING_MM gives a context view: the same 32³ grid and centre, a wider field.
 */
export function extractPatch(volume: Volume, centreVoxel: Vec3, out?: Float32Array, offset = 0, spacingMm = PATCH_SPACING_MM): Float32Array {
  const dst = out ?? new Float32Array(PATCH_VOXELS);
  const [C, R, S] = volume.dims;
  const v = volume.voxels;
  const steps = [spacingMm / volume.pixelSpacingMm[1], spacingMm / volume.pixelSpacingMm[0], spacingMm / (volume.sliceSpacingMm || 1)];
  const half = (PATCH_SIZE - 1) / 2;
  // per axis: the lower neighbour's index and the weight of the upper one, for each of the 32 samples
  const lo = [new Int32Array(PATCH_SIZE), new Int32Array(PATCH_SIZE), new Int32Array(PATCH_SIZE)];
  const w = [new Float64Array(PATCH_SIZE), new Float64Array(PATCH_SIZE), new Float64Array(PATCH_SIZE)];
  for (let ax = 0; ax < 3; ax++)
    for (let s = 0; s < PATCH_SIZE; s++) {
      const x = centreVoxel[ax] + (s - half) * steps[ax];
      const f = Math.floor(x);
      lo[ax][s] = f;
      w[ax][s] = x - f;
    }
  const plane = C * R;
  const at = (i: number, j: number, k: number): number => (i < 0 || j < 0 || k < 0 || i >= C || j >= R || k >= S ? HU_MIN : v[k * plane + j * C + i]);
  const scale = 1 / (HU_MAX - HU_MIN);
  let o = offset;
  for (let c = 0; c < PATCH_SIZE; c++) {
    const k0 = lo[2][c];
    const wz = w[2][c];
    for (let b = 0; b < PATCH_SIZE; b++) {
      const j0 = lo[1][b];
      const wy = w[1][b];
      for (let a = 0; a < PATCH_SIZE; a++) {
        const i0 = lo[0][a];
        const wx = w[0][a];
        let hu: number;
        if (i0 >= 0 && j0 >= 0 && k0 >= 0 && i0 + 1 < C && j0 + 1 < R && k0 + 1 < S) {
          const p = k0 * plane + j0 * C + i0;
          const c00 = v[p] + wx * (v[p + 1] - v[p]);
          const c10 = v[p + C] + wx * (v[p + C + 1] - v[p + C]);
          const c01 = v[p + plane] + wx * (v[p + plane + 1] - v[p + plane]);
          const c11 = v[p + plane + C] + wx * (v[p + plane + C + 1] - v[p + plane + C]);
          const c0 = c00 + wy * (c10 - c00);
          const c1 = c01 + wy * (c11 - c01);
          hu = c0 + wz * (c1 - c0);
        } else {
          const c00 = at(i0, j0, k0) + wx * (at(i0 + 1, j0, k0) - at(i0, j0, k0));
          const c10 = at(i0, j0 + 1, k0) + wx * (at(i0 + 1, j0 + 1, k0) - at(i0, j0 + 1, k0));
          const c01 = at(i0, j0, k0 + 1) + wx * (at(i0 + 1, j0, k0 + 1) - at(i0, j0, k0 + 1));
          const c11 = at(i0, j0 + 1, k0 + 1) + wx * (at(i0 + 1, j0 + 1, k0 + 1) - at(i0, j0 + 1, k0 + 1));
          const c0 = c00 + wy * (c10 - c00);
          const c1 = c01 + wy * (c11 - c01);
          hu = c0 + wz * (c1 - c0);
        }
        dst[o++] = hu <= HU_MIN ? 0 : hu >= HU_MAX ? 1 : (hu - HU_MIN) * scale;
      }
    }
  }
  return dst;
}

/**
 * n patches laid end to end, in the order of the centres (voxel coordinates), each `channels` cubes deep: channel c
 * samples every PATCH_SPACING_MM · 2^c (1 mm, then 2 mm: a 64 mm field that shows where a vessel or a fissure leads),
 * the layout [N, C, D, H, W] of an NCDHW tensor. With one channel (model 1.3.0 and before) this is the plain patch.
 */
export function extractPatches(volume: Volume, centres: Vec3[], channels = 1): Float32Array {
  const out = new Float32Array(centres.length * channels * PATCH_VOXELS);
  centres.forEach((c, n) => {
    for (let ch = 0; ch < channels; ch++) extractPatch(volume, c, out, (n * channels + ch) * PATCH_VOXELS, PATCH_SPACING_MM * 2 ** ch);
  });
  return out;
}
