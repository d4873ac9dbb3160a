import { Worker } from 'node:worker_threads';
import { RadnodeError, type ErrorCode, ERROR_TABLE } from '../errors.ts';
import type { CtReply, CtRequest, MammogramReply, MammogramRequest, OpenReply, RadiographReply, RadiographRequest, SessionSettings, WorkerReply, WorkerRequest } from './protocol.ts';

type Pending = { resolve: (v: unknown) => void; reject: (e: RadnodeError) => void };
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/**
 * The main thread's handle on the inference worker (worker.ts). One worker holds every session and runs one image
 * at a time with all of onnxruntime's intra-op threads: on a 2-core node one inference at a time uses both cores
 * (DESIGN §3 Scheduling), and two concurrent runs would only fight for them. Decode, preprocessing and the forward
 * pass all happen there, so the HTTP thread never waits on pixels.
 */
/**
 * How long one request may hold the worker: a CT study takes tens of seconds on 2 cores, a film well under one. Past
 * this the worker is ended and a new one started, so one file that hangs a decoder cannot stall every later study.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10 * 60_000;

export class InferenceRuntime {
  private worker: Worker;
  private readonly pending = new Map<number, Pending & { timer?: NodeJS.Timeout }>();
  private nextId = 1;
  private dead: RadnodeError | null = null;
  private stopped = false;
  /** Sessions to open again in a new worker: key → model path. */
  private readonly sessions = new Map<string, string>();
  private restarting: Promise<void> | null = null;
  readonly settings: SessionSettings;
  private readonly timeoutMs: number;

  constructor(settings: SessionSettings, opts: { requestTimeoutMs?: number } = {}) {
    this.settings = settings;
    this.timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url));
    worker.unref();
    worker.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      this.refCount();
      if (m.ok) p.resolve(m.value);
      else {
        const code = (m.code in ERROR_TABLE ? m.code : 'RN_INTERNAL') as ErrorCode;
        p.reject(new RadnodeError(code, m.message, { details: m.details }));
      }
    });
    const die = (err: RadnodeError) => {
      if (worker === this.worker) this.fail(err); // not an old worker's exit after a restart
    };
    worker.on('error', (err) => die(new RadnodeError('RN_INTERNAL', `the inference worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => die(new RadnodeError('RN_INTERNAL', `the inference worker exited (code ${code})`)));
    return worker;
  }

  /** A worker that died (out of memory, a native crash) or was ended for a hung request is replaced, its sessions reopened. */
  private async revive(): Promise<void> {
    this.restarting ??= (async () => {
      this.worker = this.spawn();
      this.dead = null;
      for (const [key, path] of this.sessions) await this.call<OpenReply>({ type: 'open', key, path, settings: this.settings });
    })().finally(() => (this.restarting = null));
    return this.restarting;
  }

  /** The worker keeps the process alive only while it has work: an idle `radnode analyze` can exit. */
  private refCount(): void {
    if (this.pending.size) this.worker.ref();
    else this.worker.unref();
  }

  private async call<T>(req: DistributiveOmit<WorkerRequest, 'id'>): Promise<T> {
    if (this.stopped) return Promise.reject(this.dead ?? new RadnodeError('RN_INTERNAL', 'the inference runtime was stopped'));
    if (this.restarting && req.type !== 'open') await this.restarting;
    if (this.dead) await this.revive();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      // Opening a model is bounded by its size and done at start-up; the image and study requests are what can hang.
      const timer = req.type === 'open' || req.type === 'close' ? undefined : setTimeout(() => this.timedOut(id, req.type), this.timeoutMs);
      timer?.unref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.refCount();
      this.worker.postMessage({ ...req, id } as WorkerRequest);
    });
  }

  /** A request past its time: it fails for good (the same input would hang again), and the worker is replaced. */
  private timedOut(id: number, type: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.reject(new RadnodeError('RN_INFERENCE_TIMEOUT', `the ${type} request took longer than ${Math.round(this.timeoutMs / 1000)} s; the inference worker was restarted`, { retryable: false }));
    const old = this.worker;
    this.fail(new RadnodeError('RN_INTERNAL', 'the inference worker was restarted after a request timed out'));
    void old.terminate();
  }

  /** The current worker is gone: every request it held fails with `err`, and the next request starts a new one. */
  private fail(err: RadnodeError): void {
    this.dead = err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  /** Opens (once) the session of a verified model file; its metadata is checked against the manifest by the registry. */
  async open(key: string, path: string): Promise<OpenReply> {
    const reply = await this.call<OpenReply>({ type: 'open', key, path, settings: this.settings });
    this.sessions.set(key, path);
    return reply;
  }

  close(key: string): Promise<void> {
    this.sessions.delete(key);
    return this.call<void>({ type: 'close', key });
  }

  /** Decode the first frame, preprocess per the manifest, infer, map the CAM back: all in the worker. */
  radiograph(req: Omit<RadiographRequest, 'type'>): Promise<RadiographReply> {
    return this.call<RadiographReply>({ type: 'radiograph', ...req });
  }

  /** A mammogram: decode, orient (chest wall left), crop to the breast, infer, map the cells back; in the worker. */
  mammogram(req: Omit<MammogramRequest, 'type'>): Promise<MammogramReply> {
    return this.call<MammogramReply>({ type: 'mammogram', ...req });
  }

  /** A chest CT study: choose the series, build the volume, find and measure nodules; all in the worker (issue 7). */
  ct(req: Omit<CtRequest, 'type'>): Promise<CtReply> {
    return this.call<CtReply>({ type: 'ct', ...req });
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    this.dead ??= new RadnodeError('RN_INTERNAL', 'the inference runtime was stopped');
    await this.worker.terminate();
  }
}
