import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { RadnodeError } from '../errors.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.ts';
import type {
  AuditRow, ClaimPhase, InstanceRecord, JobInputs, JobRow, JobState, OutputRow, SeriesRow, StudyRow,
} from './types.ts';

/** A study whose files retention may delete: see purgeableStudies. Parameters @cutoff; alias s for studies. */
const PURGEABLE = `s.state = 'complete' AND s.last_received_at < @cutoff AND s.completed_at < @cutoff
  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.study_uid = s.study_uid
                  AND (j.state IN ('queued', 'running', 'written', 'failed') OR j.updated_at >= @cutoff))`;

/**
 * The only owner of state (DESIGN §2). better-sqlite3 is synchronous; the methods are async so that a PostgreSQL
 * store (DESIGN §7) can replace this one behind the same interface. Every job transition is one transaction
 * with its audit row.
 */
export class SqliteStore {
  readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(file: string): SqliteStore {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    let db: Database.Database;
    try {
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode survives kill -9 (the WAL is in the OS cache) but may lose the last commits on power loss.
      // That is safe for instances: their files are fsync'd (file and folder) before they are recorded, and start-up
      // recovery records any instance file the store does not know. It saves one fsync per instance on ingest.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
    } catch (err) {
      throw new RadnodeError('RN_STORE_CORRUPT', `cannot open store ${file}: ${(err as Error).message}`, { cause: err });
    }
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      db.close();
      throw new RadnodeError('RN_STORE_CORRUPT', `store ${file} has schema ${current}, newer than this radnode (${SCHEMA_VERSION})`);
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.transaction(() => {
        db.exec(m.sql);
        db.pragma(`user_version = ${m.version}`);
      })();
    }
    return new SqliteStore(db);
  }

  close(): void {
    this.db.close();
  }

  private auditSync(actor: string, action: string, entity: string, entityId: string | number, detail?: unknown, at = Date.now()): void {
    this.db
      .prepare('INSERT INTO audit (at, actor, action, entity, entity_id, detail_json) VALUES (?, ?, ?, ?, ?, ?)')
      .run(at, actor, action, entity, String(entityId), detail === undefined ? null : JSON.stringify(detail));
  }

  async audit(actor: string, action: string, entity: string, entityId: string | number, detail?: unknown): Promise<void> {
    this.auditSync(actor, action, entity, entityId, detail);
  }

  async listAudit(entity: string, entityId: string | number): Promise<AuditRow[]> {
    return this.db.prepare('SELECT * FROM audit WHERE entity = ? AND entity_id = ? ORDER BY id').all(entity, String(entityId)) as AuditRow[];
  }

  // ---------------------------------------------------------------- instances, series, studies

  /** The study a series belongs to, when the series is known. */
  async studyOfSeries(seriesInstanceUID: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT study_uid FROM series WHERE series_uid = ?').get(seriesInstanceUID) as { study_uid: string } | undefined)?.study_uid;
  }

  async getInstance(sopInstanceUID: string): Promise<{ sha256: string; path: string; study_uid: string; purged_at: number | null } | undefined> {
    return this.db.prepare('SELECT sha256, path, study_uid, purged_at FROM instances WHERE sop_instance_uid = ?').get(sopInstanceUID) as
      | { sha256: string; path: string; study_uid: string; purged_at: number | null }
      | undefined;
  }

  /**
   * A purged instance's identical bytes came back and are durable at its path again: the row is live again, and the
   * study re-opens like one receiving a late instance, so that planning re-runs a job that failed RN_INPUT_PURGED.
   */
  async restoreInstance(sopInstanceUID: string, now = Date.now()): Promise<{ reopened: boolean }> {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT study_uid, is_own FROM instances WHERE sop_instance_uid = ? AND purged_at IS NOT NULL').get(sopInstanceUID) as { study_uid: string; is_own: number } | undefined;
      if (!row) return { reopened: false };
      this.db.prepare('UPDATE instances SET purged_at = NULL WHERE sop_instance_uid = ?').run(sopInstanceUID);
      this.auditSync('ingest', 'instance.restored', 'instance', sopInstanceUID, { study: row.study_uid }, now);
      if (row.is_own) return { reopened: false };
      const study = this.db.prepare('SELECT state FROM studies WHERE study_uid = ?').get(row.study_uid) as { state: string } | undefined;
      return { reopened: this.arrivedSync(row.study_uid, study?.state, { restored: sopInstanceUID }, now) };
    })();
  }

  /**
   * Studies whose instance files may go (DESIGN §3 retention): complete, nothing received since `cutoff`, files still
   * held, and every job settled before `cutoff` — delivered, superseded or cancelled. A queued, running, written or
   * failed job keeps the files (an operator may retry a failed one).
   */
  async purgeableStudies(cutoff: number, limit = 20): Promise<string[]> {
    return (
      this.db
        .prepare(`SELECT s.study_uid FROM studies s WHERE ${PURGEABLE}
                    AND EXISTS (SELECT 1 FROM instances i WHERE i.study_uid = s.study_uid AND i.purged_at IS NULL)
                  ORDER BY s.completed_at LIMIT @limit`)
        .all({ cutoff, limit }) as { study_uid: string }[]
    ).map((r) => r.study_uid);
  }

  /**
   * Marks a study's held instances purged and, with `outputs`, the result files of its delivered and superseded jobs
   * (never a cancelled job's: an operator retry resumes from them), in one transaction with its audit row, after
   * checking again that it is still purgeable; returns the files for the caller to delete. Marking first means a
   * crash leaves at worst a file nobody needs, never a live row without its file.
   */
  async markStudyPurged(studyUID: string, cutoff: number, now = Date.now(), opts: { outputs?: boolean } = {}): Promise<{ instances: { path: string; size: number }[]; outputs: string[] }> {
    return this.db.transaction(() => {
      const none = { instances: [], outputs: [] };
      if (this.db.prepare(`SELECT 1 FROM studies s WHERE s.study_uid = @study AND ${PURGEABLE}`).get({ study: studyUID, cutoff }) === undefined) return none;
      const instances = this.db.prepare('SELECT path, size FROM instances WHERE study_uid = ? AND purged_at IS NULL').all(studyUID) as { path: string; size: number }[];
      if (!instances.length) return none;
      this.db.prepare('UPDATE instances SET purged_at = ? WHERE study_uid = ? AND purged_at IS NULL').run(now, studyUID);
      let outputs: string[] = [];
      if (opts.outputs) {
        const settled = `purged_at IS NULL AND job_id IN (SELECT id FROM jobs WHERE study_uid = ? AND state IN ('delivered', 'superseded'))`;
        outputs = (this.db.prepare(`SELECT path FROM outputs WHERE ${settled}`).all(studyUID) as { path: string }[]).map((o) => o.path);
        this.db.prepare(`UPDATE outputs SET purged_at = ? WHERE ${settled}`).run(now, studyUID);
        // The worklist row's thumbnail is gone: a new version, so a page's cached list (ETag) stops offering it.
        if (outputs.length) this.db.prepare('UPDATE worklist SET version = (SELECT MAX(version) + 1 FROM worklist) WHERE study_uid = ?').run(studyUID);
      }
      this.auditSync('retention', 'study.purged', 'study', studyUID, { instances: instances.length, bytes: instances.reduce((a, f) => a + f.size, 0), outputs: outputs.length }, now);
      return { instances, outputs };
    })();
  }

  /** Result files retention marked purged: a crash between the mark and the delete leaves them for the next start. */
  async purgedOutputPaths(): Promise<string[]> {
    return (this.db.prepare('SELECT path FROM outputs WHERE purged_at IS NOT NULL').all() as { path: string }[]).map((r) => r.path);
  }

  /**
   * Records an instance whose file is already durable at `rec.path`. A complete study that receives a new instance
   * that is not radnode's own re-opens, so that its completeness is decided again (late series, DESIGN §3).
   */
  async recordInstance(rec: InstanceRecord, now = Date.now()): Promise<{ reopened: boolean; newSeries: boolean }> {
    return this.db.transaction(() => {
      const study = this.db.prepare('SELECT state FROM studies WHERE study_uid = ?').get(rec.studyInstanceUID) as { state: string } | undefined;
      if (!study) {
        this.db
          .prepare(`INSERT INTO studies (study_uid, patient_id, patient_name, accession_number, study_date, study_description, state, first_received_at, last_received_at)
                    VALUES (?, ?, ?, ?, ?, ?, 'receiving', ?, ?)`)
          .run(rec.studyInstanceUID, rec.patientID ?? null, rec.patientName ?? null, rec.accessionNumber ?? null, rec.studyDate ?? null, rec.studyDescription ?? null, now, now);
      }
      const seriesExists = this.db.prepare('SELECT 1 FROM series WHERE series_uid = ?').get(rec.seriesInstanceUID) !== undefined;
      if (!seriesExists) {
        this.db
          .prepare(`INSERT INTO series (series_uid, study_uid, modality, series_number, series_description, body_part, view_position, image_type,
                      slice_thickness, sop_class_uid, photometric, samples_per_pixel, is_own, first_received_at, last_received_at)
                    VALUES (@series, @study, @modality, @number, @description, @bodyPart, @view, @imageType, @thickness, @sopClass, @photometric, @samples, @own, @now, @now)`)
          .run({
            series: rec.seriesInstanceUID, study: rec.studyInstanceUID, modality: rec.modality ?? null, number: rec.seriesNumber ?? null,
            description: rec.seriesDescription ?? null, bodyPart: rec.bodyPartExamined ?? null, view: rec.viewPosition ?? null,
            imageType: rec.imageType ? rec.imageType.join('\\') : null, thickness: rec.sliceThicknessMm ?? null,
            sopClass: rec.sopClassUID, photometric: rec.photometricInterpretation ?? null, samples: rec.samplesPerPixel ?? null, own: rec.isOwn ? 1 : 0, now,
          });
      } else {
        this.db.prepare('UPDATE series SET last_received_at = ? WHERE series_uid = ?').run(now, rec.seriesInstanceUID);
      }
      this.db
        .prepare(`INSERT INTO instances (sop_instance_uid, series_uid, study_uid, sop_class_uid, instance_number, transfer_syntax_uid, path, size, sha256, source, is_own, received_at, number_of_frames)
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(rec.sopInstanceUID, rec.seriesInstanceUID, rec.studyInstanceUID, rec.sopClassUID, rec.instanceNumber ?? null,
          rec.transferSyntaxUID ?? null, rec.path, rec.size, rec.sha256, rec.source, rec.isOwn ? 1 : 0, now, rec.numberOfFrames ?? null);
      // Our own outputs coming back (Orthanc re-sends whole studies) must neither delay nor re-open a study.
      const reopened = rec.isOwn ? false : this.arrivedSync(rec.studyInstanceUID, study?.state, { series: rec.seriesInstanceUID }, now);
      return { reopened, newSeries: !seriesExists };
    })();
  }

  /**
   * An instance arrived for the study (new, or a purged one restored): it re-opens a complete study, so that its
   * completeness is decided again (a late series, or the rest of a study a sender split into several requests), and
   * delays a receiving one. Planning then re-runs a detector only if its input set changed. True when it re-opened.
   */
  private arrivedSync(studyUID: string, state: string | undefined, detail: Record<string, string>, now: number): boolean {
    if (state === 'complete') {
      this.db.prepare(`UPDATE studies SET state = 'receiving', last_received_at = ? WHERE study_uid = ?`).run(now, studyUID);
      this.auditSync('ingest', 'study.reopened', 'study', studyUID, detail, now);
      return true;
    }
    this.db.prepare('UPDATE studies SET last_received_at = ? WHERE study_uid = ?').run(now, studyUID);
    return false;
  }

  async recordConflict(sopInstanceUID: string, path: string, sha256: string, now = Date.now()): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO instance_conflicts (sop_instance_uid, path, sha256, received_at) VALUES (?, ?, ?, ?)').run(sopInstanceUID, path, sha256, now);
      this.auditSync('ingest', 'instance.conflict', 'instance', sopInstanceUID, { sha256, path }, now);
    })();
  }

  async countConflicts(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM instance_conflicts').get() as { n: number }).n;
  }

  /** Every recorded instance path, and those retention marked purged (whose files should be gone). */
  async knownInstancePaths(): Promise<{ all: Set<string>; purged: Set<string> }> {
    const rows = this.db.prepare('SELECT path, purged_at FROM instances').all() as { path: string; purged_at: number | null }[];
    return { all: new Set(rows.map((r) => r.path)), purged: new Set(rows.filter((r) => r.purged_at !== null).map((r) => r.path)) };
  }

  async instanceCountOfStudy(studyUID: string, opts: { includeOwn?: boolean } = {}): Promise<number> {
    const sql = opts.includeOwn ? 'SELECT COUNT(*) AS n FROM instances WHERE study_uid = ?' : 'SELECT COUNT(*) AS n FROM instances WHERE study_uid = ? AND is_own = 0';
    return (this.db.prepare(sql).get(studyUID) as { n: number }).n;
  }

  /** radnode's own objects of the study that were delivered and not retracted since: what the PACS holds of them. */
  async deliveredOutputCount(studyUID: string): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM outputs WHERE study_uid = ? AND delivered_at IS NOT NULL AND retracted_at IS NULL').get(studyUID) as { n: number }).n;
  }

  /** Every instance of the study radnode has recorded, purged or not. */
  async instanceUIDsOfStudy(studyUID: string): Promise<Set<string>> {
    return new Set((this.db.prepare('SELECT sop_instance_uid FROM instances WHERE study_uid = ?').all(studyUID) as { sop_instance_uid: string }[]).map((r) => r.sop_instance_uid));
  }

  /** The study's instances whose files retention deleted. */
  async purgedInstanceUIDsOfStudy(studyUID: string): Promise<Set<string>> {
    return new Set((this.db.prepare('SELECT sop_instance_uid FROM instances WHERE study_uid = ? AND purged_at IS NOT NULL').all(studyUID) as { sop_instance_uid: string }[]).map((r) => r.sop_instance_uid));
  }

  async getStudy(studyUID: string): Promise<StudyRow | undefined> {
    return this.db.prepare('SELECT * FROM studies WHERE study_uid = ?').get(studyUID) as StudyRow | undefined;
  }

  async listStudies(limit = 200): Promise<StudyRow[]> {
    return this.db.prepare('SELECT * FROM studies ORDER BY last_received_at DESC LIMIT ?').all(limit) as StudyRow[];
  }

  async listSeries(studyUID: string): Promise<SeriesRow[]> {
    return this.db
      .prepare(`SELECT s.*, (SELECT COUNT(*) FROM instances i WHERE i.series_uid = s.series_uid) AS instance_count,
                       (SELECT COUNT(*) FROM instances i WHERE i.series_uid = s.series_uid AND i.number_of_frames > 1) AS multiframe_count
                FROM series s WHERE study_uid = ? ORDER BY series_number, series_uid`)
      .all(studyUID) as SeriesRow[];
  }

  async listInstances(seriesUID: string): Promise<{ sop_instance_uid: string; sop_class_uid: string; path: string; sha256: string; instance_number: number | null; purged_at: number | null }[]> {
    return this.db
      .prepare('SELECT sop_instance_uid, sop_class_uid, path, sha256, instance_number, purged_at FROM instances WHERE series_uid = ? ORDER BY instance_number, sop_instance_uid')
      .all(seriesUID) as { sop_instance_uid: string; sop_class_uid: string; path: string; sha256: string; instance_number: number | null; purged_at: number | null }[];
  }

  /** Studies with no instance for `quietMs`: complete (DESIGN §3 completeness). */
  async dueStudies(now: number, quietMs: number): Promise<string[]> {
    return (this.db.prepare(`SELECT study_uid FROM studies WHERE state = 'receiving' AND last_received_at <= ?`).all(now - quietMs) as { study_uid: string }[]).map(
      (r) => r.study_uid,
    );
  }

  async completeStudy(studyUID: string, reason: string, now = Date.now()): Promise<boolean> {
    return this.db.transaction(() => {
      const r = this.db
        .prepare(`UPDATE studies SET state = 'complete', generation = generation + 1, completed_at = ? WHERE study_uid = ? AND state = 'receiving'`)
        .run(now, studyUID);
      if (r.changes) this.auditSync('workflow', 'study.complete', 'study', studyUID, { reason }, now);
      return r.changes > 0;
    })();
  }

  async setSeriesRoute(seriesUID: string, route: { detector: string | null; reasonCode: string | null; reasonDetail: string | null }): Promise<void> {
    this.db
      .prepare('UPDATE series SET route_detector = ?, route_reason_code = ?, route_reason_detail = ? WHERE series_uid = ?')
      .run(route.detector, route.reasonCode, route.reasonDetail, seriesUID);
  }

  // ---------------------------------------------------------------- jobs

  /**
   * One job per (study, detector, input set). A new input set for the same (study, detector) supersedes the earlier
   * job: one not yet delivered stops where it is, one delivered becomes the predecessor of the new SR (DESIGN §3).
   * With `wait`, a new job becomes claimable only at `until` (its detector would rather wait for a better series),
   * and the audit row says why.
   */
  async upsertJob(studyUID: string, detector: string, inputKey: string, inputs: JobInputs, now = Date.now(), wait?: { until: number; why: string }): Promise<{ job: JobRow; created: boolean }> {
    return this.db.transaction(() => {
      const existing = this.db.prepare('SELECT * FROM jobs WHERE study_uid = ? AND detector = ? AND input_key = ?').get(studyUID, detector, inputKey) as JobRow | undefined;
      if (existing) return { job: existing, created: false };
      const prev = this.db
        .prepare(`SELECT * FROM jobs WHERE study_uid = ? AND detector = ? AND superseded_by IS NULL ORDER BY id DESC LIMIT 1`)
        .get(studyUID, detector) as JobRow | undefined;
      // Predecessor is the newest SR of this (study, detector) chain that may be in the PACS, whether or not the
      // previous job delivered.
      const delivered = this.predecessorSync(studyUID, detector, Number.MAX_SAFE_INTEGER);
      const maxSr = this.db.prepare('SELECT MAX(sr_instance_number) AS n FROM jobs WHERE study_uid = ? AND detector = ?').get(studyUID, detector) as { n: number | null };
      const info = this.db
        .prepare(`INSERT INTO jobs (study_uid, detector, input_key, inputs_json, state, next_attempt_at, sr_instance_number, predecessor_job_id, created_at, updated_at)
                  VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)`)
        .run(studyUID, detector, inputKey, JSON.stringify(inputs), wait?.until ?? now, (maxSr.n ?? 0) + 1, delivered?.id ?? null, now, now);
      const id = Number(info.lastInsertRowid);
      this.auditSync('workflow', 'job.created', 'job', id, { study: studyUID, detector, inputKey, supersedes: prev?.id ?? null, ...(wait ? { waitUntil: wait.until, why: wait.why } : {}) }, now);
      if (prev) {
        // A written job still waiting for the delivery lane is stopped too: delivering it beside its successor would
        // put two SRs in the PACS, neither naming the other. One that is delivering now, or has tried (part of it may
        // be in the PACS), delivers first; its successor waits for it to settle (claimJob) and then names it.
        const waitingToDeliver = prev.state === 'written' && prev.lease_owner === null && !this.db
          .prepare(`SELECT 1 FROM audit WHERE entity = 'job' AND entity_id = ? AND action = 'job.delivering' LIMIT 1`)
          .get(String(prev.id));
        const stop = prev.state === 'queued' || prev.state === 'running' || prev.state === 'failed' || waitingToDeliver;
        this.db
          // A job left to finish keeps its lease: clearing it would make its delivery fail its owner check.
          .prepare(`UPDATE jobs SET superseded_by = @id, state = CASE WHEN @stop THEN 'superseded' ELSE state END,
                    lease_owner = CASE WHEN @stop THEN NULL ELSE lease_owner END, lease_until = CASE WHEN @stop THEN NULL ELSE lease_until END,
                    updated_at = @now WHERE id = @prev`)
          .run({ id, stop: stop ? 1 : 0, now, prev: prev.id });
        this.auditSync('workflow', 'job.superseded', 'job', prev.id, { by: id, stopped: stop }, now);
      }
      return { job: this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow, created: true };
    })();
  }

  async getJob(id: number): Promise<JobRow | undefined> {
    return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
  }

  async listJobs(filter: { state?: JobState; study?: string; limit?: number } = {}): Promise<JobRow[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.state) (where.push('state = ?'), args.push(filter.state));
    if (filter.study) (where.push('study_uid = ?'), args.push(filter.study));
    const sql = `SELECT * FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return this.db.prepare(sql).all(...args, filter.limit ?? 500) as JobRow[];
  }

  async jobCounts(): Promise<Record<string, number>> {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  /**
   * Claims one job ready for a phase with a lease. A job whose lease expired (its worker died: kill -9) is ready
   * again, so work resumes after a restart without an operator.
   */
  async claimJob(phase: ClaimPhase, owner: string, leaseMs: number, opts: { detector?: string; now?: number; maxAttempts?: number } = {}): Promise<JobRow | undefined> {
    const now = opts.now ?? Date.now();
    // A job runs only once no older job of its (study, detector) chain is still delivering: its SR must name the SR
    // that older job puts in the PACS (Predecessor Documents Sequence), which is known only once it is delivered.
    const ready =
      phase === 'run'
        ? `((state = 'queued' AND next_attempt_at <= @now) OR (state = 'running' AND lease_until < @now))
           AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.study_uid = jobs.study_uid AND o.detector = jobs.detector AND o.id < jobs.id AND o.state = 'written')`
        : `(state = 'written' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until < @now))`;
    return this.db.transaction(() => {
      const row = this.db
        .prepare(`SELECT * FROM jobs WHERE ${ready} ${opts.detector ? 'AND detector = @detector' : ''} ORDER BY next_attempt_at, id LIMIT 1`)
        .get(opts.detector ? { now, detector: opts.detector } : { now }) as JobRow | undefined;
      if (!row) return undefined;
      // Every claim counts an attempt and every recorded failure dead-letters at maxAttempts, so a job claimed again
      // with its attempts spent never recorded how its last attempt ended: the process died under it each time. Run
      // again, it would take the node down again (a restart loop): it is dead-lettered for an operator instead.
      if (opts.maxAttempts !== undefined && row.attempts >= opts.maxAttempts) {
        const detail = `interrupted on each of ${row.attempts} attempts (the process died while the job held it)`;
        this.db
          .prepare(`UPDATE jobs SET state = 'failed', reason_code = 'RN_JOB_INTERRUPTED', reason_detail = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`)
          .run(detail, now, row.id);
        this.auditSync('workflow', 'job.failed', 'job', row.id, { code: 'RN_JOB_INTERRUPTED', attempts: row.attempts, phase }, now);
        return undefined;
      }
      const nextState = phase === 'run' ? 'running' : 'written';
      if (phase === 'run') {
        // The predecessor is the newest SR of the chain that may be in the PACS when the job runs, not when it was queued.
        const delivered = this.predecessorSync(row.study_uid, row.detector, row.id);
        this.db.prepare('UPDATE jobs SET predecessor_job_id = ? WHERE id = ?').run(delivered?.id ?? null, row.id);
      }
      this.db
        .prepare('UPDATE jobs SET state = ?, lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?')
        .run(nextState, owner, now + leaseMs, now, row.id);
      this.auditSync('workflow', phase === 'run' ? 'job.running' : 'job.delivering', 'job', row.id, { owner, attempt: row.attempts + 1 }, now);
      return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(row.id) as JobRow;
    })();
  }

  /**
   * The newest earlier job of a (study, detector) chain whose objects may be in the PACS: delivered, or any job that
   * ever started a delivery — one that failed afterwards (not confirmed in time, an SC refused beside a stored SR) or
   * was stopped or cancelled later may have stored its SR all the same. Its successor names it (Predecessor
   * Documents) and retracts its heatmaps, so the PACS never holds two SRs of one chain that do not know each other.
   */
  private predecessorSync(studyUID: string, detector: string, beforeId: number): { id: number } | undefined {
    return this.db
      .prepare(`SELECT id FROM jobs j WHERE study_uid = ? AND detector = ? AND id < ?
                  AND (state = 'delivered' OR EXISTS (SELECT 1 FROM audit a WHERE a.entity = 'job' AND a.entity_id = CAST(j.id AS TEXT) AND a.action = 'job.delivering'))
                ORDER BY id DESC LIMIT 1`)
      .get(studyUID, detector, beforeId) as { id: number } | undefined;
  }

  /**
   * After a restart a study still receiving gets a fresh quiet period: the sender's request died with the process,
   * and the reconciliation poll (run at start-up) must get the chance to pull the rest before the study is planned.
   */
  async restartQuietPeriods(now = Date.now()): Promise<number> {
    return this.db.prepare(`UPDATE studies SET last_received_at = ? WHERE state = 'receiving'`).run(now).changes;
  }

  /**
   * At start-up of the single process that owns this SQLite store, every lease belongs to a dead process (kill -9):
   * release them so work resumes at once instead of after the lease time. With a shared store (PostgreSQL, DESIGN
   * §7) lease expiry does this job instead.
   */
  async releaseAllLeases(now = Date.now()): Promise<number> {
    return this.db.transaction(() => {
      const held = this.db.prepare('SELECT id, state FROM jobs WHERE lease_owner IS NOT NULL').all() as { id: number; state: string }[];
      for (const j of held) this.auditSync('workflow', 'job.lease-released', 'job', j.id, { state: j.state }, now);
      this.db
        .prepare(`UPDATE jobs SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?, state = CASE state WHEN 'running' THEN 'queued' ELSE state END WHERE lease_owner IS NOT NULL`)
        .run(now);
      return held.length;
    })();
  }

  /**
   * Jobs whose detector is no longer installed (a model removed or refused at start-up) would wait forever: they are
   * dead-lettered with RN_DETECTOR_UNKNOWN so an operator sees them, and a retry works once the detector is back.
   */
  async failJobsOfUnknownDetectors(known: string[], now = Date.now()): Promise<number[]> {
    return this.db.transaction(() => {
      const placeholders = known.map(() => '?').join(', ');
      const rows = this.db
        .prepare(`SELECT id, detector FROM jobs WHERE state IN ('queued', 'running') ${known.length ? `AND detector NOT IN (${placeholders})` : ''}`)
        .all(...known) as { id: number; detector: string }[];
      for (const r of rows) {
        this.db
          .prepare(`UPDATE jobs SET state = 'failed', reason_code = 'RN_DETECTOR_UNKNOWN', reason_detail = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`)
          .run(`detector ${r.detector} is not installed`, now, r.id);
        this.auditSync('workflow', 'job.failed', 'job', r.id, { code: 'RN_DETECTOR_UNKNOWN', detector: r.detector }, now);
      }
      return rows.map((r) => r.id);
    })();
  }

  async heartbeat(jobId: number, owner: string, leaseMs: number, now = Date.now()): Promise<boolean> {
    return this.db.prepare('UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?').run(now + leaseMs, jobId, owner).changes > 0;
  }

  /** Content Date/Time are frozen at the first run so that a re-run writes the same bytes (DESIGN §3). */
  async freezeContentDateTime(jobId: number, iso: string): Promise<string> {
    this.db.prepare('UPDATE jobs SET content_datetime = COALESCE(content_datetime, ?) WHERE id = ?').run(iso, jobId);
    return (this.db.prepare('SELECT content_datetime FROM jobs WHERE id = ?').get(jobId) as { content_datetime: string }).content_datetime;
  }

  private assertOwner(jobId: number, owner: string): JobRow {
    const job = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow | undefined;
    if (!job) throw new RadnodeError('RN_JOB_NOT_FOUND', `job ${jobId} does not exist`);
    if (job.lease_owner !== owner) throw new RadnodeError('RN_JOB_BAD_STATE', `job ${jobId} is no longer leased by ${owner}`, { details: { state: job.state } });
    return job;
  }

  /** running → written: outputs and the result summary land in one transaction. */
  async finishRun(jobId: number, owner: string, outputs: OutputRow[], result: { json: string; studyScore: number; priority: string }, now = Date.now()): Promise<void> {
    this.db.transaction(() => {
      this.assertOwner(jobId, owner);
      const insert = this.db.prepare(`INSERT OR REPLACE INTO outputs (sop_instance_uid, job_id, kind, study_uid, series_uid, sop_class_uid, instance_number, path, sha256, fingerprint)
                                      VALUES (@sop_instance_uid, @job_id, @kind, @study_uid, @series_uid, @sop_class_uid, @instance_number, @path, @sha256, @fingerprint)`);
      for (const o of outputs) insert.run(o);
      this.db
        .prepare(`UPDATE jobs SET state = 'written', result_json = ?, study_score = ?, priority = ?, lease_owner = NULL, lease_until = NULL,
                  attempts = 0, next_attempt_at = ?, reason_code = NULL, reason_detail = NULL, updated_at = ? WHERE id = ?`)
        .run(result.json, result.studyScore, result.priority, now, now, jobId);
      this.auditSync('workflow', 'job.written', 'job', jobId, { outputs: outputs.map((o) => o.sop_instance_uid) }, now);
    })();
  }

  async markDelivered(jobId: number, owner: string, detail: unknown, now = Date.now()): Promise<void> {
    this.db.transaction(() => {
      this.assertOwner(jobId, owner);
      this.db.prepare('UPDATE outputs SET delivered_at = COALESCE(delivered_at, ?) WHERE job_id = ?').run(now, jobId);
      this.db
        .prepare(`UPDATE jobs SET state = 'delivered', lease_owner = NULL, lease_until = NULL, reason_code = NULL, reason_detail = NULL, updated_at = ? WHERE id = ?`)
        .run(now, jobId);
      this.auditSync('delivery', 'job.delivered', 'job', jobId, detail, now);
    })();
  }

  /**
   * A failed step: retryable failures go back to the phase they came from with exponential backoff and jitter;
   * after maxAttempts, or for a permanent failure, the job is dead-lettered as `failed` for an operator.
   */
  async failJob(jobId: number, owner: string, f: { code: string; detail: string; retryable: boolean; maxAttempts: number; backoffMs: (attempt: number) => number }, now = Date.now()): Promise<JobRow> {
    return this.db.transaction(() => {
      const job = this.assertOwner(jobId, owner);
      const resume: JobState = job.state === 'running' ? 'queued' : 'written';
      const dead = !f.retryable || job.attempts >= f.maxAttempts;
      const state: JobState = dead ? 'failed' : resume;
      const next = dead ? now : now + f.backoffMs(job.attempts);
      this.db
        .prepare('UPDATE jobs SET state = ?, reason_code = ?, reason_detail = ?, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?')
        .run(state, f.code, f.detail.slice(0, 2000), next, now, jobId);
      this.auditSync('workflow', dead ? 'job.failed' : 'job.retry-scheduled', 'job', jobId, { code: f.code, detail: f.detail.slice(0, 500), attempt: job.attempts, resume }, now);
      return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow;
    })();
  }

  /** Operator retry of a dead-lettered or cancelled job: it resumes from its outputs if it has any. */
  async retryJob(jobId: number, actor: string, now = Date.now()): Promise<JobRow> {
    return this.db.transaction(() => {
      const job = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow | undefined;
      if (!job) throw new RadnodeError('RN_JOB_NOT_FOUND', `job ${jobId} does not exist`);
      if (job.state !== 'failed' && job.state !== 'cancelled')
        throw new RadnodeError('RN_JOB_BAD_STATE', `job ${jobId} is ${job.state}; only failed or cancelled jobs can be retried`);
      if (job.superseded_by !== null) throw new RadnodeError('RN_JOB_BAD_STATE', `job ${jobId} was superseded by job ${job.superseded_by}`);
      const hasOutputs = (this.db.prepare('SELECT COUNT(*) AS n FROM outputs WHERE job_id = ?').get(jobId) as { n: number }).n > 0;
      const state: JobState = hasOutputs ? 'written' : 'queued';
      this.db.prepare('UPDATE jobs SET state = ?, attempts = 0, next_attempt_at = ?, reason_code = NULL, reason_detail = NULL, updated_at = ? WHERE id = ?').run(state, now, now, jobId);
      this.auditSync(actor, 'job.retry', 'job', jobId, { from: job.state, to: state }, now);
      return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow;
    })();
  }

  async cancelJob(jobId: number, actor: string, now = Date.now()): Promise<JobRow> {
    return this.db.transaction(() => {
      const job = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow | undefined;
      if (!job) throw new RadnodeError('RN_JOB_NOT_FOUND', `job ${jobId} does not exist`);
      if (job.state === 'delivered' || job.state === 'superseded' || job.state === 'cancelled')
        throw new RadnodeError('RN_JOB_BAD_STATE', `job ${jobId} is ${job.state} and cannot be cancelled`);
      this.db.prepare(`UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?`).run(now, jobId);
      this.auditSync(actor, 'job.cancelled', 'job', jobId, { from: job.state }, now);
      return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow;
    })();
  }

  async listOutputs(jobId: number): Promise<OutputRow[]> {
    return this.db.prepare('SELECT * FROM outputs WHERE job_id = ? ORDER BY kind, instance_number, sop_instance_uid').all(jobId) as OutputRow[];
  }

  async markRetracted(sopInstanceUID: string, now = Date.now()): Promise<void> {
    this.db.prepare('UPDATE outputs SET retracted_at = ? WHERE sop_instance_uid = ?').run(now, sopInstanceUID);
    this.auditSync('delivery', 'output.retracted', 'output', sopInstanceUID, undefined, now);
  }

  async startDelivery(jobId: number, attempt: number, now = Date.now()): Promise<number> {
    return Number(this.db.prepare('INSERT INTO deliveries (job_id, attempt, started_at) VALUES (?, ?, ?)').run(jobId, attempt, now).lastInsertRowid);
  }

  async finishDelivery(id: number, outcome: string, detail: unknown, now = Date.now()): Promise<void> {
    this.db.prepare('UPDATE deliveries SET finished_at = ?, outcome = ?, detail_json = ? WHERE id = ?').run(now, outcome, JSON.stringify(detail), id);
  }

  async listDeliveries(jobId: number): Promise<{ attempt: number; outcome: string | null; detail_json: string | null }[]> {
    return this.db.prepare('SELECT attempt, outcome, detail_json FROM deliveries WHERE job_id = ? ORDER BY id').all(jobId) as {
      attempt: number; outcome: string | null; detail_json: string | null;
    }[];
  }

  // ---------------------------------------------------------------- checkpoints

  async getCheckpoint(name: string): Promise<string | null> {
    const r = this.db.prepare('SELECT value FROM checkpoints WHERE name = ?').get(name) as { value: string } | undefined;
    return r?.value ?? null;
  }

  async setCheckpoint(name: string, value: string, now = Date.now()): Promise<void> {
    this.db.prepare('INSERT INTO checkpoints (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at').run(name, value, now);
  }

  /** Writability probe for /readyz. */
  async isWritable(): Promise<boolean> {
    try {
      this.db.prepare(`INSERT INTO checkpoints (name, value, updated_at) VALUES ('readyz', '1', ?) ON CONFLICT(name) DO UPDATE SET updated_at = excluded.updated_at`).run(Date.now());
      return true;
    } catch {
      return false;
    }
  }
}
