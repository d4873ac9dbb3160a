import type { JobState } from '../store/types.ts';

/**
 * A study's place on the worklist. The detectors' own priorities (urgent, positive, negative, unprocessed) apply
 * once a result is visible (its job delivered); `failed` (dead-lettered job) and `pending` (arrived, no result yet)
 * are the worklist's own.
 */
export type WorklistPriority = 'urgent' | 'positive' | 'failed' | 'pending' | 'negative' | 'unprocessed';

/**
 * Reading order. A failed, pending or unprocessed study ranks above a negative one: "the AI has no answer" must
 * never read as "the AI found nothing", so those studies are read as if unscreened, before the ones the AI called
 * negative. A study one detector called negative and another could not read is therefore `unprocessed`.
 */
export const PRIORITY_RANK: Record<WorklistPriority, number> = { urgent: 0, positive: 1, failed: 2, pending: 3, unprocessed: 4, negative: 5 };
export const PRIORITIES = Object.keys(PRIORITY_RANK) as WorklistPriority[];
/** The AI called it abnormal: what the second-reader check looks at. */
export const AI_POSITIVE: readonly WorklistPriority[] = ['urgent', 'positive'];

export const isWorklistPriority = (v: string): v is WorklistPriority => v in PRIORITY_RANK;

/** One detector's newest (non-superseded) job, as the worklist needs it. */
export type DetectorJob = { detector: string; state: JobState; priority: string | null };

/** The worklist priority a single job contributes; null for a job that no longer counts (cancelled). */
export function jobPriority(j: DetectorJob): WorklistPriority | null {
  if (j.state === 'cancelled' || j.state === 'superseded') return null;
  if (j.state === 'failed') return 'failed';
  // Before delivery the result is not in the PACS yet: a reader could not see what the worklist would claim.
  if (j.state !== 'delivered') return 'pending';
  return j.priority && isWorklistPriority(j.priority) ? j.priority : 'unprocessed';
}

/**
 * A study's priority: the most urgent of its detectors' newest jobs. With no job, a complete study whose series
 * were all skipped by routing is `unprocessed`; one still receiving is `pending`.
 */
export function studyPriority(jobs: readonly DetectorJob[], studyComplete: boolean): WorklistPriority {
  let best: WorklistPriority | null = null;
  for (const j of jobs) {
    const p = jobPriority(j);
    if (p && (best === null || PRIORITY_RANK[p] < PRIORITY_RANK[best])) best = p;
  }
  return best ?? (studyComplete ? 'unprocessed' : 'pending');
}

/** Worklist order: priority, then the oldest arrival first (it has waited longest), then the UID for stability. */
export function compareRows(a: { priority: WorklistPriority; arrivedAt: number; study: string }, b: { priority: WorklistPriority; arrivedAt: number; study: string }): number {
  return PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || a.arrivedAt - b.arrivedAt || (a.study < b.study ? -1 : a.study > b.study ? 1 : 0);
}

/**
 * The jobs a study's row shows, per detector: the newest job, and while it is not delivered (a re-run after a late
 * series or a re-send, queued, running or failed) also the newest delivered one, whose SR is still what the PACS
 * holds until its successor is delivered. So a re-run never hides an urgent result, and a study never ranks below
 * the result a reader can open. `jobs`: one study's jobs, cancelled and stopped ones left out.
 */
export function shownJobs<J extends { id: number; detector: string; state: JobState; superseded_by: number | null }>(jobs: readonly J[]): J[] {
  const byDetector = new Map<string, J[]>();
  for (const j of [...jobs].sort((a, b) => a.id - b.id)) {
    const js = byDetector.get(j.detector);
    if (js) js.push(j);
    else byDetector.set(j.detector, [j]);
  }
  const out: J[] = [];
  for (const [, js] of [...byDetector].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const current = js.filter((j) => j.superseded_by === null).at(-1);
    const delivered = js.filter((j) => j.state === 'delivered').at(-1);
    // A delivered current job is the newest delivered one: then it alone is shown.
    if (delivered && delivered !== current) out.push(delivered);
    if (current) out.push(current);
  }
  return out;
}
