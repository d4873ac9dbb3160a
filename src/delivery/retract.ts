/**
 * Retraction of a superseded result (DESIGN §3 "Supersede"). DICOMweb has no delete, so only Orthanc's REST API can
 * remove an instance; a plain DICOMweb PACS keeps it (an IOCM rejection note is the standard way and is not built).
 */
import type { PacsConfig } from '../config/types.ts';
import { DELIVERY_CODES, joinUrl, orthancRoot, pacsFetch } from './dicomweb.ts';

/** Deletes the instance from Orthanc. True when it was deleted, false when it was not there or the PACS cannot delete. */
export async function retractInstance(pacs: PacsConfig, sopInstanceUID: string): Promise<boolean> {
  if (pacs.kind !== 'orthanc') return false;
  const root = orthancRoot(pacs);
  const res = await pacsFetch(pacs, joinUrl(root, 'tools/lookup'), { method: 'POST', body: sopInstanceUID, what: 'Orthanc /tools/lookup' }, DELIVERY_CODES);
  const hits: unknown = await res.json();
  const instance = Array.isArray(hits)
    ? hits.find((h): h is { Type: string; ID: string } => typeof h === 'object' && h !== null && (h as { Type?: unknown }).Type === 'Instance' && typeof (h as { ID?: unknown }).ID === 'string')
    : undefined;
  if (instance === undefined) return false;
  const del = await pacsFetch(pacs, joinUrl(root, `instances/${instance.ID}`), { method: 'DELETE', what: 'Orthanc DELETE instance', passStatuses: [404] }, DELIVERY_CODES);
  await del.arrayBuffer();
  // 404: deleted in between by someone else; the instance is gone either way, but not by us.
  return del.status !== 404;
}
