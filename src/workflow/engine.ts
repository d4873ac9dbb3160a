import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RadnodeConfig } from '../config/types.ts';
import { crashPoint } from '../crash.ts';
import { deliverObjects, retractInstance, writeToFolder } from '../delivery/index.ts';
import { deliverObjectsDimse } from '../delivery/dimse.ts';
import type { Detector, DetectorInput } from '../detectors/detector.ts';
import { asRadnodeError, RadnodeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { DetectorResult } from '../results/findings.ts';
import type { PredecessorRef, ResultObject, ResultWriter, SourceInstance } from '../results/objects.ts';
import { writeFileDurable } from '../store/durable-file.ts';
import type { SqliteStore } from '../store/store.ts';
import type { JobInputs, JobRow, OutputRow } from '../store/types.ts';
import { planStudy, seriesInfoOf } from './plan.ts';
import { purgeDueStudies } from './retention.ts';

/** How often the retention sweep looks for studies to purge (it is one indexed query when there is nothing to do). */
const PURGE_EVERY_MS = 60_000;

export type EngineDeps = {
  config: RadnodeConfig;
  store: SqliteStore;
  detectors: ReadonlyMap<string, Detector>;
  writeResults: ResultWriter;
  /** Told after a job is delivered, the moment its result becomes visible (the worklist, its webhook). Must not block. */
  onDelivered?: (job: JobRow) => void;
  log: Logger;
  /** Identifies this process's leases; a dead process's leases expire and its jobs resume elsewhere. */
  workerId?: string;
  /**
   * Per-sender settings (DIMSE callers, src/ingest/dimse/callers.ts): a study held by its sender's own quiet period is
   * left to that sender's timer, and planning runs only the detectors the sender allows.
   */
  studyPolicy?: { holds(studyUID: string): boolean; allowedDetectors(studyUID: string): readonly string[] | undefined };
};

/** Exponential backoff with jitter (undici's retry handler): min(base·2^(n-1), max), scaled by 0.5..1. */
export function backoffMs(base: number, max: number, attempt: number, random = Math.random): number {
  const exp = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp * (0.5 + random() * 0.5));
}


/** The summary kept with a job: the findings model without heatmap pixels (summary.json of DESIGN §5). */
function summaryOf(result: DetectorResult, writeMs: number): string {
  const { heatmaps, ...rest } = result;
  // The write stage is timed here, where it happens, beside the detector's own stages (summary.json timingsMs).
  return JSON.stringify({ ...rest, timingsMs: { ...result.timingsMs, write: Math.round(writeMs * 10) / 10 }, heatmaps: heatmaps.map((h) => ({ sopInstanceUID: h.sopInstanceUID, frame: h.frame, width: h.width, height: h.height })) });
}

/**
 * The workflow engine: completeness by quiet period, planning, one run lane per detector (a minute-long CT never
 * holds up a one-second radiograph) and one delivery lane. Every state change goes through the store; the engine
 * holds no state a crash could lose.
 */
export class WorkflowEngine {
  private readonly deps: EngineDeps;
  private readonly workerId: string;
  private readonly busyRun = new Set<string>();
  private busyDeliver = false;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private lastPurgeAt = 0;
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(deps: EngineDeps) {
    this.deps = deps;
    this.workerId = deps.workerId ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.tick(), this.deps.config.workflow.tickMs);
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.inFlight]);
  }

  /** A sender that delivers whole studies (Orthanc forwarding a stable study) has finished: complete now. */
  async completeNow(studyUID: string, reason: string): Promise<void> {
    if (await this.deps.store.completeStudy(studyUID, reason)) await this.plan(studyUID);
  }

  private track<T>(p: Promise<T>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async plan(studyUID: string): Promise<void> {
    const { config, store, detectors, log } = this.deps;
    const allowed = this.deps.studyPolicy?.allowedDetectors(studyUID);
    const enabled = new Map([...detectors].filter(([id]) => !config.detectors.disabled.includes(id) && (!allowed || allowed.includes(id))));
    await planStudy({ store, rules: config.routing.rules, detectors: enabled, log, waitMs: config.workflow.thinSliceWaitMinutes * 60_000 }, studyUID);
  }

  /** One scheduling pass; exposed for tests. Never throws: a failure is logged and the next tick tries again. */
  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    const { config, store, log } = this.deps;
    try {
      for (const study of await store.dueStudies(Date.now(), config.workflow.quietSeconds * 1000)) {
        if (this.deps.studyPolicy?.holds(study)) continue;
        if (await store.completeStudy(study, 'quiet-period')) await this.plan(study);
      }
      for (const id of this.deps.detectors.keys()) {
        if (this.busyRun.has(id)) continue;
        const job = await store.claimJob('run', this.workerId, config.workflow.leaseMs, { detector: id, maxAttempts: config.workflow.maxAttempts });
        if (!job) continue;
        this.busyRun.add(id);
        this.track(this.runJob(job).finally(() => this.busyRun.delete(id)));
      }
      if (!this.busyDeliver) {
        const job = await store.claimJob('deliver', this.workerId, config.workflow.leaseMs, { maxAttempts: config.workflow.maxAttempts });
        if (job) {
          this.busyDeliver = true;
          this.track(this.deliverJob(job).finally(() => (this.busyDeliver = false)));
        }
      }
      if (config.data.purgeAfterHours > 0 && Date.now() - this.lastPurgeAt >= Math.min(PURGE_EVERY_MS, config.data.purgeAfterHours * 3_600_000)) {
        this.lastPurgeAt = Date.now();
        await purgeDueStudies(store, { purgeAfterHours: config.data.purgeAfterHours, purgeOutputs: config.delivery.mode !== 'shadow' }, log);
      }
    } catch (err) {
      log.error('workflow tick failed', { err: asRadnodeError(err) });
    } finally {
      this.ticking = false;
    }
  }

  /** Keeps the lease alive while a step runs, so a long CT is not taken for dead. */
  private heartbeat(job: JobRow): () => void {
    const { store, config } = this.deps;
    const t = setInterval(() => void store.heartbeat(job.id, this.workerId, config.workflow.leaseMs).catch(() => undefined), Math.max(500, config.workflow.leaseMs / 3));
    return () => clearInterval(t);
  }

  private async fail(job: JobRow, err: unknown, log: Logger): Promise<void> {
    const e = asRadnodeError(err, 'RN_INTERNAL');
    const { workflow } = this.deps.config;
    try {
      const after = await this.deps.store.failJob(job.id, this.workerId, {
        code: e.code, detail: e.message, retryable: e.retryable, maxAttempts: workflow.maxAttempts,
        backoffMs: (n) => backoffMs(workflow.backoffBaseMs, workflow.backoffMaxMs, n),
      });
      log[after.state === 'failed' ? 'error' : 'warn'](after.state === 'failed' ? 'job failed' : 'job step failed; will retry', {
        code: e.code, detail: e.message, attempt: after.attempts, state: after.state, nextAttemptAt: after.next_attempt_at,
      });
    } catch (inner) {
      // The lease was lost (superseded or cancelled meanwhile): nothing to record.
      log.warn('could not record job failure', { err: asRadnodeError(inner), code: e.code });
    }
  }

  private async sourcesOf(job: JobRow): Promise<{ input: DetectorInput; sources: SourceInstance[] }> {
    const { store } = this.deps;
    const inputs = JSON.parse(job.inputs_json) as JobInputs;
    const series = await store.listSeries(job.study_uid);
    const input: DetectorInput = { studyInstanceUID: job.study_uid, series: [] };
    const sources: SourceInstance[] = [];
    for (const s of inputs.series) {
      const row = series.find((r) => r.series_uid === s.seriesInstanceUID);
      if (!row) throw new RadnodeError('RN_INPUT_MISSING', `series ${s.seriesInstanceUID} is no longer in the store`);
      const stored = new Map((await store.listInstances(s.seriesInstanceUID)).map((i) => [i.sop_instance_uid, i]));
      const instances = s.instances.map((i) => {
        const st = stored.get(i.sopInstanceUID);
        if (st?.purged_at) throw new RadnodeError('RN_INPUT_PURGED', `instance ${i.sopInstanceUID} was purged after the study was delivered (data.purgeAfterHours): re-send the study to run this job`);
        if (!st || !existsSync(st.path)) throw new RadnodeError('RN_INPUT_MISSING', `instance ${i.sopInstanceUID} is missing from the store`);
        return { sopInstanceUID: i.sopInstanceUID, sopClassUID: st.sop_class_uid, path: st.path };
      });
      input.series.push({ info: seriesInfoOf(row), instances });
      sources.push(...instances.map((i) => ({ ...i, seriesInstanceUID: s.seriesInstanceUID })));
    }
    return { input, sources };
  }

  private async predecessorOf(job: JobRow): Promise<PredecessorRef | undefined> {
    if (job.predecessor_job_id === null) return undefined;
    const sr = (await this.deps.store.listOutputs(job.predecessor_job_id)).find((o) => o.kind === 'sr');
    return sr && { studyInstanceUID: sr.study_uid, seriesInstanceUID: sr.series_uid, sopInstanceUID: sr.sop_instance_uid, sopClassUID: sr.sop_class_uid };
  }

  /** queued → running → written: run the detector, write the result objects once, durably, with frozen UIDs/times. */
  async runJob(job: JobRow): Promise<void> {
    const { store, config, detectors } = this.deps;
    const log = this.deps.log.child({ jobId: job.id, detector: job.detector, stage: 'run' });
    const stopBeat = this.heartbeat(job);
    try {
      const detector = detectors.get(job.detector);
      if (!detector) throw new RadnodeError('RN_DETECTOR_UNKNOWN', `detector ${job.detector} is not registered`);
      const { input, sources } = await this.sourcesOf(job);
      crashPoint('before-run');
      const started = Date.now();
      let result: DetectorResult;
      try {
        result = await detector.run(input, { log });
      } catch (err) {
        throw err instanceof RadnodeError ? err : new RadnodeError('RN_DETECTOR_FAILED', `detector ${job.detector} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      }
      const runMs = Date.now() - started;
      const writeStarted = performance.now();
      const contentDateTime = new Date(await store.freezeContentDateTime(job.id, new Date().toISOString()));
      const objects = await this.deps.writeResults(result, sources, {
        node: { uidRoot: config.node.uidRoot, manufacturer: config.node.manufacturer, modelName: config.node.modelName, softwareVersion: SOFTWARE_VERSION, institutionName: config.node.institutionName, stationName: config.node.stationName },
        contentDateTime,
        inputKey: job.input_key,
        srInstanceNumber: job.sr_instance_number,
        predecessor: await this.predecessorOf(job),
        srOptions: { trackingIdentifierStyle: config.results.trackingIdentifierStyle },
      });
      const outputs: OutputRow[] = objects.map((o) => {
        const path = join(config.data.dir, 'outputs', String(job.id), `${o.sopInstanceUID}.dcm`);
        writeFileDurable(path, o.bytes);
        return {
          sop_instance_uid: o.sopInstanceUID, job_id: job.id, kind: o.kind, study_uid: o.studyInstanceUID, series_uid: o.seriesInstanceUID,
          sop_class_uid: o.sopClassUID, instance_number: o.instanceNumber, path, sha256: createHash('sha256').update(o.bytes).digest('hex'), fingerprint: o.fingerprint,
        };
      });
      const writeMs = performance.now() - writeStarted;
      crashPoint('after-write');
      await store.finishRun(job.id, this.workerId, outputs, { json: summaryOf(result, writeMs), studyScore: result.studyScore, priority: result.priority });
      log.info('job written', { outputs: outputs.length, priority: result.priority, runMs });
      crashPoint('after-run');
    } catch (err) {
      await this.fail(job, err, log);
    } finally {
      stopBeat();
    }
  }

  private async loadObjects(outputs: OutputRow[]): Promise<ResultObject[]> {
    // Retention deletes only a delivered or superseded job's files, which nothing sends again; say so if that changes.
    const purged = outputs.find((o) => o.purged_at);
    if (purged) throw new RadnodeError('RN_OUTPUT_PURGED', `result object ${purged.sop_instance_uid} of job ${purged.job_id} was deleted by retention`);
    return Promise.all(
      outputs.map(async (o) => ({
        kind: o.kind as ResultObject['kind'], studyInstanceUID: o.study_uid, seriesInstanceUID: o.series_uid, sopInstanceUID: o.sop_instance_uid,
        sopClassUID: o.sop_class_uid, instanceNumber: o.instance_number, fingerprint: o.fingerprint, bytes: await readFile(o.path),
      })),
    );
  }

  /** written → delivered: the stored bytes, unchanged, to the PACS (confirmed by QIDO), a folder, or nowhere (shadow). */
  async deliverJob(job: JobRow): Promise<void> {
    const { store, config } = this.deps;
    const log = this.deps.log.child({ jobId: job.id, detector: job.detector, stage: 'deliver' });
    const stopBeat = this.heartbeat(job);
    const deliveryId = await store.startDelivery(job.id, job.attempts);
    try {
      const outputs = await store.listOutputs(job.id);
      const objects = await this.loadObjects(outputs);
      let detail: Record<string, unknown>;
      if (config.delivery.mode === 'shadow') {
        detail = { mode: 'shadow', objects: objects.length };
      } else if (config.delivery.mode === 'folder') {
        detail = { mode: 'folder', files: await writeToFolder(config.delivery.folder, objects) };
      } else if (config.delivery.mode === 'dimse') {
        const { dimse } = config;
        const study = await store.getStudy(job.study_uid);
        crashPoint('before-send');
        const r = await deliverObjectsDimse({ peer: dimse.destination, callingAeTitle: dimse.aeTitle, timeoutMs: dimse.timeoutMs }, objects, {
          confirmTimeoutMs: config.delivery.confirmTimeoutMs, log, onSent: () => crashPoint('after-send'), commitment: dimse.enabled, expectedPatientId: study?.patient_id ?? undefined,
        });
        crashPoint('after-confirm');
        detail = { mode: 'dimse', peer: dimse.destination.aeTitle, sent: r.sent, alreadyPresent: r.alreadyPresent, commitment: r.commitment };
      } else {
        const pacs = config.pacs!;
        const study = await store.getStudy(job.study_uid);
        crashPoint('before-send');
        const r = await deliverObjects(pacs, objects, { expectedPatientId: study?.patient_id ?? undefined, confirmTimeoutMs: config.delivery.confirmTimeoutMs, log, onSent: () => crashPoint('after-send') });
        crashPoint('after-confirm');
        detail = { mode: 'pacs', sent: r.sent, alreadyPresent: r.alreadyPresent, retracted: await this.retractSuperseded(job, log) };
      }
      await store.finishDelivery(deliveryId, 'delivered', detail);
      await store.markDelivered(job.id, this.workerId, detail);
      log.info('job delivered', detail);
      // A listener's failure must never turn a delivered job into a failed one.
      try {
        this.deps.onDelivered?.(job);
      } catch (err) {
        log.warn('delivered listener failed', { err: asRadnodeError(err) });
      }
    } catch (err) {
      const e = asRadnodeError(err);
      await store.finishDelivery(deliveryId, 'failed', { code: e.code, message: e.message }).catch(() => undefined);
      await this.fail(job, e, log);
    } finally {
      stopBeat();
    }
  }

  /**
   * DICOMweb cannot delete: the superseding SR names its predecessor, and older heatmaps are removed only where the
   * site allows it through Orthanc's REST API (DESIGN §3 Supersede). A failure here never fails the delivery.
   */
  private async retractSuperseded(job: JobRow, log: Logger): Promise<string[]> {
    const { config, store } = this.deps;
    if (!config.delivery.retractSuperseded || config.pacs?.kind !== 'orthanc' || job.predecessor_job_id === null) return [];
    const retracted: string[] = [];
    let prevId: number | null = job.predecessor_job_id;
    while (prevId !== null) {
      for (const o of await store.listOutputs(prevId)) {
        if (o.kind !== 'heatmap-sc' || o.retracted_at) continue;
        try {
          if (await retractInstance(config.pacs, o.sop_instance_uid)) {
            await store.markRetracted(o.sop_instance_uid);
            retracted.push(o.sop_instance_uid);
          }
        } catch (err) {
          log.warn('could not retract a superseded heatmap', { sopInstanceUID: o.sop_instance_uid, err: asRadnodeError(err) });
        }
      }
      prevId = (await store.getJob(prevId))?.predecessor_job_id ?? null;
    }
    return retracted;
  }
}

export const SOFTWARE_VERSION = '0.1.0';
