/** Runs a poller on a node-cron schedule. */
import cron from 'node-cron';
import { RadnodeError, asRadnodeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';

/**
 * Schedules `fn` on a cron expression (seconds field allowed). A tick that finds the previous run still going is
 * skipped rather than queued: a slow PACS must not pile up concurrent polls. Nothing thrown by `fn` leaves the tick;
 * it is logged once here, where it is handled.
 */
export function schedulePoller(expr: string, fn: () => Promise<unknown>, log: Logger): { stop(): void } {
  if (!cron.validate(expr)) {
    throw new RadnodeError('RN_CONFIG_INVALID', `poll.schedule is not a valid cron expression: ${expr}`, {
      details: { key: 'poll.schedule', value: expr },
    });
  }
  let running = false;
  let stopped = false;
  const tick = async (): Promise<void> => {
    if (running || stopped) {
      if (running) log.debug('poll: previous run still going, tick skipped');
      return;
    }
    running = true;
    try {
      await fn();
    } catch (err) {
      const e = asRadnodeError(err, 'RN_POLL_FAILED');
      log.warn('poll: run failed', { code: e.code, retryable: e.retryable, error: e.message, details: e.details });
    } finally {
      running = false;
    }
  };
  const task = cron.schedule(expr, () => {
    void tick();
  });
  return {
    stop(): void {
      stopped = true;
      void task.stop();
    },
  };
}
