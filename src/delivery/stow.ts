/** STOW-RS client (PS3.18 10.5): one multipart/related request per batch, response read per PS3.18 10.5.3. */
import { randomUUID } from 'node:crypto';
import { RadnodeError } from '../errors.ts';
import type { PacsConfig } from '../config/types.ts';
import {
  DELIVERY_CODES,
  firstNumber,
  firstString,
  joinUrl,
  pacsFetch,
  parseDicomJsonObject,
  sequenceItems,
} from './dicomweb.ts';

export type StowObject = { sopInstanceUID: string; bytes: Uint8Array };
export type StowResult = { stored: string[]; failed: { sopInstanceUID: string; reason: string }[] };

const TAG_FAILED_SOP_SEQUENCE = '00081198';
const TAG_REFERENCED_SOP_SEQUENCE = '00081199';
const TAG_REFERENCED_SOP_INSTANCE_UID = '00081155';
const TAG_FAILURE_REASON = '00081197';

/** Failure Reason values of PS3.18 Table 10.5.3-1 / PS3.4 C.4.2.1.4, so a log says what happened, not just a number. */
const FAILURE_REASONS: Record<number, string> = {
  0x0110: 'Processing failure',
  0x0111: 'Duplicate SOP Instance',
  0x0112: 'No such object instance',
  0x0122: 'Referenced SOP Class not supported',
  0x0124: 'Not authorized',
  0xa700: 'Refused: out of resources',
  0xa900: 'Error: data set does not match SOP Class',
  0xc000: 'Error: cannot understand',
  0xc122: 'Referenced Transfer Syntax not supported',
};

function describeFailure(code: number | undefined): string {
  if (code === undefined) return 'no FailureReason given';
  const hex = '0x' + code.toString(16).toUpperCase().padStart(4, '0');
  return FAILURE_REASONS[code] ? `${hex} ${FAILURE_REASONS[code]}` : hex;
}

export function buildMultipart(objects: StowObject[], boundary: string): Buffer {
  const chunks: Buffer[] = [];
  for (const o of objects) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${o.bytes.byteLength}\r\n\r\n`));
    chunks.push(Buffer.from(o.bytes.buffer, o.bytes.byteOffset, o.bytes.byteLength));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/**
 * Stores instances with one STOW-RS request. The body is buffered: result objects are an SR and a few secondary
 * captures, and a buffer gives the PACS a Content-Length (some PACS refuse chunked uploads).
 * `studyInstanceUID` targets /studies/{uid}, so that the PACS itself refuses an object of another study.
 */
/**
 * Failure Reasons (PS3.18 Table I.2-1 / PS3.4 Annex B) after which the same bytes may be stored later: out of
 * resources (A7xx), and duplicate SOP instance (0111: an earlier attempt whose answer was lost stored it; the next
 * attempt's QIDO finds it and confirms). A missing reason counts as passing too. The rest will not change on a
 * re-send: SOP class not supported, data set mismatch, cannot understand, and processing failure (0110), which
 * Orthanc answers for deterministic refusals such as an instance of another study.
 */
export function isPassingFailure(reason: number | undefined): boolean {
  return reason === undefined || (reason & 0xff00) === 0xa700 || reason === 0x0111;
}

export async function stowInstances(pacs: PacsConfig, objects: StowObject[], studyInstanceUID?: string): Promise<StowResult> {
  if (objects.length === 0) return { stored: [], failed: [] };
  const boundary = `radnode-${randomUUID()}`;
  const path = studyInstanceUID ? `studies/${studyInstanceUID}` : 'studies';
  const res = await pacsFetch(
    pacs,
    joinUrl(pacs.url, path),
    {
      method: 'POST',
      headers: {
        'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
        Accept: 'application/dicom+json',
      },
      body: buildMultipart(objects, boundary),
      what: 'STOW-RS',
      passStatuses: [400, 409],
    },
    DELIVERY_CODES,
  );
  const text = await res.text();
  const body = parseDicomJsonObject(text);

  const stored = new Set<string>();
  const failed = new Map<string, string>();
  const reasons: (number | undefined)[] = [];
  if (body !== null) {
    for (const item of sequenceItems(body, TAG_REFERENCED_SOP_SEQUENCE)) {
      const uid = firstString(item, TAG_REFERENCED_SOP_INSTANCE_UID);
      if (uid !== undefined) stored.add(uid);
    }
    for (const item of sequenceItems(body, TAG_FAILED_SOP_SEQUENCE)) {
      const uid = firstString(item, TAG_REFERENCED_SOP_INSTANCE_UID);
      const reason = firstNumber(item, TAG_FAILURE_REASON);
      reasons.push(reason);
      if (uid !== undefined) failed.set(uid, describeFailure(reason));
    }
  }

  const result: StowResult = { stored: [], failed: [] };
  for (const o of objects) {
    if (failed.has(o.sopInstanceUID)) result.failed.push({ sopInstanceUID: o.sopInstanceUID, reason: failed.get(o.sopInstanceUID) as string });
    else if (stored.has(o.sopInstanceUID)) result.stored.push(o.sopInstanceUID);
    // A 200 that does not list an instance has not acknowledged it; confirmation by QIDO decides, not this answer.
    else result.failed.push({ sopInstanceUID: o.sopInstanceUID, reason: body === null ? 'response is not DICOM JSON' : 'not listed in the response' });
  }

  if (res.status === 400 || res.status === 409) {
    // PS3.18 10.5.3: 409 means none was stored. Orthanc answers 400 when one part is not DICOM, yet stores the others
    // and lists them in 00081199: that is a partial success (like 202), reported as such. With nothing stored,
    // re-sending the same bytes will not change the PACS's mind, unless every reason given is a passing one.
    if (result.stored.length === 0) {
      throw new RadnodeError('RN_DELIVERY_STOW_REJECTED', `PACS stored none of the instances (HTTP ${res.status})`, {
        retryable: res.status === 409 && reasons.length > 0 && reasons.every(isPassingFailure),
        details: { status: res.status, failed: result.failed, body: body === null ? text.slice(0, 500) : undefined },
      });
    }
  }
  return result;
}
