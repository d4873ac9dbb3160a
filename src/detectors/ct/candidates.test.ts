import { beforeAll, describe, expect, it } from 'vitest';
import type { Vec3, Volume } from '../../dicom/volume.ts';
import { DEFAULT_MAX_CANDIDATES, findCandidates, symEig3 } from './candidates.ts';
import { lungMask } from './lung-mask.ts';
import { cleanLungSpots, cloneVolume, dist, insertEllipsoid, LIDC_0002_MARKS, loadLidc, LUNA_0001, wallSpot } from './testing.ts';
import type { Candidate, LungMask } from './types.ts';

const hitRank = (cs: Candidate[], p: Vec3, radiusMm: number): number => cs.findIndex((c) => dist(c.patient, p) <= radiusMm);
const patientOf = (v: Volume, [i, j, k]: Vec3): Vec3 => [0, 1, 2].map((r) => v.affine[r * 4] * i + v.affine[r * 4 + 1] * j + v.affine[r * 4 + 2] * k + v.affine[r * 4 + 3]) as Vec3;

describe('symEig3', () => {
  it('gives the eigenvalues of a rotated diagonal matrix, smallest magnitude first', () => {
    // R·diag(−3, −1, 0.5)·Rᵀ with R a rotation of 30° about z
    const c = Math.cos(Math.PI / 6);
    const s = Math.sin(Math.PI / 6);
    const d = [-3, -1, 0.5];
    const a = c * c * d[0] + s * s * d[1];
    const b = s * s * d[0] + c * c * d[1];
    const xy = c * s * (d[0] - d[1]);
    const l = symEig3(a, b, d[2], xy, 0, 0);
    expect(l[0]).toBeCloseTo(0.5, 9);
    expect(l[1]).toBeCloseTo(-1, 9);
    expect(l[2]).toBeCloseTo(-3, 9);
  });
});

describe('findCandidates on the LIDC cases', () => {
  let v1: Volume;
  let m1: LungMask;
  let v2: Volume;
  let m2: LungMask;
  beforeAll(async () => {
    v1 = await loadLidc('LIDC-IDRI-0001');
    m1 = lungMask(v1);
    v2 = await loadLidc('LIDC-IDRI-0002');
    m2 = lungMask(v2);
  });

  it('LIDC-IDRI-0001: the LUNA16 nodule (23 mm, juxtapleural) is a candidate; at most DEFAULT_MAX_CANDIDATES per scan, strongest first', () => {
    const t0 = performance.now();
    const cs = findCandidates(v1, m1);
    const ms = performance.now() - t0;
    expect(cs.length).toBeGreaterThan(50);
    expect(cs.length).toBeLessThanOrEqual(DEFAULT_MAX_CANDIDATES);
    for (let i = 1; i < cs.length; i++) expect(cs[i].response).toBeLessThanOrEqual(cs[i - 1].response);
    const r = hitRank(cs, LUNA_0001.patient, LUNA_0001.diameterMm / 2);
    expect(r).toBeGreaterThanOrEqual(0);
    const c = cs[r];
    // a large-scale blob, centred within a few mm of the reference
    expect(dist(c.patient, LUNA_0001.patient)).toBeLessThan(4);
    expect(c.scaleMm).toBeGreaterThanOrEqual(17);
    // every candidate is inside the lung mask and its patient position matches its voxel
    for (const x of cs) {
      const [i, j, k] = x.voxel.map(Math.round);
      expect(m1.mask[(k * v1.dims[1] + j) * v1.dims[0] + i]).toBe(1);
      expect(dist(patientOf(v1, x.voxel), x.patient)).toBeLessThan(1e-6);
    }
    console.log(`0001: ${cs.length} candidates in ${ms.toFixed(0)} ms; LUNA16 nodule at rank ${r}, ${dist(c.patient, LUNA_0001.patient).toFixed(1)} mm off, scale ${c.scaleMm} mm`);
  });

  it('LIDC-IDRI-0002: both reader marks of the ground-glass juxtapleural nodule are hit', () => {
    const t0 = performance.now();
    const cs = findCandidates(v2, m2);
    const ms = performance.now() - t0;
    expect(cs.length).toBeLessThanOrEqual(DEFAULT_MAX_CANDIDATES);
    for (const mark of LIDC_0002_MARKS) {
      const r = hitRank(cs, mark.patient, mark.diameterMm / 2);
      expect(r).toBeGreaterThanOrEqual(0);
      console.log(`0002: ${cs.length} candidates in ${ms.toFixed(0)} ms; mark ${mark.diameterMm.toFixed(1)} mm hit at rank ${r}, ${dist(cs[r].patient, mark.patient).toFixed(1)} mm off`);
    }
    // about 2.5 s alone; the bound leaves room for a loaded machine
    expect(ms).toBeLessThan(15000);
  });

  it('small nodules inserted into real lung are found: solid 4–8 mm, ground-glass 8 mm, juxtapleural 6 mm', () => {
    const v = cloneVolume(v2);
    const spots = cleanLungSpots(v, m2.mask, 8, 5);
    expect(spots).toHaveLength(5);
    const inserts: { centre: Vec3; d: number; hu: number }[] = [
      { centre: spots[0], d: 6, hu: 0 },
      { centre: spots[1], d: 4, hu: 20 },
      { centre: spots[2], d: 8, hu: -50 },
      { centre: spots[3], d: 8, hu: -600 },
      { centre: spots[4], d: 10, hu: -650 },
    ];
    const k = Math.round(v.dims[2] * 0.45);
    const wall = wallSpot(v, m2.mask, k, Math.round(v.dims[1] * 0.55), 3);
    expect(wall).toBeDefined();
    inserts.push({ centre: wall!, d: 6, hu: 20 });
    for (const n of inserts) insertEllipsoid(v, n.centre, [n.d / 2, n.d / 2, n.d / 2], n.hu);
    const cs = findCandidates(v, m2);
    for (const n of inserts) {
      const p = patientOf(v, n.centre);
      const r = hitRank(cs, p, Math.max(n.d / 2, 2.5));
      console.log(`inserted ${n.d} mm at ${n.hu} HU: rank ${r}${r >= 0 ? `, ${dist(cs[r].patient, p).toFixed(1)} mm off, scale ${cs[r].scaleMm}` : ''}`);
      expect(r).toBeGreaterThanOrEqual(0);
    }
  });
});
