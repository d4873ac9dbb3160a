import type Database from 'better-sqlite3';
import { RadnodeError } from '../errors.ts';
import type { SqliteStore } from '../store/store.ts';
import type { JobState } from '../store/types.ts';
import { dayEndMs, dayStartMs } from './calendar.ts';
import { keyFindingText, type ResultSummary } from './key-finding.ts';
import { AI_POSITIVE, jobPriority, PRIORITY_RANK, shownJobs, studyPriority, type WorklistPriority } from './priority.ts';
import type { WorklistQuery } from './query.ts';

export type ReviewDecision = 'agree' | 'disagree' | 'dismissed';
export const REVIEW_DECISIONS: readonly ReviewDecision[] = ['agree', 'disagree', 'dismissed'];
export type ReviewState = 'new' | 'opened' | 'reviewed';
export const REVIEW_STATES: readonly ReviewState[] = ['new', 'opened', 'reviewed'];

/** One detector's newest visible result on a study (superseded ones are hidden here but kept in `jobs`). */
export type DetectorResultView = {
  detector: string;
  jobId: number;
  state: JobState;
  priority: WorklistPriority;
  studyScore: number | null;
  keyFinding: string | null;
  resultAt: string | null;
};

/** A worklist row as the API and the page see it. Patient name and ID are for display only: never log a row. */
export type WorklistRow = {
  study: string;
  patientName: string | null;
  patientId: string | null;
  accessionNumber: string | null;
  studyDate: string | null;
  studyDescription: string | null;
  modalities: string[];
  detectors: string[];
  priority: WorklistPriority;
  studyScore: number | null;
  keyFinding: string | null;
  keyJobId: number | null;
  /** The key result has a heatmap SC: the page asks for its thumbnail. */
  hasHeatmap: boolean;
  arrivedAt: string;
  resultAt: string | null;
  review: { state: ReviewState; decision: ReviewDecision | null; reader: string | null; reason: string | null; at: string | null };
  secondReview: { decision: ReviewDecision; reader: string; reason: string | null; at: string } | null;
  results: DetectorResultView[];
};

type DbRow = {
  study_uid: string; priority: WorklistPriority; priority_rank: number; study_score: number | null; key_finding: string | null; key_job_id: number | null;
  result_key: string; detectors: string; modalities: string; results_json: string; arrived_at: number; result_at: number | null;
  review_state: ReviewState; review_decision: ReviewDecision | null; reviewer: string | null; review_reason: string | null; reviewed_at: number | null;
  second_decision: ReviewDecision | null; second_reader: string | null; second_reason: string | null; second_at: number | null; version: number;
  has_heatmap: number; patient_name: string | null; patient_id: string | null; accession_number: string | null; study_date: string | null; study_description: string | null;
};

/** A job as the worklist reads it (shownJobs picks which ones a row shows). */
type ShownJob = { id: number; detector: string; state: JobState; priority: string | null; study_score: number | null; result_json: string | null; updated_at: number; superseded_by: number | null };

/** A study whose worklist row changed, for server-sent events and the webhook. */
export type RowChange = { study: string; priority: WorklistPriority; version: number };

/** A newly visible urgent result that the webhook must announce exactly once (one delivery row per job). */
export type UrgentAlert = { jobId: number; study: string; body: string };

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
// '|' delimits list columns so that one instr() finds a whole value ('|CR|' never matches 'CRX').
const packList = (xs: string[]) => (xs.length ? `|${xs.join('|')}|` : '');
const unpackList = (s: string) => s.split('|').filter(Boolean);

function toView(r: DbRow): WorklistRow {
  return {
    study: r.study_uid, patientName: r.patient_name, patientId: r.patient_id, accessionNumber: r.accession_number,
    studyDate: r.study_date, studyDescription: r.study_description,
    modalities: unpackList(r.modalities), detectors: unpackList(r.detectors),
    priority: r.priority, studyScore: r.study_score, keyFinding: r.key_finding, keyJobId: r.key_job_id, hasHeatmap: r.has_heatmap === 1,
    arrivedAt: new Date(r.arrived_at).toISOString(), resultAt: iso(r.result_at),
    review: { state: r.review_state, decision: r.review_decision, reader: r.reviewer, reason: r.review_reason, at: iso(r.reviewed_at) },
    secondReview: r.second_decision ? { decision: r.second_decision, reader: r.second_reader ?? '', reason: r.second_reason, at: iso(r.second_at)! } : null,
    results: JSON.parse(r.results_json) as DetectorResultView[],
  };
}

/** SQL for a query's filters; shared by the API and the benchmark's direct-SQLite reference. */
export function whereOf(q: WorklistQuery): { sql: string; args: (string | number)[] } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (q.priorities.length) {
    where.push(`w.priority_rank IN (${q.priorities.map(() => '?').join(', ')})`);
    args.push(...q.priorities.map((p) => PRIORITY_RANK[p]));
  }
  if (q.modality) (where.push(`instr(w.modalities, ?) > 0`), args.push(`|${q.modality}|`));
  if (q.detector) (where.push(`instr(w.detectors, ?) > 0`), args.push(`|${q.detector}|`));
  if (q.from) (where.push('w.arrived_at >= ?'), args.push(dayStartMs(q.from, q.tz)));
  if (q.to) (where.push('w.arrived_at < ?'), args.push(dayEndMs(q.to, q.tz)));
  if (q.review) (where.push('w.review_state = ?'), args.push(q.review));
  if (q.tab === 'second') {
    // Second-reader check (issue 10 §3): the AI called it abnormal and no reader agreed or dismissed it yet, or a
    // reader disagreed and no second reader has decided.
    where.push(`w.priority_rank IN (${AI_POSITIVE.map((p) => PRIORITY_RANK[p]).join(', ')})`);
    where.push(`w.second_decision IS NULL AND (w.review_state <> 'reviewed' OR w.review_decision = 'disagree')`);
  }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}

const ROW_COLUMNS = `w.*, s.patient_name, s.patient_id, s.accession_number, s.study_date, s.study_description,
  EXISTS (SELECT 1 FROM outputs o WHERE o.job_id = w.key_job_id AND o.kind = 'heatmap-sc' AND o.retracted_at IS NULL AND o.purged_at IS NULL) AS has_heatmap`;

export const LIST_SQL = (where: string) => `SELECT ${ROW_COLUMNS}
  FROM worklist w JOIN studies s ON s.study_uid = w.study_uid ${where}
  ORDER BY w.priority_rank, w.arrived_at, w.study_uid LIMIT ? OFFSET ?`;

/**
 * The worklist's rows in the store: derived from studies, series and jobs by `refreshStudy` (idempotent; a no-op
 * when nothing changed), plus the reader's review, which is primary data. better-sqlite3 is synchronous; methods
 * are async like the store's so that a PostgreSQL store can replace it (DESIGN §7).
 */
export class WorklistModel {
  private readonly db: Database.Database;

  constructor(store: SqliteStore) {
    this.db = store.db;
  }

  /** The newest change's version: the ETag's source, so a 304 costs one index lookup and no list query. */
  version(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM worklist').get() as { v: number }).v;
  }

  private nextVersion(): number {
    return this.version() + 1;
  }

  /** Studies touched since `sinceMs` (arrivals, completion, any job change): the reconciler's work list. */
  async changedStudies(sinceMs: number): Promise<string[]> {
    // UNION ALL, de-duplicated here: a plain UNION makes SQLite merge whole-table scans instead of using the three
    // time indexes, and this runs every tick.
    const rows = this.db
      .prepare(`SELECT study_uid FROM studies WHERE last_received_at >= @t
                UNION ALL SELECT study_uid FROM studies WHERE completed_at >= @t
                UNION ALL SELECT study_uid FROM jobs WHERE updated_at >= @t`)
      .all({ t: sinceMs }) as { study_uid: string }[];
    return [...new Set(rows.map((r) => r.study_uid))];
  }

  async allStudies(): Promise<string[]> {
    return (this.db.prepare('SELECT study_uid FROM studies').all() as { study_uid: string }[]).map((r) => r.study_uid);
  }

  /**
   * Recomputes one study's row from the store. Returns the change (null when nothing changed) and, when `alert`
   * is set and a webhook is configured, records one webhook delivery per newly visible urgent job; the UNIQUE
   * job_id makes a second refresh of the same result (hook and reconciler both see it) a no-op.
   */
  async refreshStudy(studyUID: string, opts: { alert: boolean; alertSinceMs?: number; now?: number }): Promise<{ change: RowChange | null; alerts: UrgentAlert[] }> {
    const now = opts.now ?? Date.now();
    return this.db.transaction(() => {
      const study = this.db.prepare('SELECT * FROM studies WHERE study_uid = ?').get(studyUID) as
        | { state: string; first_received_at: number; accession_number: string | null }
        | undefined;
      if (!study) return { change: null, alerts: [] };
      const series = this.db.prepare('SELECT DISTINCT modality FROM series WHERE study_uid = ? AND is_own = 0 AND modality IS NOT NULL ORDER BY modality').all(studyUID) as { modality: string }[];
      // Only our own objects so far (e.g. results of a study whose images were purged): nothing to read.
      if (series.length === 0 && study.state !== 'complete') return { change: null, alerts: [] };
      const jobs = shownJobs(
        this.db
          // updated_at: when the result reached the PACS (a delivered job's row changes again when it is superseded)
          .prepare(`SELECT id, detector, state, priority, study_score, result_json, superseded_by,
                      COALESCE((SELECT MAX(a.at) FROM audit a WHERE a.entity = 'job' AND a.entity_id = CAST(jobs.id AS TEXT) AND a.action = 'job.delivered'), updated_at) AS updated_at
                    FROM jobs WHERE study_uid = ? AND state NOT IN ('cancelled', 'superseded') ORDER BY detector, id`)
          .all(studyUID) as ShownJob[],
      );
      const results: DetectorResultView[] = [];
      for (const j of jobs) {
        const p = jobPriority(j)!;
        const delivered = j.state === 'delivered';
        let keyFinding: string | null = null;
        if (delivered && j.result_json) {
          try {
            keyFinding = keyFindingText(JSON.parse(j.result_json) as ResultSummary);
          } catch {
            keyFinding = null; // a summary from an older writer that does not parse: the row still shows its priority
          }
        }
        results.push({ detector: j.detector, jobId: j.id, state: j.state, priority: p, studyScore: delivered ? j.study_score : null, keyFinding, resultAt: delivered ? iso(j.updated_at) : null });
      }
      const priority = studyPriority(jobs, study.state === 'complete');
      const visible = results.filter((r) => r.state === 'delivered');
      const key = [...visible].sort((a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || (b.studyScore ?? 0) - (a.studyScore ?? 0))[0];
      const scores = visible.map((r) => r.studyScore).filter((s): s is number => s !== null);
      const derived = {
        priority, priority_rank: PRIORITY_RANK[priority],
        study_score: scores.length ? Math.max(...scores) : null,
        key_finding: key?.keyFinding ?? null, key_job_id: key?.jobId ?? null,
        result_key: visible.map((r) => r.jobId).join(','),
        detectors: packList([...new Set(results.map((r) => r.detector))]),
        modalities: packList(series.map((s) => s.modality)),
        results_json: JSON.stringify(results),
        arrived_at: study.first_received_at,
        result_at: visible.length ? Math.max(...jobs.filter((j) => j.state === 'delivered').map((j) => j.updated_at)) : null,
      };
      const existing = this.db.prepare('SELECT * FROM worklist WHERE study_uid = ?').get(studyUID) as DbRow | undefined;
      const same = existing && (Object.keys(derived) as (keyof typeof derived)[]).every((k) => existing[k] === derived[k]);
      const alerts: UrgentAlert[] = [];
      if (opts.alert) {
        // Only results delivered since the webhook was switched on: an old urgent study touched again (a re-send,
        // a late series) is not a new finding.
        const since = opts.alertSinceMs ?? 0;
        const deliveredAt = new Map(jobs.map((j) => [j.id, j.updated_at]));
        for (const r of visible.filter((v) => v.priority === 'urgent' && (deliveredAt.get(v.jobId) ?? 0) >= since)) {
          const body = JSON.stringify({
            event: 'result.urgent', deliveryId: `job-${r.jobId}`, study: studyUID, accessionNumber: study.accession_number,
            priority: r.priority, keyFinding: r.keyFinding, detector: r.detector, jobId: r.jobId, resultAt: r.resultAt,
          });
          const ins = this.db
            .prepare(`INSERT OR IGNORE INTO webhook_deliveries (job_id, study_uid, body_json, state, next_attempt_at, created_at) VALUES (?, ?, ?, 'pending', ?, ?)`)
            .run(r.jobId, studyUID, body, now, now);
          if (ins.changes) alerts.push({ jobId: r.jobId, study: studyUID, body });
        }
      }
      if (same) return { change: null, alerts };
      const version = this.nextVersion();
      if (!existing) {
        this.db
          .prepare(`INSERT INTO worklist (study_uid, priority, priority_rank, study_score, key_finding, key_job_id, result_key, detectors, modalities, results_json, arrived_at, result_at, version)
                    VALUES (@study_uid, @priority, @priority_rank, @study_score, @key_finding, @key_job_id, @result_key, @detectors, @modalities, @results_json, @arrived_at, @result_at, @version)`)
          .run({ study_uid: studyUID, ...derived, version });
      } else {
        this.db
          .prepare(`UPDATE worklist SET priority = @priority, priority_rank = @priority_rank, study_score = @study_score, key_finding = @key_finding, key_job_id = @key_job_id,
                    result_key = @result_key, detectors = @detectors, modalities = @modalities, results_json = @results_json, arrived_at = @arrived_at, result_at = @result_at,
                    version = @version WHERE study_uid = @study_uid`)
          .run({ study_uid: studyUID, ...derived, version });
        // A review judged the result that was shown then; a new result (a late series, a new model) needs its own,
        // from the first reader and the second alike (a second reader's dismissal of the old result must not keep
        // the new one out of the second-reader tab).
        if (existing.result_key !== derived.result_key && derived.result_key !== '' && (existing.review_state !== 'new' || existing.second_decision !== null)) {
          this.db
            .prepare(`UPDATE worklist SET review_state = 'new', review_decision = NULL, reviewer = NULL, review_reason = NULL, reviewed_at = NULL,
                      second_decision = NULL, second_reader = NULL, second_reason = NULL, second_at = NULL WHERE study_uid = ?`)
            .run(studyUID);
          this.auditSync('workflow', 'worklist.review-reset', studyUID, { from: existing.result_key, to: derived.result_key, decision: existing.review_decision }, now);
        }
      }
      return { change: { study: studyUID, priority, version }, alerts };
    })();
  }

  async list(q: WorklistQuery): Promise<{ total: number; rows: WorklistRow[] }> {
    const { sql, args } = whereOf(q);
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM worklist w ${sql}`).get(...args) as { n: number }).n;
    const rows = this.db.prepare(LIST_SQL(sql)).all(...args, q.limit, q.offset) as DbRow[];
    return { total, rows: rows.map(toView) };
  }

  async get(studyUID: string): Promise<WorklistRow | undefined> {
    const r = this.db
      .prepare(`SELECT ${ROW_COLUMNS} FROM worklist w JOIN studies s ON s.study_uid = w.study_uid WHERE w.study_uid = ?`)
      .get(studyUID) as DbRow | undefined;
    return r && toView(r);
  }

  /** Distinct values for the page's filter menus. */
  async facets(): Promise<{ modalities: string[]; detectors: string[] }> {
    const collect = (col: 'modalities' | 'detectors') =>
      [...new Set((this.db.prepare(`SELECT DISTINCT ${col} AS v FROM worklist`).all() as { v: string }[]).flatMap((r) => unpackList(r.v)))].sort();
    return { modalities: collect('modalities'), detectors: collect('detectors') };
  }

  private requireRow(studyUID: string): DbRow {
    const r = this.db.prepare('SELECT * FROM worklist WHERE study_uid = ?').get(studyUID) as DbRow | undefined;
    if (!r) throw new RadnodeError('RN_WORKLIST_STUDY_NOT_FOUND', `study ${studyUID} is not on the worklist`);
    return r;
  }

  private auditSync(actor: string, action: string, studyUID: string, detail: unknown, now: number): void {
    this.db.prepare('INSERT INTO audit (at, actor, action, entity, entity_id, detail_json) VALUES (?, ?, ?, ?, ?, ?)').run(now, actor, action, 'study', studyUID, JSON.stringify(detail));
  }

  /** new → opened, when a reader opens the study from the worklist. Later states are kept. */
  async markOpened(studyUID: string, reader: string, now = Date.now()): Promise<RowChange | null> {
    return this.db.transaction(() => {
      const r = this.requireRow(studyUID);
      if (r.review_state !== 'new') return null;
      const version = this.nextVersion();
      this.db.prepare(`UPDATE worklist SET review_state = 'opened', version = ? WHERE study_uid = ?`).run(version, studyUID);
      this.auditSync(reader, 'worklist.opened', studyUID, { priority: r.priority, resultKey: r.result_key }, now);
      return { study: studyUID, priority: r.priority, version };
    })();
  }

  /**
   * A reader's decision on the AI result shown (first read), or a second reader's on a study in the second-reader
   * tab. Each is one transaction with its audit row, naming the reader, the decision, the reason and the result.
   */
  async review(studyUID: string, input: { reader: string; decision: ReviewDecision; reason: string | null; stage: 'first' | 'second' }, now = Date.now()): Promise<RowChange> {
    return this.db.transaction(() => {
      const r = this.requireRow(studyUID);
      const version = this.nextVersion();
      if (input.stage === 'first') {
        this.db
          .prepare(`UPDATE worklist SET review_state = 'reviewed', review_decision = ?, reviewer = ?, review_reason = ?, reviewed_at = ?, version = ? WHERE study_uid = ?`)
          .run(input.decision, input.reader, input.reason, now, version, studyUID);
      } else {
        if (!AI_POSITIVE.includes(r.priority))
          throw new RadnodeError('RN_WORKLIST_BAD_REQUEST', `study ${studyUID} is ${r.priority}: only AI-positive studies get a second read`);
        this.db
          .prepare(`UPDATE worklist SET second_decision = ?, second_reader = ?, second_reason = ?, second_at = ?, version = ? WHERE study_uid = ?`)
          .run(input.decision, input.reader, input.reason, now, version, studyUID);
      }
      this.auditSync(input.reader, input.stage === 'first' ? 'worklist.reviewed' : 'worklist.second-review', studyUID, {
        decision: input.decision, reason: input.reason, from: r.review_state, priority: r.priority, resultKey: r.result_key,
      }, now);
      return { study: studyUID, priority: r.priority, version };
    })();
  }
}
