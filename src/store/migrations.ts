/**
 * Versioned schema. A migration is never edited once released; a change is a new entry. `PRAGMA user_version`
 * holds the applied version, and a store newer than this program is refused (RN_STORE_CORRUPT).
 */
export const MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE studies (
  study_uid TEXT PRIMARY KEY,
  patient_id TEXT,
  accession_number TEXT,
  study_date TEXT,
  study_description TEXT,
  state TEXT NOT NULL CHECK (state IN ('receiving', 'complete')),
  generation INTEGER NOT NULL DEFAULT 0,
  first_received_at INTEGER NOT NULL,
  last_received_at INTEGER NOT NULL,
  completed_at INTEGER
);
CREATE INDEX studies_state ON studies(state, last_received_at);

CREATE TABLE series (
  series_uid TEXT PRIMARY KEY,
  study_uid TEXT NOT NULL REFERENCES studies(study_uid),
  modality TEXT,
  series_number INTEGER,
  series_description TEXT,
  body_part TEXT,
  view_position TEXT,
  image_type TEXT,
  slice_thickness REAL,
  sop_class_uid TEXT,
  is_own INTEGER NOT NULL DEFAULT 0,
  route_detector TEXT,
  route_reason_code TEXT,
  route_reason_detail TEXT,
  first_received_at INTEGER NOT NULL,
  last_received_at INTEGER NOT NULL
);
CREATE INDEX series_study ON series(study_uid);

CREATE TABLE instances (
  sop_instance_uid TEXT PRIMARY KEY,
  series_uid TEXT NOT NULL REFERENCES series(series_uid),
  study_uid TEXT NOT NULL REFERENCES studies(study_uid),
  sop_class_uid TEXT NOT NULL,
  instance_number INTEGER,
  transfer_syntax_uid TEXT,
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  source TEXT NOT NULL,
  is_own INTEGER NOT NULL DEFAULT 0,
  received_at INTEGER NOT NULL
);
CREATE INDEX instances_series ON instances(series_uid);
CREATE INDEX instances_study ON instances(study_uid);

CREATE TABLE instance_conflicts (
  id INTEGER PRIMARY KEY,
  sop_instance_uid TEXT NOT NULL,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  received_at INTEGER NOT NULL
);

CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  study_uid TEXT NOT NULL REFERENCES studies(study_uid),
  detector TEXT NOT NULL,
  input_key TEXT NOT NULL,
  inputs_json TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'written', 'delivered', 'failed', 'cancelled', 'superseded')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  reason_code TEXT,
  reason_detail TEXT,
  content_datetime TEXT,
  sr_instance_number INTEGER NOT NULL DEFAULT 1,
  predecessor_job_id INTEGER REFERENCES jobs(id),
  superseded_by INTEGER REFERENCES jobs(id),
  result_json TEXT,
  study_score REAL,
  priority TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (study_uid, detector, input_key)
);
CREATE INDEX jobs_ready ON jobs(state, next_attempt_at);
CREATE INDEX jobs_study ON jobs(study_uid, detector);

CREATE TABLE outputs (
  sop_instance_uid TEXT PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  kind TEXT NOT NULL,
  study_uid TEXT NOT NULL,
  series_uid TEXT NOT NULL,
  sop_class_uid TEXT NOT NULL,
  instance_number INTEGER NOT NULL,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  delivered_at INTEGER,
  retracted_at INTEGER
);
CREATE INDEX outputs_job ON outputs(job_id);

CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  attempt INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  outcome TEXT,
  detail_json TEXT
);

CREATE TABLE audit (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  entity TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  detail_json TEXT
);
CREATE INDEX audit_entity ON audit(entity, entity_id);

CREATE TABLE checkpoints (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`,
  },
  {
    // Issue 10, the triage worklist: patient name for display (never logged), one derived row per study that the
    // page and GET /api/worklist read with one indexed query, the reader's review (primary data, kept on the same
    // row), and the outgoing webhook's deliveries (persisted so a restart loses none; one per urgent job).
    version: 2,
    sql: `
ALTER TABLE studies ADD COLUMN patient_name TEXT;
CREATE INDEX studies_received ON studies(last_received_at);
CREATE INDEX studies_completed ON studies(completed_at);
CREATE INDEX jobs_updated ON jobs(updated_at);

CREATE TABLE worklist (
  study_uid TEXT PRIMARY KEY REFERENCES studies(study_uid),
  priority TEXT NOT NULL,
  priority_rank INTEGER NOT NULL,
  study_score REAL,
  key_finding TEXT,
  key_job_id INTEGER,
  result_key TEXT NOT NULL DEFAULT '',
  detectors TEXT NOT NULL DEFAULT '',
  modalities TEXT NOT NULL DEFAULT '',
  results_json TEXT NOT NULL DEFAULT '[]',
  arrived_at INTEGER NOT NULL,
  result_at INTEGER,
  review_state TEXT NOT NULL DEFAULT 'new' CHECK (review_state IN ('new', 'opened', 'reviewed')),
  review_decision TEXT CHECK (review_decision IN ('agree', 'disagree', 'dismissed')),
  reviewer TEXT,
  review_reason TEXT,
  reviewed_at INTEGER,
  second_decision TEXT CHECK (second_decision IN ('agree', 'disagree', 'dismissed')),
  second_reader TEXT,
  second_reason TEXT,
  second_at INTEGER,
  version INTEGER NOT NULL
);
CREATE INDEX worklist_order ON worklist(priority_rank, arrived_at, study_uid);
CREATE INDEX worklist_version ON worklist(version);

CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),
  study_uid TEXT NOT NULL,
  body_json TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER
);
CREATE INDEX webhook_due ON webhook_deliveries(state, next_attempt_at);
`,
  },
  {
    // Retention (DESIGN §3): an instance whose file was deleted after its study's jobs were delivered keeps its row,
    // so that a re-sent copy is recognised (and restores the file) and the pollers do not fetch it again for nothing.
    // The series' photometric interpretation: a colour series is refused at routing, before any job.
    version: 3,
    sql: `
ALTER TABLE instances ADD COLUMN purged_at INTEGER;
CREATE INDEX instances_unpurged ON instances(study_uid) WHERE purged_at IS NULL;
ALTER TABLE series ADD COLUMN photometric TEXT;
ALTER TABLE series ADD COLUMN samples_per_pixel INTEGER;
`,
  },
  {
    // Retention of result objects: a delivered (or superseded) job's files go with its study's instance files. The
    // rows stay, so radnode still knows its own SOP Instance UIDs when the PACS sends them back, and what was sent.
    version: 4,
    sql: `
ALTER TABLE outputs ADD COLUMN purged_at INTEGER;
`,
  },
  {
    // Number of Frames per instance: a series whose every object is a multi-frame stack (breast tomosynthesis slices)
    // is refused at routing, before any job; rows from before it count as single-frame, and the worker still refuses
    // such an object per image.
    version: 5,
    sql: `
ALTER TABLE instances ADD COLUMN number_of_frames INTEGER;
`,
  },
  {
    // The worklist's rows are rebuilt at the next start (the service rebuilds when its checkpoint is absent, announcing
    // nothing): 'unprocessed' now ranks above 'negative', and a re-run no longer hides the delivered result.
    version: 6,
    sql: `
DELETE FROM checkpoints WHERE name = 'worklist.refreshedTo';
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
