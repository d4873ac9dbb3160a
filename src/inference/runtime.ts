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
export class InferenceRuntime {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: RadnodeError | null = null;
  readonly settings: SessionSettings;

  constructor(settings: SessionSettings) {
    this.settings = settings;
    this.worker = new Worker(new URL('./worker-entry.mjs', import.meta.url));
    this.worker.unref();
    this.worker.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      this.refCount();
      if (m.ok) p.resolve(m.value);
      else {
        const code = (m.code in ERROR_TABLE ? m.code : 'RN_INTERNAL') as ErrorCode;
        p.reject(new RadnodeError(code, m.message, { details: m.details }));
      }
    });
    const die = (err: RadnodeError) => {
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', (err) => die(new RadnodeError('RN_INTERNAL', `the inference worker failed: ${err.message}`, { cause: err })));
    this.worker.on('exit', (code) => die(new RadnodeError('RN_INTERNAL', `the inference worker exited (code ${code})`)));
  }

  /** The worker keeps the process alive only while it has work: an idle `radnode analyze` can exit. */
  private refCount(): void {
    if (this.pending.size) this.worker.ref();
    else this.worker.unref();
  }

  private call<T>(req: DistributiveOmit<WorkerRequest, 'id'>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.refCount();
      this.worker.postMessage({ ...req, id } as WorkerRequest);
    });
  }

  /** Opens (once) the session of a verified model file; its metadata is checked against the manifest by the registry. */
  open(key: string, path: string): Promise<OpenReply> {
    return this.call<OpenReply>({ type: 'open', key, path, settings: this.settings });
  }

  close(key: string): Promise<void> {
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
    this.dead ??= new RadnodeError('RN_INTERNAL', 'the inference runtime was stopped');
    await this.worker.terminate();
  }
}
