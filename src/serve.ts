import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { createApp } from './api/app.ts';
import { startViewer, type RunningViewer } from './api/viewer/server.ts';
import type { RadnodeConfig } from './config/types.ts';
import { qido, DELIVERY_CODES } from './delivery/dicomweb.ts';
import { startBuiltinDetectors } from './detectors/index.ts';
import type { Detector } from './detectors/detector.ts';
import { asRadnodeError } from './errors.ts';
import { readIngestHeader } from './ingest/header.ts';
import { ingestFile } from './ingest/ingest-instance.ts';
import { lockDataDir, type DataLock } from './store/data-lock.ts';
import { pollSources } from './ingest/poll-runner.ts';
import type { PollSink, PollSource } from './ingest/poll/sink.ts';
import { schedulePoller } from './ingest/poll/schedule.ts';
import { CallerPolicy } from './ingest/dimse/callers.ts';
import { StowInFlight } from './ingest/stow/in-flight.ts';
import { pollDimse } from './ingest/poll/dimse.ts';
import { startScp, type RunningScp } from './ingest/dimse/scp.ts';
import { createLogger, type Logger } from './log.ts';
import { writeResultObjects } from './results/write.ts';
import { writeFileDurable } from './store/durable-file.ts';
import { SqliteStore } from './store/store.ts';
import { isOwnInstance } from './workflow/loop-guard.ts';
import { WorkflowEngine } from './workflow/engine.ts';
import { WorklistService } from './worklist/service.ts';
import { loadDetectors } from './workflow/registry.ts';

export type RunningNode = {
  config: RadnodeConfig;
  store: SqliteStore;
  engine: WorkflowEngine;
  worklist: WorklistService;
  server: Server;
  port: number;
  /** The built-in viewer when viewer.enabled (its own port: OHIF needs the root of an origin). */
  viewer: RunningViewer | null;
  /** The DICOM Storage SCP when dimse.enabled. */
  dimse: RunningScp | null;
  log: Logger;
  stop(): Promise<void>;
};

function listFiles(dir: string): string[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]));
}

/**
 * After a crash: temp files are dropped (never acknowledged), and instance files that were renamed into place but
 * not yet recorded (a kill between fsync and the insert) are recorded now; they were durable, and Orthanc does not
 * retry a failed push, so dropping them would lose a study until the reconciliation poll. Files of instances and
 * result objects that retention marked purged are deleted (a crash came between the mark and the delete).
 */
async function recover(config: RadnodeConfig, store: SqliteStore, log: Logger): Promise<void> {
  rmSync(join(config.data.dir, 'tmp'), { recursive: true, force: true });
  const known = await store.knownInstancePaths();
  let recovered = 0;
  for (const path of listFiles(join(config.data.dir, 'instances'))) {
    // A crash between marking a study purged and deleting its files: finish the purge.
    if (known.purged.has(path)) rmSync(path, { force: true });
    if (known.all.has(path) || !path.endsWith('.dcm')) continue;
    try {
      const bytes = await readFile(path);
      const h = readIngestHeader(bytes);
      if (await store.getInstance(h.sopInstanceUID)) continue;
      await store.recordInstance({ ...h, path, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), source: 'recovered', isOwn: isOwnInstance(h, config.node) });
      recovered++;
    } catch (err) {
      log.warn('unreadable instance file left by a crash; removed', { path, err: asRadnodeError(err) });
      rmSync(path, { force: true });
    }
  }
  if (recovered) log.info('recovered instances written before a crash', { recovered });
  for (const path of await store.purgedOutputPaths()) rmSync(path, { force: true });
}

/** The poll sink: pollers hand over bytes; they go through the same durable ingest as STOW. */
function pollSink(config: RadnodeConfig, store: SqliteStore, engine: WorkflowEngine, log: Logger): PollSink {
  const tmp = join(config.data.dir, 'tmp');
  return {
    getCheckpoint: (n) => store.getCheckpoint(n),
    setCheckpoint: (n, v) => store.setCheckpoint(n, v),
    knownInstanceCount: (s) => store.instanceCountOfStudy(s),
    deliveredOwnCount: (s) => store.deliveredOutputCount(s),
    knownInstances: (s) => store.instanceUIDsOfStudy(s),
    purgedInstances: (s) => store.purgedInstanceUIDsOfStudy(s),
    ingest: async (bytes: Uint8Array, origin: { source: PollSource; studyInstanceUID: string }) => {
      const tempPath = join(tmp, `poll-${randomUUID()}.part`);
      writeFileDurable(tempPath, bytes);
      await ingestFile({ store, dataDir: config.data.dir, minFreeMb: config.data.minFreeMb, node: config.node, log }, { tempPath }, { source: origin.source });
    },
    // Orthanc's StableStudy already is the completeness signal; a QIDO-found study waits for the quiet period.
    studyRetrieved: config.poll.source === 'orthanc-changes' ? (s) => engine.completeNow(s, 'orthanc StableStudy') : undefined,
  };
}

/** Starts the daemon: store, recovery, detectors, workflow, HTTP, pollers. */
export async function startNode(config: RadnodeConfig, opts: { extraDetectors?: Detector[]; log?: Logger } = {}): Promise<RunningNode> {
  mkdirSync(config.data.dir, { recursive: true });
  // Before recovery touches anything: recovery is only right when no other daemon uses the folder.
  const lock = lockDataDir(config.data.dir);
  try {
    return await startLockedNode(config, opts, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLockedNode(config: RadnodeConfig, opts: { extraDetectors?: Detector[]; log?: Logger }, lock: DataLock): Promise<RunningNode> {
  const log = opts.log ?? createLogger(config.logging.level, { service: 'radnode' });
  const store = SqliteStore.open(join(config.data.dir, 'radnode.sqlite'));
  await recover(config, store, log);
  await store.restartQuietPeriods();
  const released = await store.releaseAllLeases();
  if (released) log.info('resuming jobs interrupted by a crash', { jobs: released });
  const builtin = await startBuiltinDetectors(config.inference, log);
  const loaded = await loadDetectors([...builtin.detectors, ...(opts.extraDetectors ?? [])], config.detectors.modules);
  const { detectors } = loaded;
  const problems = [...builtin.problems, ...loaded.problems];
  for (const p of problems) log.error('detector refused', p);
  const orphaned = await store.failJobsOfUnknownDetectors([...detectors.keys()]);
  if (orphaned.length) log.warn('jobs of detectors that are not installed were dead-lettered', { jobs: orphaned });
  const worklist = new WorklistService({ store, config, log });
  await worklist.start();
  // The engine is created just below; the policy only calls completeNow later, from a timer.
  const callerPolicy: CallerPolicy = new CallerPolicy({ store, log, completeNow: (s, r): Promise<void> => engine.completeNow(s, r) });
  const stowInFlight = new StowInFlight();
  // A study stays open while a DIMSE caller's own quiet period runs, or while a STOW request is still streaming it.
  const studyPolicy = { holds: (s: string) => callerPolicy.holds(s) || stowInFlight.has(s), allowedDetectors: (s: string) => callerPolicy.allowedDetectors(s) };
  const engine = new WorkflowEngine({ config, store, detectors, writeResults: writeResultObjects, log, onDelivered: (job) => worklist.onJobDelivered(job.study_uid), studyPolicy });

  let pacsReachable: boolean | null = null;
  const probe = async () => {
    if (!config.pacs) return;
    try {
      await qido(config.pacs, '/studies?limit=1', DELIVERY_CODES);
      pacsReachable = true;
    } catch {
      pacsReachable = false;
    }
  };
  void probe();
  const probeTimer = setInterval(() => void probe(), 30_000);
  probeTimer.unref();

  const app = createApp({ config, store, engine, log, detectorIds: [...detectors.keys()], detectorProblems: problems, pacsReachable: () => pacsReachable, worklist, stowInFlight });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.server.port, config.server.host, () => resolve(s));
    s.once('error', reject);
  });
  // A STOW of a whole CT can take minutes on a slow link: no request timeout. A socket silent for 10 minutes in both
  // directions is closed, though: a stalled or half-open upload otherwise held its descriptor and temp file forever
  // (the worklist's event stream sends a heartbeat every 15 s, so it is never idle that long).
  server.requestTimeout = 0;
  server.timeout = 600_000;
  server.keepAliveTimeout = 5_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  let viewer: RunningViewer | null = null;
  try {
    viewer = config.viewer.enabled ? await startViewer(config, log.child({ stage: 'viewer' })) : null;
  } catch (err) {
    await new Promise<void>((r) => server.close(() => r()));
    store.close();
    throw err;
  }
  let dimse: RunningScp | null = null;
  try {
    dimse = config.dimse.enabled ? await startScp({ config, store, log: log.child({ stage: 'dimse' }), onStored: (x) => callerPolicy.stored(x.outcome.studyInstanceUID, x.caller) }) : null;
  } catch (err) {
    await viewer?.stop();
    await new Promise<void>((r) => server.close(() => r()));
    store.close();
    throw err;
  }
  engine.start();

  const pollers: { stop(): void }[] = [];
  if (config.poll.enabled && config.poll.source === 'dimse') {
    // A PACS without DICOMweb: C-FIND the window, C-MOVE what is missing to our own SCP (src/ingest/poll/dimse.ts).
    const modalities = config.poll.onlyRoutedModalities ? [...new Set(config.routing.rules.flatMap((r) => r.match.modality ?? []))] : undefined;
    const sink = pollSink(config, store, engine, log);
    const fn = () => pollDimse(config.dimse.destination, config.dimse, sink, { lookbackDays: config.poll.lookbackDays, modalities: modalities?.length ? modalities : undefined, log: log.child({ stage: 'poll' }) });
    pollers.push(schedulePoller(config.poll.schedule, fn, log));
    void fn().catch((err) => log.warn('initial poll failed', { err: asRadnodeError(err) }));
  } else if (config.poll.enabled && config.pacs && config.poll.source !== 'dimse') {
    const modalities = config.poll.onlyRoutedModalities ? [...new Set(config.routing.rules.flatMap((r) => r.match.modality ?? []))] : undefined;
    const sink = pollSink(config, store, engine, log);
    const fn = pollSources(config.poll.source, config.pacs, sink, { lookbackDays: config.poll.lookbackDays, modalities: modalities?.length ? modalities : undefined, log: log.child({ stage: 'poll' }) });
    pollers.push(schedulePoller(config.poll.schedule, fn, log));
    // The reconciliation poll runs once at start-up too: a push lost while radnode was down is found at once.
    void fn().catch((err) => log.warn('initial poll failed', { err: asRadnodeError(err) }));
  }
  log.info('radnode started', { port, host: config.server.host, dataDir: config.data.dir, detectors: [...detectors.keys()], delivery: config.delivery.mode, poll: config.poll.enabled ? config.poll.source : 'off' });

  return {
    config, store, engine, worklist, server, port, viewer, dimse, log,
    async stop() {
      for (const p of pollers) p.stop();
      await dimse?.stop();
      callerPolicy.stop();
      clearInterval(probeTimer);
      await viewer?.stop();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await engine.stop();
      await worklist.stop();
      await builtin.runtime.terminate();
      store.close();
      lock.release();
    },
  };
}
