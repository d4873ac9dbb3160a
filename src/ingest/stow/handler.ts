/**
 * STOW-RS server: `POST /dicom-web/studies` and `POST /dicom-web/studies/{StudyInstanceUID}` (PS3.18 §10.5).
 *
 * Flow: check the request line and headers (415, 413) → stream the whole multipart body to fsync'd temp files
 * (multipart.ts) → only when the body closed cleanly, hand the parts to `ingestPart` one by one, in order →
 * answer with the Store Instances Response (response.ts).
 *
 * Why parts are handed over only after the close delimiter: PS3.18 §10.5.3 defines 400 as "the origin server was
 * unable to store any instances due to bad syntax", and a truncated or malformed multipart body is bad syntax. If
 * parts were ingested while the body was still streaming, a request cut off at instance 90 of 100 would answer 400
 * while 89 instances sat in the store and fed completeness. Buffering to temp files costs disk (the same bytes the
 * store keeps, since it renames the temp files) and the ingest latency of the last part, not memory. The per-part
 * work left after the close (parse the header, rename, one SQLite row) is small beside the transfer. So a request
 * answered 400/413/507, or cut off by the client, leaves nothing on disk and nothing recorded.
 */
import { randomUUID } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type express from 'express';
import { RadnodeError, asRadnodeError, type ErrorCode } from '../../errors.ts';
import { readHeader } from '../../dicom/index.ts';
import type { Logger } from '../../log.ts';
import { readHead } from '../file-head.ts';
import type { StowInFlight } from './in-flight.ts';
import { DICOM_MEDIA_TYPE, parseStowContentType, receiveMultipart, type ReceivedPart } from './multipart.ts';
import { buildStowResponse, failureReasonFor, FailureReason, type FailureReasonCode, type StowInstanceOutcome } from './response.ts';

/** Route paths this handler serves; mount it with `app.post(STOW_PATHS, createStowHandler(deps))`. */
export const STOW_PATHS = ['/dicom-web/studies', '/dicom-web/studies/:study'];

export type StowPart = { tempPath: string; size: number; sha256: string; contentType: string };
export type StowPartContext = { studyInstanceUID?: string; requestId: string };
export type StowIngestResult = {
  sopClassUID: string;
  sopInstanceUID: string;
  studyInstanceUID: string;
  /** Optional: when given, the instance's RetrieveURL in the response is filled in (PS3.18 Table I.1-1). */
  seriesInstanceUID?: string;
  status: 'stored' | 'duplicate';
};

export type StowDeps = {
  /** Inside the data dir, same filesystem as the store, so the store can rename(). */
  tmpDir: string;
  maxBodyBytes: number;
  log: Logger;
  /** Studies this request is streaming, so the quiet period does not complete them mid-request (in-flight.ts). */
  inFlight?: StowInFlight;
  /** The DICOMweb root for RetrieveURLs, e.g. `https://node.example/dicom-web`; default from the request's Host. */
  baseUrl?: (req: express.Request) => string;
  /**
   * Called once per part, in order, after the whole body parsed cleanly and every temp file is fsync'd. Resolves
   * when the instance is durably recorded; throws RadnodeError for a per-instance failure (RN_DICOM_MALFORMED,
   * RN_INGEST_STUDY_MISMATCH, RN_INGEST_CONFLICT, RN_INGEST_DISK_FULL...). Owns the temp file from then on (it
   * renames or deletes it); after a throw the handler also removes the temp path if it is still there.
   * A RadnodeError may carry `details.sopClassUID` / `details.sopInstanceUID` to name the instance in the
   * FailedSOPSequence.
   */
  ingestPart: (part: StowPart, ctx: StowPartContext) => Promise<StowIngestResult>;
  /** Called after the response is decided, with the studies that received at least one instance. */
  onRequestComplete?: (info: { studies: string[]; requestId: string; req: express.Request }) => void;
};

/*
 * After refusing a request whose body is still arriving, read and drop at most this much of it so the client gets
 * to read the answer (many clients only look for a response once they have sent everything), then close the
 * connection. "Stop reading" for a 2 GB body means this bounded drain, not reading it all.
 */
const DRAIN_MAX_BYTES = 8 * 1024 * 1024;
const DRAIN_MAX_MS = 5_000;

/**
 * The Study Instance UID in the head of a part on disk (its first 4 MiB, maybe less than the whole header while it
 * streams); undefined when it cannot be told yet.
 */
function studyOfPart(path: string): string | undefined {
  let head: Buffer;
  try {
    head = readHead(path, 4 * 1024 * 1024);
  } catch {
    return undefined;
  }
  try {
    return readHeader(head).StudyInstanceUID;
  } catch {
    return scanStudyUid(head);
  }
}

/** (0020,000D) found by its bytes in a truncated little-endian header: Explicit VR 'UI' + 2-byte length, or Implicit. */
function scanStudyUid(b: Buffer): string | undefined {
  for (let i = b.indexOf(STUDY_UID_TAG); i >= 0 && i + 8 <= b.length; i = b.indexOf(STUDY_UID_TAG, i + 1)) {
    const explicit = b.toString('latin1', i + 4, i + 6) === 'UI';
    const len = explicit ? b.readUInt16LE(i + 6) : b.readUInt32LE(i + 4);
    const start = i + 8;
    if (len > 0 && len <= 64 && start + len <= b.length) {
      const uid = b.toString('latin1', start, start + len).replace(/\0+$/, '').trim();
      if (/^[0-9]+(\.[0-9]+)+$/.test(uid)) return uid;
    }
  }
  return undefined;
}
const STUDY_UID_TAG = Buffer.from([0x20, 0x00, 0x0d, 0x00]);

export function createStowHandler(deps: StowDeps): express.RequestHandler {
  return (req, res) => {
    // A client reset while nobody iterates the body (during ingest, or while draining after a refusal) must not
    // become an unhandled 'error' event; the body reader sees the same error through its own listener.
    req.on('error', () => undefined);
    // Express 5 forwards a rejected promise to the error middleware; we still catch everything ourselves so that a
    // bad request can never reach an unhandled rejection or crash the process.
    const requestId = typeof res.locals['requestId'] === 'string' ? (res.locals['requestId'] as string) : randomUUID();
    res.locals['requestId'] = requestId;
    handleStow(deps, req, res, requestId).finally(() => deps.inFlight?.release(requestId)).catch((err: unknown) => {
      const e = asRadnodeError(err);
      deps.log.error('stow handler failed', { err: e });
      try {
        sendRequestError(req, res, e);
      } catch {
        req.destroy(); // the socket is unusable; dropping it is all that is left
      }
    });
  };
}

async function handleStow(deps: StowDeps, req: express.Request, res: express.Response, requestId: string): Promise<void> {
  const started = Date.now();
  const studyParam = req.params['study'];
  const studyInstanceUID = typeof studyParam === 'string' && studyParam !== '' ? studyParam : undefined;
  const log = deps.log.child({ component: 'stow', requestId, ...(studyInstanceUID ? { studyInstanceUID } : {}) });

  // Request-level checks before reading a byte of the body (PS3.18 §10.5.3: 415 for an unsupported media type).
  let boundary: string;
  try {
    boundary = parseStowContentType(req.get('content-type')).boundary;
    const declared = req.get('content-length');
    if (declared !== undefined && /^\d+$/.test(declared.trim()) && Number(declared) > deps.maxBodyBytes) {
      throw new RadnodeError('RN_INGEST_BODY_TOO_LARGE', `Content-Length ${declared} exceeds the limit of ${deps.maxBodyBytes} bytes`, {
        details: { maxBodyBytes: deps.maxBodyBytes },
      });
    }
  } catch (err) {
    const e = asRadnodeError(err);
    log.info('stow refused', { code: e.code, reason: e.message });
    sendRequestError(req, res, e);
    return;
  }

  let parts: ReceivedPart[];
  try {
    // destroyOnReturn: false keeps the socket open when we stop early (413, malformed), so the answer can be sent.
    const body = req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
    if (studyInstanceUID) deps.inFlight?.add(requestId, studyInstanceUID);
    parts = await receiveMultipart(body, {
      boundary, tmpDir: deps.tmpDir, maxBodyBytes: deps.maxBodyBytes, tempPrefix: requestId,
      onPartHead: deps.inFlight ? (path) => {
        const study = studyOfPart(path);
        if (study) deps.inFlight!.add(requestId, study);
      } : undefined,
    });
  } catch (err) {
    const e = asRadnodeError(err);
    if (e.details['clientAborted'] === true || isGone(req, res)) {
      log.info('stow aborted by the client', { code: e.code, ms: Date.now() - started });
      return;
    }
    if (e.code === 'RN_INTERNAL') log.error('stow receive failed', { err: e });
    else log.info('stow rejected', { code: e.code, reason: e.message });
    sendRequestError(req, res, e);
    return;
  }

  const outcomes: StowInstanceOutcome[] = [];
  let bytes = 0;
  for (const part of parts) {
    bytes += part.size;
    outcomes.push(await ingestOne(deps, part, { ...(studyInstanceUID ? { studyInstanceUID } : {}), requestId }, log));
  }

  const baseUrl = deps.baseUrl ? deps.baseUrl(req) : `${req.protocol}://${req.get('host') ?? 'localhost'}/dicom-web`;
  const response = buildStowResponse(outcomes, { baseUrl, ...(studyInstanceUID ? { studyInstanceUID } : {}) });
  const stored = outcomes.filter((o) => o.kind === 'stored');
  log.info('stow done', {
    status: response.status,
    parts: parts.length,
    stored: stored.length,
    duplicates: stored.filter((o) => o.kind === 'stored' && o.duplicate).length,
    failed: outcomes.length - stored.length,
    bytes,
    ms: Date.now() - started,
  });
  if (!isGone(req, res)) {
    res.status(response.status).type('application/dicom+json').send(JSON.stringify(response.body));
  }

  if (deps.onRequestComplete) {
    const studies = [...new Set(stored.map((o) => (o.kind === 'stored' ? o.studyInstanceUID : '')))].filter((s) => s !== '');
    try {
      deps.onRequestComplete({ studies, requestId, req });
    } catch (err) {
      log.error('onRequestComplete threw', { err: asRadnodeError(err) });
    }
  }
}

async function ingestOne(deps: StowDeps, part: ReceivedPart, ctx: StowPartContext, log: Logger): Promise<StowInstanceOutcome> {
  // PS3.18 §10.5.1.1: with type="application/dicom" every part is a DICOM Part 10 file. A part of another type is
  // this instance's failure, not the request's (the rest of the study is still stored).
  if (part.contentType !== DICOM_MEDIA_TYPE) {
    await removeQuietly(part.tempPath);
    return failedPart('RN_INGEST_BAD_CONTENT_TYPE', FailureReason.CannotUnderstand, `part ${part.index} has Content-Type ${part.contentType}`);
  }
  // A part whose own Content-Length disagrees with what arrived was cut or padded by the sender: not trustworthy.
  if (part.declaredLength !== undefined && part.declaredLength !== part.size) {
    await removeQuietly(part.tempPath);
    return failedPart(
      'RN_INGEST_MALFORMED_MULTIPART',
      FailureReason.CannotUnderstand,
      `part ${part.index} declares Content-Length ${part.declaredLength} but holds ${part.size} bytes`,
    );
  }
  try {
    const r = await deps.ingestPart({ tempPath: part.tempPath, size: part.size, sha256: part.sha256, contentType: part.contentType }, ctx);
    return {
      kind: 'stored',
      sopClassUID: r.sopClassUID,
      sopInstanceUID: r.sopInstanceUID,
      studyInstanceUID: r.studyInstanceUID,
      ...(r.seriesInstanceUID === undefined ? {} : { seriesInstanceUID: r.seriesInstanceUID }),
      duplicate: r.status === 'duplicate',
    };
  } catch (err) {
    const e = asRadnodeError(err);
    if (e.code === 'RN_INTERNAL') log.error('ingestPart failed', { part: part.index, err: e });
    else log.info('instance refused', { part: part.index, code: e.code, reason: e.message });
    // The store owns the file now, but "nothing half-stored" must hold even if it forgot to clean up.
    await removeQuietly(part.tempPath);
    const sopClassUID = typeof e.details['sopClassUID'] === 'string' ? e.details['sopClassUID'] : undefined;
    const sopInstanceUID = typeof e.details['sopInstanceUID'] === 'string' ? e.details['sopInstanceUID'] : undefined;
    return {
      kind: 'failed',
      ...(sopClassUID === undefined ? {} : { sopClassUID }),
      ...(sopInstanceUID === undefined ? {} : { sopInstanceUID }),
      reason: failureReasonFor(e.code),
      code: e.code,
      message: e.message,
    };
  }
}

function failedPart(code: ErrorCode, reason: FailureReasonCode, message: string): StowInstanceOutcome {
  return { kind: 'failed', reason, code, message };
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // already renamed or deleted by its owner
  }
}

function isGone(req: IncomingMessage, res: express.Response): boolean {
  return res.headersSent || res.writableEnded || res.destroyed || req.socket.destroyed;
}

/** Request-level failure: `{ code, message }` with the table's HTTP status (style.md §5). */
function sendRequestError(req: express.Request, res: express.Response, err: RadnodeError): void {
  if (isGone(req, res)) return;
  const bodyPending = !req.complete;
  if (bodyPending) res.setHeader('Connection', 'close');
  res.status(err.httpStatus).json({ code: err.code, message: err.message });
  if (bodyPending) discardRest(req);
}

function discardRest(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  let seen = 0;
  const timer = setTimeout(() => req.destroy(), DRAIN_MAX_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DRAIN_MAX_BYTES) req.destroy();
  });
  req.on('end', () => clearTimeout(timer));
  req.on('close', () => clearTimeout(timer));
  req.on('error', () => clearTimeout(timer));
  req.resume();
}
