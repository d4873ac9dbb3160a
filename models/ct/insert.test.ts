/**
 * The nodule simulator on the real LIDC-IDRI-0001 volume: what it says it inserted is what the voxels hold (size
 * through the integrated density change, core HU, place), it never touches the real reader marks, and a seed fixes
 * everything.
 */
import { dirname } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { unpackedFile } from '../../test/helpers/paths.ts';
import { lungMask } from '../../src/detectors/ct/lung-mask.ts';
import { insertNodules, type InsertedNodule } from './insert.ts';
import { dist, loadLidcCase, type LidcCase } from './lidc.ts';

describe('models/ct nodule insertion into LIDC-IDRI-0001', () => {
  let c: LidcCase;
  let lung: Uint8Array;
  let voxels: Int16Array | Float32Array;
  let nodules: InsertedNodule[];
  const avoid = (): { patient: [number, number, number]; radiusMm: number }[] =>
    c.marks.map((m) => ({ patient: m.centrePatient, radiusMm: m.kind === 'nodule' ? (m.diameterMm ?? 10) / 2 + 10 : 5 }));

  beforeAll(async () => {
    c = await loadLidcCase(dirname(unpackedFile('ct/lidc/LIDC-IDRI-0001/069.xml')));
    lung = lungMask(c.volume).mask;
    ({ voxels, nodules } = insertNodules(c.volume, { seed: 7, count: 30, lung, avoid: avoid() }));
  });

  it('the lung mask the nodules are placed in (the pipeline\'s own) holds an adult pair of lungs (3–7 l)', () => {
    let n = 0;
    for (const v of lung) n += v;
    const ml = (n * c.volume.pixelSpacingMm[0] * c.volume.pixelSpacingMm[1] * c.volume.sliceSpacingMm) / 1000;
    expect(ml).toBeGreaterThan(3000);
    expect(ml).toBeLessThan(7000);
  });

  it('places all 30, mostly 4–10 mm, every kind and placement represented, inside the lung, away from reader marks', () => {
    expect(nodules).toHaveLength(30);
    const small = nodules.filter((n) => n.diameterMm >= 4 && n.diameterMm <= 10).length;
    expect(small).toBeGreaterThanOrEqual(20);
    for (const n of nodules) {
      expect(n.diameterMm).toBeGreaterThanOrEqual(4);
      expect(n.diameterMm).toBeLessThanOrEqual(30);
      // The Lung-RADS mean axial diameter of an ellipsoid within ±12 % axes stays near the equivalent diameter.
      expect(Math.abs(n.axialMeanDiameterMm - n.diameterMm) / n.diameterMm).toBeLessThan(0.3);
      const [cols, rows] = c.volume.dims;
      const [i, j, k] = n.centreVoxel.map(Math.round);
      expect(lung[k * rows * cols + j * cols + i]).toBe(1);
      for (const a of avoid()) expect(dist(n.centrePatient, a.patient)).toBeGreaterThan(a.radiusMm + n.diameterMm / 2);
    }
    expect(new Set(nodules.map((n) => n.type))).toEqual(new Set(['solid', 'ground-glass', 'part-solid']));
    expect(new Set(nodules.map((n) => n.placement))).toEqual(new Set(['parenchymal', 'juxtapleural', 'juxtavascular']));
  });

  it('the density change integrates to the stated volume (partial volume along z conserves it)', () => {
    const [cols, rows, slices] = c.volume.dims;
    const mm = [c.volume.pixelSpacingMm[1], c.volume.pixelSpacingMm[0], c.volume.sliceSpacingMm];
    const voxelMm3 = mm[0] * mm[1] * mm[2];
    const checked = nodules.filter((n) => n.placement === 'parenchymal' && n.type === 'solid' && n.diameterMm >= 5);
    expect(checked.length).toBeGreaterThanOrEqual(3);
    for (const n of checked) {
      const reach = n.diameterMm;
      let added = 0;
      let bg = 0;
      let bgN = 0;
      const [ci, cj, ck] = n.centreVoxel;
      for (let k = Math.max(0, Math.floor(ck - reach / mm[2])); k <= Math.min(slices - 1, Math.ceil(ck + reach / mm[2])); k++)
        for (let j = Math.floor(cj - reach / mm[1]); j <= Math.ceil(cj + reach / mm[1]); j++)
          for (let i = Math.floor(ci - reach / mm[0]); i <= Math.ceil(ci + reach / mm[0]); i++) {
            const d = Math.hypot((i - n.centreVoxel[0]) * mm[0], (j - n.centreVoxel[1]) * mm[1], (k - n.centreVoxel[2]) * mm[2]);
            if (d > reach) continue;
            const idx = k * rows * cols + j * cols + i;
            added += voxels[idx] - c.volume.voxels[idx];
            if (d < n.diameterMm / 2) {
              bg += c.volume.voxels[idx];
              bgN++;
            }
          }
      const estMm3 = (added * voxelMm3) / (n.coreHu - bg / bgN);
      expect(Math.abs(estMm3 - n.volumeMm3) / n.volumeMm3).toBeLessThan(0.25);
    }
  });

  it('solid cores read near their stated HU, ground glass stays within −800..−400, outside the nodules nothing changed', () => {
    const [cols, rows] = c.volume.dims;
    const mm = [c.volume.pixelSpacingMm[1], c.volume.pixelSpacingMm[0], c.volume.sliceSpacingMm];
    const coreMean = (n: InsertedNodule, src: ArrayLike<number>): number => {
      let s = 0;
      let m = 0;
      const r = n.diameterMm / 2;
      const [ci, cj, ck] = n.centreVoxel;
      for (let k = Math.floor(ck - r / mm[2]); k <= Math.ceil(ck + r / mm[2]); k++)
        for (let j = Math.floor(cj - r / mm[1]); j <= Math.ceil(cj + r / mm[1]); j++)
          for (let i = Math.floor(ci - r / mm[0]); i <= Math.ceil(ci + r / mm[0]); i++) {
            if (Math.hypot((i - ci) * mm[0], (j - cj) * mm[1], (k - ck) * mm[2]) > 0.3 * r + 0.5) continue;
            s += src[k * rows * cols + j * cols + i];
            m++;
          }
      return s / m;
    };
    for (const n of nodules.filter((n) => n.diameterMm >= 7 && n.placement === 'parenchymal')) {
      const got = coreMean(n, voxels);
      if (n.type === 'solid') expect(Math.abs(got - n.coreHu)).toBeLessThan(70);
      if (n.type === 'ground-glass') {
        expect(got).toBeGreaterThan(-820);
        expect(got).toBeLessThan(-380);
      }
    }
    let changedFar = 0;
    for (let idx = 0; idx < voxels.length; idx += 7) {
      if (voxels[idx] === c.volume.voxels[idx]) continue;
      const k = Math.floor(idx / (rows * cols));
      const j = Math.floor((idx - k * rows * cols) / cols);
      const i = idx - k * rows * cols - j * cols;
      const near = nodules.some((n) => Math.hypot((i - n.centreVoxel[0]) * mm[0], (j - n.centreVoxel[1]) * mm[1], (k - n.centreVoxel[2]) * mm[2]) < n.diameterMm * 0.9 + 4);
      if (!near) changedFar++;
    }
    expect(changedFar).toBe(0);
  });

  it('juxtapleural nodules reach the edge of the lung: a non-lung voxel within the radius + 1.5 mm', () => {
    const [cols, rows, slices] = c.volume.dims;
    const mm = [c.volume.pixelSpacingMm[1], c.volume.pixelSpacingMm[0], c.volume.sliceSpacingMm];
    const jp = nodules.filter((n) => n.placement === 'juxtapleural');
    expect(jp.length).toBeGreaterThanOrEqual(3);
    for (const n of jp) {
      const r = n.diameterMm / 2 + 1.5;
      let outside = 0;
      const [ci, cj, ck] = n.centreVoxel;
      for (let k = Math.max(0, Math.floor(ck - r / mm[2])); k <= Math.min(slices - 1, Math.ceil(ck + r / mm[2])); k++)
        for (let j = Math.floor(cj - r / mm[1]); j <= Math.ceil(cj + r / mm[1]); j++)
          for (let i = Math.floor(ci - r / mm[0]); i <= Math.ceil(ci + r / mm[0]); i++)
            if (Math.hypot((i - ci) * mm[0], (j - cj) * mm[1], (k - ck) * mm[2]) <= r && !lung[k * rows * cols + j * cols + i]) outside++;
      expect(outside).toBeGreaterThan(0);
    }
  });

  it('is deterministic by seed', () => {
    const again = insertNodules(c.volume, { seed: 7, count: 30, lung, avoid: avoid() });
    expect(again.nodules).toEqual(nodules);
    expect(Buffer.from(again.voxels.buffer).equals(Buffer.from(voxels.buffer))).toBe(true);
    const other = insertNodules(c.volume, { seed: 8, count: 5, lung, avoid: avoid() });
    expect(other.nodules[0].centrePatient).not.toEqual(nodules[0].centrePatient);
  });
});
