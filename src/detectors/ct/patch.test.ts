import { beforeAll, describe, expect, it } from 'vitest';
import type { Vec3, Volume } from '../../dicom/volume.ts';
import { extractPatch, extractPatches, HU_MAX, HU_MIN } from './patch.ts';
import { loadLidc, LUNA_0001, voxelOf } from './testing.ts';
import { PATCH_SIZE, PATCH_VOXELS } from './types.ts';

/** A small synthetic volume: value = f(i, j, k), anisotropic spacing. */
function synthetic(dims: [number, number, number], spacing: [number, number, number], f: (i: number, j: number, k: number) => number): Volume {
  const [C, R, S] = dims;
  const voxels = new Int16Array(C * R * S);
  for (let k = 0; k < S; k++) for (let j = 0; j < R; j++) for (let i = 0; i < C; i++) voxels[(k * R + j) * C + i] = f(i, j, k);
  return {
    dims,
    voxels,
    rows: R,
    columns: C,
    pixelSpacingMm: [spacing[1], spacing[0]],
    sliceSpacingMm: spacing[2],
    affine: [spacing[0], 0, 0, 0, 0, spacing[1], 0, 0, 0, 0, spacing[2], 0, 0, 0, 0, 1],
  } as unknown as Volume;
}

const idx = (a: number, b: number, c: number): number => (c * PATCH_SIZE + b) * PATCH_SIZE + a;

describe('extractPatch', () => {
  it('samples a linear ramp exactly at 1 mm steps along each of the volume axes, in [slice, row, column] order', () => {
    // HU = −900 + 10·x_mm + 4·y_mm + 2·z_mm, with 0.5 × 0.75 × 2.5 mm voxels (integral HU at every voxel): trilinear interpolation is exact on it
    const sp: [number, number, number] = [0.5, 0.75, 2.5];
    const v = synthetic([160, 100, 30], sp, (i, j, k) => -900 + 10 * i * sp[0] + 4 * j * sp[1] + 2 * k * sp[2]);
    const c: Vec3 = [80.3, 50.6, 15.2];
    const p = extractPatch(v, c);
    expect(p).toHaveLength(PATCH_VOXELS);
    const expected = (a: number, b: number, cc: number): number => {
      const x = c[0] * sp[0] + (a - 15.5);
      const y = c[1] * sp[1] + (b - 15.5);
      const z = c[2] * sp[2] + (cc - 15.5);
      const hu = -900 + 10 * x + 4 * y + 2 * z;
      return (Math.min(HU_MAX, Math.max(HU_MIN, hu)) - HU_MIN) / (HU_MAX - HU_MIN);
    };
    for (const [a, b, cc] of [[0, 0, 0], [31, 0, 0], [0, 31, 0], [0, 0, 31], [15, 16, 17], [31, 31, 31], [7, 22, 3]])
      expect(p[idx(a, b, cc)]).toBeCloseTo(expected(a, b, cc), 5);
    // the centre lies between samples 15 and 16: their mean is the value at the centre
    const centreHu = -900 + 10 * c[0] * sp[0] + 4 * c[1] * sp[1] + 2 * c[2] * sp[2];
    const mean = (p[idx(15, 15, 15)] + p[idx(16, 16, 16)]) / 2;
    expect(mean * (HU_MAX - HU_MIN) + HU_MIN).toBeCloseTo(centreHu, 2);
  });

  it('channel c of extractPatches samples the same ramp every 2^c mm around the same centre (the context view)', () => {
    // integral HU at every voxel (3i + 2j + 5k), so trilinear interpolation is exact on the ramp
    const sp: [number, number, number] = [0.5, 0.5, 1.25];
    const v = synthetic([200, 200, 80], sp, (i, j, k) => -900 + 6 * i * sp[0] + 4 * j * sp[1] + 4 * k * sp[2]);
    const c: Vec3 = [100.2, 99.7, 40.4];
    const both = extractPatches(v, [c, c], 2);
    expect(both).toHaveLength(2 * 2 * PATCH_VOXELS);
    const fine = both.subarray(0, PATCH_VOXELS);
    const context = both.subarray(PATCH_VOXELS, 2 * PATCH_VOXELS);
    // channel 0 is the plain patch, byte for byte (a one-channel model sees what it always saw)
    expect(Buffer.from(fine.slice().buffer).equals(Buffer.from(extractPatch(v, c).buffer))).toBe(true);
    const at = (step: number, a: number, b: number, cc: number): number => {
      const hu = -900 + 6 * (c[0] * sp[0] + (a - 15.5) * step) + 4 * (c[1] * sp[1] + (b - 15.5) * step) + 4 * (c[2] * sp[2] + (cc - 15.5) * step);
      return (Math.min(HU_MAX, Math.max(HU_MIN, hu)) - HU_MIN) / (HU_MAX - HU_MIN);
    };
    for (const [a, b, cc] of [[0, 0, 0], [31, 31, 31], [15, 16, 17], [3, 28, 9]]) expect(context[idx(a, b, cc)]).toBeCloseTo(at(2, a, b, cc), 5);
    // both channels share the centre: the mean of samples 15 and 16 is the centre's value in each
    expect((context[idx(15, 15, 15)] + context[idx(16, 16, 16)]) / 2).toBeCloseTo((fine[idx(15, 15, 15)] + fine[idx(16, 16, 16)]) / 2, 5);
    // the second candidate's two channels follow the first's
    expect(Buffer.from(both.slice(2 * PATCH_VOXELS).buffer).equals(Buffer.from(both.slice(0, 2 * PATCH_VOXELS).buffer))).toBe(true);
  });

  it('outside the volume is air (0); HU are clipped to [−1000, 400] and scaled to [0, 1]', () => {
    const v = synthetic([20, 20, 10], [1, 1, 1], (i) => (i < 10 ? 2000 : -400));
    const p = extractPatch(v, [0, 0, 0]);
    expect(p[idx(0, 0, 0)]).toBe(0); // far outside
    expect(p[idx(16, 16, 16)]).toBe(1); // inside, bone-like 2000 HU clipped
    expect(p[idx(31, 20, 20)]).toBeCloseTo(600 / 1400, 6); // x ≈ 15.5 mm, −400 HU
    for (const x of p) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(1);
    }
  });

  describe('on LIDC-IDRI-0001', () => {
    let v: Volume;
    beforeAll(async () => {
      v = await loadLidc('LIDC-IDRI-0001');
    });

    it('the LUNA16 nodule fills the middle of its patch and lung surrounds it; extractPatches lays patches end to end', () => {
      const c = voxelOf(v, LUNA_0001.patient);
      const p = extractPatch(v, c);
      // the 23 mm nodule is soft tissue (≈ 0.7) at the centre; the corner 22 mm away is much darker
      const centre = (p[idx(15, 15, 15)] + p[idx(16, 16, 16)]) / 2;
      expect(centre).toBeGreaterThan(0.6);
      let inner = 0;
      let nIn = 0;
      for (let cc = 12; cc < 20; cc++) for (let b = 12; b < 20; b++) for (let a = 12; a < 20; a++) (inner += p[idx(a, b, cc)]), nIn++;
      expect(inner / nIn).toBeGreaterThan(0.6);
      // deterministic, and the batch function gives the same floats at the right offsets
      const again = extractPatch(v, c);
      expect(Buffer.from(again.buffer).equals(Buffer.from(p.buffer))).toBe(true);
      const other: Vec3 = [c[0] - 40, c[1] + 10, c[2] - 3];
      const both = extractPatches(v, [other, c]);
      expect(both).toHaveLength(2 * PATCH_VOXELS);
      expect(Buffer.from(both.buffer, PATCH_VOXELS * 4, PATCH_VOXELS * 4).equals(Buffer.from(p.buffer))).toBe(true);
      // 300 patches, the pipeline's load, well under a second
      const t0 = performance.now();
      extractPatches(v, Array.from({ length: 300 }, (_, n) => [c[0] + (n % 20), c[1] - (n % 13), c[2] + (n % 7)] as Vec3));
      const ms = performance.now() - t0;
      console.log(`300 patches in ${ms.toFixed(0)} ms`);
      expect(ms).toBeLessThan(1500);
    });
  });
});
