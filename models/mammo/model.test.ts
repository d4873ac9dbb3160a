/**
 * The checked-in mammography model without torch (CI never trains): model.onnx matches manifest.json, the manifest
 * fits the graph, and onnxruntime-node reproduces golden.json on mini-MIAS PNGs preprocessed by the runtime's own
 * code (src/inference/mammogram.ts: chest wall left, breast crop, stretch, normalise).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { exactPercentileWindow } from '../../src/dicom/index.ts';
import type { ModelManifest } from '../../src/inference/manifest.ts';
import { breastBox, chestWallOnRight } from '../../src/inference/mammogram.ts';
import { resizeToInput } from '../../src/inference/image.ts';
import { fromPng } from '../../src/detectors/mammo/test-support.ts';
import { sharedFile } from '../../test/helpers/paths.ts';
import { sha256Hex } from '../cxr/preprocess.ts';

type Golden = { model: { id: string; version: string; sha256: string }; items: { file: string; classes: string[]; tensorSum: number; prob: number; camArgmax: number; camSum: number }[] };

const here = dirname(fileURLToPath(import.meta.url));
const manifest = JSON.parse(readFileSync(resolve(here, 'manifest.json'), 'utf8')) as ModelManifest;
const golden = JSON.parse(readFileSync(resolve(here, 'golden.json'), 'utf8')) as Golden;
const modelPath = resolve(here, manifest.file ?? 'model.onnx');

/** The PNG through the same steps as the worker: percentile window, content orientation, crop, stretch, normalise. */
function preprocess(file: string): Float32Array {
  const g = fromPng(sharedFile(file));
  const w = manifest.preprocess.window;
  if (w.kind !== 'percentile') throw new Error('percentile window expected');
  const values = Float32Array.from(g.data);
  const win = exactPercentileWindow(values, w.low / 100, w.high / 100);
  const lo = win.center - win.width / 2;
  const d = new Float32Array(g.data.length);
  for (let i = 0; i < d.length; i++) d[i] = Math.min(1, Math.max(0, (g.data[i] - lo) / Math.max(1, win.width)));
  const flip = chestWallOnRight(d, g.rows, g.columns);
  const o = new Float32Array(d.length);
  for (let r = 0; r < g.rows; r++) for (let c = 0; c < g.columns; c++) o[r * g.columns + c] = d[r * g.columns + (flip ? g.columns - 1 - c : c)];
  const b = breastBox(o, g.rows, g.columns);
  const cw = b.c1 - b.c0;
  const ch = b.r1 - b.r0;
  const crop = new Float32Array(cw * ch);
  for (let r = 0; r < ch; r++) crop.set(o.subarray((b.r0 + r) * g.columns + b.c0, (b.r0 + r) * g.columns + b.c1), r * cw);
  const [h, wd] = manifest.preprocess.size!;
  const { data } = resizeToInput(crop, ch, cw, h, wd, 'stretch');
  const { mean, std } = manifest.preprocess.normalise;
  for (let i = 0; i < data.length; i++) data[i] = (data[i] - mean) / std;
  return data;
}

describe('models/mammo: mammo-mias model', () => {
  let session: ort.InferenceSession;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(modelPath);
  });

  it('model.onnx matches the manifest sha256 and the size limit; golden.json belongs to it', () => {
    const bytes = readFileSync(modelPath);
    expect(bytes.length).toBeLessThan(5 * 1024 * 1024);
    expect(sha256Hex(bytes)).toBe(manifest.sha256);
    expect(golden.model).toEqual({ id: manifest.id, version: manifest.version, sha256: manifest.sha256 });
  });

  it('the manifest describes the graph', () => {
    expect(manifest.id).toBe('mammo-mias');
    expect(manifest.detector).toBe('mammo');
    expect(session.inputNames).toEqual([manifest.input.name]);
    expect([...session.outputNames].sort()).toEqual(['cam', 'prob']);
    const { positive, urgent } = manifest.operatingPoints;
    expect(positive.threshold).toBeLessThan(urgent?.threshold ?? 0);
  });

  it.each(golden.items.map((g) => [g.file, g] as const))('%s: runtime preprocessing + onnxruntime reproduce torch', async (_f, g) => {
    const data = preprocess(g.file);
    const sum = data.reduce((a, v) => a + v, 0);
    // The triangle resize matches train.py's to float rounding (measured ≤ 1e-7 per element): a real drift in the
    // window, orientation or crop moves the sum by far more than this bound.
    expect(Math.abs(sum - g.tensorSum)).toBeLessThanOrEqual(1e-5 * data.length);
    const [h, w] = manifest.preprocess.size!;
    const out = await session.run({ [manifest.input.name]: new ort.Tensor('float32', data, [1, 1, h, w]) });
    const prob = (out.prob.data as Float32Array)[0];
    expect(Math.abs(prob - g.prob)).toBeLessThanOrEqual(1e-4);
    const cam = out.cam.data as Float32Array;
    expect(out.cam.dims.slice(-2)).toEqual([16, 16]);
    expect(Math.abs(cam.reduce((a, v) => a + v, 0) - g.camSum)).toBeLessThanOrEqual(1e-3 * 256);
  });
});
