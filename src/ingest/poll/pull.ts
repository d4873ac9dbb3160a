/** Pulling one study's wanted instances by QIDO-RS + WADO-RS, shared by both pollers (PS3.18 10.4, 10.6). */
import { RadnodeError, asRadnodeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { PacsConfig } from '../../config/types.ts';
import { POLL_CODES, firstNumber, firstString, qidoAll, wadoInstance } from '../../delivery/dicomweb.ts';
import { TS, hasPixelDecoder, readHeader } from '../../dicom/index.ts';
import type { PollSink, PollSource } from './sink.ts';

/**
 * Series no detector ever takes as input (DESIGN §3: SR, PR, KO and other AI output never re-open a study): reports,
 * presentation states, key-object notes, and segmentations (other vendors' AI output). Pulling them moves data for
 * nothing, and radnode's own SRs come back into every study it delivered to.
 */
export const NEVER_PULLED_MODALITIES: ReadonlySet<string> = new Set(['SR', 'KO', 'PR', 'SEG']);

export function isWantedModality(modality: string | undefined, modalities: string[] | undefined): boolean {
  if (modality !== undefined && NEVER_PULLED_MODALITIES.has(modality.toUpperCase())) return false;
  if (modalities === undefined || modalities.length === 0) return true;
  // A series without Modality cannot be routed by modality, so a modality filter excludes it.
  return modality !== undefined && modalities.some((m) => m.toUpperCase() === modality.toUpperCase());
}

export type PullResult = { pulled: number; wantedInstances: number; failedInstances: number };

/**
 * Instances the store refused (malformed, a conflict): not fetched again for a day. The same bytes would be refused
 * the same way; a day later they are tried once more, in case the PACS's copy was repaired.
 */
const refusedUntil = new Map<string, number>();
const REFUSED_TTL_MS = 24 * 3_600_000;

export async function pullStudy(
  pacs: PacsConfig,
  sink: PollSink,
  studyUID: string,
  source: PollSource,
  opts: { modalities?: string[]; log: Logger },
): Promise<PullResult> {
  const log = opts.log.child({ studyInstanceUID: studyUID });
  const series = await qidoAll(pacs, `studies/${encodeURIComponent(studyUID)}/series?includefield=00201209`, POLL_CODES);
  const wanted = series.filter((s) => firstString(s, '0020000E') !== undefined && isWantedModality(firstString(s, '00080060'), opts.modalities));
  const result: PullResult = { pulled: 0, wantedInstances: 0, failedInstances: 0 };
  if (wanted.length === 0) return result;

  const counts = wanted.map((s) => firstNumber(s, '00201209'));
  const wantedCount = counts.every((c) => c !== undefined) ? counts.reduce<number>((a, c) => a + (c ?? 0), 0) : undefined;
  const known = sink.knownInstances ? new Set(await sink.knownInstances(studyUID)) : null;
  if (known === null && wantedCount !== undefined) {
    // Without per-instance knowledge, equal counts mean nothing to pull: the cheap check that keeps a re-fired
    // StableStudy (after radnode's own SR lands) from re-retrieving a whole CT.
    if (wantedCount <= (await sink.knownInstanceCount(studyUID))) return { ...result, wantedInstances: wantedCount };
  }

  // First every wanted instance, then what to fetch: the unknown ones, and when there are any, the purged ones too.
  const listed: { seriesUID: string; sop: string }[] = [];
  for (const s of wanted) {
    const seriesUID = firstString(s, '0020000E') as string;
    const instances = await qidoAll(
      pacs,
      `studies/${encodeURIComponent(studyUID)}/series/${encodeURIComponent(seriesUID)}/instances`,
      POLL_CODES,
    );
    for (const inst of instances) {
      const sop = firstString(inst, '00080018');
      if (sop !== undefined) listed.push({ seriesUID, sop });
    }
  }
  result.wantedInstances = listed.length;
  const fresh = listed.filter((i) => !known?.has(i.sop));
  // Retention deleted these files after delivery: a study with something new needs them back to be read again.
  const purged = fresh.length && sink.purgedInstances ? await sink.purgedInstances(studyUID) : new Set<string>();
  const now = Date.now();
  const toFetch = [...fresh, ...listed.filter((i) => purged.has(i.sop))].filter((i) => (refusedUntil.get(i.sop) ?? 0) <= now);
  for (const { seriesUID, sop } of toFetch) {
    // One instance at a time: memory stays bounded by the largest instance, not the study.
    let bytes: Uint8Array;
    try {
      bytes = await decodableCopy(pacs, studyUID, seriesUID, sop, await wadoInstance(pacs, studyUID, seriesUID, sop, POLL_CODES), log);
    } catch (err) {
      // One instance the PACS lists but answers an error for (a lost file, an offline tier) must not hold up every
      // other instance and study behind it: it is fetched again on a later poll. A PACS that does not answer at all
      // (down, timing out) or asks to slow down stops this poll instead.
      const e = asRadnodeError(err, 'RN_POLL_FAILED');
      const status = e.details.status;
      if (typeof status !== 'number' || status === 429 || status === 503) throw e;
      log.warn('poll: instance not served', { sopInstanceUID: sop, code: e.code, status });
      result.failedInstances++;
      continue;
    }
    try {
      await sink.ingest(bytes, { source, studyInstanceUID: studyUID });
    } catch (err) {
      const e = asRadnodeError(err);
      if (e.retryable) throw e; // disk full, store busy: stop this poll, the next one resumes
      // A malformed or refused instance must not block the rest of the study, nor be downloaded again on every poll.
      log.warn('poll: instance refused by the store', { sopInstanceUID: sop, code: e.code, error: e.message });
      refusedUntil.set(sop, Date.now() + REFUSED_TTL_MS);
      if (refusedUntil.size > 100_000) refusedUntil.delete(refusedUntil.keys().next().value!);
      result.failedInstances++;
      continue;
    }
    result.pulled++;
  }
  if (result.pulled > 0) log.info('poll: study retrieved', { source, instances: result.pulled });
  return result;
}

/**
 * The retrieve-path fallback (issue 3, item 3): an image stored in a syntax radnode cannot decode (JPEG XL, video, a
 * syntax it does not know) is asked for again in Explicit VR Little Endian, which a transcoding PACS serves. A PACS
 * that cannot or will not transcode leaves the original in place: it is stored, and decoding fails later with
 * RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX naming the syntax (a coded result, never a lost instance).
 */
export async function decodableCopy(pacs: PacsConfig, studyUID: string, seriesUID: string, sop: string, bytes: Uint8Array, log: Logger): Promise<Uint8Array> {
  let stored;
  try {
    stored = readHeader(bytes);
  } catch {
    return bytes; // malformed: the store refuses it with the parser's typed error
  }
  if (!stored.image || hasPixelDecoder(stored.transferSyntax)) return bytes;
  const asked = stored.transferSyntax;
  try {
    const again = await wadoInstance(pacs, studyUID, seriesUID, sop, POLL_CODES, TS.ExplicitVRLittleEndian);
    const h = readHeader(again);
    if (h.SOPInstanceUID === sop && hasPixelDecoder(h.transferSyntax)) {
      log.info('poll: instance transcoded by the PACS', { sopInstanceUID: sop, from: asked.uid, to: h.transferSyntax.uid });
      return again;
    }
    log.warn('poll: the PACS answered the transcode request with an undecodable copy; keeping the original', { sopInstanceUID: sop, transferSyntaxUID: h.transferSyntax.uid });
  } catch (err) {
    const e = asRadnodeError(err);
    if (e.retryable) throw e;
    log.warn('poll: the PACS did not transcode; keeping the original', { sopInstanceUID: sop, transferSyntaxUID: asked.uid, code: e.code, error: e.message });
  }
  return bytes;
}

/** Wraps anything a poll step threw into RN_POLL_FAILED, keeping the code of an error that already has one. */
export function pollError(err: unknown, what: string): RadnodeError {
  if (err instanceof RadnodeError) return err;
  return new RadnodeError('RN_POLL_FAILED', `poll failed: ${what}`, { cause: err });
}
