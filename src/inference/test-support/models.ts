/** TEST SUPPORT: temp model folders for registry, detector and analyze tests. */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelManifest } from '../manifest.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function cxrManifest(bytes: Uint8Array, over: Partial<ModelManifest> = {}): ModelManifest {
  return {
    id: 'cxr-pneumonia', version: '0.0.1-test', sha256: sha(bytes), detector: 'cxr',
    routing: { modality: ['CR', 'DX'], bodyPart: ['CHEST'], viewPosition: ['PA', 'AP'] },
    input: { name: 'input', shape: ['batch', 1, 224, 224], layout: 'NCHW', dtype: 'float32' },
    preprocess: { window: { kind: 'percentile', low: 0.5, high: 99.5 }, size: [224, 224], normalise: { mean: 0.5, std: 0.25 }, resize: 'stretch' },
    outputs: [{ name: 'prob', kind: 'probabilities', shape: ['batch', 1] }, { name: 'cam', kind: 'cam', shape: ['batch', 28, 28] }],
    labels: [{ index: 0, code: { scheme: 'SCT', value: '233604007', meaning: 'Pneumonia' } }],
    operatingPoints: { positive: { threshold: 0.5 }, urgent: { threshold: 0.9 } },
    card: 'CARD.md',
    ...over,
  };
}

/** Writes models/<folder>/{model.onnx, manifest.json, CARD.md}; `manifest` may be raw JSON to test validation. */
export function writeModel(dir: string, folder: string, bytes: Uint8Array, manifest: unknown): string {
  const d = join(dir, folder);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'model.onnx'), bytes);
  writeFileSync(join(d, 'manifest.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(d, 'CARD.md'), '# test model\nTest fixture: hand-built graph, not a trained model. Not for any clinical use.\n');
  return d;
}

