import { createHmac } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { RadnodeConfig } from '../config/types.ts';
import { RadnodeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { backoffMs } from '../workflow/engine.ts';

/** `sha256=<hex>`: HMAC-SHA256 of the exact body bytes, as GitHub's X-Hub-Signature-256, so receivers reuse code. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

type DeliveryRow = { id: number; job_id: number; study_uid: string; body_json: string; attempts: number };

/**
 * Sends the persisted urgent-result deliveries, one at a time, oldest first. A delivery is a row before it is a
 * request, so a restart resumes it; its body is frozen at creation, so every retry carries the same bytes and the
 * same X-Radnode-Delivery id and a receiver can drop a repeat (a crash after the receiver's 2xx but before the
 * store records it is the one case that sends twice). Never called from the pipeline: the engine does not wait.
 */
export class WebhookSender {
  private readonly db: Database.Database;
  private readonly cfg: RadnodeConfig['worklist']['webhook'];
  private readonly log: Logger;
  private sending = false;

  constructor(db: Database.Database, cfg: RadnodeConfig['worklist']['webhook'], log: Logger) {
    this.db = db;
    this.cfg = cfg;
    this.log = log;
  }

  get enabled(): boolean {
    return this.cfg.url !== '';
  }

  /** Sends every due delivery; concurrent calls coalesce. Never throws. */
  async sendDue(now = () => Date.now()): Promise<void> {
    if (!this.enabled || this.sending) return;
    this.sending = true;
    try {
      for (;;) {
        const d = this.db
          .prepare(`SELECT id, job_id, study_uid, body_json, attempts FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1`)
          .get(now()) as DeliveryRow | undefined;
        if (!d) return;
        await this.attempt(d, now);
      }
    } finally {
      this.sending = false;
    }
  }

  private async attempt(d: DeliveryRow, now: () => number): Promise<void> {
    const attempt = d.attempts + 1;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(this.cfg.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-radnode-signature': signBody(this.cfg.secret, d.body_json),
          'x-radnode-delivery': `job-${d.job_id}`,
          'x-radnode-attempt': String(attempt),
          'user-agent': 'radnode-webhook',
        },
        body: d.body_json,
        signal: AbortSignal.timeout(this.cfg.timeoutMs),
        redirect: 'error',
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new RadnodeError('RN_WEBHOOK_REJECTED', `webhook receiver answered ${res.status}`);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const at = now();
    const audit = this.db.prepare('INSERT INTO audit (at, actor, action, entity, entity_id, detail_json) VALUES (?, ?, ?, ?, ?, ?)');
    if (error === null) {
      this.db.transaction(() => {
        this.db.prepare(`UPDATE webhook_deliveries SET state = 'delivered', attempts = ?, last_status = ?, last_error = NULL, delivered_at = ? WHERE id = ?`).run(attempt, status, at, d.id);
        audit.run(at, 'worklist', 'webhook.delivered', 'job', String(d.job_id), JSON.stringify({ attempt, status }));
      })();
      this.log.info('webhook delivered', { jobId: d.job_id, attempt, status });
      return;
    }
    const dead = attempt >= this.cfg.maxAttempts;
    const next = at + backoffMs(this.cfg.backoffBaseMs, this.cfg.backoffMaxMs, attempt);
    this.db.transaction(() => {
      this.db
        .prepare(`UPDATE webhook_deliveries SET state = ?, attempts = ?, last_status = ?, last_error = ?, next_attempt_at = ? WHERE id = ?`)
        .run(dead ? 'failed' : 'pending', attempt, status, error.slice(0, 500), next, d.id);
      if (dead) audit.run(at, 'worklist', 'webhook.failed', 'job', String(d.job_id), JSON.stringify({ attempt, status, error: error.slice(0, 200) }));
    })();
    this.log[dead ? 'error' : 'warn'](dead ? 'webhook delivery failed for good' : 'webhook delivery failed; will retry', {
      code: 'RN_WEBHOOK_REJECTED', jobId: d.job_id, attempt, status, error: error.slice(0, 200), nextAttemptAt: dead ? null : next,
    });
  }

  async listDeliveries(): Promise<{ job_id: number; state: string; attempts: number; last_status: number | null }[]> {
    return this.db.prepare('SELECT job_id, state, attempts, last_status FROM webhook_deliveries ORDER BY id').all() as { job_id: number; state: string; attempts: number; last_status: number | null }[];
  }
}
