export type JobState = 'queued' | 'running' | 'written' | 'delivered' | 'failed' | 'cancelled' | 'superseded';
/** run: queued → running → written; deliver: written → delivered. */
export type ClaimPhase = 'run' | 'deliver';

export type InstanceSource = 'stow' | 'poll-qido' | 'poll-orthanc' | 'recovered' | 'import' | 'dimse' | 'poll-dimse';

/** The header attributes kept per stored instance: ingest reads them (src/ingest/header.ts), routing and the worklist use them. */
export type InstanceAttributes = {
  sopInstanceUID: string;
  sopClassUID: string;
  seriesInstanceUID: string;
  studyInstanceUID: string;
  transferSyntaxUID?: string;
  instanceNumber?: number;
  // study attributes
  patientID?: string;
  /** Shown on the worklist only; the logger drops this key wherever it appears (never log it). */
  patientName?: string;
  accessionNumber?: string;
  studyDate?: string;
  studyDescription?: string;
  // series attributes
  modality?: string;
  seriesNumber?: number;
  seriesDescription?: string;
  bodyPartExamined?: string;
  viewPosition?: string;
  imageType?: string[];
  sliceThicknessMm?: number;
  photometricInterpretation?: string;
  samplesPerPixel?: number;
  // instance attributes
  /** Number of Frames: a breast tomosynthesis stack is refused at routing when every object of its series has several. */
  numberOfFrames?: number;
};

export type InstanceRecord = InstanceAttributes & {
  path: string;
  size: number;
  sha256: string;
  source: InstanceSource;
  isOwn: boolean;
};

export type StudyRow = {
  study_uid: string;
  patient_id: string | null;
  patient_name: string | null;
  accession_number: string | null;
  study_date: string | null;
  study_description: string | null;
  state: 'receiving' | 'complete';
  generation: number;
  first_received_at: number;
  last_received_at: number;
  completed_at: number | null;
};

export type SeriesRow = {
  series_uid: string;
  study_uid: string;
  modality: string | null;
  series_number: number | null;
  series_description: string | null;
  body_part: string | null;
  view_position: string | null;
  image_type: string | null;
  slice_thickness: number | null;
  sop_class_uid: string | null;
  photometric: string | null;
  samples_per_pixel: number | null;
  is_own: number;
  route_detector: string | null;
  route_reason_code: string | null;
  route_reason_detail: string | null;
  instance_count: number;
  /** Instances with Number of Frames > 1 (listSeries counts them). */
  multiframe_count: number;
};

/** What a job was computed from: the series and instances its detector selected, with content hashes. */
export type JobInputs = { series: { seriesInstanceUID: string; instances: { sopInstanceUID: string; sha256: string }[] }[] };

export type JobRow = {
  id: number;
  study_uid: string;
  detector: string;
  input_key: string;
  inputs_json: string;
  state: JobState;
  attempts: number;
  next_attempt_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  reason_code: string | null;
  reason_detail: string | null;
  content_datetime: string | null;
  sr_instance_number: number;
  predecessor_job_id: number | null;
  superseded_by: number | null;
  result_json: string | null;
  study_score: number | null;
  priority: string | null;
  created_at: number;
  updated_at: number;
};

export type OutputRow = {
  sop_instance_uid: string;
  job_id: number;
  kind: string;
  study_uid: string;
  series_uid: string;
  sop_class_uid: string;
  instance_number: number;
  path: string;
  sha256: string;
  fingerprint: string;
  delivered_at?: number | null;
  retracted_at?: number | null;
  /** Set when retention deleted the file (its job was delivered or superseded; data.purgeAfterHours). */
  purged_at?: number | null;
};

export type AuditRow = { id: number; at: number; actor: string; action: string; entity: string; entity_id: string; detail_json: string | null };
