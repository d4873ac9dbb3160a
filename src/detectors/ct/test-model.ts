/**
 * TEST AND BENCHMARK SUPPORT ONLY: a hand-built throw-away CT patch "classifier" with the interface of the
 * ct-lung-nodule manifest (input `patches` [N,1,32,32,32], output `probability` [N,1]), so the worker plumbing, the
 * detector and the result objects can be tested before (or without) the trained model. It is not a detector: it
 * scores how much brighter the patch centre (6³ voxels) is than the whole patch, which a nodule and a vessel
 * crossing the centre both are. Never shipped, never reported as the detector's performance.
 */
import { createHash } from 'node:crypto';
import type { ModelManifest } from '../../inference/manifest.ts';
import { onnxModel } from '../../inference/test-support/onnx-writer.ts';
import { PATCH_SIZE } from './types.ts';

export function tinyCtModel(gain = 8, bias = -1, channels = 1): Uint8Array {
  const c0 = PATCH_SIZE / 2 - 3;
  const c1 = PATCH_SIZE / 2 + 3;
  return onnxModel({
    inputs: [{ name: 'patches', shape: ['batch', channels, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE] }],
    outputs: [{ name: 'probability', shape: ['batch', 1] }],
    initializers: [
      { name: 'starts', dims: [3], int64: [c0, c0, c0] },
      { name: 'ends', dims: [3], int64: [c1, c1, c1] },
      { name: 'axes', dims: [3], int64: [2, 3, 4] },
      { name: 'gain', dims: [1], float: [gain] },
      { name: 'bias', dims: [1], float: [bias] },
      { name: 'shape', dims: [2], int64: [-1, 1] },
    ],
    nodes: [
      { op: 'Slice', inputs: ['patches', 'starts', 'ends', 'axes'], outputs: ['centre'] },
      { op: 'ReduceMean', inputs: ['centre'], outputs: ['centreMean'], attrs: [{ name: 'axes', ints: [1, 2, 3, 4] }, { name: 'keepdims', i: 0 }] },
      { op: 'ReduceMean', inputs: ['patches'], outputs: ['patchMean'], attrs: [{ name: 'axes', ints: [1, 2, 3, 4] }, { name: 'keepdims', i: 0 }] },
      { op: 'Sub', inputs: ['centreMean', 'patchMean'], outputs: ['contrast'] },
      { op: 'Mul', inputs: ['contrast', 'gain'], outputs: ['scaled'] },
      { op: 'Add', inputs: ['scaled', 'bias'], outputs: ['logit'] },
      { op: 'Sigmoid', inputs: ['logit'], outputs: ['p'] },
      { op: 'Reshape', inputs: ['p', 'shape'], outputs: ['probability'] },
    ],
  });
}

export function tinyCtManifest(bytes: Uint8Array, over: Partial<ModelManifest> = {}): ModelManifest {
  return {
    id: 'ct-lung-nodule',
    version: '0.0.1-test',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    detector: 'ct',
    routing: { modality: ['CT'], imageTypeIncludes: ['AXIAL'], sliceThicknessMmMax: 3, minInstances: 40 },
    input: { name: 'patches', shape: ['batch', 1, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE], layout: 'NCDHW', dtype: 'float32' },
    preprocess: { window: { kind: 'fixed', center: -300, width: 1400 }, spacingMm: [1, 1, 1], normalise: { mean: 0, std: 1 } },
    outputs: [{ name: 'probability', kind: 'probabilities', shape: ['batch', 1] }],
    labels: [{ index: 0, code: { scheme: 'SCT', value: '27925004', meaning: 'Nodule' } }],
    operatingPoints: { positive: { threshold: 0.5 }, urgent: { threshold: 0.95 } },
    card: 'CARD.md',
    ...over,
  };
}
