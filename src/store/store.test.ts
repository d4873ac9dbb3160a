import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backoffMs } from '../workflow/engine.ts';
import { SCHEMA_VERSION } from './migrations.ts';
import { SqliteStore } from './store.ts';
import type { InstanceRecord, OutputRow } from './types.ts';

const inst = (sop: string, series = 'S1', study = 'ST1', extra: Partial<InstanceRecord> = {}): InstanceRecord => ({
  sopInstanceUID: sop, sopClassUID: '1.2.840.10008.5.1.4.1.1.1', seriesInstanceUID: series, studyInstanceUID: study,
  path: `/x/${sop}.dcm`, size: 10, sha256: `sha-${sop}`, source: 'stow', isOwn: false, modality: 'CR', patientID: 'P1', ...extra,
});
const inputs = (sops: string[]) => ({ series: [{ seriesInstanceUID: 'S1', instances: sops.map((s) => ({ sopInstanceUID: s, sha256: `sha-${s}` })) }] });
const policy = { maxAttempts: 3, backoffMs: () => 1000 };

describe('SqliteStore', () => {
  it('migrates a fresh store in WAL mode and refuses one from a newer radnode', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'rn-store-')), 'radnode.sqlite');
    const s = SqliteStore.open(file);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    s.db.pragma('user_version = 99');
    s.close();
    expect(() => SqliteStore.open(file)).toThrow(expect.objectContaining({ code: 'RN_STORE_CORRUPT' }));
  });

  it('completes a study after its quiet period and re-opens it for a new instance, not for radnode\'s own', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'), 1000);
    expect(await s.dueStudies(1500, 1000)).toEqual([]);
    expect(await s.dueStudies(2000, 1000)).toEqual(['ST1']);
    expect(await s.completeStudy('ST1', 'quiet', 2000)).toBe(true);
    expect(await s.completeStudy('ST1', 'quiet', 2000)).toBe(false);
    await s.recordInstance(inst('own', 'SR1', 'ST1', { isOwn: true, modality: 'SR' }), 3000);
    expect((await s.getStudy('ST1'))!.state).toBe('complete');
    const r = await s.recordInstance(inst('2', 'S2'), 4000);
    expect(r).toEqual({ reopened: true, newSeries: true });
    expect((await s.getStudy('ST1'))!.state).toBe('receiving');
  });

  it('counts the multi-frame objects of each series, so routing can refuse a series of slice stacks from its header', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('stack-1', 'TOMO', 'ST1', { modality: 'MG', numberOfFrames: 48 }));
    await s.recordInstance(inst('stack-2', 'TOMO', 'ST1', { modality: 'MG', numberOfFrames: 52 }));
    await s.recordInstance(inst('view', 'MIXED', 'ST1', { modality: 'MG', numberOfFrames: 1 }));
    await s.recordInstance(inst('stack-3', 'MIXED', 'ST1', { modality: 'MG', numberOfFrames: 3 }));
    await s.recordInstance(inst('plain', 'PLAIN', 'ST1', { modality: 'MG' }));
    const counts = Object.fromEntries((await s.listSeries('ST1')).map((r) => [r.series_uid, [r.instance_count, r.multiframe_count]]));
    expect(counts).toEqual({ TOMO: [2, 2], MIXED: [2, 1], PLAIN: [1, 0] });
  });

  it('runs a job through queued → running → written → delivered with one audit row per transition', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const { job } = await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0);
    expect((await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0)).created).toBe(false);
    const run = await s.claimJob('run', 'w1', 10_000, { now: 0 });
    expect(run).toMatchObject({ id: job.id, state: 'running', lease_owner: 'w1', attempts: 1 });
    expect(await s.claimJob('run', 'w2', 10_000, { now: 5 })).toBeUndefined();
    await s.finishRun(job.id, 'w1', [{ sop_instance_uid: 'O1', job_id: job.id, kind: 'sr', study_uid: 'ST1', series_uid: 'OS', sop_class_uid: 'x', instance_number: 1, path: '/o', sha256: 'h', fingerprint: 'f' }], { json: '{}', studyScore: 0.3, priority: 'negative' }, 10);
    const del = await s.claimJob('deliver', 'w1', 10_000, { now: 20 });
    expect(del).toMatchObject({ id: job.id, state: 'written' });
    await s.markDelivered(job.id, 'w1', { mode: 'test' }, 30);
    expect((await s.getJob(job.id))!.state).toBe('delivered');
    expect((await s.listAudit('job', job.id)).map((a) => a.action)).toEqual(['job.created', 'job.running', 'job.written', 'job.delivering', 'job.delivered']);
  });

  it('retries a retryable failure with backoff, dead-letters after maxAttempts, and lets an operator retry', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const { job } = await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0);
    let now = 0;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const claimed = await s.claimJob('run', 'w', 10_000, { now });
      expect(claimed?.attempts).toBe(attempt);
      const after = await s.failJob(job.id, 'w', { code: 'RN_DETECTOR_FAILED', detail: 'boom', retryable: true, ...policy }, now);
      expect(after.state).toBe(attempt < 3 ? 'queued' : 'failed');
      if (attempt < 3) {
        expect(after.next_attempt_at).toBe(now + 1000);
        expect(await s.claimJob('run', 'w', 10_000, { now: now + 999 })).toBeUndefined();
      }
      now += 1000;
    }
    expect(await s.claimJob('run', 'w', 10_000, { now: now + 1e9 })).toBeUndefined();
    const retried = await s.retryJob(job.id, 'op', now);
    expect(retried).toMatchObject({ state: 'queued', attempts: 0, reason_code: null });
    await expect(s.retryJob(job.id, 'op')).rejects.toMatchObject({ code: 'RN_JOB_BAD_STATE' });
  });

  it('fails a permanent error at once, and an expired lease makes a running job claimable again', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const { job } = await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0);
    await s.claimJob('run', 'dead-worker', 1000, { now: 0 });
    expect(await s.claimJob('run', 'w2', 1000, { now: 500 })).toBeUndefined();
    const taken = await s.claimJob('run', 'w2', 1000, { now: 1001 });
    expect(taken).toMatchObject({ lease_owner: 'w2', attempts: 2 });
    await expect(s.finishRun(job.id, 'dead-worker', [], { json: '{}', studyScore: 0, priority: 'negative' })).rejects.toMatchObject({ code: 'RN_JOB_BAD_STATE' });
    const after = await s.failJob(job.id, 'w2', { code: 'RN_SOURCE_STUDY_CHANGED', detail: 'gone', retryable: false, ...policy });
    expect(after).toMatchObject({ state: 'failed', reason_code: 'RN_SOURCE_STUDY_CHANGED' });
  });

  it('a new input set supersedes: an undelivered job stops, the new one names the delivered predecessor', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const a = (await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0)).job;
    await s.claimJob('run', 'w', 10_000, { now: 0 });
    await s.finishRun(a.id, 'w', [], { json: '{}', studyScore: 0, priority: 'negative' }, 1);
    await s.claimJob('deliver', 'w', 10_000, { now: 2 });
    await s.markDelivered(a.id, 'w', {}, 3);
    const b = (await s.upsertJob('ST1', 'd', 'k2', inputs(['1', '2']), 4)).job;
    expect(b).toMatchObject({ predecessor_job_id: a.id, sr_instance_number: 2 });
    const c = (await s.upsertJob('ST1', 'd', 'k3', inputs(['1', '2', '3']), 5)).job;
    expect(c).toMatchObject({ predecessor_job_id: a.id, sr_instance_number: 3 });
    expect(await s.getJob(b.id)).toMatchObject({ state: 'superseded', superseded_by: c.id });
    expect(await s.getJob(a.id)).toMatchObject({ state: 'delivered', superseded_by: b.id });
  });

  it('a written job still waiting for delivery is stopped by its successor; one already delivering finishes first and is named', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const done = { json: '{}', studyScore: 0, priority: 'negative' as const };
    // A: written, never claimed for delivery (the PACS lane busy): its successor stops it, so only one SR is sent.
    const a = (await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0)).job;
    await s.claimJob('run', 'w', 10_000, { now: 0 });
    await s.finishRun(a.id, 'w', [], done, 1);
    const b = (await s.upsertJob('ST1', 'd', 'k2', inputs(['1', '2']), 2)).job;
    expect(await s.getJob(a.id)).toMatchObject({ state: 'superseded', superseded_by: b.id });
    expect(await s.claimJob('deliver', 'w', 10_000, { now: 3 })).toBeUndefined();
    // B: written and being delivered when C arrives: B is not stopped, C waits for it and then names it.
    await s.claimJob('run', 'w', 10_000, { now: 3 });
    await s.finishRun(b.id, 'w', [], done, 4);
    expect((await s.claimJob('deliver', 'w', 10_000, { now: 5 }))?.id).toBe(b.id);
    const c = (await s.upsertJob('ST1', 'd', 'k3', inputs(['1', '2', '3']), 6)).job;
    expect(await s.getJob(b.id)).toMatchObject({ state: 'written', superseded_by: c.id });
    expect(await s.claimJob('run', 'w', 10_000, { now: 7 })).toBeUndefined(); // B still delivering
    await s.markDelivered(b.id, 'w', {}, 8);
    expect(await s.claimJob('run', 'w', 10_000, { now: 9 })).toMatchObject({ id: c.id, predecessor_job_id: b.id });
  });

  it('a job whose delivery started and then failed may be in the PACS: its successor names it', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const a = (await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0)).job;
    await s.claimJob('run', 'w', 10_000, { now: 0 });
    await s.finishRun(a.id, 'w', [], { json: '{}', studyScore: 0, priority: 'negative' }, 1);
    await s.claimJob('deliver', 'w', 10_000, { now: 2 });
    // The STOW stored the SR but the PACS never confirmed it in time: dead-lettered, yet the SR is there.
    await s.failJob(a.id, 'w', { code: 'RN_DELIVERY_NOT_CONFIRMED', detail: 'not listed', retryable: false, maxAttempts: 1, backoffMs: () => 0 }, 3);
    const b = (await s.upsertJob('ST1', 'd', 'k2', inputs(['1', '2']), 4)).job;
    expect(await s.getJob(a.id)).toMatchObject({ state: 'superseded', superseded_by: b.id });
    expect(await s.claimJob('run', 'w', 10_000, { now: 5 })).toMatchObject({ id: b.id, predecessor_job_id: a.id });
    // A job that never reached the delivery step is not a predecessor.
    const c = (await s.upsertJob('ST1', 'e', 'k1', inputs(['1']), 6)).job;
    await s.claimJob('run', 'w', 10_000, { now: 6 });
    await s.failJob(c.id, 'w', { code: 'RN_MODEL_FAILED', detail: 'x', retryable: false, maxAttempts: 1, backoffMs: () => 0 }, 7);
    expect((await s.upsertJob('ST1', 'e', 'k2', inputs(['1', '2']), 8)).job.predecessor_job_id).toBeNull();
  });

  it('dead-letters a job whose every allowed attempt ended with the process dying under it (no restart loop)', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const { job } = await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0);
    for (let i = 0; i < 3; i++) {
      expect(await s.claimJob('run', `w${i}`, 10_000, { now: i, maxAttempts: 3 })).toMatchObject({ id: job.id, attempts: i + 1 });
      await s.releaseAllLeases(i); // the process died; the next start releases its lease
    }
    expect(await s.claimJob('run', 'w', 10_000, { now: 10, maxAttempts: 3 })).toBeUndefined();
    expect(await s.getJob(job.id)).toMatchObject({ state: 'failed', reason_code: 'RN_JOB_INTERRUPTED' });
    // An operator's retry gives it its attempts back.
    await s.retryJob(job.id, 'operator', 11);
    expect(await s.claimJob('run', 'w', 10_000, { now: 12, maxAttempts: 3 })).toMatchObject({ id: job.id, attempts: 1 });
  });

  it('dead-letters queued jobs whose detector is no longer installed', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const a = (await s.upsertJob('ST1', 'gone', 'k1', inputs(['1']), 0)).job;
    const b = (await s.upsertJob('ST1', 'kept', 'k2', inputs(['1']), 0)).job;
    expect(await s.failJobsOfUnknownDetectors(['kept'])).toEqual([a.id]);
    expect(await s.getJob(a.id)).toMatchObject({ state: 'failed', reason_code: 'RN_DETECTOR_UNKNOWN' });
    expect((await s.getJob(b.id))!.state).toBe('queued');
  });

  it('cancels a queued job and refuses to cancel a delivered one', async () => {
    const s = SqliteStore.open(':memory:');
    await s.recordInstance(inst('1'));
    const { job } = await s.upsertJob('ST1', 'd', 'k1', inputs(['1']), 0);
    expect((await s.cancelJob(job.id, 'op')).state).toBe('cancelled');
    await expect(s.cancelJob(999, 'op')).rejects.toMatchObject({ code: 'RN_JOB_NOT_FOUND' });
  });
});

describe('SqliteStore retention (DESIGN §3)', () => {
  const HOUR = 3_600_000;
  async function deliveredStudy(s: SqliteStore, study: string, at: number) {
    await s.recordInstance(inst(`${study}-1`, `${study}-S`, study), at);
    await s.completeStudy(study, 'quiet', at);
    const { job } = await s.upsertJob(study, 'd', 'k', inputs([`${study}-1`]), at);
    await s.claimJob('run', 'w', 10_000, { now: at });
    await s.finishRun(job.id, 'w', [], { json: '{}', studyScore: 0, priority: 'negative' }, at);
    await s.claimJob('deliver', 'w', 10_000, { now: at });
    await s.markDelivered(job.id, 'w', {}, at);
    return job;
  }

  it('purges a study only once every job settled before the cutoff; a pending, failed or recent job keeps its files', async () => {
    const s = SqliteStore.open(':memory:');
    await deliveredStudy(s, 'OLD', 0);
    await deliveredStudy(s, 'RECENT', 5 * HOUR);
    const failed = await deliveredStudy(s, 'FAILED', 0);
    const again = (await s.upsertJob('FAILED', 'd', 'k2', inputs(['FAILED-1']), 0)).job;
    await s.claimJob('run', 'w', 10_000, { now: 0 });
    await s.failJob(again.id, 'w', { code: 'RN_INTERNAL', detail: 'x', retryable: false, maxAttempts: 1, backoffMs: () => 0 }, 0);
    expect((await s.getJob(failed.id))!.superseded_by).toBe(again.id);
    await s.recordInstance(inst('Q-1', 'Q-S', 'QUEUED'), 0);
    await s.completeStudy('QUEUED', 'quiet', 0);
    await s.upsertJob('QUEUED', 'd', 'k', inputs(['Q-1']), 0);
    await s.recordInstance(inst('N-1', 'N-S', 'NOJOB'), 0);
    await s.completeStudy('NOJOB', 'quiet', 0);
    await s.recordInstance(inst('R-1', 'R-S', 'RECEIVING'), 0);

    const cutoff = 2 * HOUR;
    expect((await s.purgeableStudies(cutoff)).sort()).toEqual(['NOJOB', 'OLD']);
    expect(await s.markStudyPurged('OLD', cutoff, 3 * HOUR)).toEqual({ instances: [{ path: '/x/OLD-1.dcm', size: 10 }], outputs: [] });
    expect((await s.getInstance('OLD-1'))!.purged_at).toBe(3 * HOUR);
    expect(await s.purgeableStudies(cutoff)).toEqual(['NOJOB']);
    // Checked again inside the transaction: a study re-opened since the query is left alone.
    await s.recordInstance(inst('N-2', 'N-S', 'NOJOB'), 3 * HOUR);
    expect(await s.markStudyPurged('NOJOB', cutoff, 3 * HOUR)).toEqual({ instances: [], outputs: [] });
    expect((await s.getInstance('N-1'))!.purged_at).toBeNull();
  });

  it('with outputs, marks the result files of delivered jobs purged too (a superseded one\'s too), never a cancelled job\'s', async () => {
    const s = SqliteStore.open(':memory:');
    const output = (job: number, sop: string): OutputRow => ({
      sop_instance_uid: sop, job_id: job, kind: 'sr', study_uid: 'OLD', series_uid: 'SR', sop_class_uid: '1.2.840.10008.5.1.4.1.1.88.33', instance_number: 1, path: `/o/${sop}.dcm`, sha256: 'x', fingerprint: 'f',
    });
    const runAndDeliver = async (job: number, sop: string) => {
      await s.claimJob('run', 'w', 10_000, { now: 0 });
      await s.finishRun(job, 'w', [output(job, sop)], { json: '{}', studyScore: 0, priority: 'negative' }, 0);
      await s.claimJob('deliver', 'w', 10_000, { now: 0 });
      await s.markDelivered(job, 'w', {}, 0);
    };
    await s.recordInstance(inst('OLD-1', 'OLD-S', 'OLD'), 0);
    await s.completeStudy('OLD', 'quiet', 0);
    const first = (await s.upsertJob('OLD', 'd', 'k1', inputs(['OLD-1']), 0)).job;
    await runAndDeliver(first.id, 'A');
    const second = (await s.upsertJob('OLD', 'd', 'k2', inputs(['OLD-1']), 0)).job; // the first's successor
    await runAndDeliver(second.id, 'B');
    const cancelled = (await s.upsertJob('OLD', 'e', 'k1', inputs(['OLD-1']), 0)).job;
    await s.claimJob('run', 'w', 10_000, { now: 0 });
    await s.finishRun(cancelled.id, 'w', [output(cancelled.id, 'C')], { json: '{}', studyScore: 0, priority: 'negative' }, 0);
    await s.cancelJob(cancelled.id, 'op', 0);
    expect(await s.getJob(first.id)).toMatchObject({ state: 'delivered', superseded_by: second.id });

    const marked = await s.markStudyPurged('OLD', HOUR, 2 * HOUR, { outputs: true });
    expect(marked.instances).toEqual([{ path: '/x/OLD-1.dcm', size: 10 }]);
    expect(marked.outputs.sort()).toEqual(['/o/A.dcm', '/o/B.dcm']);
    expect((await s.listOutputs(second.id))[0].purged_at).toBe(2 * HOUR);
    expect((await s.listOutputs(cancelled.id))[0].purged_at).toBeNull();
    expect((await s.purgedOutputPaths()).sort()).toEqual(['/o/A.dcm', '/o/B.dcm']);
    expect(JSON.parse((await s.listAudit('study', 'OLD')).find((a) => a.action === 'study.purged')!.detail_json!)).toEqual({ instances: 1, bytes: 10, outputs: 2 });
    // the cancelled job's files are still there for an operator retry, which resumes from them
    expect((await s.retryJob(cancelled.id, 'op')).state).toBe('written');
  });

  it('a restored instance is live again and re-opens its study', async () => {
    const s = SqliteStore.open(':memory:');
    await deliveredStudy(s, 'OLD', 0);
    await s.markStudyPurged('OLD', HOUR, HOUR);
    expect(await s.restoreInstance('OLD-1', 2 * HOUR)).toEqual({ reopened: true });
    expect((await s.getInstance('OLD-1'))!.purged_at).toBeNull();
    expect((await s.getStudy('OLD'))!.state).toBe('receiving');
    expect(await s.restoreInstance('OLD-1', 2 * HOUR)).toEqual({ reopened: false });
    expect((await s.listAudit('instance', 'OLD-1')).map((a) => a.action)).toEqual(['instance.restored']);
  });

  it('a purged instance still counts and is still known to the pollers, which also learn that it was purged', async () => {
    const s = SqliteStore.open(':memory:');
    await deliveredStudy(s, 'OLD', 0);
    await s.recordInstance(inst('OLD-2', 'OLD-S', 'OLD'), 0);
    await s.completeStudy('OLD', 'quiet', 0);
    await s.markStudyPurged('OLD', HOUR, HOUR);
    expect(await s.instanceCountOfStudy('OLD')).toBe(2);
    expect(await s.instanceUIDsOfStudy('OLD')).toEqual(new Set(['OLD-1', 'OLD-2']));
    expect(await s.purgedInstanceUIDsOfStudy('OLD')).toEqual(new Set(['OLD-1', 'OLD-2']));
    await s.restoreInstance('OLD-1', 2 * HOUR);
    expect(await s.purgedInstanceUIDsOfStudy('OLD')).toEqual(new Set(['OLD-2']));
  });
});

describe('backoffMs', () => {
  it('doubles from the base, caps at the maximum, and jitters within half of it', () => {
    expect(backoffMs(1000, 60_000, 1, () => 1)).toBe(1000);
    expect(backoffMs(1000, 60_000, 4, () => 1)).toBe(8000);
    expect(backoffMs(1000, 60_000, 20, () => 1)).toBe(60_000);
    expect(backoffMs(1000, 60_000, 4, () => 0)).toBe(4000);
  });
});
