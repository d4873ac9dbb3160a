/**
 * The checked-in CT nodule model without torch (CI never trains): model.onnx matches manifest.json, the manifest
 * passes radnode's own validation and fits the graph and patch.ts, and onnxruntime-node reproduces golden.json on
 * patches cut by patch.ts from the real LIDC volumes at fixed centres (the real nodule and two other candidates).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Vec3 } from '../../src/dicom/volume.ts';
import { extractPatches, HU_MAX, HU_MIN } from '../../src/detectors/ct/patch.ts';
import { PATCH_SIZE, PATCH_SPACING_MM, PATCH_VOXELS } from '../../src/detectors/ct/types.ts';
import { validateManifest } from '../../src/inference/validate-manifest.ts';
import { unpackedFile } from '../../test/helpers/paths.ts';
import { loadLidcCase, type LidcCase } from './lidc.ts';

type GoldenItem = { case: string; what: string; voxel: Vec3; tensor: { sum: number; absSum: number; centre8: number[] }; probability: number };
type Golden = {
  model: { id: string; version: string; sha256: string };
  tolerance: { probability: number; tensorSum: number; tensorValue: number };
  items: GoldenItem[];
};

const here = dirname(fileURLToPath(import.meta.url));
const manifestPath = resolve(here, 'manifest.json');
// The release files are written together by crossval.ts; a checkout between its runs has none of them.
const released = existsSync(manifestPath) && existsSync(resolve(here, 'golden.json'));
const manifest = released ? validateManifest(JSON.parse(readFileSync(manifestPath, 'utf8')), manifestPath) : ({} as ReturnType<typeof validateManifest>);
const golden = (released ? JSON.parse(readFileSync(resolve(here, 'golden.json'), 'utf8')) : { items: [] }) as Golden;
const modelPath = resolve(here, manifest.file ?? 'model.onnx');
/** Scales per candidate (patch.ts extractPatches); the graph run below proves the model takes that many. */
const channels = Number(manifest.input?.shape[1] ?? 1);

describe.skipIf(!released)('models/ct: ct-lung-nodule model', () => {
  let session: ort.InferenceSession;
  const cases = new Map<string, LidcCase>();
  beforeAll(async () => {
    session = await ort.InferenceSession.create(modelPath);
    for (const name of new Set(golden.items.map((g) => g.case))) cases.set(name, await loadLidcCase(dirname(unpackedFile(`ct/lidc/${name}/dicom`))));
  });

  it('model.onnx matches the manifest sha256 and size limit, golden.json belongs to it', () => {
    const bytes = readFileSync(modelPath);
    expect(bytes.length).toBeLessThan(20 * 1024 * 1024);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.sha256);
    expect(golden.model).toEqual({ id: manifest.id, version: manifest.version, sha256: manifest.sha256 });
  });

  it('the manifest describes the graph and what patch.ts feeds it', () => {
    expect(manifest.id).toBe('ct-lung-nodule');
    expect(manifest.detector).toBe('ct');
    expect([1, 2, 3]).toContain(channels);
    expect(manifest.input).toEqual({ name: 'patches', shape: ['batch', channels, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE], layout: 'NCDHW', dtype: 'float32' });
    expect(session.inputNames).toEqual(['patches']);
    expect(session.outputNames).toEqual(['probability']);
    expect(manifest.outputs).toEqual([{ name: 'probability', kind: 'probabilities', shape: ['batch', 1] }]);
    // patch.ts: HU clipped to [HU_MIN, HU_MAX] and scaled to 0..1, 1 mm samples; the model takes that as is.
    expect(manifest.preprocess.window).toEqual({ kind: 'fixed', center: (HU_MIN + HU_MAX) / 2, width: HU_MAX - HU_MIN });
    expect(manifest.preprocess.spacingMm).toEqual([PATCH_SPACING_MM, PATCH_SPACING_MM, PATCH_SPACING_MM]);
    expect(manifest.preprocess.normalise).toEqual({ mean: 0, std: 1 });
    const { positive, urgent } = manifest.operatingPoints;
    expect(urgent).toBeDefined();
    expect(positive.threshold).toBeGreaterThan(0);
    expect(positive.threshold).toBeLessThanOrEqual(urgent?.threshold ?? 0);
  });

  it.each(golden.items.map((g) => [`${g.case}: ${g.what}`, g] as const))('%s: patch.ts tensor and onnxruntime output match golden.json', async (_name, g) => {
    const c = cases.get(g.case);
    if (!c) throw new Error(`case ${g.case} not loaded`);
    const x = extractPatches(c.volume, [g.voxel], channels);
    let sum = 0;
    let absSum = 0;
    for (const v of x) {
      sum += v;
      absSum += Math.abs(v);
    }
    expect(Math.abs(sum - g.tensor.sum)).toBeLessThan(golden.tolerance.tensorSum);
    expect(Math.abs(absSum - g.tensor.absSum)).toBeLessThan(golden.tolerance.tensorSum);
    const centre = 16 * 1024 + 16 * 32 + 12;
    g.tensor.centre8.forEach((v, i) => expect(Math.abs(x[centre + i] - v)).toBeLessThan(golden.tolerance.tensorValue));
    const out = await session.run({ patches: new ort.Tensor('float32', x, [1, channels, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE]) });
    expect(out.probability.dims).toEqual([1, 1]);
    expect(Math.abs((out.probability.data as Float32Array)[0] - g.probability)).toBeLessThan(golden.tolerance.probability);
  });

  it('runs a dynamic batch: all golden patches at once give the single-patch outputs', async () => {
    const byCase = golden.items.map((g) => extractPatches(cases.get(g.case)!.volume, [g.voxel]));
    const all = new Float32Array(byCase.length * PATCH_VOXELS);
    byCase.forEach((p, i) => all.set(p, i * PATCH_VOXELS));
    const out = await session.run({ patches: new ort.Tensor('float32', all, [byCase.length, 1, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE]) });
    const probs = out.probability.data as Float32Array;
    golden.items.forEach((g, i) => expect(Math.abs(probs[i] - g.probability)).toBeLessThan(golden.tolerance.probability));
  });
});
