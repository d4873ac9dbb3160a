/**
 * Run by train.py after export (`npx tsx models/cxr/ort-check.ts REF.json`): preprocesses the reference PNGs in
 * TypeScript (preprocess.ts), runs model.onnx in onnxruntime-node, compares with torch's outputs and tensor
 * checksums, writes golden.json (expected onnxruntime outputs for model.test.ts) and prints a JSON summary line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { ModelManifest } from '../../src/inference/manifest.ts';
import { preprocessPng, sha256Hex } from './preprocess.ts';

type RefItem = { file: string; label: string; golden: boolean; tensorSum: number; tensorAbsSum: number; torchProb: number; torchCam: number[] };

const here = dirname(fileURLToPath(import.meta.url));
const shared = resolve(here, '../../../shared/data');
const manifest = JSON.parse(readFileSync(resolve(here, 'manifest.json'), 'utf8')) as ModelManifest;
const ref = JSON.parse(readFileSync(process.argv[2], 'utf8')) as { items: RefItem[] };
const modelBytes = readFileSync(resolve(here, 'model.onnx'));
if (sha256Hex(modelBytes) !== manifest.sha256) throw new Error('model.onnx does not match manifest sha256');
const session = await ort.InferenceSession.create(resolve(here, 'model.onnx'));
const [, h, w] = [1, 224, 224];

let maxProb = 0, maxCam = 0, maxSum = 0;
const golden: unknown[] = [];
const times: number[] = [];
for (const item of ref.items) {
  const x = preprocessPng(resolve(shared, item.file), manifest);
  let sum = 0, abs = 0;
  for (const v of x) { sum += v; abs += Math.abs(v); }
  maxSum = Math.max(maxSum, Math.abs(sum - item.tensorSum), Math.abs(abs - item.tensorAbsSum));
  const feeds = { [manifest.input.name]: new ort.Tensor('float32', x, [1, 1, h, w]) };
  const out = await session.run(feeds);
  const prob = (out.prob.data as Float32Array)[0];
  const cam = Array.from(out.cam.data as Float32Array);
  maxProb = Math.max(maxProb, Math.abs(prob - item.torchProb));
  cam.forEach((v, i) => { maxCam = Math.max(maxCam, Math.abs(v - item.torchCam[i])); });
  if (item.golden) {
    let argmax = 0;
    cam.forEach((v, i) => { if (v > cam[argmax]) argmax = i; });
    golden.push({
      file: item.file, label: item.label,
      tensor: { sum: sum, absSum: abs, first8: Array.from(x.slice(0, 8)), centre8: Array.from(x.slice(112 * 224 + 108, 112 * 224 + 116)) },
      prob, cam: { shape: out.cam.dims, argmax, sum: cam.reduce((a, b) => a + b, 0), values: cam },
    });
  }
}
// Timing: batch 1, after warm-up.
const x0 = new ort.Tensor('float32', preprocessPng(resolve(shared, ref.items[0].file), manifest), [1, 1, h, w]);
for (let i = 0; i < 5; i++) await session.run({ input: x0 });
for (let i = 0; i < 30; i++) { const t = performance.now(); await session.run({ input: x0 }); times.push(performance.now() - t); }
times.sort((a, b) => a - b);
writeFileSync(resolve(here, 'golden.json'), JSON.stringify({
  model: { id: manifest.id, version: manifest.version, sha256: manifest.sha256 },
  note: 'Files are relative to ../shared/data. Tensors follow manifest.preprocess (preprocess.ts); outputs are onnxruntime-node CPU.',
  tolerance: { prob: 1e-4, cam: 1e-4, tensorSum: 0.05, tensorValue: 1e-4 },
  items: golden,
}, null, 1) + '\n');
console.log(JSON.stringify({ n: ref.items.length, maxProbDiff: maxProb, maxCamDiff: maxCam, maxTensorSumDiff: maxSum, msPerImage: times[times.length >> 1] }));
