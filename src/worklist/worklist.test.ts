/**
 * Issue 10 (a): key-finding text, priority ordering and the ETag, plus the worklist model over a real store:
 * supersede shows only the newest result, a review is audited, "disagree" puts a study in the second-reader tab,
 * and an urgent result gets exactly one persisted webhook delivery.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../config/defaults.ts';
import { silentLogger } from '../log.ts';
import type { Finding } from '../results/findings.ts';
import { SqliteStore } from '../store/store.ts';
import type { InstanceRecord } from '../store/types.ts';
import { keyFindingText } from './key-finding.ts';
import { WorklistModel } from './model.ts';
import { viewerUrl } from './page/viewer-url.ts';
import { compareRows, PRIORITIES, studyPriority, type WorklistPriority } from './priority.ts';
import { dayStartMs } from './calendar.ts';
import { etagMatches, parseWorklistQuery, worklistEtag } from './query.ts';
import { downscaleRgb } from './thumbnail.ts';
import { signBody, WebhookSender } from './webhook.ts';

const code = (meaning: string) => ({ scheme: 'SCT' as const, value: '1', meaning });
const finding = (f: Partial<Finding> & { meaning: string; probability: number }): Finding => ({
  trackingUid: '1.2.3', trackingId: 'f1', concept: code(f.meaning), ...f,
});

describe('key finding in words', () => {
  it('a CT nodule: diameter, Lung-RADS category and lobe', () => {
    const nodule = finding({
      meaning: 'Nodule', probability: 0.88, site: code('Right upper lobe'),
      measurements: [{ concept: code('Diameter'), value: 7.43, unit: 'mm' }],
      evaluations: [{ concept: code('Lung-RADS assessment category'), value: code('4A') }],
    });
    expect(keyFindingText({ studyScore: 0.88, findings: [nodule] })).toBe('nodule 7.4 mm, Lung-RADS 4A, right upper lobe');
  });
  it('a chest radiograph opacity: probability and zone', () => {
    const weak = finding({ meaning: 'Effusion', probability: 0.41 });
    const opacity = finding({ meaning: 'Opacity', probability: 0.934, site: code('Right lower zone') });
    expect(keyFindingText({ studyScore: 0.93, findings: [weak, opacity] })).toBe('opacity p=0.93, right lower zone');
  });
  it('a mammogram: the exam score measurement and the breast', () => {
    const exam = finding({ meaning: 'Suspicious finding', probability: 0.81, site: code('Left breast'), measurements: [{ concept: code('Exam score'), value: 0.812, unit: '{score}' }] });
    expect(keyFindingText({ studyScore: 0.81, findings: [exam] })).toBe('exam score 0.81, left breast');
  });
  it('no finding: no text (the priority alone is shown)', () => {
    expect(keyFindingText({ studyScore: 0.1, findings: [] })).toBeNull();
  });
  it('a scale value that already names its scale is not doubled', () => {
    const f = finding({ meaning: 'Mass', probability: 0.7, evaluations: [{ concept: code('BI-RADS assessment'), value: code('BI-RADS 4') }] });
    expect(keyFindingText({ studyScore: 0.7, findings: [f] })).toBe('mass p=0.70, BI-RADS 4');
  });
});

describe('priority ordering', () => {
  it('urgent, positive, failed, pending, not processed, negative; then the oldest first', () => {
    const rows = [
      { study: '1.5', priority: 'negative' as WorklistPriority, arrivedAt: 1 },
      { study: '1.4', priority: 'urgent' as WorklistPriority, arrivedAt: 50 },
      { study: '1.3', priority: 'unprocessed' as WorklistPriority, arrivedAt: 0 },
      { study: '1.2', priority: 'urgent' as WorklistPriority, arrivedAt: 10 },
      { study: '1.1', priority: 'failed' as WorklistPriority, arrivedAt: 5 },
      { study: '1.0', priority: 'positive' as WorklistPriority, arrivedAt: 99 },
      { study: '1.6', priority: 'pending' as WorklistPriority, arrivedAt: 2 },
    ];
    expect([...rows].sort(compareRows).map((r) => r.study)).toEqual(['1.2', '1.4', '1.0', '1.1', '1.6', '1.3', '1.5']);
    expect(PRIORITIES).toEqual(['urgent', 'positive', 'failed', 'pending', 'unprocessed', 'negative']);
  });
  it("a study takes its most urgent detector's priority; results count only once delivered", () => {
    expect(studyPriority([{ detector: 'a', state: 'delivered', priority: 'negative' }, { detector: 'b', state: 'delivered', priority: 'urgent' }], true)).toBe('urgent');
    expect(studyPriority([{ detector: 'a', state: 'written', priority: 'urgent' }], true)).toBe('pending');
    expect(studyPriority([{ detector: 'a', state: 'failed', priority: null }, { detector: 'b', state: 'delivered', priority: 'negative' }], true)).toBe('failed');
    // One detector found nothing, another could not read its series: the AI has no answer for part of the study.
    expect(studyPriority([{ detector: 'cxr', state: 'delivered', priority: 'negative' }, { detector: 'ct', state: 'delivered', priority: 'unprocessed' }], true)).toBe('unprocessed');
    // All series skipped by routing: no job at all.
    expect(studyPriority([], true)).toBe('unprocessed');
    expect(studyPriority([], false)).toBe('pending');
  });
});

describe('ETag', () => {
  const q = parseWorklistQuery({ priority: 'urgent,positive', limit: '20' });
  it('changes with the version and the query, not with the order of a filter list', () => {
    const e = worklistEtag(7, q);
    expect(e).toMatch(/^W\/"wl-7-[0-9a-f]{16}"$/);
    expect(worklistEtag(7, parseWorklistQuery({ priority: 'positive,urgent', limit: '20' }))).toBe(e);
    expect(worklistEtag(8, q)).not.toBe(e);
    expect(worklistEtag(7, { ...q, offset: 20 })).not.toBe(e);
  });
  it('If-None-Match matches weakly, in a list, or as *', () => {
    const e = worklistEtag(3, q);
    expect(etagMatches(e, e)).toBe(true);
    expect(etagMatches(`"x", ${e.slice(2)}`, e)).toBe(true);
    expect(etagMatches('*', e)).toBe(true);
    expect(etagMatches(undefined, e)).toBe(false);
    expect(etagMatches(worklistEtag(4, q), e)).toBe(false);
  });
  it("day filters are the reader's calendar days, daylight saving included; impossible days are refused", () => {
    // 00:00 in Berlin is 22:00 UTC the day before in summer (CEST), 23:00 in winter.
    expect(new Date(dayStartMs('2026-05-02', 'Europe/Berlin')).toISOString()).toBe('2026-05-01T22:00:00.000Z');
    expect(new Date(dayStartMs('2026-01-15', 'Europe/Berlin')).toISOString()).toBe('2026-01-14T23:00:00.000Z');
    expect(new Date(dayStartMs('2026-03-29', 'Europe/Berlin')).toISOString()).toBe('2026-03-28T23:00:00.000Z'); // the change day
    expect(new Date(dayStartMs('2026-05-02', 'Asia/Tokyo')).toISOString()).toBe('2026-05-01T15:00:00.000Z');
    expect(dayStartMs('2026-05-02', 'UTC')).toBe(Date.parse('2026-05-02T00:00:00Z'));
    expect(() => parseWorklistQuery({ from: '2024-02-30' })).toThrow(/query from/);
    expect(() => parseWorklistQuery({ from: '2024-02-29', tz: 'Mars/Olympus' })).toThrow(/query tz/);
    expect(parseWorklistQuery({ from: '2024-02-29', tz: 'Europe/Berlin' }).tz).toBe('Europe/Berlin');
  });
  it('query validation names the key', () => {
    expect(() => parseWorklistQuery({ priority: 'critical' })).toThrow(/query priority/);
    expect(() => parseWorklistQuery({ modality: "CR' OR 1=1" })).toThrow(/query modality/);
    expect(() => parseWorklistQuery({ limit: '5000' })).toThrow(/query limit/);
    expect(() => parseWorklistQuery({ from: '2026-13-45' })).toThrow(/query from/);
  });
});

describe('viewer link and thumbnail', () => {
  it('fills the built-in viewer pattern and encodes the accession number', () => {
    expect(viewerUrl(DEFAULT_CONFIG.worklist.viewerUrlPattern, { study: '1.2.3', accessionNumber: null }, 'ws12', 8081)).toBe('http://ws12:8081/viewer?StudyInstanceUIDs=1.2.3');
    expect(viewerUrl('https://pacs/v?a={accession}&s={study}', { study: '1.2', accessionNumber: 'A&1' }, 'h', 1)).toBe('https://pacs/v?a=A%261&s=1.2');
  });
  it('box-filters a frame down to the thumbnail size', () => {
    const rgb = new Uint8Array(4 * 2 * 3).fill(0);
    for (let i = 0; i < 4 * 3; i++) rgb[i] = 200; // top row white-ish, bottom row black
    const s = downscaleRgb(rgb, 4, 2, 3, 2);
    expect([s.width, s.height]).toEqual([2, 1]);
    expect([...s.rgb]).toEqual([100, 100, 100, 100, 100, 100]);
  });
});

// ---- the model over a real store ----
let n = 0;
const uid = () => `1.2.826.0.1.3680043.10.1496.99.${Date.now()}.${++n}`;
function addStudy(store: SqliteStore, opts: { patientName?: string } = {}) {
  const study = uid();
  const series = uid();
  const rec: InstanceRecord = {
    sopInstanceUID: uid(), sopClassUID: '1.2.840.10008.5.1.4.1.1.1', seriesInstanceUID: series, studyInstanceUID: study, path: '/x.dcm', size: 1, sha256: 'h',
    source: 'stow', isOwn: false, modality: 'CR', patientID: 'P1', patientName: opts.patientName ?? 'Doe^Jane', accessionNumber: 'ACC1',
  };
  return { study, series, rec };
}
async function deliver(store: SqliteStore, study: string, series: string, key: string, result: { priority: string; score: number; findings: Finding[] }) {
  const { job } = await store.upsertJob(study, 'cxr', key, { series: [{ seriesInstanceUID: series, instances: [] }] });
  const claimed = await store.claimJob('run', 'w', 60_000);
  expect(claimed?.id).toBe(job.id);
  await store.finishRun(job.id, 'w', [], { json: JSON.stringify({ studyScore: result.score, findings: result.findings }), studyScore: result.score, priority: result.priority });
  await store.claimJob('deliver', 'w', 60_000);
  await store.markDelivered(job.id, 'w', {});
  return job.id;
}
const opacity = finding({ meaning: 'Opacity', probability: 0.93, site: code('Right lower zone') });

describe('worklist model', () => {
  it('shows the newest result only, resets a review on a new result, and audits reviews', async () => {
    const store = SqliteStore.open(':memory:');
    const model = new WorklistModel(store);
    const { study, series, rec } = addStudy(store);
    await store.recordInstance(rec);
    await store.completeStudy(study, 'test');
    const first = await deliver(store, study, series, 'k1', { priority: 'urgent', score: 0.93, findings: [opacity] });
    const r1 = await model.refreshStudy(study, { alert: true });
    expect(r1.change?.priority).toBe('urgent');
    expect(r1.alerts.map((a) => a.jobId)).toEqual([first]);
    // Hook and reconciler both refresh the same result: no second alert, no change.
    expect(await model.refreshStudy(study, { alert: true })).toEqual({ change: null, alerts: [] });
    let row = (await model.get(study))!;
    expect(row).toMatchObject({ priority: 'urgent', keyFinding: 'opacity p=0.93, right lower zone', patientName: 'Doe^Jane', accessionNumber: 'ACC1', modalities: ['CR'], detectors: ['cxr'] });

    await model.markOpened(study, 'rita');
    await model.review(study, { reader: 'rita', decision: 'disagree', reason: 'old scar', stage: 'first' });
    const second = async () => (await model.list(parseWorklistQuery({ tab: 'second' }))).rows.map((r) => r.study);
    expect(await second()).toEqual([study]);
    const audit = (await store.listAudit('study', study)).filter((a) => a.action.startsWith('worklist.')).map((a) => [a.actor, a.action]);
    expect(audit).toEqual([['rita', 'worklist.opened'], ['rita', 'worklist.reviewed']]);
    await model.review(study, { reader: 'sam', decision: 'agree', reason: null, stage: 'second' });
    expect(await second()).toEqual([]);

    // A late series supersedes: the old result is hidden, the new one alone is shown, and the old review no longer applies.
    const late = await deliver(store, study, series, 'k2', { priority: 'negative', score: 0.1, findings: [] });
    const r2 = await model.refreshStudy(study, { alert: true });
    expect(r2.alerts).toEqual([]);
    row = (await model.get(study))!;
    expect(row.results.map((r) => r.jobId)).toEqual([late]);
    expect(row).toMatchObject({ priority: 'negative', keyFinding: null, keyJobId: late, review: { state: 'new', decision: null }, secondReview: null });
    expect((await store.listAudit('study', study)).at(-1)!.action).toBe('worklist.review-reset');
    store.close();
  });

  it('a re-run keeps the delivered result shown (and its review) until the re-run is delivered', async () => {
    const store = SqliteStore.open(':memory:');
    const model = new WorklistModel(store);
    const { study, series, rec } = addStudy(store);
    await store.recordInstance(rec);
    await store.completeStudy(study, 'test');
    const first = await deliver(store, study, series, 'k1', { priority: 'urgent', score: 0.93, findings: [opacity] });
    await model.refreshStudy(study, { alert: false });
    await model.markOpened(study, 'rita');
    // A late series re-plans the detector: the urgent SR is still in the PACS while the re-run waits, runs, or fails.
    const { job: rerun } = await store.upsertJob(study, 'cxr', 'k2', { series: [{ seriesInstanceUID: series, instances: [] }] });
    await model.refreshStudy(study, { alert: false });
    let row = (await model.get(study))!;
    expect(row).toMatchObject({ priority: 'urgent', keyFinding: 'opacity p=0.93, right lower zone', keyJobId: first, review: { state: 'opened' } });
    expect(row.results.map((r) => [r.jobId, r.state, r.priority])).toEqual([[first, 'delivered', 'urgent'], [rerun.id, 'queued', 'pending']]);
    expect((await model.list(parseWorklistQuery({ priority: 'urgent' }))).total).toBe(1);
    await store.claimJob('run', 'w', 60_000);
    await store.failJob(rerun.id, 'w', { code: 'RN_INPUT_PURGED', detail: 'gone', retryable: false, maxAttempts: 1, backoffMs: () => 0 });
    await model.refreshStudy(study, { alert: false });
    row = (await model.get(study))!;
    expect(row.priority).toBe('urgent');
    expect(row.results.map((r) => [r.jobId, r.state])).toEqual([[first, 'delivered'], [rerun.id, 'failed']]);
    store.close();
  });

  it("a new result clears a second reader's decision on the old one, whatever the first read's state", async () => {
    const store = SqliteStore.open(':memory:');
    const model = new WorklistModel(store);
    const { study, series, rec } = addStudy(store);
    await store.recordInstance(rec);
    await store.completeStudy(study, 'test');
    await deliver(store, study, series, 'k1', { priority: 'positive', score: 0.7, findings: [] });
    await model.refreshStudy(study, { alert: false });
    await model.markOpened(study, 'rita');
    await model.review(study, { reader: 'sam', decision: 'dismissed', reason: null, stage: 'second' });
    const second = async () => (await model.list(parseWorklistQuery({ tab: 'second' }))).rows.map((r) => r.study);
    expect(await second()).toEqual([]);
    await deliver(store, study, series, 'k2', { priority: 'urgent', score: 0.95, findings: [opacity] });
    await model.refreshStudy(study, { alert: false });
    expect((await model.get(study))!).toMatchObject({ priority: 'urgent', review: { state: 'new' }, secondReview: null });
    expect(await second()).toEqual([study]);
    store.close();
  });

  it('announces only results delivered since the webhook was switched on', async () => {
    const store = SqliteStore.open(':memory:');
    const model = new WorklistModel(store);
    const { study, series, rec } = addStudy(store);
    await store.recordInstance(rec);
    await store.completeStudy(study, 'test');
    const old = await deliver(store, study, series, 'k1', { priority: 'urgent', score: 0.93, findings: [opacity] });
    const switchedOn = Date.now() + 1000;
    expect((await model.refreshStudy(study, { alert: true, alertSinceMs: switchedOn })).alerts).toEqual([]);
    // Superseding touches the old job's row, but its result reached the PACS before the webhook existed.
    await store.upsertJob(study, 'cxr', 'k2', { series: [{ seriesInstanceUID: series, instances: [] }] }, switchedOn + 5);
    expect((await model.refreshStudy(study, { alert: true, alertSinceMs: switchedOn })).alerts).toEqual([]);
    expect((await model.refreshStudy(study, { alert: true, alertSinceMs: 0 })).alerts.map((a) => a.jobId)).toEqual([old]);
    store.close();
  });

  it('retention purging the heatmap makes a new version, so a cached list stops offering the thumbnail', async () => {
    const store = SqliteStore.open(':memory:');
    const model = new WorklistModel(store);
    const { study, series, rec } = addStudy(store);
    await store.recordInstance(rec, 0);
    await store.completeStudy(study, 'test', 0);
    const { job } = await store.upsertJob(study, 'cxr', 'k1', { series: [{ seriesInstanceUID: series, instances: [] }] }, 0);
    await store.claimJob('run', 'w', 60_000, { now: 0 });
    const sc = { sop_instance_uid: uid(), job_id: job.id, kind: 'heatmap-sc', study_uid: study, series_uid: uid(), sop_class_uid: '1.2.840.10008.5.1.4.1.1.7.4', instance_number: 1, path: '/sc.dcm', sha256: 'h', fingerprint: 'f' };
    await store.finishRun(job.id, 'w', [sc], { json: JSON.stringify({ studyScore: 0.9, findings: [] }), studyScore: 0.9, priority: 'urgent' }, 1);
    await store.claimJob('deliver', 'w', 60_000, { now: 2 });
    await store.markDelivered(job.id, 'w', {}, 3);
    await model.refreshStudy(study, { alert: false });
    const before = model.version();
    expect((await model.get(study))!.hasHeatmap).toBe(true);
    expect((await store.markStudyPurged(study, 10, 20, { outputs: true })).outputs).toEqual(['/sc.dcm']);
    expect(model.version()).toBeGreaterThan(before);
    expect((await model.get(study))!.hasHeatmap).toBe(false);
    store.close();
  });

  it('lists by priority then age, filters, pages, and counts', async () => {
    const store = SqliteStore.open(':memory:');
    const model = new WorklistModel(store);
    const made: string[] = [];
    for (const [i, p] of (['negative', 'urgent', 'positive', 'urgent'] as const).entries()) {
      const { study, series, rec } = addStudy(store);
      await store.recordInstance(rec, 1000 + i);
      await store.completeStudy(study, 'test');
      await deliver(store, study, series, `k${i}`, { priority: p, score: 0.5, findings: [] });
      await model.refreshStudy(study, { alert: false });
      made.push(study);
    }
    const all = await model.list(parseWorklistQuery({}));
    expect(all.rows.map((r) => r.priority)).toEqual(['urgent', 'urgent', 'positive', 'negative']);
    expect(all.rows.map((r) => r.study).slice(0, 2)).toEqual([made[1], made[3]]);
    expect((await model.list(parseWorklistQuery({ priority: 'positive,negative' }))).total).toBe(2);
    expect((await model.list(parseWorklistQuery({ modality: 'cr' }))).total).toBe(4);
    expect((await model.list(parseWorklistQuery({ modality: 'CT' }))).total).toBe(0);
    expect((await model.list(parseWorklistQuery({ detector: 'cxr', limit: '1', offset: '1' }))).rows.map((r) => r.study)).toEqual([made[3]]);
    expect((await model.list(parseWorklistQuery({ review: 'reviewed' }))).total).toBe(0);
    store.close();
  });
});

describe('webhook', () => {
  it('a receiver that fails twice then succeeds gets one delivery per urgent result, signed, with the same id each time', async () => {
    const secret = 'webhook-secret-0123456789';
    const seen: { status: number; body: string; signature: string; id: string }[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const status = seen.length < 2 ? 503 : 204;
        seen.push({ status, body, signature: String(req.headers['x-radnode-signature']), id: String(req.headers['x-radnode-delivery']) });
        res.statusCode = status;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const store = SqliteStore.open(':memory:');
    const model = new WorklistModel(store);
    const { study, series, rec } = addStudy(store);
    await store.recordInstance(rec);
    await store.completeStudy(study, 'test');
    const jobId = await deliver(store, study, series, 'k1', { priority: 'urgent', score: 0.93, findings: [opacity] });
    await model.refreshStudy(study, { alert: true });
    await model.refreshStudy(study, { alert: true });
    const sender = new WebhookSender(store.db, { url, secret, maxAttempts: 5, backoffBaseMs: 0, backoffMaxMs: 0, timeoutMs: 2000 }, silentLogger);
    await sender.sendDue();
    await sender.sendDue();
    server.close();
    expect(seen.map((s) => s.status)).toEqual([503, 503, 204]);
    expect(new Set(seen.map((s) => s.id))).toEqual(new Set([`job-${jobId}`]));
    for (const s of seen) expect(s.signature).toBe(`sha256=${createHmac('sha256', secret).update(s.body).digest('hex')}`);
    expect(signBody(secret, seen[2].body)).toBe(seen[2].signature);
    expect(JSON.parse(seen[2].body)).toMatchObject({ event: 'result.urgent', study, accessionNumber: 'ACC1', priority: 'urgent', keyFinding: 'opacity p=0.93, right lower zone', jobId });
    // No patient identifiers leave the node in the alert.
    expect(seen[2].body).not.toContain('Doe');
    expect(await sender.listDeliveries()).toEqual([{ job_id: jobId, state: 'delivered', attempts: 3, last_status: 204 }]);
    expect((await store.listAudit('job', jobId)).map((a) => a.action)).toContain('webhook.delivered');
    store.close();
  });
});
