/**
 * Mammography figures (issue 6), each beside a reference measured in the same run:
 * - time per 4-view exam at full digital resolution: GH133 (3062 × 2394, 12 bit) as R MLO, its transposed copy as
 *   R CC and mirrored copies as L MLO / L CC, one study, through `radnode analyze` (model loaded, warm-up first);
 *   reference: the goal of under 10 s per exam, and dcmtk decoding the original JPEG Lossless GH133 four times
 *   (dcmdjpeg: the decode alone, the floor any pipeline pays);
 * - inference per view, onnxruntime vs torch CPU on the same network (models/mammo/train.py MammoNet) via
 *   /usr/bin/python3;
 * - peak resident memory of this process across the exam runs (process.resourceUsage().maxRSS), beside the
 *   decoded size of the four views as float32 (what one copy of the pixels costs).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { analyze } from '../src/analyze.ts';
import { loadConfig } from '../src/config/load.ts';
import { fromDicom, mirror, transpose, uid, writeMg } from '../src/detectors/mammo/test-support.ts';
import { REPO_ROOT, sharedFile } from '../test/helpers/paths.ts';
import type { BenchRow } from './row.ts';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2 : NaN;
};

function torchInferMs(threads: number): number | null {
  const script = `
import sys, time, json, torch
sys.path.insert(0, ${JSON.stringify(resolve(REPO_ROOT, 'models/mammo'))})
import train
torch.set_num_threads(${threads})
m = train.Exported(train.MammoNet(), 0.0, 1.0).eval()
x = torch.zeros(1, 1, train.SIZE, train.SIZE)
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

function dcmtkDecodeMs(file: string, times: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'rn-bench-mg-dcmtk-'));
  const t = performance.now();
  for (let i = 0; i < times; i++) {
    const r = spawnSync('dcmdjpeg', [file, join(dir, `${i}.dcm`)], { encoding: 'utf8' });
    if (r.status !== 0) return NaN;
  }
  return performance.now() - t;
}

export async function benchMammo(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const gh133 = sharedFile('dicom/fo-dicom/GH133.dcm');
  const gh = await fromDicom(gh133);
  const makeExam = () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-bench-mg-'));
    const studyUID = uid();
    return [
      writeMg(dir, gh, { studyUID, laterality: 'R', view: 'MLO', orientation: ['P', 'FL'] }).path,
      writeMg(dir, transpose(gh), { studyUID, laterality: 'R', view: 'CC', orientation: ['FL', 'P'] }).path,
      writeMg(dir, mirror(gh), { studyUID, laterality: 'L', view: 'MLO', orientation: ['A', 'FR'] }).path,
      writeMg(dir, transpose(mirror(gh)), { studyUID, laterality: 'L', view: 'CC', orientation: ['FR', 'A'] }).path,
    ];
  };
  const config = loadConfig({ env: {} });
  await analyze(makeExam(), config, { out: mkdtempSync(join(tmpdir(), 'rn-bench-mg-out-')) });
  const walls: number[] = [];
  const stages: Record<string, number[]> = {};
  for (let i = 0; i < 3; i++) {
    const files = makeExam();
    const t = performance.now();
    const s = await analyze(files, config, { out: mkdtempSync(join(tmpdir(), 'rn-bench-mg-out-')) });
    walls.push(performance.now() - t);
    const r = s.results[0];
    if (!r || r.detector !== 'mammo') throw new Error(`bench mammo: the exam was not read by the mammo detector (${JSON.stringify(s.notProcessed)})`);
    for (const [k, v] of Object.entries(r.timingsMs)) (stages[k] ??= []).push(v);
  }
  const exam = median(walls);
  rows.push({ name: 'mammo 4-view exam wall (analyze)', radnode: exam, reference: 10_000, unit: 'ms', ratio: exam / 10_000, note: `GH133 ${gh.rows}×${gh.columns} + 3 copies, median of 3; reference: goal < 10 s` });
  for (const k of ['decode', 'preprocess', 'infer', 'postprocess', 'write']) {
    if (stages[k]) rows.push({ name: `mammo exam ${k}`, radnode: median(stages[k]), reference: NaN, unit: 'ms', ratio: NaN, note: '4 views, summed' });
  }
  const dcmtk = dcmtkDecodeMs(gh133, 4);
  rows.push({ name: 'mammo exam decode vs dcmtk', radnode: median(stages.decode ?? []), reference: dcmtk, unit: 'ms', ratio: median(stages.decode ?? []) / dcmtk, note: 'radnode decodes uncompressed copies; dcmtk dcmdjpeg decodes the JPEG Lossless original ×4' });
  rows.push({ name: 'mammo exam wall vs dcmtk decode', radnode: exam, reference: dcmtk, unit: 'ms', ratio: exam / dcmtk, note: 'whole analyze vs decode alone' });
  const threads = Math.max(1, Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()) || 1);
  const torchMs = torchInferMs(threads);
  const inferPerView = median(stages.infer ?? []) / 4;
  rows.push({ name: 'mammo infer per view onnxruntime vs torch', radnode: inferPerView, reference: torchMs ?? NaN, unit: 'ms', ratio: torchMs ? inferPerView / torchMs : NaN, note: torchMs ? 'torch CPU, same network, batch 1, 256²' : 'torch not installed for /usr/bin/python3' });
  const peakMb = process.resourceUsage().maxRSS / 1024;
  const pixelsMb = (4 * gh.rows * gh.columns * 4) / 1024 / 1024;
  rows.push({ name: 'mammo peak RSS (bench process)', radnode: peakMb, reference: pixelsMb, unit: 'MiB', ratio: peakMb / pixelsMb, note: 'reference: the 4 views as float32; RSS includes Node, onnxruntime and the worker' });
  return rows;
}
