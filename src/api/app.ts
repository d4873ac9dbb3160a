import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import express from 'express';
import type { RadnodeConfig } from '../config/types.ts';
import { asRadnodeError, RadnodeError } from '../errors.ts';
import { ingestFile, freeMb } from '../ingest/ingest-instance.ts';
import { createStowHandler, STOW_PATHS } from '../ingest/stow/handler.ts';
import type { StowInFlight } from '../ingest/stow/in-flight.ts';
import type { Logger } from '../log.ts';
import type { SqliteStore } from '../store/store.ts';
import type { JobRow, JobState } from '../store/types.ts';
import type { WorkflowEngine } from '../workflow/engine.ts';
import type { RegistryProblem } from '../workflow/registry.ts';
import { createWorklistRouter } from '../worklist/routes.ts';
import type { WorklistService } from '../worklist/service.ts';
import { crossSiteGuard, requireRole } from './auth.ts';

export type AppDeps = {
  config: RadnodeConfig;
  store: SqliteStore;
  engine: WorkflowEngine;
  log: Logger;
  detectorIds: string[];
  detectorProblems: RegistryProblem[];
  /** Last result of the PACS reachability probe, for /readyz. */
  pacsReachable: () => boolean | null;
  /** The triage worklist (page, API, live events); absent in tests that build an app without it. */
  worklist?: WorklistService;
  /** Studies STOW-RS requests are streaming; the engine leaves them open meanwhile. */
  stowInFlight?: StowInFlight;
};

const JOB_STATES: JobState[] = ['queued', 'running', 'written', 'delivered', 'failed', 'cancelled', 'superseded'];

/** The API's view of a job: no patient identifiers, the result summary parsed. */
export function jobView(j: JobRow) {
  return {
    id: j.id, study: j.study_uid, detector: j.detector, state: j.state, attempts: j.attempts,
    reason: j.reason_code ? { code: j.reason_code, detail: j.reason_detail } : null,
    nextAttemptAt: j.state === 'queued' || j.state === 'written' ? new Date(j.next_attempt_at).toISOString() : null,
    srInstanceNumber: j.sr_instance_number, predecessorJobId: j.predecessor_job_id, supersededBy: j.superseded_by,
    studyScore: j.study_score, priority: j.priority,
    createdAt: new Date(j.created_at).toISOString(), updatedAt: new Date(j.updated_at).toISOString(),
  };
}

const jobId = (v: string | string[] | undefined): number => {
  if (typeof v !== 'string' || !/^[1-9]\d{0,15}$/.test(v)) throw new RadnodeError('RN_BAD_REQUEST', 'a job id is a positive whole number');
  return Number(v);
};

/**
 * The body parsers and the router mark the client's own mistakes (an undecodable %-escape, an unknown charset or
 * content encoding, a body over its limit) with a 4xx status: those are answered as such, not as an internal error.
 */
function clientError(err: unknown): RadnodeError | null {
  if (err instanceof RadnodeError || typeof err !== 'object' || err === null) return null;
  const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
  if (typeof status !== 'number' || status < 400 || status > 499) return null;
  const message = err instanceof Error ? err.message : 'bad request';
  return new RadnodeError(status === 413 ? 'RN_REQUEST_TOO_LARGE' : status === 415 ? 'RN_UNSUPPORTED_MEDIA_TYPE' : 'RN_BAD_REQUEST', message);
}

export function createApp(deps: AppDeps): express.Express {
  const { config, store, engine, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(crossSiteGuard(config.server));
  const ingestRole = requireRole(config.server, 'ingest');
  const readRole = requireRole(config.server, 'reader', 'operator');
  const operatorRole = requireRole(config.server, 'operator');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = {
      storeWritable: await store.isWritable(),
      diskSpace: config.data.minFreeMb === 0 || freeMb(config.data.dir) >= config.data.minFreeMb,
      detectors: deps.detectorProblems.length === 0,
      pacsReachable: deps.pacsReachable(),
    };
    const ready = checks.storeWritable && checks.diskSpace && checks.detectors && checks.pacsReachable !== false;
    res.status(ready ? 200 : 503).json({ ready, checks, detectors: deps.detectorIds, problems: deps.detectorProblems });
  });

  // Below the free-space floor the whole request is refused before its body is read (DESIGN §3: STOW 507), so a
  // sender keeps the study and retries instead of half of it landing here.
  const diskGuard: express.RequestHandler = (_req, _res, next) => {
    if (config.data.minFreeMb > 0 && freeMb(config.data.dir) < config.data.minFreeMb)
      return next(new RadnodeError('RN_INGEST_DISK_FULL', `less than ${config.data.minFreeMb} MB free in the data folder; try again later`));
    next();
  };

  app.post(
    STOW_PATHS,
    ingestRole,
    diskGuard,
    createStowHandler({
      inFlight: deps.stowInFlight,
      tmpDir: join(config.data.dir, 'tmp'),
      maxBodyBytes: config.server.maxStowBytes,
      log: log.child({ stage: 'ingest' }),
      ingestPart: async (part, ctx) => {
        const r = await ingestFile(
          { store, dataDir: config.data.dir, minFreeMb: config.data.minFreeMb, node: config.node, log },
          { tempPath: part.tempPath, sha256: part.sha256, size: part.size },
          { source: 'stow', expectedStudyUID: ctx.studyInstanceUID },
        );
        return r;
      },
      onRequestComplete: ({ studies, req }) => {
        const sender = req.principal?.name !== 'local' ? req.principal?.name : req.header('x-radnode-sender');
        if (sender && config.workflow.wholeStudySenders.includes(sender)) {
          for (const s of studies) void engine.completeNow(s, `whole-study sender ${sender}`).catch((err) => log.error('completing study failed', { err: asRadnodeError(err) }));
        }
      },
    }),
  );

  app.get('/api/jobs', readRole, async (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : undefined;
    if (state && !JOB_STATES.includes(state as JobState)) throw new RadnodeError('RN_USAGE', `state must be one of ${JOB_STATES.join(', ')}`);
    const jobs = await store.listJobs({ state: state as JobState | undefined, study: typeof req.query.study === 'string' ? req.query.study : undefined });
    res.json({ jobs: jobs.map(jobView) });
  });
  app.get('/api/jobs/:id', readRole, async (req, res) => {
    const job = await store.getJob(jobId(req.params.id));
    if (!job) throw new RadnodeError('RN_JOB_NOT_FOUND', `job ${req.params.id} does not exist`);
    const outputs = (await store.listOutputs(job.id)).map((o) => ({ sopInstanceUID: o.sop_instance_uid, kind: o.kind, seriesInstanceUID: o.series_uid, deliveredAt: o.delivered_at, retractedAt: o.retracted_at, purgedAt: o.purged_at ?? null }));
    res.json({ ...jobView(job), result: job.result_json ? JSON.parse(job.result_json) : null, outputs, deliveries: await store.listDeliveries(job.id), audit: await store.listAudit('job', job.id) });
  });
  app.post('/api/jobs/:id/retry', operatorRole, async (req, res) => {
    res.json(jobView(await store.retryJob(jobId(req.params.id), req.principal!.name)));
  });
  app.post('/api/jobs/:id/cancel', operatorRole, async (req, res) => {
    res.json(jobView(await store.cancelJob(jobId(req.params.id), req.principal!.name)));
  });
  app.get('/api/studies', readRole, async (_req, res) => {
    const studies = await store.listStudies();
    const out = [];
    for (const s of studies) {
      const jobs = await store.listJobs({ study: s.study_uid });
      const series = await store.listSeries(s.study_uid);
      out.push({
        study: s.study_uid, state: s.state, studyDate: s.study_date, receivedAt: new Date(s.last_received_at).toISOString(),
        series: series.map((x) => ({ series: x.series_uid, modality: x.modality, instances: x.instance_count, detector: x.route_detector, notProcessed: x.route_reason_code ? { code: x.route_reason_code, detail: x.route_reason_detail } : null })),
        jobs: jobs.filter((j) => j.superseded_by === null).map(jobView),
      });
    }
    res.json({ studies: out });
  });
  app.get('/api/metrics', readRole, async (_req, res) => {
    res.json({ jobs: await store.jobCounts(), conflicts: await store.countConflicts() });
  });

  if (deps.worklist) app.use(createWorklistRouter({ service: deps.worklist, store, config, readRole, log }));

  app.use((_req, _res, next) => next(new RadnodeError('RN_NOT_FOUND', 'no such route')));
  // One error middleware maps a code to its HTTP status and `{ code, message }` (style.md §5).
  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const e = clientError(err) ?? asRadnodeError(err);
    const status = e.httpStatus;
    if (status >= 500) log.error('request failed', { method: req.method, path: req.path, code: e.code, err: e });
    if (e.code === 'RN_AUTH_REQUIRED') res.setHeader('WWW-Authenticate', 'Basic realm="radnode"');
    res.status(status).json({ code: e.code, message: e.message, requestId: randomUUID() });
  });
  return app;
}
