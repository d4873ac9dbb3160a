import { describe, expect, it } from 'vitest';
import type { Vec3, Volume } from '../../dicom/volume.ts';
import { lungMask, type LungMaskDetail } from './lung-mask.ts';
import { cloneVolume, insertEllipsoid, LIDC_0002_MARKS, LUNA_0001, loadLidc, voxelOf, wallSpot, type LidcCase } from './testing.ts';

/**
 * Reference points read off the images by eye (slice k, column i, row j) and checked below to be what they are said
 * to be (air at −1000 HU): the trachea on a cranial slice of each case, and bowel gas under the left diaphragm of 0001.
 */
const TRACHEA: Record<LidcCase, Vec3> = { 'LIDC-IDRI-0001': [230, 225, 113], 'LIDC-IDRI-0002': [255, 249, 222] };
const BOWEL_GAS_0001: Vec3 = [396, 169, 40];

const at = (v: Volume, m: Uint8Array, [i, j, k]: Vec3): number => m[(Math.round(k) * v.dims[1] + Math.round(j)) * v.dims[0] + Math.round(i)];

/** Fraction of the mask inside a ball of radius r mm around a voxel. */
function maskFraction(v: Volume, m: Uint8Array, c: Vec3, r: number): number {
  const [C, R, S] = v.dims;
  const sp = [v.pixelSpacingMm[1], v.pixelSpacingMm[0], v.sliceSpacingMm];
  let inside = 0;
  let total = 0;
  for (let k = Math.floor(c[2] - r / sp[2]); k <= Math.ceil(c[2] + r / sp[2]); k++)
    for (let j = Math.floor(c[1] - r / sp[1]); j <= Math.ceil(c[1] + r / sp[1]); j++)
      for (let i = Math.floor(c[0] - r / sp[0]); i <= Math.ceil(c[0] + r / sp[0]); i++) {
        if (i < 0 || j < 0 || k < 0 || i >= C || j >= R || k >= S) continue;
        if (Math.hypot((i - c[0]) * sp[0], (j - c[1]) * sp[1], (k - c[2]) * sp[2]) > r) continue;
        total++;
        inside += m[(k * R + j) * C + i];
      }
  return inside / total;
}

describe('lungMask on the LIDC cases', () => {
  const cases: { id: LidcCase; nodules: { patient: Vec3; diameterMm: number }[] }[] = [
    { id: 'LIDC-IDRI-0001', nodules: [LUNA_0001] },
    { id: 'LIDC-IDRI-0002', nodules: LIDC_0002_MARKS },
  ];
  for (const { id, nodules } of cases) {
    it(`${id}: 2–8 l of lung, the airway out, the (juxtapleural) nodule in, in under 8 s`, async () => {
      const v = await loadLidc(id);
      const t0 = performance.now();
      const m: LungMaskDetail = lungMask(v);
      const ms = performance.now() - t0;
      expect(m.dims).toEqual(v.dims);
      expect(m.mask.length).toBe(v.voxels.length);
      expect(m.volumeMl).toBeGreaterThan(2000);
      expect(m.volumeMl).toBeLessThan(8000);
      // an airway tree was found and grown (trachea plus main bronchi hold tens of ml), and it is not in the mask
      expect(m.airwayMl).toBeGreaterThan(5);
      expect(m.airwayMl).toBeLessThan(250);
      const tr = TRACHEA[id];
      expect(v.voxels[(tr[2] * v.dims[1] + tr[1]) * v.dims[0] + tr[0]]).toBeLessThan(-900);
      expect(maskFraction(v, m.mask, tr, 4)).toBe(0);
      // both lungs: mask on each side of the image's middle column
      const [C, R, S] = v.dims;
      let left = 0;
      let right = 0;
      for (let p = 0; p < m.mask.length; p++) if (m.mask[p]) (p % C < C / 2 ? left++ : right++);
      expect(Math.min(left, right) / Math.max(left, right)).toBeGreaterThan(0.5);
      // the nodule marks: centre inside, and most of the nodule's own ball inside too (juxtapleural: kept by the closing)
      for (const n of nodules) {
        const c = voxelOf(v, n.patient);
        expect(at(v, m.mask, c)).toBe(1);
        expect(maskFraction(v, m.mask, c, n.diameterMm / 2)).toBeGreaterThan(0.9);
      }
      // the lung does not reach the outermost slices' corners (room air is not lung)
      expect(at(v, m.mask, [2, 2, 0])).toBe(0);
      expect(at(v, m.mask, [C - 3, R - 3, S - 1])).toBe(0);
      // about 1 s (0001) and 2 s (0002) alone; the bound leaves room for a loaded machine
      expect(ms).toBeLessThan(8000);
      console.log(`${id}: lungs ${m.volumeMl.toFixed(0)} ml, airway ${m.airwayMl.toFixed(1)} ml at < ${m.airwayHu} HU, ${ms.toFixed(0)} ms`);
    });
  }

  it('LIDC-IDRI-0001: bowel gas under the diaphragm is not lung', async () => {
    const v = await loadLidc('LIDC-IDRI-0001');
    const m = lungMask(v);
    expect(v.voxels[(BOWEL_GAS_0001[2] * v.dims[1] + BOWEL_GAS_0001[1]) * v.dims[0] + BOWEL_GAS_0001[0]]).toBeLessThan(-900);
    expect(maskFraction(v, m.mask, BOWEL_GAS_0001, 5)).toBe(0);
  });

  it('LIDC-IDRI-0002: an inserted 12 mm nodule flat on the lateral chest wall is inside the mask', async () => {
    const v = cloneVolume(await loadLidc('LIDC-IDRI-0002'));
    const before = lungMask(v);
    const k = Math.round(v.dims[2] * 0.5);
    const c = wallSpot(v, before.mask, k, Math.round(v.dims[1] * 0.5), 6, 0.7)!;
    expect(c).toBeDefined();
    insertEllipsoid(v, c, [6, 6, 6], 20);
    const after = lungMask(v);
    // the nodule's lung-side half, and its centre, are lung; the wall beyond the nodule is not
    expect(at(v, after.mask, c)).toBe(1);
    const inner: Vec3 = [c[0] - 3 / v.pixelSpacingMm[1], c[1], c[2]];
    expect(maskFraction(v, after.mask, inner, 3)).toBeGreaterThan(0.95);
    expect(at(v, after.mask, [c[0] + 25 / v.pixelSpacingMm[1], c[1], c[2]])).toBe(0);
  });
});
