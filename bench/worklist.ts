/**
 * Worklist with 10,000 studies in the store (issue 10): time to first screen of /worklist in Chromium (navigation
 * start to the first row in the DOM) and GET /api/worklist's p95 per page, beside the same list query run directly
 * on SQLite. Goals: first screen under 1 s, API p95 under 50 ms. The studies are synthetic rows written straight
 * into a temp store (no DICOM files): this measures the worklist, not ingest.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { chromium } from 'playwright-core';
import { loadConfig } from '../src/config/load.ts';
import { startNode } from '../src/serve.ts';
import { SqliteStore } from '../src/store/store.ts';
import { LIST_SQL, whereOf } from '../src/worklist/model.ts';
import { parseWorklistQuery } from '../src/worklist/query.ts';
import type { BenchRow } from './row.ts';

export const WORKLIST_STUDIES = 10_000;
const REQUESTS = 300;

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))];

/** Synthetic studies, one CR series and one delivered job each, with the priority mix of a screening list. */
function fillStore(file: string, n: number): void {
  const store = SqliteStore.open(file);
  const db = store.db;
  const now = Date.now();
  const study = db.prepare(`INSERT INTO studies (study_uid, patient_id, patient_name, accession_number, study_date, state, generation, first_received_at, last_received_at, completed_at)
                            VALUES (?, ?, ?, ?, '20261124', 'complete', 1, ?, ?, ?)`);
  const series = db.prepare(`INSERT INTO series (series_uid, study_uid, modality, is_own, route_detector, first_received_at, last_received_at) VALUES (?, ?, 'CR', 0, 'cxr', ?, ?)`);
  const job = db.prepare(`INSERT INTO jobs (study_uid, detector, input_key, inputs_json, state, next_attempt_at, result_json, study_score, priority, created_at, updated_at)
                          VALUES (?, 'cxr', ?, '{"series":[]}', ?, ?, ?, ?, ?, ?, ?)`);
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const uid = `1.2.826.0.1.3680043.10.1496.55.${i}`;
      const at = now - (n - i) * 60_000;
      study.run(uid, `P${i}`, `Test^Patient${i}`, `ACC${i}`, at, at, at);
      series.run(`${uid}.1`, uid, at, at);
      const r = i % 100;
      const priority = r < 2 ? 'urgent' : r < 12 ? 'positive' : 'negative';
      const failed = r === 99;
      const score = priority === 'negative' ? 0.1 : 0.9;
      const findings = priority === 'negative' ? [] : [{ trackingUid: '1.2', trackingId: 'f', concept: { scheme: 'SCT', value: '1', meaning: 'Opacity' }, probability: score, site: { scheme: 'SCT', value: '2', meaning: 'Right lower zone' } }];
      job.run(uid, `k${i}`, failed ? 'failed' : 'delivered', at, JSON.stringify({ studyScore: score, findings }), score, priority, at, at + 30_000);
    }
  })();
  store.close();
}

export async function benchWorklist(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'rn-bench-wl-'));
  const dataDir = join(dir, 'data');
  const dbFile = join(dataDir, 'radnode.sqlite');
  fillStore(dbFile, WORKLIST_STUDIES);
  const config = loadConfig({ env: {}, overrides: { server: { port: 0 }, data: { dir: dataDir, minFreeMb: 0 }, logging: { level: 'silent' }, routing: { rules: [] } } });
  const startedAt = performance.now();
  // The first start builds every worklist row (migration 2's one-time cost on an existing store).
  const node = await startNode(config);
  const startMs = performance.now() - startedAt;
  const url = `http://127.0.0.1:${node.port}`;
  try {
    const queries = ['', 'priority=urgent,positive', 'modality=CR&review=new', 'tab=second', 'detector=cxr&from=2020-01-01'];
    const pageOf = (i: number) => `limit=50&offset=${((i * 37) % 200) * 50}`;
    const api: number[] = [];
    for (let i = 0; i < 20; i++) await (await fetch(`${url}/api/worklist?${pageOf(i)}`)).arrayBuffer(); // warm-up
    for (let i = 0; i < REQUESTS; i++) {
      const qs = [queries[i % queries.length], pageOf(i)].filter(Boolean).join('&');
      const t0 = performance.now();
      const r = await fetch(`${url}/api/worklist?${qs}`);
      await r.arrayBuffer();
      api.push(performance.now() - t0);
    }
    // The reference: the same count and page query straight on SQLite, in this process.
    const db = new Database(dbFile, { readonly: true });
    const direct: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const q = parseWorklistQuery(Object.fromEntries(new URLSearchParams([queries[i % queries.length], pageOf(i)].filter(Boolean).join('&'))));
      const { sql, args } = whereOf(q);
      const t0 = performance.now();
      db.prepare(`SELECT COUNT(*) AS n FROM worklist w ${sql}`).get(...args);
      db.prepare(LIST_SQL(sql)).all(...args, q.limit, q.offset);
      direct.push(performance.now() - t0);
    }
    db.close();

    const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'rn-bench-chromium-')), {
      executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1600, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const firstScreen: number[] = [];
    try {
      const page = ctx.pages()[0] ?? (await ctx.newPage());
      for (let i = 0; i < 5; i++) {
        await page.goto(`${url}/worklist`, { waitUntil: 'commit' });
        // performance.now() counts from this navigation's start, so this is navigation to first row, in the page's clock.
        const h = await page.waitForFunction(() => {
          const g = globalThis as unknown as { document: { querySelector(s: string): unknown }; performance: { now(): number } };
          return g.document.querySelector('#rows tr') ? g.performance.now() : 0;
        }, null, { polling: 'raf', timeout: 30_000 });
        firstScreen.push(Number(await h.jsonValue()));
      }
    } finally {
      await ctx.close();
    }
    const median = [...firstScreen].sort((a, b) => a - b)[2];
    return [
      { name: `first screen of /worklist, ${WORKLIST_STUDIES} studies (median of 5)`, radnode: median, reference: 1000, unit: 'ms', ratio: median / 1000, note: 'reference = the 1 s goal; Chromium, navigation start to first row' },
      { name: `GET /api/worklist p95, 50 rows/page (${REQUESTS} requests)`, radnode: p95(api), reference: p95(direct), unit: 'ms', ratio: p95(api) / p95(direct), note: 'reference = same count + page query on SQLite directly; goal < 50 ms' },
      { name: `start-up with ${WORKLIST_STUDIES} studies, first worklist build`, radnode: startMs, reference: 0, unit: 'ms', ratio: NaN, note: 'one-time, after migration 2' },
    ];
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
