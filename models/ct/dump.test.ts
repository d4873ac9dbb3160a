/**
 * The training labels of dump.ts: a candidate on an inserted nodule is positive (LUNA16 hit rule), on its rim or near
 * any real reader nodule it is left out (unknown), anything else is a real-anatomy negative. Non-nodule marks are not
 * protected: they are exactly the structures the model must learn to reject.
 */
import { describe, expect, it } from 'vitest';
import type { Candidate } from '../../src/detectors/ct/types.ts';
import { extraNegativesOf, LABELLED_RANKS, labelCandidate, realNoduleZones } from './dump.ts';
import { rng } from './rng.ts';
import type { InsertedNodule } from './insert.ts';
import type { LidcMark } from './lidc.ts';

const cand = (p: [number, number, number]): Candidate => ({ voxel: [0, 0, 0], patient: p, scaleMm: 6.5, response: 100 });
const nodule = (p: [number, number, number], d: number): InsertedNodule => ({
  id: 0,
  type: 'solid',
  placement: 'parenchymal',
  centreVoxel: [0, 0, 0],
  centrePatient: p,
  diameterMm: d,
  axialLongMm: d,
  axialShortMm: d,
  axialMeanDiameterMm: d,
  volumeMm3: (Math.PI / 6) * d ** 3,
  coreHu: 0,
  edgeSigmaMm: 0.5,
});
const mark = (kind: LidcMark['kind'], p: [number, number, number], d?: number): LidcMark => ({ readerId: 'r', id: 'x', kind, centreVoxel: [0, 0, 0], centrePatient: p, diameterMm: d });

describe('models/ct training labels', () => {
  const zones = realNoduleZones([mark('nodule', [0, 0, 0], 20), mark('small', [100, 0, 0]), mark('nonNodule', [200, 0, 0])]);

  it('protects every real nodule mark (outline radius + 5 mm, small points 5 mm), not the non-nodule marks', () => {
    expect(zones).toEqual([
      { patient: [0, 0, 0], radiusMm: 15 },
      { patient: [100, 0, 0], radiusMm: 5 },
    ]);
    expect(labelCandidate(cand([14, 0, 0]), [], zones).label).toBeNull();
    expect(labelCandidate(cand([104, 0, 0]), [], zones).label).toBeNull();
    expect(labelCandidate(cand([200, 0, 0]), [], zones).label).toBe(0);
  });

  it('positive within the inserted radius, unknown on the rim (to 0.75 d), negative beyond', () => {
    const ins = [nodule([50, 50, 50], 8)];
    expect(labelCandidate(cand([53.9, 50, 50]), ins, zones)).toMatchObject({ label: 1, nodule: ins[0] });
    expect(labelCandidate(cand([55, 50, 50]), ins, zones).label).toBeNull();
    expect(labelCandidate(cand([56.1, 50, 50]), ins, zones).label).toBe(0);
  });

  it('extra negatives: only below the first 300, only negatives, no repeats, in rank order, the same for a seed', () => {
    const all = Array.from({ length: 1500 }, (_, i) => cand([i, 0, 0]));
    const isNeg = (c: Candidate) => c.patient[0] % 10 !== 0; // every tenth is "a nodule"
    const a = extraNegativesOf(all, isNeg, 200, rng(5));
    expect(a).toHaveLength(200);
    expect(new Set(a.map((x) => x.rank)).size).toBe(200);
    for (const x of a) {
      expect(x.rank).toBeGreaterThanOrEqual(LABELLED_RANKS);
      expect(isNeg(x.cand)).toBe(true);
      expect(x.cand).toBe(all[x.rank]);
    }
    expect(a.map((x) => x.rank)).toEqual([...a.map((x) => x.rank)].sort((p, q) => p - q));
    expect(extraNegativesOf(all, isNeg, 200, rng(5))).toEqual(a);
    expect(extraNegativesOf(all, isNeg, 200, rng(6))).not.toEqual(a);
    expect(extraNegativesOf(all.slice(0, 300), isNeg, 200, rng(5))).toEqual([]);
  });
});
