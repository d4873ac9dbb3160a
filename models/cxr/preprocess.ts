/**
 * The cxr-pneumonia preprocessing contract (manifest.json `preprocess`), applied to an 8-bit grayscale PNG of the
 * training set, with the imaging core's own window functions: percentile window 0.5..99.5 % → 0..1 (LINEAR_EXACT),
 * stretch to 224x224 (the Kermany PNGs are already 224x224, so the resize is the identity here), then
 * (display − mean) / std. Used by model.test.ts and by ort-check.ts (run from train.py).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { decode } from 'fast-png';
import { applyWindow, exactPercentileWindow } from '../../src/dicom/grayscale.ts';
import type { ModelManifest } from '../../src/inference/manifest.ts';

export function preprocessPng(path: string, manifest: ModelManifest): Float32Array {
  const png = decode(readFileSync(path));
  if (png.channels !== 1 || png.depth !== 8) throw new Error(`${path}: expected 8-bit grayscale, got ${png.channels} channel(s), ${png.depth} bits`);
  const [h, w] = manifest.preprocess.size ?? [224, 224];
  if (png.height !== h || png.width !== w) throw new Error(`${path}: expected ${w}x${h}, got ${png.width}x${png.height}`);
  const window = manifest.preprocess.window;
  if (window.kind !== 'percentile') throw new Error(`unexpected window kind ${window.kind}`);
  const grey = Float32Array.from(png.data);
  const display = applyWindow(grey, exactPercentileWindow(grey, window.low / 100, window.high / 100));
  const { mean, std } = manifest.preprocess.normalise;
  const out = new Float32Array(display.length);
  for (let i = 0; i < display.length; i++) out[i] = (display[i] - mean) / std;
  return out;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
