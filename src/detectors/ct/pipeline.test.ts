import { beforeAll, describe, expect, it } from 'vitest';
import type { Volume } from '../../dicom/volume.ts';
import { DEFAULT_MAX_CANDIDATES } from './candidates.ts';
import { BATCH, detectNodules, scaleMeasurement } from './pipeline.ts';
import { dist, loadLidc, LUNA_0001 } from './testing.ts';
import { PATCH_SIZE, PATCH_VOXELS, type PatchClassifier } from './types.ts';

/**
 * A deterministic stand-in for the ONNX model: the mean of the patch's central 4×4×4 samples, i.e. how dense the
 * candidate's centre is (soft tissue ≈ 0.7, lung ≈ 0.1). It records the batch sizes it was called with.
 */
function brightness(calls: number[], channels?: number): PatchClassifier {
  const classify = async (patches: Float32Array, n: number): Promise<Float32Array> => {
    calls.push(n);
    const stride = (channels ?? 1) * PATCH_VOXELS;
    expect(patches.length).toBe(n * stride);
    const out = new Float32Array(n);
    for (let q = 0; q < n; q++) {
      let s = 0;
      for (let c = 14; c < 18; c++) for (let b = 14; b < 18; b++) for (let a = 14; a < 18; a++) s += patches[q * stride + (c * PATCH_SIZE + b) * PATCH_SIZE + a];
      out[q] = s / 64;
    }
    return out;
  };
  return channels === undefined ? classify : Object.assign(classify, { channels });
}

describe('detectNodules', () => {
  let v1: Volume;
  let v2: Volume;
  beforeAll(async () => {
    v1 = await loadLidc('LIDC-IDRI-0001');
    v2 = await loadLidc('LIDC-IDRI-0002');
  });

  it('LIDC-IDRI-0001: the LUNA16 nodule comes out measured and categorised; nodules sorted, distinct, batched by 64', async () => {
    const calls: number[] = [];
    const r = await detectNodules(v1, brightness(calls), { minProbability: 0.5 });
    expect(r.candidateCount).toBeGreaterThan(0);
    expect(r.candidateCount).toBeLessThanOrEqual(DEFAULT_MAX_CANDIDATES);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(r.candidateCount);
    expect(Math.max(...calls)).toBeLessThanOrEqual(BATCH);
    expect(calls).toHaveLength(Math.ceil(r.candidateCount / BATCH));
    expect(r.lungVolumeMl).toBeGreaterThan(2000);
    for (const k of ['lungMask', 'candidates', 'patches', 'classify', 'measure']) expect(r.timingsMs[k]).toBeGreaterThanOrEqual(0);

    const hit = r.nodules.find((n) => dist(n.centrePatient, LUNA_0001.patient) < LUNA_0001.diameterMm / 2);
    expect(hit).toBeDefined();
    expect(Math.abs(hit!.meanDiameterMm - LUNA_0001.diameterMm)).toBeLessThan(3);
    expect(hit!.type).toBe('solid');
    expect(hit!.lungRads).toBe('4B');
    expect(hit!.fleischner).toBe('>8 mm');
    expect(hit!.sizeEstimated).toBeUndefined();
    // the finding's probability is what the classifier said about its patch: the nodule is soft tissue
    expect(hit!.probability).toBeGreaterThan(0.6);

    for (let i = 0; i < r.nodules.length; i++) {
      const n = r.nodules[i];
      expect(n.probability).toBeGreaterThanOrEqual(0.5);
      if (i) expect(n.probability).toBeLessThanOrEqual(r.nodules[i - 1].probability);
      expect(n.meanDiameterMm).toBeGreaterThanOrEqual(3);
      expect(n.meanDiameterMm).toBeLessThanOrEqual(30);
      for (let j = 0; j < i; j++) expect(dist(n.centrePatient, r.nodules[j].centrePatient)).toBeGreaterThanOrEqual(Math.max(n.meanDiameterMm, r.nodules[j].meanDiameterMm) / 2);
    }
    console.log(`0001: ${r.candidateCount} candidates → ${r.nodules.length} nodules; LUNA16 nodule p = ${hit!.probability.toFixed(2)}, ${hit!.meanDiameterMm} mm`);
  });

  it('a classifier that reads two scales gets both per candidate, channel 0 unchanged: the same nodules come out', async () => {
    const one = await detectNodules(v1, brightness([]), { minProbability: 0.5 });
    const calls: number[] = [];
    const two = await detectNodules(v1, brightness(calls, 2), { minProbability: 0.5 }); // brightness checks n × 2 × 32³ floats
    expect(calls.reduce((a, b) => a + b, 0)).toBe(two.candidateCount);
    expect(two.nodules.map((n) => [n.centrePatient, n.probability, n.meanDiameterMm])).toEqual(one.nodules.map((n) => [n.centrePatient, n.probability, n.meanDiameterMm]));
  });

  it('LIDC-IDRI-0002 (261 slices): mask + candidates + patches + measurement run through and find something', async () => {
    // a classifier that keeps every candidate with a dense centre (a few dozen are then segmented and measured). The
    // stage times are logged, not asserted: speed is shown by `npm run bench -- ct`, never by a timed test.
    const calls: number[] = [];
    const t0 = performance.now();
    const r = await detectNodules(v2, brightness(calls), { minProbability: 0.5 });
    const wall = performance.now() - t0;
    const t = r.timingsMs;
    const ownMs = t.lungMask + t.candidates + t.patches + t.measure;
    console.log(
      `0002 timings (ms): ${Object.entries(t)
        .map(([k, x]) => `${k} ${x.toFixed(0)}`)
        .join(', ')}; wall ${wall.toFixed(0)}; ${r.candidateCount} candidates → ${r.nodules.length} nodules; rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
    );
    expect(ownMs).toBeGreaterThan(0);
    expect(r.nodules.length).toBeGreaterThan(0);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    const classify: PatchClassifier = async (_p, n) => {
      ac.abort();
      return new Float32Array(n);
    };
    await expect(detectNodules(v1, classify, { signal: ac.signal })).rejects.toThrow();
  });

  it('a nodule the model is sure of survives a failed segmentation, flagged as sized by the filter scale', () => {
    const m = scaleMeasurement(v1, { voxel: [100, 120, 50], patient: [0, 0, 0], scaleMm: 6.5, response: 1 });
    expect(m.sizeEstimated).toBe(true);
    expect(m.meanDiameterMm).toBe(6.5);
    expect(Math.hypot((m.longAxis[1][0] - m.longAxis[0][0]) * v1.pixelSpacingMm[1], m.longAxis[1][1] - m.longAxis[0][1])).toBeCloseTo(6.5, 6);
    expect(m.keySlice).toBe(50);
  });
});
