/**
 * The CT nodule model's whole reproducible run (issue 7; notes/issue-corrections "CT nodule detector"):
 *
 *   npx tsx models/ct/crossval.ts                 # dump → train (A, B, shipped) → cross-volume evaluation → release files
 *   npx tsx models/ct/crossval.ts --stage eval    # only re-evaluate the models already trained
 *   (stages: all | dump | train | foldA | foldB | eval | golden | kernel; fold runs are cached in .cache/ct-eval/<fold>/run.json;
 *   kernel: --kernel-gain G --kernel-sigma MM --kernel-noise HU [--models DIR], a report on a simulated sharper kernel)
 *   --previous <metrics.json>[,<metrics.json>…]   # the card compares the new figures with former releases' metrics.json
 *
 * Folds: model A is trained on nodules inserted into LIDC-IDRI-0001 (all training seeds but the last, its monitor) and
 * tested on fresh inserts (seeds 101–104) in LIDC-IDRI-0002 through the full TypeScript pipeline (lung mask →
 * candidates → patches → ONNX classifier → measurement: detectNodules, the code radnode runs), scored by froc.ts
 * the LUNA16 way; model B the reverse. The real LIDC marks (LUNA16 annotations and excluded rows of that series) are excluded marks there:
 * detections on them are neither hits nor false positives. The shipped model (trained on both volumes) takes its
 * operating points from the pooled A+B test detections, never from data it was trained on. The real nodules (≈ 23 mm,
 * one per case) are scored as a sanity check on the unmodified scans.
 *
 * Writes: .cache/ct-eval/<fold>/{detections,annotations,excluded}.csv (re-score them with evaluate.ts),
 * models/ct/{metrics.json, manifest.json, golden.json, CARD.md} (model.onnx comes from train.py).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { Vec3, Volume } from '../../src/dicom/volume.ts';
import { sessionClassifier } from '../../src/inference/ct.ts';
import type { ModelManifest } from '../../src/inference/manifest.ts';
import type { DetectOptions, DetectResult, PatchClassifier } from '../../src/detectors/ct/types.ts';
import { findCandidates } from '../../src/detectors/ct/candidates.ts';
import { lungMask } from '../../src/detectors/ct/lung-mask.ts';
import { CASES_DIR, dumpCase, loadExtractPatches, realNoduleZones, TRAIN_DIR, TRAIN_MIX } from './dump.ts';
import { annotationsFromCsv, annotationsToCsv, detectionsToCsv, evaluateFroc, stratify, type Annotation, type Detection, type FrocResult } from './froc.ts';
import { insertNodules } from './insert.ts';
import { simulateKernel, type KernelSim } from './kernel.ts';
import { clusterNoduleMarks, dist, loadLidcCase, type LidcCase } from './lidc.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '../..');
const SHARED = resolve(REPO, '../shared/data');
const MODELS_DIR = resolve(REPO, '.cache/ct-models');
const EVAL_DIR = resolve(REPO, '.cache/ct-eval');
const CASES = ['LIDC-IDRI-0001', 'LIDC-IDRI-0002'] as const;

/**
 * Detections below this probability are not measured (measuring takes ~0.4 s each). The FROC curve is therefore cut
 * at p = 0.1: where the 8 FP/scan point lies below it, the sensitivity there is underestimated, never overstated.
 */
const EVAL_MIN_PROBABILITY = 0.1;

type DetectNodules = (volume: Volume, classify: PatchClassifier, options?: DetectOptions) => Promise<DetectResult>;
// pipeline.ts is being written beside this folder's consumers; loaded by path until it is committed.
const PIPELINE = '../../src/detectors/ct/pipeline.ts';
const loadPipeline = async (): Promise<DetectNodules> => ((await import(PIPELINE)) as { detectNodules: DetectNodules }).detectNodules;

/** The manifest's model interface: what patch.ts feeds and what train.py exports. */
const SPEC: Pick<ModelManifest, 'input' | 'outputs'> = {
  input: { name: 'patches', shape: ['batch', 1, 32, 32, 32], layout: 'NCDHW', dtype: 'float32' },
  outputs: [{ name: 'probability', kind: 'probabilities', shape: ['batch', 1] }],
};

/** What changed in each release's training (the network, patches, pipeline and test inserts never changed). */
const RELEASES: Record<string, string> = {
  '1.0.0': 'training seeds 1–4 with the test insert mix, flips / 90° turns / one-voxel shifts, BCE with a ~2.1 positive weight, 14 epochs',
  '1.1.0': 'training seeds 1–8, the training insert mix above, the resampling augmentation, plain BCE, 6 epochs',
  '1.2.0': 'as 1.1.0 with 10 epochs instead of 6: the within-volume monitor (held-out seed 8 of the training volume) was still rising at epoch 6 (last-epoch AUC fold A 0.953→0.971, fold B 0.989→0.987 for 6 → 10 epochs); chosen on that monitor, nothing else changed',
  '1.3.0':
    'as 1.2.0, and each training scan adds 200 negatives drawn at random from candidate ranks 300–1500 (dump.ts extraNegativesOf; ~590 patches per seed instead of ~390): a fold model otherwise sees only the ~270 real structures of one scan. Rule fixed after the fold A test run and before the fold B one: ship it if the pooled sensitivity at 4 FP/scan is at least 1.2.0\'s with the new pipeline (78.0%) and the CPM is not lower; it was 78.0% and CPM 0.699 against 0.634',
  '1.4.0':
    'as 1.3.0 with training seeds 1–16 instead of 1–8 (fold models 1–15, monitor 16): twice the inserted nodules and twice the draws of extra negatives, nothing else changed. Rule written before it was trained: on development seeds 201–204 at least 161 of 200 reported at 4 FP/scan and pooled CPM ≥ 0.714 (1.3.0 there: 157, 0.714); it reported 170 with CPM 0.788. Then the test seeds, run once: ship only if the pooled sensitivity at 4 FP/scan beats 1.3.0\'s 78.0%, the CPM is at least 0.699, and the shipped model still finds both real nodules (0002 measured ≥ 15 mm)',
};
const MODEL_VERSION = '1.4.0';
/** Scales per candidate the model reads (patch.ts extractPatches): 1 = the 32 mm cube alone. */
const PATCH_CHANNELS = 1;

/**
 * Changes of the pipeline around the model (src/detectors/ct) that moved the figures by themselves: earlier releases'
 * rows in the comparison were measured with the pipeline of their day.
 */
const PIPELINE_CHANGES: string[] = [
  'between 1.2.0 and 1.3.0: a segmentation whose centre drifts off its candidate (it followed a vessel or a neighbouring opacity) is measured again inside a fixed sphere around the candidate (pipeline.ts, chosen on development seeds 201–204). With the 1.2.0 fold models unchanged, on the same test inserts, this alone moved the pooled figures from 74.5% to 78.0% at 4 FP/scan and CPM 0.595 to 0.634 (diameter MAE 0.68 to 0.66 mm)',
];

function args(): { stage: string; trainSeeds: number[]; testSeeds: number[]; count: number; epochs: number; extraNegatives: number; channels: number; trainDir: string; retrain: boolean; previous?: string; modelsDir: string; kernel: KernelSim } {
  const a = process.argv.slice(2);
  const opt = (k: string, d: string): string => {
    const i = a.indexOf(k);
    return i >= 0 && a[i + 1] ? a[i + 1] : d;
  };
  const range = (s: string): number[] => {
    const m = /^(\d+)-(\d+)$/.exec(s);
    return m ? Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i) : s.split(',').map(Number);
  };
  return {
    stage: opt('--stage', 'all'),
    trainSeeds: range(opt('--train-seeds', '1-16')),
    testSeeds: range(opt('--test-seeds', '101-104')),
    count: Number(opt('--count', '25')),
    epochs: Number(opt('--epochs', '10')),
    extraNegatives: Number(opt('--extra-negatives', '200')),
    channels: Number(opt('--channels', String(PATCH_CHANNELS))),
    trainDir: resolve(opt('--train-dir', TRAIN_DIR)),
    retrain: a.includes('--retrain'),
    previous: a.includes('--previous') ? opt('--previous', '') : undefined,
    modelsDir: resolve(opt('--models', MODELS_DIR)),
    kernel: { gain: Number(opt('--kernel-gain', '1')), sigmaMm: Number(opt('--kernel-sigma', '1')), noiseHu: Number(opt('--kernel-noise', '0')) },
  };
}

/** The scales a model reads per candidate (patch.ts): train.py records them beside the ONNX file; 1 before that. */
export function channelsOf(modelPath: string): number {
  const info = modelPath.replace(/\.onnx$/, '.train.json');
  return existsSync(info) ? ((JSON.parse(readFileSync(info, 'utf8')) as { inChannels?: number }).inChannels ?? 1) : 1;
}

const specOf = (channels: number): Pick<ModelManifest, 'input' | 'outputs'> => ({ ...SPEC, input: { ...SPEC.input, shape: ['batch', channels, 32, 32, 32] } });

async function classifierFor(modelPath: string): Promise<PatchClassifier> {
  const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'], intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
  return sessionClassifier(ort, session, specOf(channelsOf(modelPath)) as ModelManifest);
}

/** Fold models hold their last training seed out as a monitor (train.py prints its AUC per epoch). */
function train(cases: string[], out: string, epochs: number, trainDir: string, monitorSeed?: number): void {
  const monitor = monitorSeed === undefined ? [] : ['--monitor-seed', String(monitorSeed)];
  const r = spawnSync('/usr/bin/python3', [join(HERE, 'train.py'), '--train', cases.join(','), '--data', trainDir, '--out', out, '--epochs', String(epochs), ...monitor], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`train.py failed for ${cases} (status ${r.status}); it needs Debian python3-torch`);
}

const lunaCsv = (name: string): Annotation[] => annotationsFromCsv(readFileSync(join(SHARED, 'ct/lidc', name), 'utf8'));

/** The real marks of a series as excluded marks (LUNA16 consensus rows keep their size). */
function realExcluded(seriesUID: string, scan: string): Annotation[] {
  return [...lunaCsv('luna16-annotations.csv'), ...lunaCsv('luna16-annotations-excluded.csv')].filter((a) => a.seriesuid === seriesUID).map((a) => ({ ...a, seriesuid: scan }));
}

const toDetections = (scan: string, r: DetectResult): Detection[] =>
  r.nodules.map((n) => ({ seriesuid: scan, coord: n.centrePatient, probability: n.probability, diameterMm: n.meanDiameterMm }));

type FoldRun = { fold: string; model: string; testCase: string; scans: string[]; detections: Detection[]; included: Annotation[]; excluded: Annotation[]; timings: Record<string, number>[] };

const fileSha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Tried on development seeds 201–204 (fold models, never the test seeds) and not kept: reported at 4 FP/scan of 200. */
const TRIED: string[] = [
  'test-time averaging over 8 flips (1.2.0 models): no gain',
  'a linear instead of squared dot-ness weight in the candidate ranking, other non-maximum-suppression radii, a drift floor of 2 or 1.5 mm instead of 2.5: no gain',
  '600 candidates per scan instead of 300 (1.3.0 models): 157 → 160 of 200, all of it faint ground glass; 1000: 160 above a higher threshold. On the test inserts, run afterwards, the sensitivity at 4 FP/scan went 78.0% → 78.5% and the CPM 0.699 → 0.704, but a candidate near the centre of the real 0002 nodule, ranked below 300 before, then measured a 3.6 mm denser spot of it in the drift re-measurement\'s tight sphere (its shell lay inside the faint lesion, median −722 HU) and the nodule came out twice. Skipping the re-measurement when that shell is denser than −750 HU fixed it there but cost 1–2 inserts on these seeds (a 7 mm part-solid and a 10 mm ground-glass nodule beside vessels), and with it the 600-candidate pipeline scored 78.0% at 4 FP/scan, 67% at 1 FP/scan and CPM 0.691 on the test inserts (without the check 78.5%, 76.5% and 0.704; 300 candidates: 78.0%, 75.5%, 0.699). Kept: 300 candidates, no shell check',
  'a second candidate ranking on a scale space clipped at −550 HU instead of −300 (ground glass then has a vessel\'s contrast), 300 more candidates (1.3.0 models): 191 of 200 inserts got a candidate instead of 186, but 160 were reported, as with 600 plain candidates: the model scores the new faint candidates low',
  'averaging the 1.2.0 and 1.3.0 fold models (600 candidates): 161 against 160, for twice the classification time',
  'a 1.4.0 recipe: 1.3.0\'s plus a random loss of resolution in training (train.py resolution_blur, z blur σ 0.3–1.0 mm for half the patches, in-plane σ 0.3–0.6 mm for a quarter: slice thickness and kernel). A rule fixed before it was trained, on these development seeds only (with 600 candidates), would have shipped it: its fold models reported 162 against 1.3.0\'s 160. It was not shipped: the test folds, run once afterwards, disagreed (pooled 76.0% against 78.5% at 4 FP/scan, CPM 0.688 against 0.704, both with 600 candidates), and its shipped model scored a 6.4 mm edge piece of the real 0002 nodule above the piece at its centre, so that nodule was reported at 6.4 mm instead of 20 mm unless duplicates were merged into the larger measurement, which cost a point on the test inserts. Keeping 1.3.0 after seeing the test folds is a choice made on them: its figures are mildly optimistic for that',
  'a two-scale input (2026-11-25; `crossval.ts --channels 2`, patch.ts extractPatches): 1.3.0\'s recipe with a second channel, the same 32³ grid at 2 mm (a 64 mm cube of context around the candidate), both channels augmented by the same flips, turns, tilt and scale. A rule fixed before it was trained: go on to the test seeds only if, on these development seeds, at least 1.3.0\'s 157 + 4 inserts were reported at 4 FP/scan and the pooled CPM was not lower than 1.3.0\'s 0.714. It reported 161 but its pooled CPM was 0.683 (fold A 0.711 → 0.754, fold B 0.717 → 0.683; sensitivity at 1/8 FP/scan 55.5% → 49.5%): the rule was not met, the test seeds were not run, and the model was not shipped. The code path stays (a manifest with 2 input channels gets both scales; one channel is byte-identical to before)',
  'a step that undoes sharp reconstruction kernels (2026-11-25, 1.4.0 models). A simulated sharp kernel (kernel.ts: each slice plus its difference from a 1 mm in-plane Gaussian, gain 1, applied after insertion; `crossval.ts --stage kernel --test-seeds 201-204` reproduces these figures) left the inserts as they were (170 of 200, CPM 0.809 against 0.788 unsharpened; +30 HU noise instead: 169, CPM 0.746) but pulled the shipped model\'s real nodules from p 0.859 / 0.720 to 0.57 / 0.10, under the positive point. The step, before the lung mask: measure the parenchyma\'s fine texture (robust spread of slice minus its 1 mm blur over −950..−750 HU; training scans 26.9 and 17.2 HU) and, above a ceiling of 28 HU fixed from those two, smooth every slice in-plane with the smallest Gaussian that reaches it. Rule written first: keep it only if it reports more sharpened inserts than without it and the shipped model then reports both sharpened real nodules. It reported 168 (noise: 167) and brought back 0001\'s nodule (p 0.733) but not 0002\'s (its sharpened texture, 33.9 HU, earned σ 0.4 mm; at half the gain, 26.5 HU, none): not kept, the test seeds were not run',
  'sharper kernels in training (2026-11-25, `train.py --kernel-aug`: 1.4.0\'s recipe plus, for half the patches, an in-plane unsharp mask of gain 0–1.5 at σ 0.7–1.2 mm). Rule written before it was trained, on these seeds with `--stage kernel`: plain inserts at least 166 reported at 4 FP/scan and CPM ≥ 0.76, sharpened inserts at least 1.4.0\'s 170, and each fold model\'s held-out real nodule, sharpened, more probable than with the 1.4.0 fold model. Sharpened inserts 171 (CPM 0.819) and the held-out real nodules rose (fold A on 0002 0.574 → 0.784, fold B on 0001 0.721 → 0.729), but on plain inserts the CPM fell to 0.744 (1.4.0 0.788; at 1 FP/scan 83.5% → 77.0%, at 4 FP/scan 170 as before): rule not met, test seeds not run, not kept. A milder setting (fewer patches, lower gain) was the obvious next try. A milder setting, tried next (2026-11-25, `--kernel-aug-p 0.25 --kernel-aug-gain 1.0`: a quarter of the patches, gain 0–1.0), under the same rule written before it was trained: plain inserts 170 of 200 at CPM 0.766 and sharpened inserts 172 (both met), but the held-out real nodules, sharpened, fell below the 1.4.0 fold models instead of rising (fold A on 0002 0.574 → 0.476, fold B on 0001 0.721 → 0.688; unsharpened 0.727 and 0.756 against 0.927 and 0.832): rule not met, test seeds not run, not kept. Two fold models per setting cannot separate the setting from training noise on two real nodules; what would is more real scans with sharp kernels',
];

/** The detector's own code: a fold run measured with other pipeline code is stale even when the model is the same. */
function pipelineSha(): string {
  const dir = join(REPO, 'src/detectors/ct');
  const h = createHash('sha256');
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).sort()) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest('hex');
}

/** A fold's run is kept in .cache/ct-eval/<fold>/run.json and reused while the model, pipeline, seeds and count are the same. */
export async function runFold(fold: string, modelPath: string, test: LidcCase, seeds: number[], count: number, evalDir = EVAL_DIR, kernel?: KernelSim): Promise<FoldRun> {
  const dir = join(evalDir, fold);
  const key = JSON.stringify({ model: fileSha(modelPath), pipeline: pipelineSha(), seeds, count, test: test.name, ...(kernel ? { kernel, kernelCode: fileSha(join(HERE, 'kernel.ts')) } : {}) });
  const cached = join(dir, 'run.json');
  if (existsSync(cached)) {
    const saved = JSON.parse(readFileSync(cached, 'utf8')) as { key: string; run: FoldRun };
    if (saved.key === key) return saved.run;
  }
  const detect = await loadPipeline();
  const classify = await classifierFor(modelPath);
  const zones = realNoduleZones(test.marks);
  const base = lungMask(test.volume);
  const run: FoldRun = { fold, model: modelPath, testCase: test.name, scans: [], detections: [], included: [], excluded: [], timings: [] };
  for (const seed of seeds) {
    const scan = `${test.volume.seriesInstanceUID}:s${seed}`;
    const { voxels, nodules } = insertNodules(test.volume, { seed, count, lung: base.mask, avoid: zones.map((z) => ({ ...z, radiusMm: z.radiusMm + 5 })) });
    const t = performance.now();
    // a simulated kernel is applied after insertion: the inserted nodules are drawn by it too
    const seen = kernel ? simulateKernel(test.volume, { ...kernel, seed: seed * 7919 + (kernel.seed ?? 0) }, voxels) : voxels;
    const r = await detect({ ...test.volume, voxels: seen }, classify, { minProbability: EVAL_MIN_PROBABILITY });
    run.timings.push({ ...r.timingsMs, total: performance.now() - t });
    run.scans.push(scan);
    run.detections.push(...toDetections(scan, r));
    run.included.push(
      ...nodules.map((n) => ({
        seriesuid: scan,
        coord: n.centrePatient,
        diameterMm: n.diameterMm,
        attrs: { type: n.type, placement: n.placement, axial_mean_mm: n.axialMeanDiameterMm.toFixed(1), core_hu: n.coreHu.toFixed(0) },
      })),
    );
    run.excluded.push(...realExcluded(test.volume.seriesInstanceUID, scan));
    process.stdout.write(`fold ${fold} ${test.name} seed ${seed}: ${r.nodules.length} detections ≥ ${EVAL_MIN_PROBABILITY} of ${r.candidateCount} candidates, ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(cached, JSON.stringify({ key, run }));
  writeFileSync(join(dir, 'detections.csv'), detectionsToCsv(run.detections));
  writeFileSync(join(dir, 'annotations.csv'), annotationsToCsv(run.included, ['type', 'placement', 'axial_mean_mm', 'core_hu']));
  writeFileSync(join(dir, 'excluded.csv'), annotationsToCsv(run.excluded));
  writeFileSync(join(dir, 'scans.csv'), ['seriesuid', ...run.scans].join('\n') + '\n');
  return run;
}

type Stratum = { name: string; keep: (a: Annotation) => boolean };
const STRATA: Stratum[] = [
  { name: 'all inserted (4–30 mm)', keep: () => true },
  { name: '4–10 mm, all types', keep: (a) => a.diameterMm <= 10 },
  { name: '4–10 mm solid', keep: (a) => a.diameterMm <= 10 && a.attrs?.type === 'solid' },
  { name: '4–10 mm part-solid', keep: (a) => a.diameterMm <= 10 && a.attrs?.type === 'part-solid' },
  { name: '4–10 mm ground-glass', keep: (a) => a.diameterMm <= 10 && a.attrs?.type === 'ground-glass' },
  { name: 'juxtapleural (all sizes)', keep: (a) => a.attrs?.placement === 'juxtapleural' },
  { name: 'juxtavascular (all sizes)', keep: (a) => a.attrs?.placement === 'juxtavascular' },
  { name: '10–30 mm', keep: (a) => a.diameterMm > 10 },
];

type Summary = Omit<FrocResult, 'outcomes' | 'curve'>;
const summary = (r: FrocResult): Summary => {
  const { outcomes, curve, ...s } = r;
  void outcomes;
  void curve;
  return s;
};

function score(runs: FoldRun[]): { stratum: string; result: Summary }[] {
  const scans = runs.flatMap((r) => r.scans);
  const dets = runs.flatMap((r) => r.detections);
  const inc = runs.flatMap((r) => r.included);
  const exc = runs.flatMap((r) => r.excluded);
  return STRATA.map((s) => {
    const st = stratify(inc, exc, s.keep);
    const result = evaluateFroc(dets, st.included, st.excluded, { scans, bootstrap: 1000, seed: 7, referenceDiameter: (a) => Number(a.attrs?.axial_mean_mm) });
    return { stratum: s.name, result: summary(result) };
  });
}

/** The unmodified scans: the real ≈ 23 mm nodules (LUNA16 consensus for 0001; the 2-reader nodule of 0002). */
async function realCheck(name: string, modelPath: string, cases: LidcCase[]): Promise<{ rows: Record<string, unknown>[]; luna16: Summary }> {
  const detect = await loadPipeline();
  const classify = await classifierFor(modelPath);
  const out: Record<string, unknown>[] = [];
  const dets: Detection[] = [];
  for (const c of cases) {
    const r = await detect(c.volume, classify, { minProbability: EVAL_MIN_PROBABILITY });
    dets.push(...toDetections(c.volume.seriesInstanceUID, r));
    const ref = clusterNoduleMarks(c.marks).sort((a, b) => b.readers - a.readers)[0];
    const sorted = [...r.nodules].sort((a, b) => b.probability - a.probability);
    const idx = sorted.findIndex((n) => dist(n.centrePatient, ref.centrePatient) < ref.diameterMm / 2);
    const hit = idx >= 0 ? sorted[idx] : undefined;
    out.push({
      case: c.name,
      reference: { readers: ref.readers, centrePatient: ref.centrePatient.map((v) => Number(v.toFixed(1))), equivalentDiameterMm: Number(ref.diameterMm.toFixed(1)) },
      found: hit !== undefined,
      probability: hit?.probability,
      rank: idx >= 0 ? idx + 1 : undefined,
      meanDiameterMm: hit?.meanDiameterMm,
      longMm: hit?.longMm,
      shortMm: hit?.shortMm,
      volumeMm3: hit?.volumeMm3,
      type: hit?.type,
      lungRads: hit?.lungRads,
      detectionsAbove: Object.fromEntries([0.1, 0.3, 0.5, 0.7, 0.9].map((t) => [t, r.nodules.filter((n) => n.probability >= t).length])),
      timingsMs: Object.fromEntries(Object.entries(r.timingsMs).map(([k, v]) => [k, Math.round(v)])),
    });
  }
  // The LUNA16 reference of the two real scans, scored by the same code (1 consensus nodule: a sanity figure only).
  const dir = join(EVAL_DIR, `real-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'detections.csv'), detectionsToCsv(dets));
  const scans = cases.map((c) => c.volume.seriesInstanceUID);
  const luna16 = summary(evaluateFroc(dets, lunaCsv('luna16-annotations.csv'), lunaCsv('luna16-annotations-excluded.csv'), { scans }));
  return { rows: out, luna16 };
}

/** Fixed patch centres for golden.json: the real nodule of each case and the two strongest other candidates. */
async function golden(modelPath: string, manifest: ModelManifest, cases: LidcCase[]): Promise<unknown> {
  const extract = await loadExtractPatches();
  const channels = channelsOf(modelPath);
  const stride = channels * 32768;
  const session = await ort.InferenceSession.create(modelPath);
  const items: unknown[] = [];
  for (const c of cases) {
    const ref = clusterNoduleMarks(c.marks).sort((a, b) => b.readers - a.readers)[0];
    const refVoxel = c.marks.filter((m) => m.kind === 'nodule')[0].centreVoxel;
    const cands = findCandidates(c.volume, lungMask(c.volume)).filter((k) => dist(k.patient, ref.centrePatient) > ref.diameterMm);
    const centres: { what: string; voxel: Vec3 }[] = [
      { what: 'real nodule (first reader outline centre)', voxel: refVoxel },
      ...cands.slice(0, 2).map((k, i) => ({ what: `candidate ${i + 1} away from the nodule`, voxel: k.voxel })),
    ];
    // golden.json keeps 3 decimals of each centre: cut the patches at exactly those.
    for (const x of centres) x.voxel = x.voxel.map((v) => Number(v.toFixed(3))) as Vec3;
    const patches = extract(c.volume, centres.map((x) => x.voxel), channels);
    const out = await session.run({ patches: new ort.Tensor('float32', patches, [centres.length, channels, 32, 32, 32]) });
    const probs = out.probability.data as Float32Array;
    centres.forEach((x, i) => {
      const p = patches.subarray(i * stride, (i + 1) * stride); // every channel; centre8 lies in channel 0
      let sum = 0;
      let absSum = 0;
      for (const v of p) {
        sum += v;
        absSum += Math.abs(v);
      }
      items.push({ case: c.name, what: x.what, voxel: x.voxel, tensor: { sum, absSum, centre8: Array.from(p.subarray(16 * 1024 + 16 * 32 + 12, 16 * 1024 + 16 * 32 + 20)) }, probability: probs[i] });
    });
  }
  return { model: { id: manifest.id, version: manifest.version, sha256: manifest.sha256 }, tolerance: { probability: 1e-4, tensorSum: 0.05, tensorValue: 1e-4 }, items };
}

async function main(): Promise<void> {
  const a = args();
  mkdirSync(MODELS_DIR, { recursive: true });
  const cases: LidcCase[] = [];
  for (const name of CASES) cases.push(await loadLidcCase(join(CASES_DIR, name)));

  if (a.stage === 'all' || a.stage === 'dump') {
    mkdirSync(a.trainDir, { recursive: true });
    for (const c of cases)
      for (const seed of a.trainSeeds) {
        const stem = join(a.trainDir, `${c.name}-s${seed}`);
        if (existsSync(`${stem}.json`) && !a.retrain && ((JSON.parse(readFileSync(`${stem}.json`, 'utf8')) as { channels?: number }).channels ?? 1) === a.channels) continue;
        const t = performance.now();
        const d = await dumpCase(c, seed, a.count, 4, TRAIN_MIX, a.extraNegatives, a.channels);
        writeFileSync(`${stem}.bin`, Buffer.from(d.patches.buffer, d.patches.byteOffset, d.patches.byteLength));
        writeFileSync(`${stem}.json`, JSON.stringify({ case: c.name, seed, count: a.count, jitter: 4, candidateRecall: d.candidateRecall, patchSize: 32, channels: a.channels, meta: d.meta }));
        process.stdout.write(`dump ${c.name} seed ${seed}: ${d.meta.length} patches, candidate recall ${(100 * d.candidateRecall).toFixed(0)}%, ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
      }
  }
  const modelA = join(MODELS_DIR, 'A.onnx');
  const modelB = join(MODELS_DIR, 'B.onnx');
  const shipped = join(HERE, 'model.onnx');
  if (a.stage === 'all' || a.stage === 'train') {
    if (a.retrain || !existsSync(modelA)) train([CASES[0]], modelA, a.epochs, a.trainDir, a.trainSeeds.at(-1));
    if (a.retrain || !existsSync(modelB)) train([CASES[1]], modelB, a.epochs, a.trainDir, a.trainSeeds.at(-1));
    if (a.retrain || !existsSync(shipped)) train([...CASES], shipped, a.epochs, a.trainDir);
  }
  // Either fold alone (to run one while the other model still trains); the full eval reuses their saved runs.
  if (a.stage === 'foldA') await runFold('A', modelA, cases[1], a.testSeeds, a.count);
  if (a.stage === 'foldB') await runFold('B', modelB, cases[0], a.testSeeds, a.count);
  if (a.stage === 'golden') {
    const manifest = JSON.parse(readFileSync(join(HERE, 'manifest.json'), 'utf8')) as ModelManifest;
    writeFileSync(join(HERE, 'golden.json'), `${JSON.stringify(await golden(shipped, manifest, cases), null, 1)}\n`);
  }
  if (a.stage === 'kernel') return kernelCheck(a.modelsDir, shipped, cases, a.testSeeds, a.count, a.kernel);
  if (a.stage !== 'all' && a.stage !== 'eval') return;

  const runA = await runFold('A', modelA, cases[1], a.testSeeds, a.count);
  const runB = await runFold('B', modelB, cases[0], a.testSeeds, a.count);
  const folds = { A: score([runA]), B: score([runB]), pooled: score([runA, runB]) };
  const pooledAll = evaluateFroc(
    [...runA.detections, ...runB.detections],
    [...runA.included, ...runB.included],
    [...runA.excluded, ...runB.excluded],
    { scans: [...runA.scans, ...runB.scans] },
  );
  // Operating points from the pooled cross-volume detections: positive = the threshold that keeps ≤ 4 FP per scan, the
  // operating point issue 7 states its target at (sensitivity ≥ 80 % at 4 FP/scan; a second-reader CAD convention);
  // urgent = ≤ 1 FP per scan (a nodule the model is that sure of is worth a reader's attention first).
  const positive = pooledAll.sensitivityAt.find((s) => s.fpRate === 4);
  const urgent = pooledAll.sensitivityAt.find((s) => s.fpRate === 1);
  if (!positive || !urgent || !Number.isFinite(positive.threshold) || !Number.isFinite(urgent.threshold)) throw new Error('no finite operating point on the pooled FROC curve');

  const realRuns = { A: await realCheck('A', modelA, cases), B: await realCheck('B', modelB, cases), shipped: await realCheck('shipped', shipped, cases) };
  const real = Object.fromEntries(Object.entries(realRuns).map(([k, v]) => [k, v.rows]));
  const realLuna16 = Object.fromEntries(Object.entries(realRuns).map(([k, v]) => [k, v.luna16]));

  const bytes = readFileSync(shipped);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const trainInfo = JSON.parse(readFileSync(shipped.replace(/\.onnx$/, '.train.json'), 'utf8')) as Record<string, unknown>;
  const manifest = buildManifest(sha256, positive, urgent);
  writeFileSync(join(HERE, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const timings = [...runA.timings, ...runB.timings];
  const metrics = {
    generatedBy: 'npx tsx models/ct/crossval.ts',
    version: manifest.version,
    trainSeeds: a.trainSeeds,
    testSeeds: a.testSeeds,
    insertedPerScan: a.count,
    operatingPoints: { positive, urgent },
    folds,
    real,
    realLuna16,
    pipelineTimingsMsMean: Object.fromEntries(Object.keys(timings[0] ?? {}).map((k) => [k, Math.round(timings.reduce((s, t) => s + (t[k] ?? 0), 0) / timings.length)])),
    shippedTraining: trainInfo,
    foldTraining: {
      A: JSON.parse(readFileSync(modelA.replace(/\.onnx$/, '.train.json'), 'utf8')),
      B: JSON.parse(readFileSync(modelB.replace(/\.onnx$/, '.train.json'), 'utf8')),
    },
  };
  writeFileSync(join(HERE, 'metrics.json'), `${JSON.stringify(metrics, null, 1)}\n`);
  writeFileSync(join(HERE, 'golden.json'), `${JSON.stringify(await golden(shipped, manifest, cases), null, 1)}\n`);
  const previous = a.previous ? a.previous.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as Metrics & { version?: string }) : undefined;
  writeFileSync(join(HERE, 'CARD.md'), card({ ...metrics, version: manifest.version } as unknown as Metrics, manifest, bytes.length, previous));
  for (const [name, rows] of Object.entries(folds)) {
    process.stdout.write(`\n== ${name} ==\n`);
    for (const r of rows)
      process.stdout.write(
        `${r.stratum.padEnd(28)} n=${String(r.result.nodules).padStart(3)} CPM ${r.result.cpm.toFixed(3)} sens@1 ${(100 * (r.result.sensitivityAt[3].sensitivity)).toFixed(0)}% @4 ${(100 * r.result.sensitivityAt[5].sensitivity).toFixed(0)}% diam MAE ${r.result.diameter.meanAbsErrorMm.toFixed(2)} mm\n`,
      );
  }
  process.stdout.write(`\nreal nodules: ${JSON.stringify(real, null, 1)}\n`);
}

/**
 * Robustness to a sharper reconstruction kernel (kernel.ts; report only, nothing is chosen here): the fold models on
 * the inserts of the given seeds, plain and drawn by the simulated kernel, and the real nodules' probabilities (fold
 * models on the volume they did not train on, and the shipped model) plain and simulated.
 */
async function kernelCheck(modelsDir: string, shipped: string, cases: LidcCase[], seeds: number[], count: number, kernel: KernelSim): Promise<void> {
  const tag = `g${kernel.gain}-s${kernel.sigmaMm}-n${kernel.noiseHu}`;
  const evalDir = (what: string): string => join(REPO, '.cache/ct-eval-kernel', createHash('sha256').update(modelsDir).digest('hex').slice(0, 8), what);
  const line = (label: string, runs: FoldRun[]): string => {
    const r = evaluateFroc(runs.flatMap((x) => x.detections), runs.flatMap((x) => x.included), runs.flatMap((x) => x.excluded), { scans: runs.flatMap((x) => x.scans) });
    const at = (fp: number): number => r.sensitivityAt.find((q) => q.fpRate === fp)?.sensitivity ?? NaN;
    return `${label.padEnd(28)} CPM ${r.cpm.toFixed(3)}  @1 ${(100 * at(1)).toFixed(1)}%  @4 ${(100 * at(4)).toFixed(1)}% (${Math.round(at(4) * r.nodules)} of ${r.nodules})`;
  };
  const folds = async (what: string, k?: KernelSim): Promise<FoldRun[]> => [
    await runFold('A', join(modelsDir, 'A.onnx'), cases[1], seeds, count, evalDir(what), k),
    await runFold('B', join(modelsDir, 'B.onnx'), cases[0], seeds, count, evalDir(what), k),
  ];
  const plain = await folds('plain');
  const sharp = await folds(tag, kernel);
  const drawn = cases.map((c) => ({ ...c, volume: { ...c.volume, voxels: simulateKernel(c.volume, kernel) } }));
  const real = async (model: string, on: LidcCase[], label: string): Promise<string[]> =>
    (await realCheck(`kernel-${label}`, model, on)).rows.map((r) => `${label} ${r.case}: ${r.found ? `p ${(r.probability as number).toFixed(3)}, ${r.meanDiameterMm} mm` : 'not found (p < 0.1)'}`);
  const lines = [
    `kernel ${JSON.stringify(kernel)}, seeds ${seeds.join(',')}, models ${modelsDir}`,
    line('inserts, plain', plain),
    line('inserts, simulated kernel', sharp),
    ...(await real(join(modelsDir, 'A.onnx'), [cases[1]], 'fold A, plain')),
    ...(await real(join(modelsDir, 'A.onnx'), [drawn[1]], 'fold A, simulated kernel')),
    ...(await real(join(modelsDir, 'B.onnx'), [cases[0]], 'fold B, plain')),
    ...(await real(join(modelsDir, 'B.onnx'), [drawn[0]], 'fold B, simulated kernel')),
    ...(await real(shipped, cases, 'shipped, plain')),
    ...(await real(shipped, drawn, 'shipped, simulated kernel')),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function buildManifest(sha256: string, positive: { threshold: number; sensitivity: number }, urgent: { threshold: number; sensitivity: number }): ModelManifest & { description: string } {
  const round = (x: number): number => Number(x.toFixed(4));
  return {
    id: 'ct-lung-nodule',
    version: MODEL_VERSION,
    sha256,
    detector: 'ct',
    file: 'model.onnx',
    routing: { modality: ['CT'], sliceThicknessMmMax: 3 },
    input: specOf(channelsOf(join(HERE, 'model.onnx'))).input,
    preprocess: PATCH_PREPROCESS,
    outputs: SPEC.outputs,
    labels: [{ index: 0, code: { scheme: 'SCT', value: '786838002', meaning: 'Pulmonary nodule' } }],
    operatingPoints: {
      positive: { threshold: round(positive.threshold), sensitivity: round(positive.sensitivity) },
      urgent: { threshold: round(urgent.threshold), sensitivity: round(urgent.sensitivity) },
    },
    card: 'CARD.md',
    description:
      'False-positive reduction of CT lung-nodule candidates: probability that a 32 mm patch (1 mm voxels) centred on a candidate holds a nodule. ' +
      'Operating points are on nodule probability, chosen on pooled cross-volume tests with inserted nodules: positive ≤ 4 false positives per scan (the issue-7 operating point), urgent ≤ 1; ' +
      'sensitivity is per inserted nodule (4–30 mm), not per study; there is no study-level specificity (no nodule-free scans).',
  };
}

/** What patch.ts does, in manifest terms (checked by model.test.ts against patch.ts itself). */
export const PATCH_PREPROCESS: ModelManifest['preprocess'] = { window: { kind: 'fixed', center: -300, width: 1400 }, spacingMm: [1, 1, 1], normalise: { mean: 0, std: 1 } };

type Metrics = {
  trainSeeds: number[];
  testSeeds: number[];
  insertedPerScan: number;
  operatingPoints: { positive: { threshold: number; sensitivity: number }; urgent: { threshold: number; sensitivity: number } };
  folds: Record<'A' | 'B' | 'pooled', { stratum: string; result: Summary }[]>;
  real: Record<string, Record<string, unknown>[]>;
  realLuna16: Record<string, Summary>;
  foldTraining: Record<'A' | 'B', { history: { monitorAuc?: number }[]; patches: number; trainSeconds: number }>;
  pipelineTimingsMsMean: Record<string, number>;
  shippedTraining: { patches: number; positives: number; epochs: number; parameters: number; channels: number[]; trainSeconds: number };
};

/** The headline figures of two releases side by side (pooled cross-volume folds and the real nodules). */
function comparison(m: Metrics, previous: (Metrics & { version?: string })[], version: string): string {
  const pct = (x?: number): string => (x === undefined ? '-' : `${(100 * x).toFixed(0)}%`);
  const row = (label: string, x: Metrics): string => {
    const get = (name: string): Summary | undefined => x.folds.pooled.find((r) => r.stratum === name)?.result;
    const at = (r: Summary | undefined, fp: number): number | undefined => r?.sensitivityAt.find((q) => q.fpRate === fp)?.sensitivity;
    const all = get('all inserted (4–30 mm)');
    const cpm = (name: string): string => get(name)?.cpm.toFixed(3) ?? '-';
    const real = (c: string): string => {
      const r = x.real.shipped?.find((q) => q.case === c);
      return r?.found ? `p = ${(r.probability as number).toFixed(3)}, rank ${r.rank}` : 'not found';
    };
    return `| ${label} | ${all?.cpm.toFixed(3) ?? '-'} | ${pct(at(all, 1))} | ${pct(at(all, 4))} | ${cpm('4–10 mm solid')} / ${pct(at(get('4–10 mm solid'), 4))} | ${cpm('4–10 mm ground-glass')} / ${pct(at(get('4–10 mm ground-glass'), 4))} | ${cpm('juxtavascular (all sizes)')} / ${pct(at(get('juxtavascular (all sizes)'), 4))} | ${x.operatingPoints.positive.threshold.toFixed(4)} | ${real('LIDC-IDRI-0001')} | ${real('LIDC-IDRI-0002')} |`;
  };
  return [
    '| release | pooled CPM | sens @ 1 FP/scan | @ 4 | 4–10 mm solid CPM / @ 4 | 4–10 mm ground-glass CPM / @ 4 | juxtavascular CPM / @ 4 | positive threshold | shipped model: real nodule 0001 | 0002 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...previous.map((p) => row(p.version ?? '1.0.0', p)), // metrics.json has carried its version since 1.1.0
    row(version, m),
  ].join('\n');
}

function card(m: Metrics, manifest: ModelManifest, bytes: number, previous?: (Metrics & { version?: string })[]): string {
  const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
  const ci = (c?: [number, number]): string => (c ? ` (${pct(c[0])}–${pct(c[1])})` : '');
  const table = (rows: { stratum: string; result: Summary }[]): string =>
    [
      '| stratum | nodules | detected (100 most probable marks per scan, p ≥ 0.1) | sens @ 1/8 | @ 1/2 | @ 1 | @ 2 | @ 4 FP/scan | @ 8 | CPM (95% CI) | mean-diameter MAE (bias), mm |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map((r) => {
        const s = r.result.sensitivityAt;
        const at = (x: number): string => {
          const e = s.find((q) => q.fpRate === x);
          return e ? pct(e.sensitivity) : '-';
        };
        return `| ${r.stratum} | ${r.result.nodules} | ${r.result.detected} | ${at(0.125)} | ${at(0.5)} | ${at(1)} | ${at(2)} | ${at(4)}${ci(s.find((q) => q.fpRate === 4)?.ci)} | ${at(8)} | ${r.result.cpm.toFixed(3)}${r.result.cpmCi ? ` (${r.result.cpmCi[0].toFixed(2)}–${r.result.cpmCi[1].toFixed(2)})` : ''} | ${r.result.diameter.n ? `${r.result.diameter.meanAbsErrorMm.toFixed(2)} (${r.result.diameter.meanErrorMm >= 0 ? '+' : ''}${r.result.diameter.meanErrorMm.toFixed(2)})` : '-'} |`;
      }),
    ].join('\n');
  const realRows = Object.entries(m.real)
    .flatMap(([model, rows]) =>
      rows.map((r) => {
        const ref = r.reference as { readers: number; equivalentDiameterMm: number };
        return `| ${model} | ${r.case} | ${ref.readers} readers, ${ref.equivalentDiameterMm} mm | ${r.found ? `yes, p = ${(r.probability as number).toFixed(3)}, rank ${r.rank}` : 'no'} | ${r.meanDiameterMm ?? '-'} | ${r.type ?? '-'} | ${JSON.stringify(r.detectionsAbove)} |`;
      }),
    )
    .join('\n');
  const op = m.operatingPoints;
  return `# ct-lung-nodule ${manifest.version}: CT lung-nodule false-positive reduction

Generated by \`npx tsx models/ct/crossval.ts\` (dump.ts → train.py → cross-volume evaluation with froc.ts); do not edit
by hand. \`model.onnx\`: ${(bytes / 1e6).toFixed(2)} MB, opset 13, dynamic batch, sha256 \`${manifest.sha256}\`.

## What it does
Classifies candidate patches of the radnode CT nodule pipeline (\`src/detectors/ct\`: lung mask → multi-scale
LoG/Hessian candidates → this model → measurement). Input \`patches\` [N,${manifest.input.shape[1]},32,32,32] float32: ${
  manifest.input.shape[1] === 1 ? 'a 32 mm cube around the\ncandidate resampled to 1 mm voxels' : 'per candidate a 32 mm cube resampled to 1 mm voxels and, as a second channel, the same\n32³ grid at 2 mm (a 64 mm cube: where a vessel, bronchus or fissure leads beyond the small cube), both'
} by \`src/detectors/ct/patch.ts\` (window ${JSON.stringify(manifest.preprocess.window)},
normalise ${JSON.stringify(manifest.preprocess.normalise)}); output \`probability\` [N,1], sigmoid inside the graph.
A compact 3D CNN: four 3×3×3 conv + batch-norm + ReLU blocks (${m.shippedTraining.channels.join(', ')} channels, max-pool between),
global average pool, dropout, one linear unit; ${m.shippedTraining.parameters} parameters.

## Data: simulated nodules in two real scans
The shared data holds two LIDC-IDRI scans with one real nodule ≥ 3 mm each (both ≈ 23 mm). There is no honest way to
train or test a 5–10 mm detector on those alone, so the training signal comes from nodules **inserted** into the real
lung parenchyma of these two volumes (\`models/ct/insert.ts\`): equivalent diameters mostly 4–10 mm (15% 10–30 mm);
ellipsoids (axes ±12%) at random orientations with low-order lobulation; solid (−60..+80 HU), ground-glass
(−750..−450 HU) and part-solid (ground glass with a 30–60% solid component) in a 60/25/15 mix (test inserts; the
training inserts over-sample the hard kinds: 50/32/18, 25% 10–30 mm, 35% juxtavascular, \`TRAIN_MIX\` in dump.ts); an erf edge of
σ 0.35–0.7 mm; partial volume along z by integrating each slice over its thickness; the scan's own noise kept (the
nodule replaces the local mean density only); placed in the lung mask away from every real reader mark, with a share
touching the pleura (juxtapleural) and a share abutting vessels (juxtavascular). Negatives are the pipeline's own
candidates on the real anatomy: vessels, airway walls, fissures, pleura, and the readers' non-nodule marks.
Candidates near any real reader nodule mark (≥ 3 mm or < 3 mm) are left out of training: their label is unknown.
Per scan and seed: ${m.insertedPerScan} nodules; training seeds ${m.trainSeeds.join(', ')}; test seeds ${m.testSeeds.join(', ')} (fresh nodules).
The shipped model saw ${m.shippedTraining.patches} patches (${m.shippedTraining.positives} positive, including 4 jittered
copies per inserted nodule), ${m.shippedTraining.epochs} epochs, ${Math.round(m.shippedTraining.trainSeconds)} s on 2 CPU cores, plain binary cross-entropy
(${((100 * m.shippedTraining.positives) / m.shippedTraining.patches).toFixed(0)}% of the patches positive), augmented per sample (\`train.py\` augment): exact flips and 90° turns, and for
3 patches in 4 a trilinear resampling by an arbitrary in-plane rotation, a tilt up to 25° out of the axial plane, an
isotropic scale 0.87–1.15 and a shift up to 1 mm; gain 0.92–1.08, offset ±40 HU and noise on every patch. The
negatives are the same ~270 top-ranked real structures per scan in every seed, plus 200 per seed drawn afresh from
candidate ranks 300–1500 (from 1.3.0): the resampling and those draws are what vary them.

Within-volume sanity monitor (not a test): patch-level AUC on the training volume's held-out last seed after the last
epoch, fold A ${m.foldTraining.A.history.at(-1)?.monitorAuc?.toFixed(3) ?? '-'}, fold B ${m.foldTraining.B.history.at(-1)?.monitorAuc?.toFixed(3) ?? '-'} (fold models train on seeds ${m.trainSeeds.slice(0, -1).join(', ')}).

${
    previous
      ? `## Release history
${[...previous.map((p) => p.version ?? '1.0.0'), manifest.version].map((v) => `- ${v}: ${RELEASES[v] ?? '-'}.`).join('\n')}

Pooled cross-volume figures of each release (same test seeds ${m.testSeeds.join(', ')}, same test inserts, same scoring):

${comparison(m, previous, manifest.version)}

Pipeline changes (same code path for every model; each row above used the pipeline of its day):
${PIPELINE_CHANGES.map((c) => `- ${c}.`).join('\n')}

Tried on development seeds 201–204 and not kept (inserted nodules reported at 4 FP/scan, of 200):
${TRIED.map((c) => `- ${c}.`).join('\n')}

**Selection on the test folds:** the choice to ship ${manifest.version} rather than keep ${previous.map((p) => p.version ?? '1.0.0').join(' or ')} was made by comparing them
on these cross-volume test folds (no setting was tuned on them: each release's settings were fixed before its
one run), so the ${manifest.version} figures are mildly optimistic as an estimate for a fresh set of inserts.

`
      : ''
  }## Cross-volume figures (the only held-out figures there are)
Fold A: trained on inserts in LIDC-IDRI-0001, tested on fresh inserts in LIDC-IDRI-0002 through the full pipeline
(\`detectNodules\`, the code radnode runs); fold B the reverse. Scored the LUNA16 way (\`models/ct/froc.ts\`: hit = within
the nodule's radius; detections on the real LIDC/LUNA16 marks of the scan are neither hits nor false positives; FP per
scan over ${m.testSeeds.length} inserted scans per fold). Diameter error: the pipeline's mean axial diameter (long + short)/2
against the inserted shape's own (long + short)/2 on its central axial section. 95% CIs bootstrap the scans, so with
${m.testSeeds.length}–${2 * m.testSeeds.length} scans they are rough.

### Pooled A + B
${table(m.folds.pooled)}

### Fold A (train 0001 → test 0002)
${table(m.folds.A)}

### Fold B (train 0002 → test 0001)
${table(m.folds.B)}

## Operating points (on nodule probability)
Chosen on the pooled cross-volume test detections above, never on training data:
- positive: p ≥ ${manifest.operatingPoints.positive.threshold} — at most 4 false positives per scan, the operating point issue 7 sets
  its target at; sensitivity ${pct(op.positive.sensitivity)} of inserted nodules (4–30 mm) there;
- urgent: p ≥ ${manifest.operatingPoints.urgent?.threshold} — at most 1 false positive per scan; sensitivity ${pct(op.urgent.sensitivity)}.
There is no study-level specificity: no nodule-free scans exist here. The fold models are more confident on the other
volume's anatomy than the shipped model is on either (it has seen both): thresholds carried over from the folds are
therefore conservative for the shipped model on these two scans, and of unknown fit on other scans. (Release 1.0.0's
first run used 1 FP/scan for positive; it was moved to the issue's 4 FP/scan after the real-nodule check showed that at
p ≥ 0.983 that model reported neither real nodule.)

## Real nodules (sanity check, unmodified scans)
The only real nodules ≥ 3 mm: LIDC-IDRI-0001 (4 readers, LUNA16 consensus 23.4 mm) and LIDC-IDRI-0002 (2 readers, an
"excluded" mark in LUNA16 terms). No training patch was centred within (outline radius + 5 mm) of any reader's mark,
and no nodule was inserted within (radius + 10 mm) of one; a 32 mm training patch centred farther away can still
show part of a 23 mm nodule at its edge. "found" = a detection with p ≥ 0.1 within the reference radius of the
readers' mean centre; "rank" among that scan's detections by probability.

| model | case | reference | found | mean diameter, mm | type | detections with p ≥ 0.1 / 0.3 / 0.5 / 0.7 / 0.9 |
|---|---|---|---|---:|---|---|
${realRows}

Scored with the LUNA16 reference of the two real scans (\`evaluate.ts\` on \`.cache/ct-eval/real-<model>/detections.csv\`
with the shared luna16 CSVs; one consensus nodule, so these are sanity figures, not performance; LUNA16 scores only the
100 most probable marks of a scan, so a nodule ranked below 100 counts as missed):
${Object.entries(m.realLuna16)
  .map(([k, r]) => `- ${k}: consensus nodule ${r.detected ? 'found' : 'missed'}; ${r.falsePositives} scored marks (p ≥ 0.1, at most 100 per scan) off every LUNA16 mark (${(r.falsePositives / r.scans).toFixed(1)} per scan); CPM ${r.cpm.toFixed(3)}; diameter error ${r.diameter.n ? `${r.diameter.meanErrorMm.toFixed(1)} mm` : '-'}`)
  .join('\n')}

## What is NOT known
- **Performance on real unseen nodules.** Every figure above is on simulated nodules in two scans of one scanner
  family (GE LightSpeed, STANDARD kernel, 1.25 and 2.5 mm). The issue's targets (≥ 80% at 4 FP/scan on consensus
  nodules ≥ 4 mm, mean-diameter error ≤ 1.5 mm) are stated for unseen LIDC scans: this card cannot say whether they
  are met there. Simulated nodules are rounder, more homogeneous and better separated from vessels than many real
  ones; real false positives (scars, atelectasis, mucus plugs, calcified granulomas) are under-represented in two scans.
- Calibration: probabilities are not calibrated to real prevalence.
- Other kernels: simulated only (the sharp-kernel entry under "Tried"): inserted nodules hold up under a sharpened
  kernel and +30 HU noise, but the two real nodules' probabilities fall under the positive point when sharpened, so
  real nodules in sharp-kernel scans may be missed. Thin reconstructions: LIDC-IDRI-0002 interpolated to 781 slices of
  0.42 mm gives the same nodule (p 0.722, 20.4 mm) in 19 s and 1.35 GiB peak RSS (a one-off run, not part of this
  script); real thin slices (more noise) untested.
  Contrast, low dose and motion: untested.

## Intended use and limits
Second-reader aid on adult chest CT with slices ≤ 3 mm: it points at candidate nodules and measures them (mean
diameter, volume, Lung-RADS size category, Fleischner size band) for a radiologist who reads the whole scan. Not for
diagnosis, not for paediatric scans, not a replacement for reading. Calcification is not assessed.

## Speed
Mean pipeline stage times on the test scans (2 cores, ms): ${JSON.stringify(m.pipelineTimingsMsMean)}.
`;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
