/**
 * The LUNA16 scoring on hand-made cases whose FROC curve is worked out by hand (see the comments), plus the CLI's
 * file handling. The rules checked are the challenge script's: strict "within the radius", one hit per nodule (the
 * most probable), marks on excluded findings ignored, −1 diameters as 10 mm, missed nodules capping sensitivity,
 * 100 marks per scan.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatResult, runEvaluation } from './evaluate.ts';
import { annotationsToCsv, detectionsToCsv, evaluateFroc, interp, stratify, type Annotation, type Detection } from './froc.ts';

const included: Annotation[] = [
  { seriesuid: 'A', coord: [0, 0, 0], diameterMm: 10, attrs: { type: 'solid' } },
  { seriesuid: 'A', coord: [100, 0, 0], diameterMm: 6, attrs: { type: 'ground-glass' } },
  { seriesuid: 'B', coord: [0, 0, 0], diameterMm: 8, attrs: { type: 'solid' } },
];
const excluded: Annotation[] = [{ seriesuid: 'A', coord: [50, 50, 50], diameterMm: -1 }];
const detections: Detection[] = [
  { seriesuid: 'A', coord: [1, 1, 1], probability: 0.9, diameterMm: 10 }, // hits A1
  { seriesuid: 'A', coord: [0, 2, 0], probability: 0.5, diameterMm: 12 }, // second hit on A1: ignored
  { seriesuid: 'A', coord: [52, 50, 50], probability: 0.95 }, // on the excluded mark (10 mm for −1): ignored
  { seriesuid: 'A', coord: [200, 0, 0], probability: 0.8 }, // FP
  { seriesuid: 'A', coord: [100, 2.9, 0], probability: 0.3, diameterMm: 7 }, // hits A2 (r = 3)
  { seriesuid: 'A', coord: [100, 3.0, 0], probability: 0.99 }, // exactly on the radius: not within, FP
  { seriesuid: 'B', coord: [0, 0, 3.9], probability: 0.6, diameterMm: 7 }, // hits B1 (r = 4)
  { seriesuid: 'B', coord: [300, 0, 0], probability: 0.2 }, // FP
];

describe('models/ct FROC (LUNA16 rules)', () => {
  // Scored, by probability: 0.99 FP, 0.9 TP, 0.8 FP, 0.6 TP, 0.3 TP, 0.2 FP; 3 nodules, 2 scans.
  // Curve (FP/scan, sens): (0,0) (0.5,0) (0.5,1/3) (1,1/3) (1,2/3) (1,1) (1.5,1).
  it('gives the hand-worked curve, sensitivities at 1/8..8 FP/scan, CPM 13/21 and the diameter error', () => {
    const r = evaluateFroc(detections, included, excluded, { scans: ['A', 'B'] });
    expect(r.curve.fps).toEqual([0, 0.5, 0.5, 1, 1, 1, 1.5]);
    expect(r.curve.sens.map((s) => Math.round(s * 3))).toEqual([0, 0, 1, 1, 2, 3, 3]);
    expect(r.sensitivityAt.map((s) => s.sensitivity)).toEqual([0, 0, 1 / 3, 1, 1, 1, 1]);
    expect(r.cpm).toBeCloseTo(13 / 21, 12);
    expect(r.sensitivityAt.find((s) => s.fpRate === 0.5)?.threshold).toBe(0.9);
    expect(r.sensitivityAt.find((s) => s.fpRate === 1)?.threshold).toBe(0.3);
    expect([r.nodules, r.detected, r.falsePositives, r.ignoredOnExcluded, r.doubleDetections]).toEqual([3, 3, 3, 1, 1]);
    // The most probable hit's size counts: A1 10 vs 10, A2 7 vs 6, B1 7 vs 8.
    expect(r.diameter.n).toBe(3);
    expect(r.diameter.meanAbsErrorMm).toBeCloseTo(2 / 3, 12);
    expect(r.diameter.meanErrorMm).toBeCloseTo(0, 12);
    expect(r.diameter.maxAbsErrorMm).toBe(1);
  });

  it('a missed nodule caps the sensitivity, and a scan without marks still divides the FP rate', () => {
    const withMiss = [...included, { seriesuid: 'C', coord: [0, 0, 0] as [number, number, number], diameterMm: 5 }];
    const r = evaluateFroc(detections, withMiss, excluded, { scans: ['A', 'B', 'C', 'D'] });
    // FP/scan now /4: points (0,0) (0.25,0) (0.25,1/4) (0.5,1/4) (0.5,2/4) (0.5,3/4) (0.75,3/4)
    expect(r.curve.fps).toEqual([0, 0.25, 0.25, 0.5, 0.5, 0.5, 0.75]);
    expect(r.sensitivityAt.map((s) => s.sensitivity)).toEqual([0, 0.25, 0.75, 0.75, 0.75, 0.75, 0.75]);
    expect(r.outcomes.filter((o) => !o.hit).map((o) => o.annotation.seriesuid)).toEqual(['C']);
  });

  it('scores at most the 100 most probable marks of a scan', () => {
    const many: Detection[] = Array.from({ length: 150 }, (_, i) => ({ seriesuid: 'A', coord: [500 + i * 20, 0, 0], probability: 0.5 + i / 1000 }));
    const hit: Detection = { seriesuid: 'A', coord: [0, 0, 0], probability: 0.1 };
    const r = evaluateFroc([...many, hit], included.slice(0, 1), [], { scans: ['A'] });
    expect(r.falsePositives).toBe(100);
    expect(r.detected).toBe(0);
  });

  it('a stratum turns the other nodules into excluded marks: their hits are neither TP nor FP', () => {
    const s = stratify(included, excluded, (a) => a.attrs?.type === 'solid');
    const r = evaluateFroc(detections, s.included, s.excluded, { scans: ['A', 'B'] });
    expect([r.nodules, r.detected, r.falsePositives, r.ignoredOnExcluded]).toEqual([2, 2, 3, 2]);
    // 0.99 FP, 0.9 TP, 0.8 FP, 0.6 TP, 0.2 FP → at 1 FP/scan both found.
    expect(r.sensitivityAt.find((x) => x.fpRate === 1)?.sensitivity).toBe(1);
    expect(r.sensitivityAt.find((x) => x.fpRate === 0.5)?.sensitivity).toBe(0.5);
  });

  it('bootstraps over scans: a 95% CI around the CPM, the same for the same seed', () => {
    const scans = ['A', 'B'];
    const a = evaluateFroc(detections, included, excluded, { scans, bootstrap: 200, seed: 3 });
    const b = evaluateFroc(detections, included, excluded, { scans, bootstrap: 200, seed: 3 });
    expect(a.cpmCi).toEqual(b.cpmCi);
    const [lo, hi] = a.cpmCi ?? [NaN, NaN];
    expect(lo).toBeLessThanOrEqual(a.cpm);
    expect(hi).toBeGreaterThanOrEqual(a.cpm);
    expect(lo).toBeLessThan(hi);
  });

  it('interpolates like np.interp (ends held, repeated x takes the last y)', () => {
    expect(interp(-1, [0, 1], [0.2, 0.4])).toBe(0.2);
    expect(interp(2, [0, 1], [0.2, 0.4])).toBe(0.4);
    expect(interp(0.5, [0, 1], [0.2, 0.4])).toBeCloseTo(0.3, 12);
    expect(interp(1, [0, 1, 1, 2], [0, 0.2, 0.6, 0.6])).toBe(0.6);
  });

  it('the CLI reads LUNA16-format CSVs, narrows to a stratum with --where, and prints the CPM', () => {
    const dir = mkdtempSync(join(tmpdir(), 'froc-'));
    writeFileSync(join(dir, 'd.csv'), detectionsToCsv(detections));
    writeFileSync(join(dir, 'a.csv'), annotationsToCsv(included, ['type']));
    writeFileSync(join(dir, 'e.csv'), annotationsToCsv(excluded));
    const base = { detections: join(dir, 'd.csv'), annotations: join(dir, 'a.csv'), excluded: join(dir, 'e.csv'), bootstrap: 0, json: false };
    const all = runEvaluation({ ...base, where: [] });
    expect(all.cpm).toBeCloseTo(13 / 21, 6);
    expect(formatResult(all)).toMatch(/CPM 0\.619/);
    const solid = runEvaluation({ ...base, where: [['type', 'solid']] });
    expect(solid.nodules).toBe(2);
    const small = runEvaluation({ ...base, where: [], maxDiameter: 8 });
    expect(small.nodules).toBe(2);
    const fourScans = runEvaluation({ ...base, where: [], scans: 4 });
    expect(fourScans.curve.fps.at(-1)).toBe(0.75);
  });
});
