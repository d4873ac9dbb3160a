/**
 * `radnode analyze PATH... --out DIR` (DESIGN §5): the daemon's stages on local files, with no HTTP. Files are
 * ingested into a temporary store by the same durable ingest as STOW, each study is completed at once, routed
 * and planned by the workflow engine, run by the same detectors, written by the same result writers and
 * delivered by the folder delivery into DIR. There is no second code path for detectors.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { RadnodeConfig, RoutingRule } from './config/types.ts';
import type { Detector } from './detectors/detector.ts';
import { startBuiltinDetectors } from './detectors/index.ts';
import { asRadnodeError, RadnodeError } from './errors.ts';
import { ingestFile } from './ingest/ingest-instance.ts';
import { createLogger, type Logger } from './log.ts';
import type { Code, Finding, SkippedSeries } from './results/findings.ts';
import { writeResultObjects } from './results/write.ts';
import { SqliteStore } from './store/store.ts';
import { WorkflowEngine } from './workflow/engine.ts';
import { NOT_PROCESSED } from './workflow/reasons.ts';
import { loadDetectors } from './workflow/registry.ts';

export type AnalyzeResult = {
  studyInstanceUID: string;
  detector: string;
  modelVersion: string;
  modelSha256: string;
  state: string;
  studyScore: number | null;
  priority: string | null;
  findings: Finding[];
  outputs: string[];
  skipped: SkippedSeries[];
  /** Why the analysed series was chosen, for detectors that choose among several (CT). */
  seriesChoice?: string;
  timingsMs: Record<string, number>;
  error?: { code: string; detail: string };
};

export type AnalyzeSummary = {
  results: AnalyzeResult[];
  /** Series no detector took, with the coded reason (DESIGN §5). */
  notProcessed: { studyInstanceUID: string; seriesInstanceUID: string; modality: string | null; reason: Code; detail: string }[];
  /** Files that could not be ingested (not DICOM, unreadable). */
  notIngested: { path: string; code: string; detail: string }[];
  problems: { source: string; code: string; detail: string }[];
};

export type AnalyzeOptions = {
  out: string;
  /** Run only this detector: its rules from routing.rules, else the model's routing hints. */
  detector?: string;
  /** Extra detectors (tests); the built-ins come from inference.modelsDir. */
  extraDetectors?: Detector[];
  log?: Logger;
  onProgress?: (p: { phase: 'ingest' | 'run'; done: number; total: number }) => void;
};

function listInputs(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
    else if (st.isFile()) out.push(p);
  };
  for (const p of paths) {
    try {
      walk(resolve(p));
    } catch (err) {
      throw new RadnodeError('RN_USAGE', `cannot read ${p}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}

const ALL_REASONS: Code[] = Object.values(NOT_PROCESSED);

export async function analyze(paths: string[], config: RadnodeConfig, opts: AnalyzeOptions): Promise<AnalyzeSummary> {
  const log = opts.log ?? createLogger('silent', { service: 'radnode-analyze' });
  const files = listInputs(paths);
  const work = mkdtempSync(join(tmpdir(), 'radnode-analyze-'));
  const out = resolve(opts.out);
  mkdirSync(out, { recursive: true });
  // The daemon's config with the offline differences only: a private store, results to DIR, nothing retried
  // (a failure is reported, not re-run minutes later), no PACS, no poller.
  const cfg: RadnodeConfig = {
    ...config,
    data: { dir: work, minFreeMb: 0, purgeAfterHours: 0 },
    pacs: null,
    delivery: { ...config.delivery, mode: 'folder', folder: out },
    poll: { ...config.poll, enabled: false },
    workflow: { ...config.workflow, maxAttempts: 1, quietSeconds: 86_400 },
  };
  const builtin = await startBuiltinDetectors(cfg.inference, log);
  const store = SqliteStore.open(join(work, 'radnode.sqlite'));
  try {
    const loaded = await loadDetectors([...builtin.detectors, ...(opts.extraDetectors ?? [])], cfg.detectors.modules);
    const problems = [...builtin.problems, ...loaded.problems];
    let detectors = loaded.detectors;
    if (opts.detector) {
      const only = detectors.get(opts.detector);
      if (!only) throw new RadnodeError('RN_USAGE', `--detector ${opts.detector}: no such detector (loaded: ${[...detectors.keys()].join(', ') || 'none'}${problems.length ? `; refused: ${problems.map((p) => p.detail).join(' | ')}` : ''})`);
      detectors = new Map([[opts.detector, only]]);
      const rules: RoutingRule[] = cfg.routing.rules.filter((r) => r.detector === opts.detector);
      cfg.routing = { rules: rules.length ? rules : [{ detector: opts.detector, match: only.manifest.routing ?? {} }] };
    }
    const engine = new WorkflowEngine({ config: cfg, store, detectors, writeResults: writeResultObjects, log });

    const notIngested: AnalyzeSummary['notIngested'] = [];
    const studies = new Set<string>();
    mkdirSync(join(work, 'tmp'), { recursive: true });
    for (const [i, path] of files.entries()) {
      // ingestFile renames its temp file into the store: give it a copy, never the user's file.
      const tempPath = join(work, 'tmp', `${randomUUID()}.part`);
      copyFileSync(path, tempPath);
      try {
        const r = await ingestFile({ store, dataDir: work, minFreeMb: 0, node: cfg.node, log }, { tempPath }, { source: 'import' });
        if (!r.isOwn) studies.add(r.studyInstanceUID);
      } catch (err) {
        const e = asRadnodeError(err);
        notIngested.push({ path, code: e.code, detail: e.message });
        rmSync(tempPath, { force: true });
      }
      opts.onProgress?.({ phase: 'ingest', done: i + 1, total: files.length });
    }

    // Each study is complete now: there is nothing more to wait for on a disk.
    for (const s of studies) await engine.completeNow(s, 'analyze');
    const jobs = async () => (await Promise.all([...studies].map((s) => store.listJobs({ study: s })))).flat();
    const total = (await jobs()).length;
    for (;;) {
      await engine.tick();
      const list = await jobs();
      const done = list.filter((j) => j.state === 'delivered' || j.state === 'failed' || j.state === 'cancelled').length;
      opts.onProgress?.({ phase: 'run', done, total });
      if (done === list.length) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await engine.stop();

    const results: AnalyzeResult[] = [];
    for (const j of await jobs()) {
      const detector = detectors.get(j.detector);
      const summary = j.result_json ? (JSON.parse(j.result_json) as { findings: Finding[]; skipped: SkippedSeries[]; seriesChoice?: string; timingsMs?: Record<string, number> }) : null;
      const outputs = (await store.listOutputs(j.id)).map((o) => join(out, o.study_uid, o.series_uid, `${o.sop_instance_uid}.dcm`));
      results.push({
        studyInstanceUID: j.study_uid,
        detector: j.detector,
        modelVersion: detector?.manifest.version ?? '',
        modelSha256: detector?.manifest.modelSha256 ?? '',
        state: j.state,
        studyScore: j.study_score,
        priority: j.priority,
        findings: summary?.findings ?? [],
        outputs,
        skipped: summary?.skipped ?? [],
        ...(summary?.seriesChoice ? { seriesChoice: summary.seriesChoice } : {}),
        timingsMs: summary?.timingsMs ?? {},
        ...(j.reason_code ? { error: { code: j.reason_code, detail: j.reason_detail ?? '' } } : {}),
      });
    }
    const notProcessed: AnalyzeSummary['notProcessed'] = [];
    for (const s of studies)
      for (const row of await store.listSeries(s)) {
        if (row.route_detector || !row.route_reason_code) continue;
        const reason = ALL_REASONS.find((c) => c.value === row.route_reason_code) ?? { scheme: '99RADNODE', value: row.route_reason_code, meaning: row.route_reason_code };
        notProcessed.push({ studyInstanceUID: s, seriesInstanceUID: row.series_uid, modality: row.modality, reason, detail: row.route_reason_detail ?? '' });
      }
    const summary: AnalyzeSummary = { results, notProcessed, notIngested, problems };
    writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    return summary;
  } finally {
    store.close();
    await builtin.runtime.terminate();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The printed table: one row per (study, detector) and per series not processed, paths relative to DIR. */
export function formatSummary(s: AnalyzeSummary, out: string): string {
  const rows: string[][] = [['study', 'detector', 'priority', 'score', 'findings', 'ms (decode/pre/infer/write)', 'outputs']];
  const short = (uid: string) => (uid.length > 24 ? '…' + uid.slice(-23) : uid);
  for (const r of s.results) {
    const t = r.timingsMs;
    const ms = ['decode', 'preprocess', 'infer', 'write'].map((k) => (t[k] === undefined ? '-' : String(Math.round(t[k])))).join('/');
    rows.push([short(r.studyInstanceUID), r.detector, r.error ? `failed ${r.error.code}` : (r.priority ?? ''), r.studyScore === null ? '' : r.studyScore.toFixed(3), String(r.findings.length), ms, r.outputs.map((o) => relative(out, o)).length + ' files']);
  }
  for (const n of s.notProcessed) rows.push([short(n.studyInstanceUID), '-', `not processed ${n.reason.value}`, '', '', '', n.detail]);
  for (const n of s.notIngested) rows.push([n.path, '-', `not ingested ${n.code}`, '', '', '', n.detail]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  for (const p of s.problems) lines.push(`refused: ${p.code} ${p.detail}`);
  return lines.join('\n');
}
