/**
 * What the viewer's DICOMweb proxy forwards (DESIGN §6): only the QIDO-RS and WADO-RS read routes that OHIF uses,
 * matched segment by segment, so that no write route, no Orthanc REST route and no path trick reaches the PACS.
 */

/** A DICOM UID as it appears in a DICOMweb path (PS3.5 §9.1: digits and dots, at most 64 characters). */
const UID = '[0-9]+(?:\\.[0-9]+)*';
/** Frame lists are comma-separated 1-based numbers (PS3.18 §8.3.5.1); bulk data paths are Orthanc's tag paths. */
const FRAMES = '[0-9]{1,6}(?:,[0-9]{1,6}){0,255}';
const BULK = '[0-9A-Fa-f]{8}(?:/[0-9]{1,6}/[0-9A-Fa-f]{8}){0,8}';

const STUDY = `/studies/${UID}`;
const SERIES = `${STUDY}/series/${UID}`;
const INSTANCE = `${SERIES}/instances/${UID}`;

/** Every allowed path below the DICOMweb root, whole-path anchored. */
const ALLOWED: RegExp[] = [
  // QIDO-RS (PS3.18 §10.6): searches at every level
  '/studies', '/series', '/instances', `${STUDY}/series`, `${STUDY}/instances`, `${SERIES}/instances`,
  // WADO-RS metadata (OHIF reads series metadata; study metadata for lazy loading)
  `${STUDY}/metadata`, `${SERIES}/metadata`, `${INSTANCE}/metadata`,
  // WADO-RS pixels: instances (SR and SC content when not inlined), frames, rendered and thumbnails
  INSTANCE, `${INSTANCE}/frames/${FRAMES}`,
  `${STUDY}/rendered`, `${SERIES}/rendered`, `${INSTANCE}/rendered`, `${INSTANCE}/frames/${FRAMES}/rendered`,
  `${STUDY}/thumbnail`, `${SERIES}/thumbnail`, `${INSTANCE}/thumbnail`, `${INSTANCE}/frames/${FRAMES}/thumbnail`,
  // Bulk data URIs as Orthanc writes them into metadata (…/instances/{sop}/bulk/{tag}[/{item}/{tag}]…)
  `${INSTANCE}/bulk/${BULK}`,
].map((p) => new RegExp(`^${p}$`));

export type ProxyDecision =
  | { forward: true; subPath: string }
  | { forward: false; status: 403 | 405; reason: string };

/**
 * Decides on a request below a DICOMweb prefix. `rawPath` is the path as it came on the wire, before any decoding:
 * a percent sign, a backslash, `..` or an empty segment is refused outright, because decoding differences
 * between radnode and the PACS are how an allow-list gets bypassed (`/studies/%2e%2e/…`, `%2F`).
 */
export function decideProxy(method: string, rawPath: string): ProxyDecision {
  if (method !== 'GET' && method !== 'HEAD') return { forward: false, status: 405, reason: `method ${method} is not allowed: the viewer proxy is read-only` };
  if (/[%\\]/.test(rawPath)) return { forward: false, status: 403, reason: 'encoded characters and backslashes are not allowed in the path' };
  if (rawPath.split('/').some((seg, i) => seg === '..' || seg === '.' || (seg === '' && i > 0))) return { forward: false, status: 403, reason: 'dot segments and empty segments are not allowed' };
  if (!ALLOWED.some((re) => re.test(rawPath))) return { forward: false, status: 403, reason: 'not a DICOMweb read route the viewer needs' };
  return { forward: true, subPath: rawPath };
}
