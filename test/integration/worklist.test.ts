/**
 * Issue 10, "How it is checked": a real Orthanc pushes two chest radiographs to a real radnode (the shipped Lua,
 * authenticated STOW); the test-only flag detector calls one urgent. Headless Debian Chromium (playwright-core,
 * ../shared/notes/viewer.md) shows the worklist: the urgent study first with its key finding, arriving by
 * server-sent events without a reload; Open goes to the viewer URL; "disagree" moves the study to the second-reader
 * tab and writes an audit row; a late series supersedes a result; a hostile Patient Name renders as text; auth is
 * enforced; the webhook receiver (fails twice, then 2xx) gets exactly one signed delivery per urgent result.
 * Screenshots go to .cache/artifacts/worklist/.
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { makeInstance, newUid, startOrthanc, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from '../helpers/paths.ts';
import { jobsOf, startRadnode, type RadnodeHandle } from '../helpers/radnode.ts';

const CR = ['cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm', 'cxr/dicom/rsna/00322d4d-1c29-4943-afc9-b6754be640eb.dcm'].map(sharedFile);
const FLAG_DETECTOR = resolve(REPO_ROOT, 'test/fixtures/flag-detector.ts');
const SHIPPED_LUA = readFileSync(resolve(REPO_ROOT, 'deploy/orthanc/radnode-forward.lua'), 'utf8');
const ARTIFACTS = resolve(REPO_ROOT, '.cache/artifacts/worklist');
const ORTHANC_USER = { username: 'orthanc-push', password: 'push-secret-123' };
const READER = { username: 'rita', password: 'reader-secret-789' };
const OPERATOR = { username: 'op', password: 'op-secret-456' };
const WEBHOOK_SECRET = 'webhook-secret-0123456789abcdef';
// Markup and script in a Patient Name (PN allows these characters): must show as text and never run.
const HOSTILE_NAME = '<img src=x onerror=window.__pwned=1>^<script>window.__pwned=2</script>';
const basic = (u: { username: string; password: string }) => 'Basic ' + Buffer.from(`${u.username}:${u.password}`).toString('base64');
const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');

function dcmodify(path: string, set: [string, string][]): Promise<void> {
  const args = ['-nb', ...set.flatMap(([tag, v]) => ['-i', `(${tag})=${v}`]), path];
  return new Promise((res, rej) => {
    const p = spawn('dcmodify', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`dcmodify failed (${code}): ${err}`))));
  });
}

async function upload(orthanc: OrthancHandle, file: string, e: { studyUID: string; seriesUID: string; patientId: string; patientName: string; seriesDescription?: string; accession: string; n: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'rn-wl-'));
  const inst = await makeInstance(file, dir, { studyUID: e.studyUID, seriesUID: e.seriesUID, patientId: e.patientId, studyDate: today, instanceNumber: e.n });
  await dcmodify(inst.path, [['0010,0010', e.patientName], ['0008,0050', e.accession], ['0008,103e', e.seriesDescription ?? 'PA']]);
  await orthanc.upload(inst.path);
}

/** The little of the DOM the page.evaluate callbacks use (the Node program has no DOM library; see tsconfig.json). */
type El = { getAttribute(n: string): string | null; querySelector(s: string): El | null; complete?: boolean; naturalWidth?: number };
type Win = { document: { querySelector(s: string): El | null; querySelectorAll(s: string): ArrayLike<El> & Iterable<El> }; __noReload?: number; __pwned?: number };

type Hook = { status: number; body: string; signature: string; id: string };
type ApiRow = { study: string; priority: string; keyFinding: string | null; patientName: string | null; results: { jobId: number }[]; review: { state: string; decision: string | null } };

describe('triage worklist in a browser, against a real Orthanc', () => {
  let rn: RadnodeHandle;
  let orthanc: OrthancHandle;
  let ctx: BrowserContext;
  let page: Page;
  let hookServer: Server;
  const hooks: Hook[] = [];
  const flagged = { study: newUid(), series: newUid() };
  const plain = { study: newUid(), series: newUid() };

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // A receiver that answers 503 to the first two requests, then 204.
    hookServer = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const status = hooks.length < 2 ? 503 : 204;
        hooks.push({ status, body, signature: String(req.headers['x-radnode-signature']), id: String(req.headers['x-radnode-delivery']) });
        res.statusCode = status;
        res.end();
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()));
    const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/alerts`;

    rn = await startRadnode(
      {
        server: { host: '127.0.0.1', users: [{ ...ORTHANC_USER, roles: ['ingest'] }, { ...READER, roles: ['reader'] }, { ...OPERATOR, roles: ['reader', 'operator'] }] },
        workflow: { quietSeconds: 2, tickMs: 200, wholeStudySenders: [ORTHANC_USER.username], backoffBaseMs: 200, backoffMaxMs: 1000 },
        routing: { rules: [{ detector: 'test-flag', match: { modality: ['CR', 'DX'] } }] },
        detectors: { modules: [FLAG_DETECTOR] },
        delivery: { mode: 'pacs', confirmTimeoutMs: 10_000 },
        // A site viewer (the built-in one is off here): the link the page offers, whatever answers it.
        worklist: { viewerUrlPattern: 'http://{host}:8081/viewer?StudyInstanceUIDs={study}', webhook: { url: hookUrl, secret: 'env:RN_TEST_WEBHOOK_SECRET', backoffBaseMs: 200, backoffMaxMs: 400, maxAttempts: 5 } },
      },
      { start: false, authorization: basic(OPERATOR), env: { RN_TEST_WEBHOOK_SECRET: WEBHOOK_SECRET } },
    );
    orthanc = await startOrthanc({ stableAgeSec: 1, lua: SHIPPED_LUA, servers: { radnode: [`${rn.url}/dicom-web/`, ORTHANC_USER.username, ORTHANC_USER.password] } });
    const cfg = parse(readFileSync(rn.configPath, 'utf8'));
    cfg.pacs = { kind: 'orthanc', url: orthanc.dicomWebUrl };
    writeFileSync(rn.configPath, stringify(cfg));
    await rn.start();

    ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'rn-chromium-')), {
      executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1600, height: 900 },
      httpCredentials: { username: READER.username, password: READER.password, send: 'always' },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
  }, 120_000);

  afterAll(async () => {
    await ctx?.close();
    await rn?.stop();
    await orthanc?.stop();
    hookServer?.close();
  });

  const apiRow = async (study: string) => (await rn.api<{ rows: ApiRow[] }>('/api/worklist?limit=200')).rows.find((r) => r.study === study);

  it('lists the flagged study first with its priority and key finding, live, without a reload; hostile names stay text', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${rn.url}/worklist`);
    await page.waitForSelector('#live.on', { timeout: 20_000 });
    // A marker that a reload would wipe.
    await page.evaluate(() => ((globalThis as unknown as Win).__noReload = 1));

    await upload(orthanc, CR[0], { studyUID: plain.study, seriesUID: plain.series, patientId: 'RN-PLAIN-1', patientName: 'Plain^Paula', accession: 'ACC-PLAIN', n: 1 });
    await upload(orthanc, CR[1], { studyUID: flagged.study, seriesUID: flagged.series, patientId: 'RN-FLAG-1', patientName: HOSTILE_NAME, accession: 'ACC-FLAG', n: 1 });
    const delivered = async (study: string) => (await jobsOf(rn, study)).find((j) => j.state === 'delivered');
    const flaggedJob = await waitFor('flagged job delivered', () => delivered(flagged.study), 60_000, 100);
    const deliveredAt = Date.now();
    await waitFor('plain job delivered', () => delivered(plain.study), 60_000, 100);

    // The page updates itself (SSE): the urgent row is on top within a few seconds of its delivery.
    await page.waitForFunction((s) => (globalThis as unknown as Win).document.querySelector('#rows tr')?.getAttribute('data-study') === s, flagged.study, { timeout: 5_000 });
    const shownAfterMs = Date.now() - deliveredAt;
    await page.waitForFunction((s) => !!(globalThis as unknown as Win).document.querySelector(`#rows tr[data-study="${s}"]`)?.querySelector('.p-negative'), plain.study, { timeout: 10_000 });
    expect(shownAfterMs).toBeLessThan(5_000);
    expect(await page.evaluate(() => (globalThis as unknown as Win).__noReload)).toBe(1);

    const rows = await page.$$eval('#rows tr', (trs) => trs.map((tr) => ({
      study: tr.getAttribute('data-study'), badge: tr.querySelector('.badge')?.textContent, finding: tr.querySelector('.finding')?.textContent,
      name: tr.querySelector('.patient-name')?.textContent, pid: tr.querySelector('.patient-id')?.textContent,
    })));
    expect(rows[0]).toEqual({ study: flagged.study, badge: 'urgent', finding: 'opacity p=0.93, right lower zone', name: '<img src=x onerror=window.__pwned=1>, <script>window.__pwned=2</script>', pid: 'RN-FLAG-1' });
    expect(rows.find((r) => r.study === plain.study)).toMatchObject({ badge: 'negative', name: 'Plain, Paula' });
    // The markup stayed text: no element was made from it and nothing ran.
    expect(await page.evaluate(() => (globalThis as unknown as Win).document.querySelectorAll('#rows img[src="x"], #rows script').length)).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as Win).__pwned)).toBeUndefined();
    expect(pageErrors).toEqual([]);

    // The heatmap thumbnail decoded (a PNG made from the stored heatmap SC).
    await page.waitForFunction((s) => {
      const img = (globalThis as unknown as Win).document.querySelector(`#rows tr[data-study="${s}"] img.thumb`);
      return !!img && img.complete === true && (img.naturalWidth ?? 0) > 0;
    }, flagged.study, { timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'worklist.png') });
    // Pixel check: the first row's badge is drawn in the urgent red.
    const badge = await page.locator('#rows tr').first().locator('.badge').screenshot({ path: join(ARTIFACTS, 'urgent-badge.png') });
    const { decode } = await import('fast-png');
    const png = decode(badge);
    let red = 0;
    for (let i = 0; i < png.data.length; i += png.channels) if (png.data[i] > 200 && png.data[i + 1] < 120 && png.data[i + 2] < 120) red++;
    expect(red).toBeGreaterThan(100);
    expect(flaggedJob.detector).toBe('test-flag');
  }, 120_000);

  it('keyboard moves the selection; Enter opens the study in the viewer URL and marks it opened', async () => {
    await page.locator('body').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('j');
    expect(await page.$eval('#rows tr.selected', (tr) => tr.getAttribute('data-study'))).not.toBe(flagged.study);
    await page.keyboard.press('k');
    expect(await page.$eval('#rows tr.selected', (tr) => tr.getAttribute('data-study'))).toBe(flagged.study);
    // The built-in viewer is not enabled here: assert where the browser goes, not what it finds.
    const expected = `http://127.0.0.1:8081/viewer?StudyInstanceUIDs=${flagged.study}`;
    const request = ctx.waitForEvent('request', { predicate: (r) => r.url() === expected, timeout: 10_000 });
    const popup = ctx.waitForEvent('page', { timeout: 10_000 });
    await page.keyboard.press('Enter');
    expect((await request).url()).toBe(expected);
    await (await popup).close();
    await waitFor('review state opened', async () => (await apiRow(flagged.study))?.review.state === 'opened', 5_000, 100);
  }, 60_000);

  it('"disagree" moves the study to the second-reader tab and writes an audit row', async () => {
    await page.locator(`#rows tr[data-study="${flagged.study}"] button[data-decision="disagree"]`).click();
    await page.fill('#review-form textarea[name="reason"]', 'calcified granuloma, seen on prior');
    await page.click('#review-save');
    await waitFor('review recorded', async () => (await apiRow(flagged.study))?.review.decision === 'disagree', 5_000, 100);
    await page.click('#tab-second');
    // Wait for the tab's own rows: the worklist tab's rows (which hold both studies) stay until the tab re-renders.
    await page.waitForFunction(
      ([f, p]) => {
        const ids = [...(globalThis as unknown as Win).document.querySelectorAll('#rows tr')].map((t) => t.getAttribute('data-study'));
        return ids.includes(f) && !ids.includes(p);
      },
      [flagged.study, plain.study] as const,
      { timeout: 10_000 },
    );
    const inTab = await page.$$eval('#rows tr', (trs) => trs.map((t) => t.getAttribute('data-study')));
    // Other AI-positive studies of this file (e.g. the late-series one, depending on timing) may be there too.
    expect(inTab).toContain(flagged.study);
    expect(inTab).not.toContain(plain.study);
    await page.screenshot({ path: join(ARTIFACTS, 'second-reader.png') });
    const db = new Database(join(rn.dir, 'data', 'radnode.sqlite'), { readonly: true, fileMustExist: true });
    const audit = db.prepare(`SELECT actor, action, detail_json FROM audit WHERE entity = 'study' AND entity_id = ? AND action LIKE 'worklist.%' ORDER BY id`).all(flagged.study) as { actor: string; action: string; detail_json: string }[];
    db.close();
    expect(audit.map((a) => [a.actor, a.action])).toEqual([['rita', 'worklist.opened'], ['rita', 'worklist.reviewed']]);
    expect(JSON.parse(audit[1].detail_json)).toMatchObject({ decision: 'disagree', reason: 'calcified granuloma, seen on prior', priority: 'urgent' });
    await page.click('#tab-all');
  }, 60_000);

  it('a late series that supersedes a result: the page shows only the new one', async () => {
    const before = (await apiRow(plain.study))!;
    expect(before.results).toHaveLength(1);
    await upload(orthanc, CR[1], { studyUID: plain.study, seriesUID: newUid(), patientId: 'RN-PLAIN-1', patientName: 'Plain^Paula', accession: 'ACC-PLAIN', seriesDescription: 'FLAG late lateral', n: 2 });
    const next = await waitFor('superseding job delivered', async () => (await jobsOf(rn, plain.study)).find((j) => j.state === 'delivered' && j.id !== before.results[0].jobId), 60_000, 100);
    await page.waitForFunction((s) => !!(globalThis as unknown as Win).document.querySelector(`#rows tr[data-study="${s}"] .p-urgent`), plain.study, { timeout: 5_000 });
    const after = (await apiRow(plain.study))!;
    expect(after.results.map((r) => r.jobId)).toEqual([next.id]);
    expect(after).toMatchObject({ priority: 'urgent', keyFinding: 'opacity p=0.93, right lower zone' });
    expect(await page.$$eval(`#rows tr[data-study="${plain.study}"]`, (trs) => trs.length)).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'superseded.png') });
  }, 90_000);

  it('auth: no credentials are refused on page, API and events; a reader cannot retry a job; ETag answers 304', async () => {
    for (const path of ['/worklist', '/worklist/app.js', '/api/worklist', '/api/worklist/events', `/api/worklist/${flagged.study}/heatmap.png`]) {
      const r = await fetch(rn.url + path);
      expect([path, r.status]).toEqual([path, 401]);
    }
    const review = await fetch(`${rn.url}/api/worklist/${flagged.study}/review`, { method: 'POST', body: '{"decision":"agree"}' });
    expect(review.status).toBe(401);
    expect((await fetch(`${rn.url}/api/worklist`, { headers: { authorization: basic(ORTHANC_USER) } })).status).toBe(403);
    const job = (await jobsOf(rn, flagged.study))[0];
    const retry = await fetch(`${rn.url}/api/jobs/${job.id}/retry`, { method: 'POST', headers: { authorization: basic(READER) } });
    expect(retry.status).toBe(403);
    expect(((await retry.json()) as { code: string }).code).toBe('RN_AUTH_FORBIDDEN');
    // The operator passes the role check; the job is delivered, so the store refuses the retry itself.
    expect((await fetch(`${rn.url}/api/jobs/${job.id}/retry`, { method: 'POST', headers: { authorization: basic(OPERATOR) } })).status).toBe(409);
    const first = await fetch(`${rn.url}/api/worklist?priority=urgent`, { headers: { authorization: basic(READER) } });
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"wl-/);
    const again = await fetch(`${rn.url}/api/worklist?priority=urgent`, { headers: { authorization: basic(READER), 'if-none-match': etag } });
    expect(again.status).toBe(304);
  });

  it('cross-site and malformed requests get typed 4xx answers, never 500, and change nothing', async () => {
    const reader = { authorization: basic(READER) };
    const codeOf = async (r: Response) => [r.status, ((await r.json()) as { code: string }).code];
    const before = (await apiRow(flagged.study))!.review;
    // A page on another site posting with the reader's cached Basic credentials (a "simple" request, no preflight).
    const forged = await fetch(`${rn.url}/api/worklist/${flagged.study}/review`, {
      method: 'POST', headers: { ...reader, origin: 'https://evil.example', 'content-type': 'text/plain' }, body: '{"decision":"dismissed","x":"="}',
    });
    expect(await codeOf(forged)).toEqual([403, 'RN_CROSS_SITE_REQUEST']);
    const fetchSite = await fetch(`${rn.url}/api/worklist/${flagged.study}/review`, { method: 'POST', headers: { ...reader, 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' }, body: '{"decision":"dismissed"}' });
    expect(await codeOf(fetchSite)).toEqual([403, 'RN_CROSS_SITE_REQUEST']);
    const textPlain = await fetch(`${rn.url}/api/worklist/${flagged.study}/review`, { method: 'POST', headers: { ...reader, 'content-type': 'text/plain' }, body: '{"decision":"dismissed"}' });
    expect(await codeOf(textPlain)).toEqual([400, 'RN_WORKLIST_BAD_REQUEST']);
    expect((await apiRow(flagged.study))!.review).toEqual(before);
    const cancel = await fetch(`${rn.url}/api/jobs/1/cancel`, { method: 'POST', headers: { authorization: basic(OPERATOR), origin: 'http://attacker.example' } });
    expect(await codeOf(cancel)).toEqual([403, 'RN_CROSS_SITE_REQUEST']);
    // The client's own mistakes: 4xx with a code, not an internal error.
    expect(await codeOf(await fetch(`${rn.url}/api/jobs/%E0%A4%A`, { headers: reader }))).toEqual([400, 'RN_BAD_REQUEST']);
    expect(await codeOf(await fetch(`${rn.url}/api/jobs/abc`, { headers: reader }))).toEqual([400, 'RN_BAD_REQUEST']);
    const big = await fetch(`${rn.url}/api/worklist/${flagged.study}/review`, { method: 'POST', headers: { ...reader, 'content-type': 'application/json' }, body: `{"decision":"agree","reason":"${'x'.repeat(20_000)}"}` });
    expect(await codeOf(big)).toEqual([413, 'RN_REQUEST_TOO_LARGE']);
    const charset = await fetch(`${rn.url}/api/worklist/${flagged.study}/review`, { method: 'POST', headers: { ...reader, 'content-type': 'application/json; charset=foo-bar' }, body: '{}' });
    expect(await codeOf(charset)).toEqual([415, 'RN_UNSUPPORTED_MEDIA_TYPE']);
    expect(rn.log()).not.toContain('"level":"error","msg":"request failed"');
  });

  it('webhook: one signed delivery per urgent result, after two refusals; patient identifiers never logged', async () => {
    const ok = await waitFor('two delivered webhooks', async () => (hooks.filter((h) => h.status === 204).length >= 2 ? hooks : null), 20_000, 100);
    await new Promise((r) => setTimeout(r, 1500)); // nothing more may arrive
    expect(ok.slice(0, 2).map((h) => h.status)).toEqual([503, 503]);
    const succeeded = hooks.filter((h) => h.status === 204);
    expect(succeeded).toHaveLength(2);
    for (const h of hooks) expect(h.signature).toBe(`sha256=${createHmac('sha256', WEBHOOK_SECRET).update(h.body).digest('hex')}`);
    const bodies = succeeded.map((h) => JSON.parse(h.body) as { study: string; accessionNumber: string; priority: string; keyFinding: string; jobId: number });
    expect(bodies.map((b) => b.study).sort()).toEqual([flagged.study, plain.study].sort());
    expect(new Set(succeeded.map((h) => h.id)).size).toBe(2);
    expect(bodies.find((b) => b.study === flagged.study)).toMatchObject({ accessionNumber: 'ACC-FLAG', priority: 'urgent', keyFinding: 'opacity p=0.93, right lower zone' });
    const log = rn.log();
    for (const phi of ['RN-FLAG-1', 'RN-PLAIN-1', 'Plain^Paula', '__pwned']) expect(log.includes(phi), phi).toBe(false);
  }, 30_000);
});

describe('open mode (no credentials configured)', () => {
  it('answers loopback Host names only, so a rebinding page cannot read the worklist', async () => {
    const rn = await startRadnode({});
    try {
      const get = (host: string) =>
        new Promise<number>((resolveStatus, reject) => {
          const req = request(`${rn.url}/api/worklist`, { headers: { host } }, (res) => {
            res.resume();
            resolveStatus(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
      const port = new URL(rn.url).port;
      expect(await get(`attacker.example:${port}`)).toBe(403);
      expect(await get(`127.0.0.1:${port}`)).toBe(200);
      expect(await get(`localhost:${port}`)).toBe(200);
    } finally {
      await rn.stop();
    }
  }, 60_000);
});
