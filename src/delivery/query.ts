/** What the PACS holds, by QIDO-RS (PS3.18 10.6), for the exactly-once delivery of DESIGN §3. */
import type { PacsConfig } from '../config/types.ts';
import { RadnodeError } from '../errors.ts';
import {
  DELIVERY_CODES,
  firstString,
  joinUrl,
  pacsFetch,
  parseDicomJsonArray,
  qido,
  qidoAll,
  type DicomJsonDataset,
  type FailureCodes,
} from './dicomweb.ts';

export type PacsInstance = { seriesInstanceUID: string; fingerprint?: string };

const TAG_SOP_INSTANCE_UID = '00080018';
const TAG_SERIES_INSTANCE_UID = '0020000E';
const TAG_CONTENT_DATE = '00080023';
const TAG_CONTENT_TIME = '00080033';
const TAG_PATIENT_ID = '00100020';

function fingerprintOf(ds: DicomJsonDataset): string | undefined {
  const date = firstString(ds, TAG_CONTENT_DATE);
  const time = firstString(ds, TAG_CONTENT_TIME);
  return date !== undefined && time !== undefined ? `${date.trim()} ${time.trim()}` : undefined;
}

/**
 * Two `ContentDate ContentTime` fingerprints name the same moment. A PACS may drop trailing zeros of a TM fraction
 * or keep the old ACR-NEMA colons (PS3.5 6.2 TM), so times are compared in a normal form, not byte for byte.
 */
/**
 * DESIGN §3: before any send, the source study must still be at the destination under the Patient ID radnode read.
 * `found`: the Patient IDs the destination gives for the study (none: not found). Patient IDs stay out of details
 * and logs (DESIGN §6): only whether the study was found. A study not found (yet) is retried with backoff: a modality
 * that sends to radnode and the PACS at once, or a PACS still indexing, answers "not found" for a while; another
 * Patient ID is final.
 */
export function checkSourceStudy(studyUID: string, found: readonly string[], expectedPatientId: string, where: string): void {
  if (found.includes(expectedPatientId)) return;
  const studyFound = found.length > 0;
  throw new RadnodeError('RN_SOURCE_STUDY_CHANGED', studyFound ? `source study now has another Patient ID ${where}` : `source study is not (or no longer) ${where}`, {
    details: { studyInstanceUID: studyUID, studyFound },
    retryable: !studyFound,
  });
}

export function sameFingerprint(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const norm = (fp: string): string => {
    const [date = '', time = ''] = fp.trim().split(/\s+/);
    let t = time.replace(/:/g, '');
    if (t.includes('.')) t = t.replace(/0+$/, '').replace(/\.$/, '');
    return `${date.replace(/[.-]/g, '')} ${t}`;
  };
  return norm(a) === norm(b);
}

/**
 * The instances of a study in the PACS, with the fingerprint of each. Orthanc's QIDO returns ContentDate/Time for
 * includefield (checked on DICOMweb 1.7), but QIDO need not return non-key attributes (PS3.18 8.3.4.3), so an instance
 * of interest without them is asked again through WADO-RS metadata.
 * `onlySops` limits that fallback to the objects being delivered (a source CT may have hundreds of instances).
 */
export async function findStudyInstances(
  pacs: PacsConfig,
  studyUID: string,
  onlySops?: ReadonlySet<string>,
  codes: FailureCodes = DELIVERY_CODES,
): Promise<Map<string, PacsInstance>> {
  const list = await qidoAll(
    pacs,
    `studies/${encodeURIComponent(studyUID)}/instances?includefield=${TAG_CONTENT_DATE}&includefield=${TAG_CONTENT_TIME}`,
    codes,
  );
  const out = new Map<string, PacsInstance>();
  const needMetadata: { sop: string; series: string }[] = [];
  for (const ds of list) {
    const sop = firstString(ds, TAG_SOP_INSTANCE_UID);
    const series = firstString(ds, TAG_SERIES_INSTANCE_UID);
    if (sop === undefined || series === undefined) continue;
    const fingerprint = fingerprintOf(ds);
    out.set(sop, fingerprint !== undefined ? { seriesInstanceUID: series, fingerprint } : { seriesInstanceUID: series });
    if (fingerprint === undefined && (onlySops === undefined || onlySops.has(sop))) needMetadata.push({ sop, series });
  }
  if (needMetadata.length === 0) return out;

  if (onlySops !== undefined) {
    for (const { sop, series } of needMetadata) {
      const meta = await metadata(pacs, `studies/${studyUID}/series/${series}/instances/${sop}/metadata`, codes);
      const fp = meta.length > 0 ? fingerprintOf(meta[0]) : undefined;
      if (fp !== undefined) out.set(sop, { seriesInstanceUID: series, fingerprint: fp });
    }
  } else {
    // Without a filter, one metadata request per series rather than per instance.
    for (const series of new Set(needMetadata.map((n) => n.series))) {
      for (const ds of await metadata(pacs, `studies/${studyUID}/series/${series}/metadata`, codes)) {
        const sop = firstString(ds, TAG_SOP_INSTANCE_UID);
        const fp = fingerprintOf(ds);
        if (sop !== undefined && fp !== undefined) out.set(sop, { seriesInstanceUID: series, fingerprint: fp });
      }
    }
  }
  return out;
}

async function metadata(pacs: PacsConfig, path: string, codes: FailureCodes): Promise<DicomJsonDataset[]> {
  const res = await pacsFetch(pacs, joinUrl(pacs.url, path), { headers: { Accept: 'application/dicom+json' }, what: 'WADO-RS metadata' }, codes);
  return parseDicomJsonArray(await res.text(), codes, 'WADO-RS metadata');
}

/** The study's Patient ID in the PACS; null when the PACS does not hold the study. An empty Patient ID is ''. */
export async function getStudyPatientId(pacs: PacsConfig, studyUID: string, codes: FailureCodes = DELIVERY_CODES): Promise<string | null> {
  const list = await qido(pacs, `studies?StudyInstanceUID=${encodeURIComponent(studyUID)}&includefield=${TAG_PATIENT_ID}`, codes);
  const match = list.find((ds) => firstString(ds, '0020000D') === studyUID);
  if (match === undefined) return null;
  return firstString(match, TAG_PATIENT_ID) ?? '';
}
