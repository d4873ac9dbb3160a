import { EventEmitter } from 'node:events';
import type { RadnodeConfig } from '../config/types.ts';
import { asRadnodeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { SqliteStore } from '../store/store.ts';
import { WorklistModel, type RowChange } from './model.ts';
import { WebhookSender } from './webhook.ts';

const CHECKPOINT = 'worklist.refreshedTo';
/** When the webhook was switched on (empty while it is off): results delivered before then are never announced. */
const WEBHOOK_SINCE = 'worklist.webhookSince';
/**
 * Re-read this far behind the checkpoint: a writer takes its timestamp before its transaction commits, so a row can
 * land with a time just before a scan that did not see it. Refreshing an unchanged study is a no-op.
 */
const OVERLAP_MS = 5_000;

/**
 * Keeps the worklist rows in step with the store and tells live pages about changes. Two paths lead to a refresh:
 * the engine's delivered hook (a result becomes visible: at once) and a reconciler that scans what changed since its
 * checkpoint (failures, arrivals, completions, and anything a crash kept from the hook). Both are idempotent, and
 * neither runs inside the pipeline: a worklist failure is logged and never fails a job.
 */
export class WorklistService {
  readonly model: WorklistModel;
  readonly webhook: WebhookSender;
  private readonly store: SqliteStore;
  private readonly log: Logger;
  private readonly events = new EventEmitter();
  private timer: NodeJS.Timeout | null = null;
  private reconciling = false;
  private readonly tickMs: number;
  private alertSinceMs = 0;

  constructor(deps: { store: SqliteStore; config: RadnodeConfig; log: Logger; tickMs?: number }) {
    this.store = deps.store;
    this.log = deps.log.child({ stage: 'worklist' });
    this.model = new WorklistModel(deps.store);
    this.webhook = new WebhookSender(deps.store.db, deps.config.worklist.webhook, this.log);
    this.tickMs = deps.tickMs ?? 500;
    // Each open page holds one listener; a reading room has tens, not thousands.
    this.events.setMaxListeners(1000);
  }

  async start(): Promise<void> {
    if (this.webhook.enabled) {
      const since = Number((await this.store.getCheckpoint(WEBHOOK_SINCE)) || 0);
      this.alertSinceMs = since || Date.now();
      if (!since) await this.store.setCheckpoint(WEBHOOK_SINCE, String(this.alertSinceMs));
    } else {
      await this.store.setCheckpoint(WEBHOOK_SINCE, '');
    }
    if ((await this.store.getCheckpoint(CHECKPOINT)) === null) {
      // First start on this store (migration 2 just ran): build every row, but announce nothing: results delivered
      // before the worklist existed are history, not new urgent findings.
      const started = Date.now();
      for (const s of await this.model.allStudies()) await this.model.refreshStudy(s, { alert: false });
      await this.store.setCheckpoint(CHECKPOINT, String(started));
    }
    await this.reconcile();
    this.timer = setInterval(() => void this.reconcile(), this.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.events.removeAllListeners();
  }

  /** Live updates for one subscriber (an SSE connection); returns the unsubscribe function. */
  subscribe(fn: (change: RowChange) => void): () => void {
    this.events.on('change', fn);
    return () => this.events.off('change', fn);
  }

  publish(change: RowChange | null): void {
    if (change) this.events.emit('change', change);
  }

  /** The engine's hook: a job was delivered, its result is visible now. Never throws and never blocks the caller. */
  onJobDelivered(studyUID: string): void {
    void this.refresh(studyUID).catch((err) => this.log.warn('worklist refresh after delivery failed', { err: asRadnodeError(err) }));
  }

  private async refresh(studyUID: string): Promise<void> {
    const { change, alerts } = await this.model.refreshStudy(studyUID, { alert: this.webhook.enabled, alertSinceMs: this.alertSinceMs });
    this.publish(change);
    if (alerts.length) void this.webhook.sendDue();
  }

  /** One reconciler pass; exposed for tests. Never throws. */
  async reconcile(): Promise<void> {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      const since = Number((await this.store.getCheckpoint(CHECKPOINT)) ?? 0);
      const now = Date.now();
      for (const s of await this.model.changedStudies(since - OVERLAP_MS)) await this.refresh(s);
      if (now > since) await this.store.setCheckpoint(CHECKPOINT, String(now));
      // Not awaited: a slow receiver (up to its timeout per attempt) must not hold up the worklist's refreshes.
      void this.webhook.sendDue();
    } catch (err) {
      this.log.error('worklist reconcile failed', { err: asRadnodeError(err) });
    } finally {
      this.reconciling = false;
    }
  }
}
