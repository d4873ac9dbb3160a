/**
 * DIMSE as SCU (issue 11): C-ECHO, C-FIND, C-MOVE and C-STORE to a DICOM peer through dcmjs-dimse (the library
 * choice is explained in src/ingest/dimse/scp.ts), and result delivery with the same contract as DICOMweb delivery
 * (src/delivery/deliver.ts): find what the peer already holds by an IMAGE-level C-FIND, send only what is missing,
 * then confirm by C-FIND that every sent SOP instance is there with its fingerprint (Content Date and Time). A
 * C-STORE success status alone proves as little as a STOW 200: a PACS may keep an older copy under the same UID.
 */
import dimse from 'dcmjs-dimse';
import type { DimsePeer } from '../config/types.ts';
import { RadnodeError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ResultObject } from '../results/objects.ts';
import { checkSourceStudy, sameFingerprint } from './query.ts';

import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION } from '../ingest/dimse/p10.ts';

const { Client, Dataset, constants, requests } = dimse;
/** dcmjs-dimse logs every PDU at info to stdout; radnode logs DIMSE events itself, structured, through its logger. */
export function quietDimseLibrary(): void {
  dimse.log.setLevel('silent');
  dimse.Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
  dimse.Implementation.setImplementationVersion(IMPLEMENTATION_VERSION);
}
quietDimseLibrary();
const { Status, RejectReason } = constants;

/**
 * PS3.4 Table C.4-1: 0xFF01 is Pending too ("matches are continuing; one or more optional keys were not supported"),
 * which is what a PACS answers to radnode's optional ContentDate/ContentTime keys. dcmjs-dimse ends a query at any
 * status but 0xFF00 (dropping the matches and tearing the association down mid-query), so a C-FIND response reports
 * 0xFF01 as 0xFF00: to the library and to radnode alike it is one more match.
 */
const PENDING_WARNING = 0xff01;
const findResponse = dimse.responses.CFindResponse.prototype as unknown as { getStatus(): number; radnodePendingWarning?: true };
if (!findResponse.radnodePendingWarning) {
  const status = findResponse.getStatus;
  findResponse.getStatus = function (this: unknown) {
    const s = status.call(this);
    return s === PENDING_WARNING ? Status.Pending : s;
  };
  findResponse.radnodePendingWarning = true;
}
type DimseRequest = InstanceType<typeof dimse.requests.CEchoRequest> | InstanceType<typeof dimse.requests.CFindRequest> | InstanceType<typeof dimse.requests.CStoreRequest> | InstanceType<typeof dimse.requests.CMoveRequest>;
type DimseResponse = InstanceType<typeof dimse.responses.CFindResponse>;
type DimseDataset = InstanceType<typeof Dataset>;

export type DimseLink = { peer: DimsePeer; callingAeTitle: string; timeoutMs: number };

const REJECT_REASONS: Record<number, string> = {
  [RejectReason.NoReasonGiven]: 'no reason given',
  [RejectReason.ApplicationContextNotSupported]: 'application context not supported',
  [RejectReason.CallingAeNotRecognized]: 'calling AE title not recognized',
  [RejectReason.CalledAeNotRecognized]: 'called AE title not recognized',
};

/**
 * One association carrying `reqs`; resolves with each request's final status (undefined: never answered, e.g. no
 * presentation context was accepted for it) once the association is released or closed.
 */
export function associate(link: DimseLink, reqs: DimseRequest[], onResponse?: (req: DimseRequest, res: DimseResponse) => void): Promise<(number | undefined)[]> {
  const { peer } = link;
  return new Promise((resolve, reject) => {
    const client = new Client();
    const statuses: (number | undefined)[] = reqs.map(() => undefined);
    reqs.forEach((r, i) => {
      r.on('response', (res: DimseResponse) => {
        const s = res.getStatus();
        if (s !== Status.Pending) statuses[i] = s;
        onResponse?.(r, res);
      });
      client.addRequest(r);
    });
    let failure: RadnodeError | undefined;
    const where = { aeTitle: peer.aeTitle, host: peer.host, port: peer.port };
    client.on('associationRejected', (rj: { result: number; source: number; reason: number }) => {
      failure = new RadnodeError('RN_DIMSE_ASSOCIATION_REJECTED', `${peer.aeTitle}@${peer.host}:${peer.port} rejected the association: ${REJECT_REASONS[rj.reason] ?? `reason ${rj.reason}`}`, {
        // A permanent rejection of our AE title will not heal by itself: an administrator must add radnode to the peer.
        retryable: rj.result !== constants.RejectResult.Permanent,
        details: { ...where, result: rj.result, source: rj.source, reason: rj.reason },
      });
    });
    client.on('networkError', (err: Error) => {
      failure ??= new RadnodeError('RN_DIMSE_UNREACHABLE', `${peer.aeTitle}@${peer.host}:${peer.port}: ${err.message}`, { details: where, cause: err });
    });
    client.on('closed', () => (failure ? reject(failure) : resolve(statuses)));
    client.send(peer.host, peer.port, link.callingAeTitle, peer.aeTitle, {
      connectTimeout: link.timeoutMs, associationTimeout: link.timeoutMs, pduTimeout: link.timeoutMs,
      // Release at once after the last response (the default lingers to reuse the association).
      associationLingerTimeout: 0,
    });
  });
}

/** C-ECHO: resolves with the round-trip time in ms. */
export async function echo(link: DimseLink): Promise<number> {
  const t0 = performance.now();
  const [status] = await associate(link, [new requests.CEchoRequest()]);
  if (status !== Status.Success) throw new RadnodeError('RN_DIMSE_ASSOCIATION_REJECTED', `C-ECHO to ${link.peer.aeTitle} answered status ${status ?? 'none'}`, { details: { status } });
  return performance.now() - t0;
}

/** C-FIND; returns the matches' elements (the final status must be success). */
export async function find(link: DimseLink, level: 'STUDY' | 'IMAGE', keys: Record<string, unknown>, code: ErrorCode = 'RN_DIMSE_QUERY_FAILED'): Promise<Record<string, unknown>[]> {
  const req = level === 'STUDY' ? requests.CFindRequest.createStudyFindRequest(keys) : requests.CFindRequest.createImageFindRequest(keys);
  const found: Record<string, unknown>[] = [];
  const [status] = await associate(link, [req], (_r, res) => {
    const ds = res.getStatus() === Status.Pending && res.hasDataset() ? res.getDataset() : undefined;
    if (ds) found.push(ds.getElements());
  });
  if (status !== Status.Success) throw new RadnodeError(code, `C-FIND ${level} at ${link.peer.aeTitle} ended with status ${status ?? 'none'}`, { details: { status, level } });
  return found;
}

const asText = (v: unknown): string => (Array.isArray(v) ? String(v[0] ?? '') : v === undefined || v === null ? '' : String(v)).trim();

/** The SOP instances of a study the peer holds, with the fingerprint radnode compares (`ContentDate ContentTime`). */
export async function findStudyInstancesDimse(link: DimseLink, studyUID: string): Promise<Map<string, string | undefined>> {
  const rows = await find(link, 'IMAGE', { StudyInstanceUID: studyUID, SeriesInstanceUID: '', SOPInstanceUID: '', ContentDate: '', ContentTime: '' }, 'RN_DIMSE_NOT_CONFIRMED');
  const held = new Map<string, string | undefined>();
  for (const r of rows) {
    const sop = asText(r.SOPInstanceUID);
    const date = asText(r.ContentDate);
    if (sop) held.set(sop, date ? `${date} ${asText(r.ContentTime)}` : undefined);
  }
  return held;
}

/**
 * dcmjs-dimse sends a parsed data set, so the bytes on the wire are dcmjs's re-encoding of the stored object (same
 * elements, same transfer syntax). For radnode's own SR and SC that is harmless: confirmation compares UIDs and
 * Content Date/Time, not bytes. `_fromP10Buffer` is the parser behind the public `Dataset.fromFile`.
 */
function datasetOf(bytes: Uint8Array): DimseDataset {
  const parser = Dataset as unknown as { _fromP10Buffer(b: Buffer): DimseDataset };
  return parser._fromP10Buffer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** C-STORE of every object in one association; throws unless each one is answered with success (or a warning). */
export async function storeObjects(link: DimseLink, objects: { sopInstanceUID: string; bytes: Uint8Array }[]): Promise<void> {
  if (objects.length === 0) return;
  const statuses = await associate(link, objects.map((o) => new requests.CStoreRequest(datasetOf(o.bytes))));
  // 0xB000-0xB0FF are warnings (coercion, elements discarded): the instance is stored.
  const failed = objects.filter((_o, i) => statuses[i] === undefined || (statuses[i] !== Status.Success && (statuses[i]! & 0xff00) !== 0xb000));
  if (failed.length)
    throw new RadnodeError('RN_DIMSE_STORE_FAILED', `${link.peer.aeTitle} refused ${failed.length} of ${objects.length} C-STOREs`, {
      details: { failed: failed.map((o) => ({ sopInstanceUID: o.sopInstanceUID, status: statuses[objects.indexOf(o)] ?? null })) },
    });
}

/** The source study and its Patient ID at the peer (study-level C-FIND), checked as over DICOMweb (checkSourceStudy). */
async function checkSourceStudyDimse(link: DimseLink, studyUID: string, expectedPatientId: string): Promise<void> {
  const rows = await find(link, 'STUDY', { StudyInstanceUID: studyUID, PatientID: '' });
  const ids = rows.filter((r) => asText(r.StudyInstanceUID) === studyUID || asText(r.StudyInstanceUID) === '').map((r) => asText(r.PatientID));
  checkSourceStudy(studyUID, ids, expectedPatientId, `at ${link.peer.aeTitle}`);
}

/**
 * Whether the peer's copy is the one radnode sent: its Content Date/Time match. ContentDate and ContentTime are
 * optional keys at the IMAGE level (PS3.4 C.6.1.1.5): a peer that returns them empty holds the UID, and that is all
 * it can tell; only a different non-empty fingerprint is another object.
 */
function heldAsSent(held: Map<string, string | undefined>, o: ResultObject): boolean {
  const fp = held.get(o.sopInstanceUID);
  return held.has(o.sopInstanceUID) && (fp === undefined || sameFingerprint(fp, o.fingerprint));
}

export type DimseDeliverResult = { sent: string[]; alreadyPresent: string[]; commitment: 'confirmed' | 'not-offered' | 'not-requested' };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Exactly-once delivery by DIMSE, the same contract as deliverObjects (DICOMweb): find, send the missing, confirm. */
export async function deliverObjectsDimse(
  link: DimseLink,
  objects: ResultObject[],
  /** commitment: ask for storage commitment (only when radnode's SCP runs to receive the PACS's report). */
  opts: { confirmTimeoutMs: number; log: Logger; onSent?: () => void; commitment?: boolean; expectedPatientId?: string },
): Promise<DimseDeliverResult> {
  const result: DimseDeliverResult = { sent: [], alreadyPresent: [], commitment: 'not-requested' };
  const studies = new Map<string, ResultObject[]>();
  for (const o of objects) studies.set(o.studyInstanceUID, [...(studies.get(o.studyInstanceUID) ?? []), o]);
  for (const [studyUID, group] of studies) {
    const log = opts.log.child({ studyInstanceUID: studyUID, peer: link.peer.aeTitle });
    if (opts.expectedPatientId !== undefined) await checkSourceStudyDimse(link, studyUID, opts.expectedPatientId);
    const held = await findStudyInstancesDimse(link, studyUID);
    const missing: ResultObject[] = [];
    const conflicts: string[] = [];
    for (const o of group) {
      if (!held.has(o.sopInstanceUID)) missing.push(o);
      else if (heldAsSent(held, o)) result.alreadyPresent.push(o.sopInstanceUID);
      else conflicts.push(o.sopInstanceUID);
    }
    if (conflicts.length)
      throw new RadnodeError('RN_DIMSE_NOT_CONFIRMED', `${conflicts.length} object(s) are at ${link.peer.aeTitle} with other content`, { retryable: false, details: { studyInstanceUID: studyUID, conflicts } });
    await storeObjects(link, missing);
    if (missing.length) {
      result.sent.push(...missing.map((o) => o.sopInstanceUID));
      log.info('delivery: C-STORE accepted', { instances: missing.length });
      opts.onSent?.();
      if (opts.commitment) {
        const { requestCommitment } = await import('./commitment.ts');
        const c = await requestCommitment(link, missing, opts.confirmTimeoutMs);
        if (c !== 'not-offered') {
          const notCommitted = missing.filter((o) => !c.committed.includes(o.sopInstanceUID));
          if (notCommitted.length)
            throw new RadnodeError('RN_DIMSE_NOT_CONFIRMED', `${link.peer.aeTitle} did not commit to ${notCommitted.length} of ${missing.length} sent objects`, {
              details: { studyInstanceUID: studyUID, notCommitted: notCommitted.map((o) => o.sopInstanceUID), failed: c.failed },
            });
          log.info('delivery: storage commitment confirmed', { instances: missing.length });
        }
        result.commitment = c === 'not-offered' ? 'not-offered' : 'confirmed';
      }
    }
    // Confirm with a growing interval: a PACS may index a moment after it answered the C-STORE.
    const deadline = Date.now() + opts.confirmTimeoutMs;
    let delayMs = 100;
    for (;;) {
      const now = missing.length ? await findStudyInstancesDimse(link, studyUID) : held;
      const pending = missing.filter((o) => !now.has(o.sopInstanceUID) || !heldAsSent(now, o));
      if (pending.length === 0) break;
      if (Date.now() + delayMs > deadline)
        throw new RadnodeError('RN_DIMSE_NOT_CONFIRMED', `${pending.length} of ${missing.length} sent objects not found by C-FIND at ${link.peer.aeTitle}`, {
          details: { studyInstanceUID: studyUID, unconfirmed: pending.map((o) => ({ sopInstanceUID: o.sopInstanceUID, listed: now.has(o.sopInstanceUID) })) },
        });
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 2000);
    }
    if (missing.length) log.info('delivery: confirmed by C-FIND', { instances: missing.length });
  }
  return result;
}

/** C-MOVE of one study to `destinationAeTitle` (normally radnode's own SCP); resolves with the completed count. */
export async function moveStudy(link: DimseLink, studyUID: string, destinationAeTitle: string): Promise<{ completed: number; failed: number }> {
  const req = requests.CMoveRequest.createStudyMoveRequest(destinationAeTitle, studyUID);
  let completed = 0;
  let failed = 0;
  const [status] = await associate(link, [req], (_r, res) => {
    const m = res as unknown as { getCompleted(): number | undefined; getFailures(): number | undefined };
    completed = m.getCompleted() ?? completed;
    failed = m.getFailures() ?? failed;
  });
  if (status !== Status.Success && status !== 0xb000) throw new RadnodeError('RN_DIMSE_QUERY_FAILED', `C-MOVE of a study from ${link.peer.aeTitle} ended with status ${status ?? 'none'}`, { details: { status, studyInstanceUID: studyUID, completed, failed } });
  return { completed, failed };
}

/** Parses `AE@host:port` (the CLI's peer syntax). */
export function parsePeer(s: string): DimsePeer | undefined {
  const m = /^([^@]{1,16})@([^:]+):(\d{1,5})$/.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  return port > 0 && port < 65536 ? { aeTitle: m[1]!, host: m[2]!, port } : undefined;
}
