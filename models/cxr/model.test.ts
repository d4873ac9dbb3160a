/**
 * The checked-in chest X-ray model without torch (CI never trains): model.onnx matches manifest.json, the manifest
 * fits the graph, and onnxruntime-node reproduces golden.json on Kermany PNGs from ../shared/data preprocessed
 * exactly as manifest.preprocess says (imaging-core percentile window, stretch, normalise: preprocess.ts).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelManifest } from '../../src/inference/manifest.ts';
import { sharedFile } from '../../test/helpers/paths.ts';
import { preprocessPng, sha256Hex } from './preprocess.ts';

type GoldenItem = {
  file: string;
  label: string;
  tensor: { sum: number; absSum: number; first8: number[]; centre8: number[] };
  prob: number;
  cam: { shape: number[]; argmax: number; sum: number; values: number[] };
};
type Golden = {
  model: { id: string; version: string; sha256: string };
  tolerance: { prob: number; cam: number; tensorSum: number; tensorValue: number };
  items: GoldenItem[];
};

const here = dirname(fileURLToPath(import.meta.url));
const manifest = JSON.parse(readFileSync(resolve(here, 'manifest.json'), 'utf8')) as ModelManifest;
const golden = JSON.parse(readFileSync(resolve(here, 'golden.json'), 'utf8')) as Golden;
const modelPath = resolve(here, manifest.file ?? 'model.onnx');

describe('models/cxr: cxr-pneumonia model', () => {
  let session: ort.InferenceSession;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(modelPath);
  });

  it('model.onnx matches the manifest sha256 and size limit, golden.json belongs to it', () => {
    const bytes = readFileSync(modelPath);
    expect(bytes.length).toBeLessThan(20 * 1024 * 1024);
    expect(sha256Hex(bytes)).toBe(manifest.sha256);
    expect(golden.model).toEqual({ id: manifest.id, version: manifest.version, sha256: manifest.sha256 });
  });

  it('the manifest describes the graph', () => {
    expect(manifest.id).toBe('cxr-pneumonia');
    expect(manifest.detector).toBe('cxr');
    expect(session.inputNames).toEqual([manifest.input.name]);
    expect([...session.outputNames].sort()).toEqual(manifest.outputs.map((o) => o.name).sort());
    expect(manifest.outputs.find((o) => o.kind === 'probabilities')?.name).toBe('prob');
    expect(manifest.outputs.find((o) => o.kind === 'cam')?.name).toBe('cam');
    expect(manifest.labels).toEqual([{ index: 0, code: { scheme: 'SCT', value: '233604007', meaning: 'Pneumonia' } }]);
    const { positive, urgent } = manifest.operatingPoints;
    expect(urgent).toBeDefined();
    expect(positive.threshold).toBeLessThan(urgent?.threshold ?? 0);
  });

  it.each(golden.items.map((g) => [g.file, g] as const))('%s: preprocessed tensor and onnxruntime outputs match golden.json', async (_file, g) => {
    const tol = golden.tolerance;
    const x = preprocessPng(sharedFile(g.file), manifest);
    let sum = 0;
    let absSum = 0;
    for (const v of x) {
      sum += v;
      absSum += Math.abs(v);
    }
    expect(Math.abs(sum - g.tensor.sum)).toBeLessThan(tol.tensorSum);
    expect(Math.abs(absSum - g.tensor.absSum)).toBeLessThan(tol.tensorSum);
    g.tensor.first8.forEach((v, i) => expect(Math.abs(x[i] - v)).toBeLessThan(tol.tensorValue));
    g.tensor.centre8.forEach((v, i) => expect(Math.abs(x[112 * 224 + 108 + i] - v)).toBeLessThan(tol.tensorValue));

    const out = await session.run({ [manifest.input.name]: new ort.Tensor('float32', x, [1, 1, 224, 224]) });
    const prob = out.prob;
    const cam = out.cam;
    expect(prob.dims).toEqual([1, 1]);
    expect(cam.dims).toEqual(g.cam.shape);
    const p = (prob.data as Float32Array)[0];
    expect(Math.abs(p - g.prob)).toBeLessThan(tol.prob);
    const c = cam.data as Float32Array;
    let argmax = 0;
    let max = -Infinity;
    for (let i = 0; i < c.length; i++) {
      expect(Math.abs(c[i] - g.cam.values[i])).toBeLessThan(tol.cam);
      if (c[i] > max) {
        max = c[i];
        argmax = i;
      }
    }
    expect(argmax).toBe(g.cam.argmax);
    expect(max).toBeCloseTo(1, 4);
  });

  it('runs a dynamic batch: two images at once give the single-image outputs', async () => {
    const [a, b] = golden.items;
    const xa = preprocessPng(sharedFile(a.file), manifest);
    const xb = preprocessPng(sharedFile(b.file), manifest);
    const both = new Float32Array(xa.length * 2);
    both.set(xa, 0);
    both.set(xb, xa.length);
    const out = await session.run({ [manifest.input.name]: new ort.Tensor('float32', both, [2, 1, 224, 224]) });
    const probs = out.prob.data as Float32Array;
    expect(out.cam.dims).toEqual([2, ...g2(a.cam.shape)]);
    expect(Math.abs(probs[0] - a.prob)).toBeLessThan(golden.tolerance.prob);
    expect(Math.abs(probs[1] - b.prob)).toBeLessThan(golden.tolerance.prob);
  });
});

/** The CAM's spatial dims from a [1, H, W] golden shape. */
function g2(shape: number[]): number[] {
  return shape.slice(1);
}
