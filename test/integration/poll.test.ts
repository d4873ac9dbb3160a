/**
 * Pollers against a real Orthanc 1.10.1 + DICOMweb 1.7 (issue 2, check (b), and the reconciliation poll of DESIGN §3
 * that catches a study whose push was lost). The sink is in memory: pollers know nothing about the store.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { sharedFile } from '../helpers/paths.ts';
import { makeInstance, newUid, startOrthanc, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import type { PacsConfig } from '../../src/config/types.ts';
import { RadnodeError } from '../../src/errors.ts';
import { createLogger, silentLogger, type Logger } from '../../src/log.ts';
import {
  orthancCheckpointName,
  pollOrthancChanges,
  pullStudy,
  pollQido,
  qidoCheckpointName,
  schedulePoller,
  type PollSink,
  type PollSource,
} from '../../src/ingest/poll/index.ts';
import { dicomDate } from '../../src/ingest/poll/qido.ts';

const MR_SMALL = sharedFile('dicom/pydicom/MR_small.dcm');
const CR = sharedFile('cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm');

type DcmjsModule = { data: { DicomMessage: { readFile(buf: ArrayBuffer): { dict: Record<string, { Value?: unknown[] }> } } } };

function sopOf(bytes: Uint8Array): string {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const v = (dcmjs as DcmjsModule).data.DicomMessage.readFile(ab).dict['00080018']?.Value?.[0];
  if (typeof v !== 'string') throw new Error('no SOP Instance UID in ingested bytes');
  return v;
}

/** The store, in memory: dedups by SOP Instance UID as the real store does. */
class MemorySink implements PollSink {
  readonly held = new Map<string, Map<string, Uint8Array>>();
  readonly ingestCalls: { sop: string; study: string; source: PollSource }[] = [];
  readonly retrieved: string[] = [];
  failNextIngest: RadnodeError | null = null;
  constructor(readonly checkpoints = new Map<string, string>(), withKnownInstances = true) {
    if (!withKnownInstances) this.knownInstances = undefined;
  }
  async getCheckpoint(name: string): Promise<string | null> {
    return this.checkpoints.get(name) ?? null;
  }
  async setCheckpoint(name: string, value: string): Promise<void> {
    this.checkpoints.set(name, value);
  }
  async knownInstanceCount(studyUID: string): Promise<number> {
    return this.held.get(studyUID)?.size ?? 0;
  }
  knownInstances?: (studyUID: string) => Promise<ReadonlySet<string>> = async (studyUID) => new Set(this.held.get(studyUID)?.keys() ?? []);
  /** SOPs whose files "retention" deleted: still known, bytes gone. */
  readonly purged = new Set<string>();
  purgedInstances = async (studyUID: string): Promise<ReadonlySet<string>> => new Set([...(this.held.get(studyUID)?.keys() ?? [])].filter((s) => this.purged.has(s)));
  async ingest(bytes: Uint8Array, origin: { source: PollSource; studyInstanceUID: string }): Promise<void> {
    if (this.failNextIngest) {
      const e = this.failNextIngest;
      this.failNextIngest = null;
      throw e;
    }
    const sop = sopOf(bytes);
    this.ingestCalls.push({ sop, study: origin.studyInstanceUID, source: origin.source });
    const study = this.held.get(origin.studyInstanceUID) ?? new Map<string, Uint8Array>();
    study.set(sop, bytes);
    this.purged.delete(sop);
    this.held.set(origin.studyInstanceUID, study);
  }
  async studyRetrieved(studyUID: string): Promise<void> {
    this.retrieved.push(studyUID);
  }
  sops(studyUID: string): string[] {
    return [...(this.held.get(studyUID)?.keys() ?? [])].sort();
  }
}

let work: string;
const started: OrthancHandle[] = [];

async function orthancFor(opts: Parameters<typeof startOrthanc>[0] = {}): Promise<OrthancHandle> {
  const o = await startOrthanc(opts);
  started.push(o);
  return o;
}

function pacsOf(o: OrthancHandle, timeoutMs = 10_000): PacsConfig {
  return { kind: 'orthanc', url: o.dicomWebUrl, orthancUrl: o.url, auth: { type: 'none' }, timeoutMs };
}

type Made = { path: string; sopInstanceUID: string; bytes: Uint8Array };

/** Uploads a series of `n` instances made from a real file, all in `studyUID`. */
async function makeSeries(src: string, studyUID: string, n: number, edits: { modality?: string; studyDate?: string } = {}): Promise<Made[]> {
  const seriesUID = newUid();
  const out: Made[] = [];
  for (let i = 1; i <= n; i++) out.push(await makeInstance(src, join(work, 'in'), { studyUID, seriesUID, patientId: 'POLL-PID', instanceNumber: i, studyDate: edits.studyDate ?? dicomDate(new Date()), modality: edits.modality }));
  return out;
}

/** Made first, then uploaded back to back: making an instance spawns tools, and on a busy machine that gap alone can outlast a 1 s StableAge. */
async function upload(o: OrthancHandle, made: Made[]): Promise<Made[]> {
  for (const m of made) await o.upload(m.path);
  return made;
}

async function series(o: OrthancHandle, src: string, studyUID: string, n: number, edits: { modality?: string; studyDate?: string } = {}): Promise<Made[]> {
  return upload(o, await makeSeries(src, studyUID, n, edits));
}

const sops = (list: Made[]): string[] => list.map((m) => m.sopInstanceUID).sort();

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'radnode-poll-'));
});

afterEach(async () => {
  while (started.length > 0) await started.pop()?.stop();
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('pollQido', () => {
  it('pulls a new study exactly once over two polls, byte-identical, respecting the modality filter and never SR', async () => {
    const o = await orthancFor();
    const study = newUid();
    const mr = await series(o, MR_SMALL, study, 2);
    const cr = await series(o, CR, study, 1);
    await series(o, MR_SMALL, study, 1, { modality: 'SR' });
    await series(o, MR_SMALL, newUid(), 1, { studyDate: '20040826' }); // outside the window
    const sink = new MemorySink();

    const first = await pollQido(pacsOf(o), sink, { lookbackDays: 3, modalities: ['MR'], log: silentLogger });
    expect(first).toEqual({ studiesSeen: 1, studiesPulled: 1, instancesPulled: 2, studiesFailed: 0 });
    expect(sink.sops(study)).toEqual(sops(mr));
    for (const m of mr) expect(Buffer.compare(Buffer.from(sink.held.get(study)?.get(m.sopInstanceUID) ?? []), Buffer.from(m.bytes))).toBe(0);
    expect(sink.retrieved).toEqual([study]);
    expect(sink.ingestCalls.every((c) => c.source === 'poll-qido' && c.study === study)).toBe(true);

    const second = await pollQido(pacsOf(o), sink, { lookbackDays: 3, modalities: ['MR'], log: silentLogger });
    expect(second.instancesPulled).toBe(0);
    expect(sink.ingestCalls).toHaveLength(2);

    // Without a modality filter the CR comes too, the SR-modality series never does.
    const third = await pollQido(pacsOf(o), sink, { lookbackDays: 3, log: silentLogger });
    expect(third.instancesPulled).toBe(1);
    expect(sink.sops(study)).toEqual([...sops(mr), ...sops(cr)].sort());
    const fourth = await pollQido(pacsOf(o), sink, { lookbackDays: 3, log: silentLogger });
    expect(fourth.instancesPulled).toBe(0);
    expect(sink.ingestCalls).toHaveLength(3);
    expect(Date.parse(sink.checkpoints.get(qidoCheckpointName(pacsOf(o))) ?? '')).toBeGreaterThan(Date.now() - 60_000);
  });

  it('reconciles a study whose push was partly lost: only the missing instances are retrieved', async () => {
    const o = await orthancFor();
    const study = newUid();
    const mr = await series(o, MR_SMALL, study, 3);
    const sink = new MemorySink();
    // As if push had delivered the first instance only.
    await sink.ingest(mr[0].bytes, { source: 'poll-qido', studyInstanceUID: study });
    const res = await pollQido(pacsOf(o), sink, { lookbackDays: 1, log: silentLogger });
    expect(res.instancesPulled).toBe(2);
    expect(sink.ingestCalls.map((c) => c.sop).slice(1).sort()).toEqual(sops(mr.slice(1)));
    expect(sink.sops(study)).toEqual(sops(mr));
  });

  it('a purged study is fetched back only with something new in it: its purged instances come with the late series', async () => {
    const o = await orthancFor();
    const study = newUid();
    const mr = await series(o, MR_SMALL, study, 2);
    const sink = new MemorySink();
    await pollQido(pacsOf(o), sink, { lookbackDays: 1, log: silentLogger });
    for (const m of mr) sink.purged.add(m.sopInstanceUID);
    // Nothing new: the purged files stay purged, whatever starts the pull.
    expect(await pullStudy(pacsOf(o), sink, study, 'poll-orthanc', { log: silentLogger })).toMatchObject({ pulled: 0, wantedInstances: 2 });
    expect((await pollQido(pacsOf(o), sink, { lookbackDays: 1, log: silentLogger })).instancesPulled).toBe(0);
    // A late series: it and the purged instances are fetched, so the study can be read whole again.
    const late = await series(o, MR_SMALL, study, 1);
    const before = sink.ingestCalls.length;
    expect((await pollQido(pacsOf(o), sink, { lookbackDays: 1, log: silentLogger })).instancesPulled).toBe(3);
    expect(sink.ingestCalls.slice(before).map((c) => c.sop).sort()).toEqual(sops([...mr, ...late]));
    expect(sink.purged.size).toBe(0);
  });

  it('without per-instance knowledge it compares counts and lets the store drop duplicates', async () => {
    const o = await orthancFor();
    const study = newUid();
    const mr = await series(o, MR_SMALL, study, 2);
    const sink = new MemorySink(new Map(), false);
    expect((await pollQido(pacsOf(o), sink, { lookbackDays: 1, log: silentLogger })).instancesPulled).toBe(2);
    // Counts now match: nothing is listed or retrieved again.
    expect((await pollQido(pacsOf(o), sink, { lookbackDays: 1, log: silentLogger })).instancesPulled).toBe(0);
    expect(sink.sops(study)).toEqual(sops(mr));
  });

  it('after an outage longer than the lookback, the window reaches back to the last poll', async () => {
    const o = await orthancFor();
    const fiveDaysAgo = new Date(Date.now() - 5 * 86_400_000);
    const study = newUid();
    await series(o, MR_SMALL, study, 1, { studyDate: dicomDate(fiveDaysAgo) });
    const sink = new MemorySink();
    expect((await pollQido(pacsOf(o), sink, { lookbackDays: 1, log: silentLogger })).studiesSeen).toBe(0);
    sink.checkpoints.set(qidoCheckpointName(pacsOf(o)), new Date(Date.now() - 10 * 86_400_000).toISOString());
    const res = await pollQido(pacsOf(o), sink, { lookbackDays: 1, log: silentLogger });
    expect(res).toMatchObject({ studiesSeen: 1, instancesPulled: 1 });
  });

  it('a PACS that is down gives RN_POLL_FAILED (retryable) and leaves the checkpoint alone', async () => {
    const o = await orthancFor();
    await o.stop();
    const sink = new MemorySink();
    const err = await pollQido(pacsOf(o, 2000), sink, { lookbackDays: 1, log: silentLogger }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RadnodeError);
    expect((err as RadnodeError).code).toBe('RN_POLL_FAILED');
    expect((err as RadnodeError).retryable).toBe(true);
    expect(sink.checkpoints.size).toBe(0);
  });
});

describe('pollOrthancChanges', () => {
  it('pulls each StableStudy once, without SR, and resumes from its checkpoint', async () => {
    const o = await orthancFor({ stableAgeSec: 1 });
    const pacs = pacsOf(o);
    const checkpoints = new Map<string, string>();
    const sink = new MemorySink(checkpoints);
    const a = newUid();
    // one StableStudy for the whole study: both series reach Orthanc before it can call the study stable
    const aMr = await makeSeries(MR_SMALL, a, 2);
    await upload(o, [...aMr, ...(await makeSeries(MR_SMALL, a, 1, { modality: 'SR' }))]);

    let pulled = 0;
    await waitFor('StableStudy of study A', async () => {
      const r = await pollOrthancChanges(pacs, sink, { log: silentLogger, limit: 3 });
      pulled += r.instancesPulled;
      return r.stableStudies > 0;
    });
    expect(pulled).toBe(2);
    expect(sink.sops(a)).toEqual(sops(aMr));
    expect(sink.retrieved).toEqual([a]);
    expect(sink.ingestCalls.every((c) => c.source === 'poll-orthanc')).toBe(true);
    const cp = JSON.parse(checkpoints.get(orthancCheckpointName(pacs)) ?? '{}') as { seq: number; pending: string[] };
    expect(cp.seq).toBeGreaterThan(0);
    expect(cp.pending).toEqual([]);

    // "Restart" of radnode: a new sink over the same checkpoints sees nothing new.
    const resumed = new MemorySink(checkpoints);
    expect(await pollOrthancChanges(pacs, resumed, { log: silentLogger })).toEqual({ stableStudies: 0, instancesPulled: 0 });

    const b = newUid();
    const bMr = await series(o, MR_SMALL, b, 1);
    await waitFor('StableStudy of study B', async () => (await pollOrthancChanges(pacs, resumed, { log: silentLogger })).stableStudies > 0);
    expect(resumed.sops(b)).toEqual(sops(bMr));
    expect(resumed.held.has(a)).toBe(false);
    expect(resumed.ingestCalls).toHaveLength(1);
  });

  it('a failed ingest leaves the checkpoint before the StableStudy, and the next poll pulls the study', async () => {
    const o = await orthancFor({ stableAgeSec: 1 });
    const pacs = pacsOf(o);
    const study = newUid();
    const mr = await series(o, MR_SMALL, study, 2);
    const probe = new MemorySink();
    // Wait until Orthanc has logged the StableStudy, with a sink that is then thrown away.
    await waitFor('StableStudy', async () => (await pollOrthancChanges(pacs, probe, { log: silentLogger })).stableStudies > 0);

    const sink = new MemorySink();
    sink.failNextIngest = new RadnodeError('RN_INGEST_DISK_FULL', 'disk full (test)');
    const err = await pollOrthancChanges(pacs, sink, { log: silentLogger }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as RadnodeError).code).toBe('RN_INGEST_DISK_FULL');
    const cp = JSON.parse(sink.checkpoints.get(orthancCheckpointName(pacs)) ?? '{"seq":0}') as { seq: number };
    const stableSeq = JSON.parse(probe.checkpoints.get(orthancCheckpointName(pacs)) ?? '{}') as { seq: number };
    expect(cp.seq).toBeLessThan(stableSeq.seq);

    const again = await pollOrthancChanges(pacs, sink, { log: silentLogger });
    expect(again.instancesPulled).toBe(2);
    expect(sink.sops(study)).toEqual(sops(mr));
  });

  it('a StableStudy lost in an Orthanc kill -9 is made up for once the study reports stable', async () => {
    // orthanc.md: a pending StableStudy is lost when Orthanc stops before StableAge expires; after the restart the
    // study says IsStable and no StableStudy ever comes.
    const o = await orthancFor({ stableAgeSec: 10 }); // the upload, one poll and the kill fit well inside it
    const pacs = pacsOf(o);
    const study = newUid();
    const mr = await series(o, MR_SMALL, study, 2);
    const sink = new MemorySink();
    const before = await pollOrthancChanges(pacs, sink, { log: silentLogger });
    expect(before.stableStudies).toBe(0); // seen as NewStudy, still unstable
    expect((JSON.parse(sink.checkpoints.get(orthancCheckpointName(pacs)) ?? '{}') as { pending: string[] }).pending).toHaveLength(1);
    await o.kill9();
    await o.restart();

    const after = await pollOrthancChanges(pacs, sink, { log: silentLogger });
    expect(after).toEqual({ stableStudies: 1, instancesPulled: 2 });
    expect(sink.sops(study)).toEqual(sops(mr));
    const changes = (await (await fetch(`${o.url}/changes?since=0&limit=1000`)).json()) as { Changes: { ChangeType: string }[] };
    expect(changes.Changes.some((c) => c.ChangeType === 'StableStudy')).toBe(false);
  });

  it("firstRun 'now' skips the history already in the feed and follows only what comes after", async () => {
    const o = await orthancFor({ stableAgeSec: 1 });
    const pacs = pacsOf(o);
    const old = newUid();
    await series(o, MR_SMALL, old, 1);
    await waitFor('StableStudy of the old study', async () => (await pollOrthancChanges(pacs, new MemorySink(), { log: silentLogger })).stableStudies > 0);
    const sink = new MemorySink();
    expect(await pollOrthancChanges(pacs, sink, { log: silentLogger, firstRun: 'now' })).toEqual({ stableStudies: 0, instancesPulled: 0 });
    const fresh = newUid();
    const made = await series(o, MR_SMALL, fresh, 1);
    await waitFor('StableStudy of the new study', async () => (await pollOrthancChanges(pacs, sink, { log: silentLogger, firstRun: 'now' })).stableStudies > 0);
    expect([...sink.held.keys()]).toEqual([fresh]);
    expect(sink.sops(fresh)).toEqual(sops(made));
  });

  it('a checkpoint beyond the feed (Orthanc database wiped) restarts from the beginning', async () => {
    const o = await orthancFor({ stableAgeSec: 1 });
    const pacs = pacsOf(o);
    const study = newUid();
    const mr = await series(o, MR_SMALL, study, 1);
    const sink = new MemorySink();
    sink.checkpoints.set(orthancCheckpointName(pacs), JSON.stringify({ seq: 100_000, pending: [] }));
    await waitFor('StableStudy after the wipe', async () => (await pollOrthancChanges(pacs, sink, { log: silentLogger })).stableStudies > 0);
    expect(sink.sops(study)).toEqual(sops(mr));
  });
});

describe('schedulePoller', () => {
  it('never overlaps runs and never lets a failure escape the tick', async () => {
    const lines: string[] = [];
    const log: Logger = createLogger('debug', {}, (l) => lines.push(l));
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const sched = schedulePoller(
      '* * * * * *',
      async () => {
        runs++;
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 1500)); // longer than the 1 s period
        active--;
        throw new RadnodeError('RN_POLL_FAILED', 'PACS down (test)');
      },
      log,
    );
    try {
      await waitFor('two runs', async () => runs >= 2 && active === 0, 10_000, 50);
    } finally {
      sched.stop();
    }
    expect(maxActive).toBe(1);
    expect(lines.some((l) => l.includes('tick skipped'))).toBe(true);
    expect(lines.filter((l) => l.includes('poll: run failed') && l.includes('RN_POLL_FAILED')).length).toBeGreaterThanOrEqual(1);
  });

  it('refuses an invalid cron expression with RN_CONFIG_INVALID', () => {
    expect(() => schedulePoller('every minute', async () => undefined, silentLogger)).toThrow(RadnodeError);
  });
});
