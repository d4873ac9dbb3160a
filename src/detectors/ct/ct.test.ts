/**
 * Issue 7, the CT detector inside radnode: the 'ct' request runs in the inference worker (series choice, volume,
 * nodule pipeline with the ONNX patch classifier) and `radnode analyze` on the LIDC series writes an SR with one
 * measurement group per nodule and a key-slice heatmap SC that validate (radnode validate + dciodvfy).
 *
 * Until the trained model exists, the plumbing runs on a hand-built throw-away graph (test-model.ts): its findings
 * prove the wiring, never the detector. With models/ct present, the real model is checked on the real nodule.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, unpackedFile } from '../../../test/helpers/paths.ts';
import type { AnalyzeSummary } from '../../analyze.ts';
import { main } from '../../cli/main.ts';
import { readInstance } from '../../dicom/instance.ts';
import { sessionClassifier } from '../../inference/ct.ts';
import { loadModels } from '../../inference/registry.ts';
import { InferenceRuntime } from '../../inference/runtime.ts';
import { writeModel } from '../../inference/test-support/models.ts';
import { isPlace3D, type Place3D } from '../../results/findings.ts';
import { dciodvfyErrors } from '../../results/test-support/tools.ts';
import { validateFiles } from '../../results/validate.ts';
import { NOT_PROCESSED } from '../../workflow/reasons.ts';
import { CT_CODES } from './index.ts';
import { tinyCtManifest, tinyCtModel } from './test-model.ts';
import { PATCH_SIZE, PATCH_VOXELS } from './types.ts';

const HAVE_PIPELINE = existsSync(join(REPO_ROOT, 'src/detectors/ct/pipeline.ts'));
const SHIPPED = join(REPO_ROOT, 'models/ct-lung-nodule/manifest.json');
const HAVE_MODEL = existsSync(SHIPPED) || existsSync(join(REPO_ROOT, 'models/ct/manifest.json'));
const SETTINGS = { intraOpThreads: 2, interOpThreads: 1, executionProviders: ['cpu'] as ('cpu' | 'cuda')[] };

const files = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().map((f) => join(dir, f));

/** A temp models folder holding only the throw-away CT graph, and a config that points radnode at it. */
function tinyModelConfig(): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rn-ct-models-'));
  const bytes = tinyCtModel();
  writeModel(dir, 'ct-lung-nodule', bytes, tinyCtManifest(bytes));
  const config = join(dir, 'radnode.yaml');
  writeFileSync(config, `inference:\n  modelsDir: ${dir}\n`);
  return { dir, config };
}

describe('CT patch classifier over an ONNX session', () => {
  it('feeds [n,1,32,32,32] and reads one probability per patch (values of the throw-away graph, computed here too)', async () => {
    const bytes = tinyCtModel(8, -1);
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    const manifest = tinyCtManifest(bytes);
    const classify = sessionClassifier(ort, session, { input: manifest.input, outputs: manifest.outputs });
    const n = 3;
    const patches = new Float32Array((n + 1) * PATCH_VOXELS); // one spare patch: the classifier must read n only
    const c = PATCH_SIZE / 2;
    for (let p = 0; p < n; p++)
      for (let z = 0; z < PATCH_SIZE; z++)
        for (let y = 0; y < PATCH_SIZE; y++)
          for (let x = 0; x < PATCH_SIZE; x++) {
            // Patch p: a bright cube of half-side p+1 at the centre on a dark background.
            const inside = Math.max(Math.abs(x + 0.5 - c), Math.abs(y + 0.5 - c), Math.abs(z + 0.5 - c)) < p + 1;
            patches[p * PATCH_VOXELS + (z * PATCH_SIZE + y) * PATCH_SIZE + x] = inside ? 1 : 0;
          }
    const probs = await classify(patches, n);
    expect(probs.length).toBe(n);
    for (let p = 0; p < n; p++) {
      const side = 2 * (p + 1);
      const centre = Math.min(side, 6) ** 3 / 216; // fraction of the 6³ centre inside the cube
      const whole = side ** 3 / PATCH_VOXELS;
      expect(probs[p]).toBeCloseTo(1 / (1 + Math.exp(-(8 * (centre - whole) - 1))), 5);
    }
    expect(probs[2]).toBeGreaterThan(probs[0]);
    await session.release();
  });
});

describe('the ct request in the inference worker', () => {
  let runtime: InferenceRuntime;
  let modelsDir: string;
  beforeAll(() => {
    runtime = new InferenceRuntime(SETTINGS);
    modelsDir = tinyModelConfig().dir;
  });
  afterAll(async () => {
    await runtime.terminate();
  });

  it('refuses the GE head CT in the worker: gantry tilt from the slice positions, no volume built', async () => {
    const { models, problems } = await loadModels(modelsDir, runtime);
    expect(problems).toEqual([]);
    const m = models[0];
    const ge = dirname(unpackedFile('ct/edge/ge-head-ct-gantry-tilt/01.dcm'));
    const reply = await runtime.ct({ key: m.manifest.id, series: [{ seriesInstanceUID: 'ge', paths: files(ge) }], spec: m.manifest, minProbability: 0.5 });
    expect(reply.kind).toBe('refused');
    expect(reply.skipped).toHaveLength(1);
    expect(reply.skipped[0].reason).toEqual(NOT_PROCESSED.gantryTilt);
    expect(reply.timingsMs.decode).toBe(0);
  }, 60_000);
});

describe.runIf(HAVE_PIPELINE)('radnode analyze on LIDC-IDRI-0001 (throw-away graph: plumbing only)', () => {
  let summary: AnalyzeSummary;
  let out: string;
  let code: number;
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'rn-ct-analyze-'));
    const { config } = tinyModelConfig();
    code = await main(['analyze', unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom'), '--out', out, '--config', config], { out: () => undefined, err: () => undefined });
    summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as AnalyzeSummary;
  }, 300_000);

  it('runs the ct detector on the series and reports every stage', () => {
    expect(code).toBe(0);
    expect(summary.results).toHaveLength(1);
    const r = summary.results[0];
    expect(r.detector).toBe('ct');
    expect(r.state).not.toBe('failed');
    for (const stage of ['select', 'decode', 'lungMask', 'candidates', 'patches', 'classify', 'measure']) expect(r.timingsMs[stage], stage).toBeGreaterThan(0);
  });

  it('each finding: SCOORD3D centre on the series\' frame, bidirectional key image on a slice of the series, sizes and categories', () => {
    const r = summary.results[0];
    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
    const head = readInstance(new Uint8Array(readFileSync(files(dir)[0])));
    const sops = new Set(files(dir).map((f) => readInstance(new Uint8Array(readFileSync(f))).SOPInstanceUID));
    expect(r.findings.length).toBeGreaterThan(0);
    for (const f of r.findings) {
      expect(f.concept).toEqual(CT_CODES.nodule);
      expect(f.probability).toBeGreaterThanOrEqual(0.5);
      const place = f.place as Place3D;
      expect(isPlace3D(place)).toBe(true);
      expect(place.frameOfReferenceUID).toBe(head.header.string('FrameOfReferenceUID'));
      expect(sops.has(place.keyImage.sopInstanceUID)).toBe(true);
      expect(place.keyImage.shape).toBe('bidirectional');
      const [a, b, c, d] = place.keyImage.points;
      const len = (p: number[], q: number[]) => Math.hypot(p[0] - q[0], p[1] - q[1]) * 0.703125;
      const mean = f.measurements!.find((m) => m.concept.value === CT_CODES.meanDiameter.value)!.value;
      // The mean diameter is (long + short) / 2 of the axes drawn on the key slice (quarter-pixel rounding aside).
      expect(Math.abs(mean - (len(a, b) + len(c, d)) / 2)).toBeLessThan(0.5);
      expect(len(a, b)).toBeGreaterThanOrEqual(len(c, d) - 0.5);
      expect(f.measurements!.find((m) => m.concept.value === CT_CODES.volume.value)!.value).toBeGreaterThan(0);
      expect(f.evaluations!.map((e) => e.concept.value)).toEqual(['RN-CT-TYPE', 'RN-CT-LUNGRADS', 'RN-CT-FLEISCHNER']);
    }
    // Study score = the most suspicious nodule.
    expect(r.studyScore).toBe(Math.max(...r.findings.map((f) => f.probability)));
  });

  it('writes an SR and one SC whose frames are the key slices only; both pass radnode validate and dciodvfy', async () => {
    const r = summary.results[0];
    const keySlices = new Set(r.findings.map((f) => (f.place as Place3D).keyImage.sopInstanceUID));
    expect(r.outputs).toHaveLength(2);
    const report = await validateFiles(r.outputs);
    for (const v of report) expect(v.errors, v.file).toEqual([]);
    for (const p of r.outputs) expect(dciodvfyErrors(new Uint8Array(readFileSync(p))).errors, p).toEqual([]);
    const sc = r.outputs.map((p) => readInstance(new Uint8Array(readFileSync(p)))).find((i) => i.header.string('Modality') === 'OT')!;
    expect(sc.header.number('NumberOfFrames') ?? 1).toBe(Math.min(keySlices.size, 32));
  });
});

describe.runIf(HAVE_PIPELINE && HAVE_MODEL)('the shipped CT model on the real LIDC nodules', () => {
  let summary: AnalyzeSummary;
  beforeAll(async () => {
    const out = mkdtempSync(join(tmpdir(), 'rn-ct-real-'));
    await main(['analyze', unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom'), unpackedFile('ct/lidc/LIDC-IDRI-0002/dicom'), '--out', out], { out: () => undefined, err: () => undefined });
    summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as AnalyzeSummary;
  }, 600_000);

  it('finds the LUNA16 consensus nodule of LIDC-IDRI-0001 within its radius, mean diameter near the reference', () => {
    const r = summary.results.find((x) => x.studyInstanceUID === '1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178')!;
    expect(r.detector).toBe('ct');
    const luna = [56.20840547, 86.34341278, -115.8675792];
    const hits = r.findings.filter((f) => {
      const p = (f.place as Place3D).point;
      return Math.hypot(p[0] - luna[0], p[1] - luna[1], p[2] - luna[2]) <= 23.35 / 2;
    });
    expect(hits.length).toBeGreaterThan(0);
    const mean = hits[0].measurements!.find((m) => m.concept.value === CT_CODES.meanDiameter.value)!.value;
    expect(Math.abs(mean - 23.35)).toBeLessThan(5);
  });

  it('both series give valid result objects', async () => {
    for (const r of summary.results) {
      const report = await validateFiles(r.outputs);
      for (const v of report) expect(v.errors, v.file).toEqual([]);
    }
  });
});
