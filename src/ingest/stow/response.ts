/**
 * The STOW-RS response: PS3.18 §10.5.3 (status codes) and Annex I "Store Instances Response Module" (Table I.1-1),
 * encoded as DICOM JSON (PS3.18 Annex F.2).
 *
 * Orthanc's DICOMweb client fails its job unless the body is DICOM JSON with one ReferencedSOPSequence item per
 * instance it sent (shared/notes/orthanc.md), so a success always lists every instance, duplicates included.
 */
import type { ErrorCode } from '../../errors.ts';

/**
 * Failure Reason (0008,1197) values. PS3.18 2024c §I.2.2, Table I.2-2 "Store Instances Response Failure Reason
 * Values" defines A7xx, A9xx, Cxxx, C122, 0110 and 0122, and allows additional implementation-specific codes
 * documented in the conformance statement; the two extra codes below are taken from PS3.7 and from common practice.
 */
export const FailureReason = {
  /** 0110 Processing failure: a general failure in processing the operation (Table I.2-2). */
  ProcessingFailure: 0x0110,
  /**
   * 0111 Duplicate SOP Instance, a general DIMSE failure status of PS3.7 Annex C: the SOP Instance UID is already
   * stored with different bytes (DESIGN §3 "conflict"). The same bytes again are a success, not this.
   */
  DuplicateSOPInstance: 0x0111,
  /** 0122 Referenced SOP Class not supported (Table I.2-2). */
  SOPClassNotSupported: 0x0122,
  /** A700 Refused: out of resources (Table I.2-2 A7xx; same as C-STORE in PS3.4 Table B.2-1). */
  OutOfResources: 0xa700,
  /** A900 Error: data set does not match SOP Class (Table I.2-2 A9xx). */
  DataSetDoesNotMatchSOPClass: 0xa900,
  /** C000 Error: cannot understand (Table I.2-2 Cxxx): not a readable DICOM object, or a part of another type. */
  CannotUnderstand: 0xc000,
  /** C122 Referenced Transfer Syntax not supported (Table I.2-2). */
  TransferSyntaxNotSupported: 0xc122,
  /**
   * C409: the instance's Study Instance UID differs from the one in the request URL. PS3.18 §10.5.1 lets the target
   * name a study but Table I.2-2 has no code for the mismatch, so this is an implementation-specific code in the
   * Cxxx ("cannot understand") range; the value is the one dcm4chee-arc-light returns for the same case
   * (DIFF_STUDY_INSTANCE_UID = 0xC409), so clients that already know it read it right.
   */
  StudyInstanceUIDMismatch: 0xc409,
} as const;
export type FailureReasonCode = (typeof FailureReason)[keyof typeof FailureReason];

/** Maps a per-instance error code to the Failure Reason the client sees. */
export function failureReasonFor(code: ErrorCode): FailureReasonCode {
  switch (code) {
    case 'RN_INGEST_DISK_FULL':
      return FailureReason.OutOfResources;
    case 'RN_INGEST_STUDY_MISMATCH':
    case 'RN_INGEST_SERIES_IN_OTHER_STUDY':
      return FailureReason.StudyInstanceUIDMismatch;
    case 'RN_INGEST_CONFLICT':
      return FailureReason.DuplicateSOPInstance;
    case 'RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX':
      return FailureReason.TransferSyntaxNotSupported;
    case 'RN_DICOM_MISSING_ATTRIBUTE':
      return FailureReason.DataSetDoesNotMatchSOPClass;
    case 'RN_DICOM_MALFORMED':
    case 'RN_INGEST_BAD_CONTENT_TYPE':
    case 'RN_INGEST_MALFORMED_MULTIPART':
      return FailureReason.CannotUnderstand;
    default:
      return FailureReason.ProcessingFailure;
  }
}

/** What happened to one part of the request. */
export type StowInstanceOutcome =
  | {
      kind: 'stored';
      sopClassUID: string;
      sopInstanceUID: string;
      studyInstanceUID: string;
      seriesInstanceUID?: string;
      /** A re-sent instance with the same bytes: counted as stored (Orthanc re-sends whole studies). */
      duplicate: boolean;
    }
  | {
      kind: 'failed';
      /** Unknown when the part could not be parsed at all. */
      sopClassUID?: string;
      sopInstanceUID?: string;
      reason: FailureReasonCode;
      code: ErrorCode;
      message: string;
    };

/** DICOM JSON attribute (PS3.18 §F.2.2); `Value` is absent for an empty attribute, as Orthanc also sends. */
export type DicomJsonAttribute =
  | { vr: 'UI' | 'UR'; Value?: string[] }
  | { vr: 'US'; Value?: number[] }
  | { vr: 'SQ'; Value?: DicomJsonDataset[] };
export type DicomJsonDataset = { [tag: string]: DicomJsonAttribute };

export type StowResponse = { status: 200 | 202 | 409; body: DicomJsonDataset };

const TAG = {
  RetrieveURL: '00081190',
  FailedSOPSequence: '00081198',
  ReferencedSOPSequence: '00081199',
  ReferencedSOPClassUID: '00081150',
  ReferencedSOPInstanceUID: '00081155',
  FailureReason: '00081197',
} as const;

function ui(value: string | undefined): DicomJsonAttribute {
  return value === undefined || value === '' ? { vr: 'UI' } : { vr: 'UI', Value: [value] };
}
function ur(value: string | undefined): DicomJsonAttribute {
  return value === undefined || value === '' ? { vr: 'UR' } : { vr: 'UR', Value: [value] };
}

/**
 * Builds the response. Status per PS3.18 §10.5.3 / Table 10.5.3-1: 200 when every instance was stored, 202 when
 * some failed, 409 when none was stored (the body is the same module in all three).
 *
 * `baseUrl` is the DICOMweb root (e.g. `http://host:port/dicom-web`); RetrieveURLs are absolute, as Orthanc's are.
 * The study-level RetrieveURL (Type 2) names the study of the request URL, else the one study all stored instances
 * belong to, and is empty when they span several studies.
 */
export function buildStowResponse(
  outcomes: readonly StowInstanceOutcome[],
  opts: { baseUrl: string; studyInstanceUID?: string },
): StowResponse {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const stored = outcomes.filter((o): o is Extract<StowInstanceOutcome, { kind: 'stored' }> => o.kind === 'stored');
  const failed = outcomes.filter((o): o is Extract<StowInstanceOutcome, { kind: 'failed' }> => o.kind === 'failed');

  const studies = new Set(stored.map((o) => o.studyInstanceUID));
  const study = opts.studyInstanceUID ?? (studies.size === 1 ? [...studies][0] : undefined);
  const body: DicomJsonDataset = {
    [TAG.RetrieveURL]: ur(study === undefined ? undefined : `${base}/studies/${study}`),
  };

  if (failed.length > 0) {
    // Table I.1-1: the SOP Instance Reference Macro is Type 1, but a part that is not DICOM has no UIDs. We send
    // them empty rather than invent UIDs, so a client can still count failures and read the reason.
    body[TAG.FailedSOPSequence] = {
      vr: 'SQ',
      Value: failed.map((o) => ({
        [TAG.ReferencedSOPClassUID]: ui(o.sopClassUID),
        [TAG.ReferencedSOPInstanceUID]: ui(o.sopInstanceUID),
        [TAG.FailureReason]: { vr: 'US', Value: [o.reason] },
      })),
    };
  }
  if (stored.length > 0) {
    body[TAG.ReferencedSOPSequence] = {
      vr: 'SQ',
      Value: stored.map((o) => ({
        [TAG.ReferencedSOPClassUID]: ui(o.sopClassUID),
        [TAG.ReferencedSOPInstanceUID]: ui(o.sopInstanceUID),
        // Type 2: the instance URL needs the series UID, which the store may not report; then it is left empty.
        [TAG.RetrieveURL]: ur(
          o.seriesInstanceUID === undefined
            ? undefined
            : `${base}/studies/${o.studyInstanceUID}/series/${o.seriesInstanceUID}/instances/${o.sopInstanceUID}`,
        ),
      })),
    };
  }

  const status = failed.length === 0 && stored.length > 0 ? 200 : stored.length > 0 ? 202 : 409;
  return { status, body };
}
