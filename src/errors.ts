/**
 * The one table of radnode's error codes (in the spirit of Orthanc's ErrorCodes.json): each code has a description,
 * the HTTP status an API answer uses, whether a job may retry it, and the CLI exit code. Job failure reasons,
 * API error bodies and docs/errors.md all come from here; code never parses a message to decide anything.
 */
export const ERROR_TABLE = {
  // configuration and usage
  RN_CONFIG_INVALID: { httpStatus: 500, retryable: false, exitCode: 2, description: 'A configuration key has an invalid value' },
  RN_CONFIG_UNREADABLE: { httpStatus: 500, retryable: false, exitCode: 2, description: 'The configuration file cannot be read or parsed' },
  RN_NOT_FOUND: { httpStatus: 404, retryable: false, exitCode: 1, description: 'No such route or resource' },
  RN_USAGE: { httpStatus: 400, retryable: false, exitCode: 2, description: 'Bad command-line usage' },
  // authentication
  RN_AUTH_REQUIRED: { httpStatus: 401, retryable: false, exitCode: 1, description: 'Credentials are missing or not valid' },
  RN_AUTH_FORBIDDEN: { httpStatus: 403, retryable: false, exitCode: 1, description: 'The credentials are valid but lack the role this route needs' },
  RN_CROSS_SITE_REQUEST: { httpStatus: 403, retryable: false, exitCode: 1, description: 'A state-changing API request came from another site (Origin or Sec-Fetch-Site), or named a Host that is not this node' },
  // HTTP requests
  RN_BAD_REQUEST: { httpStatus: 400, retryable: false, exitCode: 1, description: 'The HTTP request is malformed: undecodable URL, body encoding or character set, or a bad id' },
  RN_REQUEST_TOO_LARGE: { httpStatus: 413, retryable: false, exitCode: 1, description: 'The API request body exceeds its limit' },
  RN_UNSUPPORTED_MEDIA_TYPE: { httpStatus: 415, retryable: false, exitCode: 1, description: 'The API request body has a character set or content encoding radnode cannot read' },
  // DICOM parsing
  RN_DICOM_MALFORMED: { httpStatus: 400, retryable: false, exitCode: 1, description: 'Not a readable DICOM Part 10 object' },
  RN_DICOM_MISSING_ATTRIBUTE: { httpStatus: 400, retryable: false, exitCode: 1, description: 'A required DICOM attribute is missing' },
  RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX: { httpStatus: 415, retryable: false, exitCode: 1, description: 'No decoder for this transfer syntax' },
  RN_DICOM_DECODE_FAILED: { httpStatus: 422, retryable: false, exitCode: 1, description: 'The pixel data could not be decoded' },
  RN_DICOM_TOO_LARGE: { httpStatus: 413, retryable: false, exitCode: 1, description: 'Decoded or inflated size exceeds the configured cap' },
  // ingest (STOW-RS in, pollers)
  RN_INGEST_BAD_CONTENT_TYPE: { httpStatus: 415, retryable: false, exitCode: 1, description: 'STOW-RS needs multipart/related; type="application/dicom"' },
  RN_INGEST_MALFORMED_MULTIPART: { httpStatus: 400, retryable: false, exitCode: 1, description: 'The multipart body is malformed or truncated' },
  RN_INGEST_BODY_TOO_LARGE: { httpStatus: 413, retryable: false, exitCode: 1, description: 'The request body exceeds the configured limit' },
  RN_INGEST_STUDY_MISMATCH: { httpStatus: 409, retryable: false, exitCode: 1, description: 'Instance does not belong to the study named in the URL' },
  RN_INGEST_DISK_FULL: { httpStatus: 507, retryable: true, exitCode: 1, description: 'Free disk space is below the configured threshold' },
  RN_INGEST_SERIES_IN_OTHER_STUDY: { httpStatus: 409, retryable: false, exitCode: 1, description: 'The Series Instance UID already belongs to another study (a reused UID): the instance is not stored' },
  RN_INGEST_CONFLICT: { httpStatus: 409, retryable: false, exitCode: 1, description: 'A SOP Instance UID was re-sent with different bytes' },
  RN_POLL_FAILED: { httpStatus: 502, retryable: true, exitCode: 1, description: 'Polling the PACS failed' },
  // workflow
  RN_ROUTE_NO_MATCH: { httpStatus: 200, retryable: false, exitCode: 1, description: 'No routing rule matched the series' },
  RN_JOB_NOT_FOUND: { httpStatus: 404, retryable: false, exitCode: 1, description: 'No such job' },
  RN_JOB_BAD_STATE: { httpStatus: 409, retryable: false, exitCode: 1, description: 'The job is not in a state that allows this action' },
  RN_JOB_INTERRUPTED: { httpStatus: 500, retryable: false, exitCode: 1, description: 'The job was interrupted (the process died: out of memory, a native crash) on every allowed attempt; dead-lettered so that it cannot take the node down again' },
  RN_DETECTOR_FAILED: { httpStatus: 500, retryable: true, exitCode: 1, description: 'The detector threw while running' },
  RN_DETECTOR_UNKNOWN: { httpStatus: 500, retryable: false, exitCode: 1, description: 'The job names a detector that is not registered' },
  RN_DETECTOR_INVALID: { httpStatus: 500, retryable: false, exitCode: 2, description: 'A detector module does not export a valid detector' },
  RN_MODEL_INVALID: { httpStatus: 500, retryable: false, exitCode: 1, description: 'A model is refused at start-up: its manifest is invalid, its file is missing or corrupt, its sha256 differs, or its ONNX graph does not fit the manifest' },
  RN_INPUT_MISSING: { httpStatus: 500, retryable: false, exitCode: 1, description: 'An input instance file is missing from the store' },
  RN_OUTPUT_PURGED: { httpStatus: 409, retryable: false, exitCode: 1, description: "A result object's file was deleted by retention after its job was delivered (data.purgeAfterHours); the PACS holds the object" },
  RN_INPUT_PURGED: { httpStatus: 409, retryable: false, exitCode: 1, description: "An input instance's file was purged after its study was delivered (data.purgeAfterHours): re-send the study and the job runs again" },
  RN_RESULT_INVALID: { httpStatus: 500, retryable: false, exitCode: 1, description: 'A result object failed validation' },
  // delivery
  RN_DELIVERY_UNREACHABLE: { httpStatus: 502, retryable: true, exitCode: 1, description: 'The PACS could not be reached' },
  RN_DELIVERY_STOW_REJECTED: { httpStatus: 502, retryable: true, exitCode: 1, description: 'The PACS answered the STOW-RS with an error' },
  RN_DELIVERY_AUTH_REJECTED: { httpStatus: 502, retryable: false, exitCode: 1, description: 'The PACS refused radnode\'s credentials' },
  RN_DELIVERY_NOT_CONFIRMED: { httpStatus: 502, retryable: true, exitCode: 1, description: 'QIDO-RS did not confirm every sent instance' },
  // DICOM DIMSE gateway (issue 11)
  RN_DIMSE_ASSOCIATION_REJECTED: { httpStatus: 502, retryable: true, exitCode: 1, description: 'The DICOM peer rejected or aborted the association (or radnode rejected an unknown calling AE)' },
  RN_DIMSE_UNREACHABLE: { httpStatus: 502, retryable: true, exitCode: 1, description: 'The DICOM peer could not be reached (connection refused or timed out)' },
  RN_DIMSE_STORE_FAILED: { httpStatus: 502, retryable: true, exitCode: 1, description: 'The DICOM peer answered a C-STORE with a failure status' },
  RN_DIMSE_NOT_CONFIRMED: { httpStatus: 502, retryable: true, exitCode: 1, description: 'Storage commitment or an IMAGE-level C-FIND did not confirm every sent instance' },
  RN_DIMSE_QUERY_FAILED: { httpStatus: 502, retryable: true, exitCode: 1, description: 'A C-FIND, C-MOVE or C-GET failed' },
  RN_SOURCE_STUDY_CHANGED: { httpStatus: 409, retryable: false, exitCode: 1, description: 'The source study is not in the PACS (retried with backoff: it may still be arriving) or its Patient ID changed (final)' },
  // built-in viewer (its read-only DICOMweb proxy)
  RN_VIEWER_UNAVAILABLE: { httpStatus: 500, retryable: false, exitCode: 2, description: 'The OHIF files for the built-in viewer are missing (run scripts/fetch-ohif) or its port cannot be opened' },
  RN_VIEWER_ROUTE_REFUSED: { httpStatus: 403, retryable: false, exitCode: 1, description: 'The viewer proxy forwards only the DICOMweb read routes OHIF needs' },
  RN_VIEWER_METHOD_REFUSED: { httpStatus: 405, retryable: false, exitCode: 1, description: 'The viewer proxy is read-only: GET and HEAD only' },
  RN_VIEWER_PACS_UNREACHABLE: { httpStatus: 502, retryable: true, exitCode: 1, description: 'The viewer proxy could not reach the PACS' },
  // worklist and its webhook (issue 10)
  RN_WORKLIST_BAD_REQUEST: { httpStatus: 400, retryable: false, exitCode: 1, description: 'A worklist filter, page or review decision is not valid' },
  RN_WORKLIST_STUDY_NOT_FOUND: { httpStatus: 404, retryable: false, exitCode: 1, description: 'The study is not on the worklist' },
  RN_WORKLIST_PAGE_BUILD_FAILED: { httpStatus: 500, retryable: false, exitCode: 1, description: 'The worklist page could not be bundled at start-up' },
  RN_WEBHOOK_REJECTED: { httpStatus: 502, retryable: true, exitCode: 1, description: 'The webhook receiver did not answer 2xx (retried with backoff)' },
  // store
  RN_DATA_DIR_IN_USE: { httpStatus: 500, retryable: false, exitCode: 2, description: 'Another radnode is running on the same data folder' },
  RN_STORE_CORRUPT: { httpStatus: 500, retryable: false, exitCode: 1, description: 'The store is unreadable or its schema is newer than this program' },
  RN_INFERENCE_TIMEOUT: { httpStatus: 500, retryable: false, exitCode: 1, description: 'An inference request ran past its time limit; the worker was restarted (the same input would hang again)' },
  RN_INTERNAL: { httpStatus: 500, retryable: true, exitCode: 1, description: 'An unexpected internal error' },
} as const satisfies Record<string, { httpStatus: number; retryable: boolean; exitCode: 1 | 2; description: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class RadnodeError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RadnodeError';
    this.code = code;
    this.httpStatus = ERROR_TABLE[code].httpStatus;
    this.retryable = options.retryable ?? ERROR_TABLE[code].retryable;
    this.details = options.details ?? {};
  }

  get exitCode(): 1 | 2 {
    return ERROR_TABLE[this.code].exitCode;
  }
}

/**
 * Errors that belong to one file's bytes, not to the job: a detector lists that image (or its series) as not
 * processed and reads the rest, since a retry would fail the same way and one broken file must not hide the others.
 */
const IMAGE_DATA_ERRORS: ReadonlySet<ErrorCode> = new Set(['RN_DICOM_MALFORMED', 'RN_DICOM_MISSING_ATTRIBUTE', 'RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX', 'RN_DICOM_DECODE_FAILED', 'RN_DICOM_TOO_LARGE']);

export function isImageDataError(err: unknown): err is RadnodeError {
  return err instanceof RadnodeError && IMAGE_DATA_ERRORS.has(err.code);
}

/** Wraps anything thrown into a RadnodeError so callers can read `code` and `retryable` without guessing. */
export function asRadnodeError(err: unknown, fallback: ErrorCode = 'RN_INTERNAL'): RadnodeError {
  if (err instanceof RadnodeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RadnodeError(fallback, message, { cause: err });
}
