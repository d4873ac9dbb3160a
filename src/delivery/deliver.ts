/**
 * Exactly-once delivery of result objects (DESIGN §3): check the source study, send only what the PACS lacks, and
 * confirm by QIDO that every object is stored with the expected fingerprint. A STOW 200 proves nothing: Orthanc answers
 * 200 and lists as stored an instance it already had and silently dropped (orthanc.md, OverwriteInstances false).
 */
import { RadnodeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { PacsConfig } from '../config/types.ts';
import type { ResultObject } from '../results/objects.ts';
import { checkSourceStudy, findStudyInstances, getStudyPatientId, sameFingerprint, type PacsInstance } from './query.ts';
import { stowInstances } from './stow.ts';

export type DeliverOptions = {
  /** When given, the source study must still be in the PACS under this Patient ID, else RN_SOURCE_STUDY_CHANGED. */
  expectedPatientId?: string;
  /** How long QIDO may lag behind the STOW before the delivery counts as unconfirmed. */
  confirmTimeoutMs: number;
  log: Logger;
  /** Called after each accepted STOW, before confirmation: where the kill tests' `after-send` crash point sits. */
  onSent?: () => void;
};

export type DeliverResult = { sent: string[]; alreadyPresent: string[] };

/** Keeps one STOW request to a size every PACS accepts and a failed batch cheap to resend. */
const MAX_BATCH_BYTES = 64 * 1024 * 1024;
const MAX_BATCH_OBJECTS = 100;

function batches(objects: ResultObject[]): ResultObject[][] {
  const out: ResultObject[][] = [];
  let cur: ResultObject[] = [];
  let size = 0;
  for (const o of objects) {
    if (cur.length > 0 && (size + o.bytes.byteLength > MAX_BATCH_BYTES || cur.length >= MAX_BATCH_OBJECTS)) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(o);
    size += o.bytes.byteLength;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function groupByStudy(objects: ResultObject[]): Map<string, ResultObject[]> {
  const m = new Map<string, ResultObject[]>();
  for (const o of objects) {
    const list = m.get(o.studyInstanceUID) ?? [];
    list.push(o);
    m.set(o.studyInstanceUID, list);
  }
  return m;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function deliverObjects(pacs: PacsConfig, objects: ResultObject[], opts: DeliverOptions): Promise<DeliverResult> {
  const result: DeliverResult = { sent: [], alreadyPresent: [] };
  const conflicts: { sopInstanceUID: string; studyInstanceUID: string; expected: string; found: string | null }[] = [];

  for (const [studyUID, group] of groupByStudy(objects)) {
    const log = opts.log.child({ studyInstanceUID: studyUID, pacs: pacs.url });

    if (opts.expectedPatientId !== undefined) {
      const pid = await getStudyPatientId(pacs, studyUID);
      checkSourceStudy(studyUID, pid === null ? [] : [pid], opts.expectedPatientId, 'in the PACS');
    }

    const sops = new Set(group.map((o) => o.sopInstanceUID));
    const held = await findStudyInstances(pacs, studyUID, sops);
    const missing: ResultObject[] = [];
    let presentHere = 0;
    for (const o of group) {
      const h = held.get(o.sopInstanceUID);
      if (h === undefined) missing.push(o);
      else if (sameFingerprint(h.fingerprint, o.fingerprint)) {
        result.alreadyPresent.push(o.sopInstanceUID);
        presentHere++;
      }
      // Same UID, other content: a re-send would be dropped as "Already stored" by Orthanc (and by most PACS), so
      // sending is pointless; an operator must look (DESIGN §3: UIDs and Content Date/Time are frozen at first write).
      else conflicts.push({ sopInstanceUID: o.sopInstanceUID, studyInstanceUID: studyUID, expected: o.fingerprint, found: h.fingerprint ?? null });
    }

    for (const batch of batches(missing)) {
      const stow = await stowInstances(pacs, batch.map((o) => ({ sopInstanceUID: o.sopInstanceUID, bytes: o.bytes })), studyUID);
      if (stow.failed.length > 0) {
        // Whatever did get stored is found by QIDO on the retry and not sent again.
        throw new RadnodeError('RN_DELIVERY_STOW_REJECTED', `PACS refused ${stow.failed.length} of ${batch.length} instances`, {
          details: { studyInstanceUID: studyUID, failed: stow.failed, stored: stow.stored },
        });
      }
      result.sent.push(...batch.map((o) => o.sopInstanceUID));
      log.info('delivery: STOW-RS accepted', { instances: batch.length });
      opts.onSent?.();
    }
    if (presentHere > 0) log.info('delivery: already in the PACS, not re-sent', { instances: presentHere });

    if (missing.length > 0) await confirm(pacs, studyUID, missing, opts.confirmTimeoutMs, log);
  }

  if (conflicts.length > 0) {
    throw new RadnodeError('RN_DELIVERY_NOT_CONFIRMED', `${conflicts.length} object(s) are in the PACS with other content`, {
      retryable: false,
      details: { conflicts, sent: result.sent, alreadyPresent: result.alreadyPresent },
    });
  }
  return result;
}

/** Polls QIDO until every sent object is listed with its fingerprint, with a growing interval up to the deadline. */
async function confirm(pacs: PacsConfig, studyUID: string, sent: ResultObject[], timeoutMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const sops = new Set(sent.map((o) => o.sopInstanceUID));
  let delayMs = 100;
  let held: Map<string, PacsInstance>;
  for (;;) {
    held = await findStudyInstances(pacs, studyUID, sops);
    const pending = sent.filter((o) => !sameFingerprint(held.get(o.sopInstanceUID)?.fingerprint, o.fingerprint));
    if (pending.length === 0) {
      log.info('delivery: confirmed by QIDO-RS', { instances: sent.length });
      return;
    }
    if (Date.now() + delayMs > deadline) {
      throw new RadnodeError('RN_DELIVERY_NOT_CONFIRMED', `${pending.length} of ${sent.length} sent objects not confirmed by QIDO-RS`, {
        retryable: true,
        details: {
          studyInstanceUID: studyUID,
          timeoutMs,
          unconfirmed: pending.map((o) => ({
            sopInstanceUID: o.sopInstanceUID,
            expected: o.fingerprint,
            found: held.get(o.sopInstanceUID)?.fingerprint ?? null,
            listed: held.has(o.sopInstanceUID),
          })),
        },
      });
    }
    await sleep(delayMs);
    delayMs = Math.min(delayMs * 2, 2000);
  }
}
