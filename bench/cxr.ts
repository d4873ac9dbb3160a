/**
 * Chest radiograph figures (issue 5), each beside a reference measured in the same run:
 * - per radiograph, decode / preprocess / infer / write and the whole run, median and p95 over the RSNA films,
 *   measured through `radnode analyze` (the daemon's stages; model loaded once, process start excluded);
 *   reference: the goal of under 1 s per radiograph;
 * - inference time against the model's FLOP count at the machine's attainable peak, the peak measured here with a
 *   2048² float32 MatMul in onnxruntime (same library, same threads: the best this CPU does on dense work);
 * - onnxruntime vs torch CPU inference of the same architecture (models/cxr/train.py's CxrNet, random weights:
 *   time does not depend on them) via /usr/bin/python3, when torch is installed;
 * - STOW into radnode → results confirmed in a real Orthanc (median, p95), whole-study sender; reference: 3 s goal.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { stringify, parse } from 'yaml';
import { analyze } from '../src/analyze.ts';
import { loadConfig } from '../src/config/load.ts';
import { matmulModel } from '../src/inference/test-support/onnx-writer.ts';
import { makeInstance, newUid, startOrthanc, waitFor } from '../test/helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from '../test/helpers/paths.ts';
import { jobsOf, startRadnode } from '../test/helpers/radnode.ts';
import type { BenchRow } from './row.ts';
import { stowFiles } from './stow-client.ts';

const median = (xs: number[]) => quantile(xs, 0.5);
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const i = (s.length - 1) * q;
  return s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i));
}

const RSNA = () => readdirSync(resolve(REPO_ROOT, '../shared/data/cxr/dicom/rsna')).filter((f) => f.endsWith('.dcm')).map((f) => sharedFile(`cxr/dicom/rsna/${f}`));

/** Attainable float32 GFLOP/s in onnxruntime on this machine: a 2048² MatMul (2·n³ FLOP), best of 5. */
async function measuredPeakGflops(): Promise<number> {
  const n = 2048;
  const s = await ort.InferenceSession.create(matmulModel(n), { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  const a = new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]);
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    await s.run({ a, b: a });
    if (i > 0) best = Math.min(best, performance.now() - t);
  }
  await s.release();
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

/** torch CPU time of the same architecture, batch 1, 224², median of 30 after warm-up; null without torch. */
function torchInferMs(): number | null {
  const script = `
import sys, time, json, torch
sys.path.insert(0, ${JSON.stringify(resolve(REPO_ROOT, 'models/cxr'))})
import train
torch.set_num_threads(${Math.max(1, (coreCount()))})
m = train.Exported(train.CxrNet(0.5, 0.25), 1.0).eval()
x = torch.zeros(1, 1, 224, 224)
ts = []
with torch.no_grad():
    for i in range(40):
        t = time.perf_counter(); m(x); ts.append((time.perf_counter() - t) * 1000)
ts = sorted(ts[10:])
print(json.dumps(ts[len(ts) // 2]))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return null;
  return Number(r.stdout.trim().split('\n').pop());
}
function coreCount(): number {
  return Math.max(1, Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()) || 1);
}

async function stowToConfirmed(files: string[]): Promise<number[]> {
  const push = { username: 'orthanc-push', password: 'push-secret-123' };
  const op = { username: 'op', password: 'op-secret-456' };
  const basic = (u: { username: string; password: string }) => 'Basic ' + Buffer.from(`${u.username}:${u.password}`).toString('base64');
  const rn = await startRadnode(
    {
      server: { host: '127.0.0.1', users: [{ ...push, roles: ['ingest'] }, { ...op, roles: ['reader', 'operator'] }] },
      workflow: { quietSeconds: 60, tickMs: 50, wholeStudySenders: [push.username] },
      delivery: { mode: 'pacs', confirmTimeoutMs: 10_000 },
      logging: { level: 'warn' },
    },
    { start: false, authorization: basic(op) },
  );
  const orthanc = await startOrthanc({ stableAgeSec: 60 });
  try {
    const cfg = parse(readFileSync(rn.configPath, 'utf8'));
    cfg.pacs = { kind: 'orthanc', url: orthanc.dicomWebUrl };
    writeFileSync(rn.configPath, stringify(cfg));
    await rn.start();
    const dir = mkdtempSync(join(tmpdir(), 'rn-bench-cxr-'));
    const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    const times: number[] = [];
    for (const [i, f] of files.entries()) {
      const studyUID = newUid();
      // The source study is in the PACS first (delivery checks it is), then the whole study is STOWed to radnode.
      const inst = await makeInstance(f, dir, { studyUID, patientId: `RN-BENCH-${i}`, studyDate: today, instanceNumber: 1 });
      await orthanc.upload(inst.path);
      const t0 = performance.now();
      await stowFiles(`${rn.url}/dicom-web/studies`, [inst.path], { auth: basic(push) });
      await waitFor('delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered' || j.state === 'failed'), 60_000, 20);
      times.push(performance.now() - t0);
    }
    return times;
  } finally {
    await rn.stop();
    await orthanc.stop();
  }
}

export async function benchCxr(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const files = RSNA();
  const config = loadConfig({ env: {} });
  // Warm-up run (JIT, codec WASM), then the measured one: model load and process start are not per radiograph.
  await analyze(files.slice(0, 2), config, { out: mkdtempSync(join(tmpdir(), 'rn-bench-cxr-')) });
  const t = performance.now();
  const summary = await analyze(files, config, { out: mkdtempSync(join(tmpdir(), 'rn-bench-cxr-')) });
  const wall = performance.now() - t;
  const stage = (k: string) => summary.results.map((r) => r.timingsMs[k] ?? NaN);
  const n = `${summary.results.length} RSNA films`;
  for (const k of ['decode', 'preprocess', 'infer', 'postprocess', 'write']) {
    rows.push({ name: `cxr ${k} median`, radnode: median(stage(k)), reference: NaN, unit: 'ms', ratio: NaN, note: `${n}, via radnode analyze` });
    rows.push({ name: `cxr ${k} p95`, radnode: quantile(stage(k), 0.95), reference: NaN, unit: 'ms', ratio: NaN, note: n });
  }
  const perFilm = summary.results.map((r) => ['decode', 'preprocess', 'infer', 'postprocess', 'write'].reduce((a, k) => a + (r.timingsMs[k] ?? 0), 0));
  rows.push({ name: 'cxr analyze per radiograph (stages) p95', radnode: quantile(perFilm, 0.95), reference: 1000, unit: 'ms', ratio: quantile(perFilm, 0.95) / 1000, note: 'reference: goal < 1 s' });
  rows.push({ name: 'cxr analyze wall per radiograph', radnode: wall / files.length, reference: 1000, unit: 'ms', ratio: wall / files.length / 1000, note: 'ingest+route+run+write+folder delivery, model loaded' });

  const metricsPath = join(REPO_ROOT, 'models/cxr/metrics.json');
  const flops = existsSync(metricsPath) ? Number((JSON.parse(readFileSync(metricsPath, 'utf8')) as { flops?: number }).flops) : NaN;
  const peak = await measuredPeakGflops();
  const inferMs = median(stage('infer'));
  const ideal = (flops / (peak * 1e9)) * 1000;
  rows.push({ name: 'cxr infer vs FLOP-bound time', radnode: inferMs, reference: ideal, unit: 'ms', ratio: inferMs / ideal, note: `${(flops / 1e9).toFixed(3)} GFLOP (models/cxr/metrics.json) at ${peak.toFixed(1)} GFLOP/s measured (onnxruntime 2048² MatMul)` });
  const torchMs = torchInferMs();
  rows.push({ name: 'cxr infer onnxruntime vs torch', radnode: inferMs, reference: torchMs ?? NaN, unit: 'ms', ratio: torchMs ? inferMs / torchMs : NaN, note: torchMs ? 'torch CPU, same architecture, batch 1, /usr/bin/python3' : 'torch not installed for /usr/bin/python3' });

  const e2e = await stowToConfirmed(files);
  rows.push({ name: 'STOW→confirmed in Orthanc median', radnode: median(e2e), reference: 3000, unit: 'ms', ratio: median(e2e) / 3000, note: `${files.length} one-film studies, whole-study sender` });
  rows.push({ name: 'STOW→confirmed in Orthanc p95', radnode: quantile(e2e, 0.95), reference: 3000, unit: 'ms', ratio: quantile(e2e, 0.95) / 3000, note: 'reference: goal p95 < 3 s' });
  return rows;
}
