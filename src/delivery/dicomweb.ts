/**
 * The client side of DICOMweb (PS3.18) that delivery and the pollers share: one HTTP layer with auth, timeout and
 * typed errors, DICOM JSON accessors (PS3.18 Annex F), and a multipart/related reader for WADO-RS.
 *
 * Native fetch (undici) rather than dicomweb-client: dicomweb-client needs an XMLHttpRequest polyfill installed as a
 * global, has no per-request timeout, and rejects with untyped values, so every call would need a wrapper for the
 * three things delivery decides on (reachability, auth, status). QIDO and WADO here are a handful of GETs; one fetch
 * layer serves STOW, QIDO, WADO and Orthanc's REST API alike.
 */
import { RadnodeError, type ErrorCode } from '../errors.ts';
import type { PacsConfig } from '../config/types.ts';

/** Which code each failure class maps to: delivery and polling report the same HTTP failure under their own codes. */
export type FailureCodes = { unreachable: ErrorCode; auth: ErrorCode; rejected: ErrorCode };

export const DELIVERY_CODES: FailureCodes = {
  unreachable: 'RN_DELIVERY_UNREACHABLE',
  auth: 'RN_DELIVERY_AUTH_REJECTED',
  rejected: 'RN_DELIVERY_STOW_REJECTED',
};
export const POLL_CODES: FailureCodes = { unreachable: 'RN_POLL_FAILED', auth: 'RN_POLL_FAILED', rejected: 'RN_POLL_FAILED' };

export function authHeaders(pacs: PacsConfig): Record<string, string> {
  switch (pacs.auth.type) {
    case 'basic':
      return { Authorization: 'Basic ' + Buffer.from(`${pacs.auth.username}:${pacs.auth.password}`).toString('base64') };
    case 'bearer':
      return { Authorization: `Bearer ${pacs.auth.token}` };
    default:
      return {};
  }
}

/** Joins a root and a path without doubling or dropping the slash (config roots have none, but sites add one). */
export function joinUrl(root: string, path: string): string {
  return root.replace(/\/+$/, '') + '/' + path.replace(/^\/+/, '');
}

/** Orthanc's REST root: configured, or the DICOMweb root without its last segment (Orthanc serves both on one port). */
export function orthancRoot(pacs: PacsConfig): string {
  if (pacs.orthancUrl) return pacs.orthancUrl.replace(/\/+$/, '');
  const m = /^(.*)\/dicom-web\/?$/.exec(pacs.url);
  if (pacs.kind !== 'orthanc' || m === null) {
    throw new RadnodeError('RN_CONFIG_INVALID', 'pacs.orthancUrl is needed for the Orthanc REST API', {
      details: { key: 'pacs.orthancUrl', kind: pacs.kind, url: pacs.url },
    });
  }
  return m[1];
}

/** Socket-level failures that mean "not reachable now" (undici puts the system error on `cause`). */
function isNetworkFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return true;
  // fetch rejects with a TypeError whose cause carries the socket error code (ECONNREFUSED, ECONNRESET, UND_ERR_*).
  return err instanceof TypeError;
}

export type PacsRequest = {
  method?: 'GET' | 'POST' | 'DELETE';
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** What the request was, for error details (never carries credentials). */
  what: string;
  /** Non-2xx statuses the caller reads itself (STOW-RS 409 carries a FailedSOPSequence worth parsing). */
  passStatuses?: number[];
};

/**
 * One HTTP request to the PACS with its auth and timeout. Non-2xx answers become coded errors: 401/403 auth
 * (not retryable: the credential will not fix itself), 5xx/429 retryable, other 4xx not retryable.
 */
export async function pacsFetch(pacs: PacsConfig, url: string, req: PacsRequest, codes: FailureCodes): Promise<Response> {
  if (!URL.canParse(url)) {
    // fetch would reject it with the same TypeError as a refused connection: a bad URL is configuration, not a retry.
    throw new RadnodeError('RN_CONFIG_INVALID', `pacs.url does not make a valid URL (${req.what})`, { details: { key: 'pacs.url', value: pacs.url } });
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method ?? 'GET',
      headers: { ...authHeaders(pacs), ...(req.headers ?? {}) },
      body: req.body,
      signal: AbortSignal.timeout(pacs.timeoutMs),
    });
  } catch (err) {
    if (isNetworkFailure(err)) {
      const cause = err instanceof Error && err.cause instanceof Error ? (err.cause as Error & { code?: unknown }).code : undefined;
      throw new RadnodeError(codes.unreachable, `PACS unreachable (${req.what})`, {
        cause: err,
        retryable: true,
        details: { url: redactUrl(url), what: req.what, timeoutMs: pacs.timeoutMs, errorName: (err as Error).name, socketError: cause },
      });
    }
    throw new RadnodeError(codes.unreachable, `request to PACS failed (${req.what})`, { cause: err, retryable: true });
  }
  if (res.ok || req.passStatuses?.includes(res.status)) return res;
  const bodyText = await res.text().catch(() => '');
  const details = { url: redactUrl(url), what: req.what, status: res.status, body: bodyText.slice(0, 500) };
  if (res.status === 401 || res.status === 403) {
    throw new RadnodeError(codes.auth, `PACS refused the credentials (${req.what}: HTTP ${res.status})`, { retryable: false, details });
  }
  const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
  throw new RadnodeError(codes.rejected, `PACS answered HTTP ${res.status} (${req.what})`, { retryable, details });
}

/** Drops userinfo from a URL before it goes into error details or logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}

// ---- DICOM JSON (PS3.18 F.2) ----

export type DicomJsonAttribute = { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string };
export type DicomJsonDataset = Record<string, DicomJsonAttribute>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates the shape of a QIDO answer at the boundary; an empty body (204, or a PACS that sends nothing) is []. */
export function parseDicomJsonArray(text: string, codes: FailureCodes, what: string): DicomJsonDataset[] {
  if (text.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new RadnodeError(codes.rejected, `PACS answer is not JSON (${what})`, { cause: err, details: { what, body: text.slice(0, 200) } });
  }
  if (!Array.isArray(parsed) || !parsed.every(isRecord)) {
    throw new RadnodeError(codes.rejected, `PACS answer is not a DICOM JSON array (${what})`, { details: { what, body: text.slice(0, 200) } });
  }
  return parsed as DicomJsonDataset[];
}

export function parseDicomJsonObject(text: string): DicomJsonDataset | null {
  if (text.trim() === '') return null;
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? (parsed as DicomJsonDataset) : null;
  } catch {
    return null;
  }
}

/** First value of a tag as a string (numbers too, since IS/DS may come back as JSON numbers); PN gives Alphabetic. */
export function firstString(ds: DicomJsonDataset, tag: string): string | undefined {
  const attr = ds[tag] ?? ds[tag.toLowerCase()];
  const v = attr?.Value?.[0];
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (isRecord(v) && typeof v.Alphabetic === 'string') return v.Alphabetic;
  return undefined;
}

export function allStrings(ds: DicomJsonDataset, tag: string): string[] {
  const attr = ds[tag] ?? ds[tag.toLowerCase()];
  return (attr?.Value ?? []).filter((v): v is string => typeof v === 'string');
}

export function firstNumber(ds: DicomJsonDataset, tag: string): number | undefined {
  const v = (ds[tag] ?? ds[tag.toLowerCase()])?.Value?.[0];
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

export function sequenceItems(ds: DicomJsonDataset, tag: string): DicomJsonDataset[] {
  // Orthanc 1.7 sends an empty FailedSOPSequence as {"vr":"SQ"} with no Value (orthanc.md): that is zero items.
  const v = (ds[tag] ?? ds[tag.toLowerCase()])?.Value;
  return Array.isArray(v) ? v.filter(isRecord).map((x) => x as DicomJsonDataset) : [];
}

/** GET a QIDO-RS path under the DICOMweb root and return the datasets. */
export async function qido(pacs: PacsConfig, path: string, codes: FailureCodes): Promise<DicomJsonDataset[]> {
  return (await qidoPage(pacs, path, codes)).items;
}

/**
 * One QIDO answer, and whether the PACS says it cut the result short: PS3.18 8.3.4.4 has it send
 * `Warning: 299 <service>: "There are additional results that can be requested"` when its own limit applied.
 */
async function qidoPage(pacs: PacsConfig, path: string, codes: FailureCodes): Promise<{ items: DicomJsonDataset[]; more: boolean }> {
  const res = await pacsFetch(pacs, joinUrl(pacs.url, path), { headers: { Accept: 'application/dicom+json' }, what: `QIDO ${path.split('?')[0]}` }, codes);
  const warning = res.headers.get('warning') ?? '';
  return { items: parseDicomJsonArray(await res.text(), codes, 'QIDO'), more: /\b299\b/.test(warning) && /additional results/i.test(warning) };
}

/**
 * Pages through a QIDO query (limit/offset, PS3.18 8.3.4.4). Stops on a short page, unless the PACS warns that it
 * cut the answer at its own maximum (dcm4chee QIDOMaxNumberOfResults, Azure's 200): the next offset is then where
 * this page ended. Also stops on a page that brings nothing new (a PACS that ignores offset would otherwise loop
 * forever). Entries are
 * told apart by their whole content, not by a UID: Orthanc keys a study by Patient ID + Study Instance UID, so one UID
 * can come back as two studies.
 */
export async function qidoAll(pacs: PacsConfig, path: string, codes: FailureCodes, pageSize = 500): Promise<DicomJsonDataset[]> {
  const out: DicomJsonDataset[] = [];
  const seen = new Set<string>();
  for (let offset = 0; offset < 1_000_000; ) {
    const sep = path.includes('?') ? '&' : '?';
    const { items: page, more } = await qidoPage(pacs, `${path}${sep}limit=${pageSize}&offset=${offset}`, codes);
    let fresh = 0;
    for (const ds of page) {
      const key = JSON.stringify(ds);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(ds);
      fresh++;
    }
    if (page.length === 0 || fresh === 0 || (page.length < pageSize && !more)) break;
    offset += page.length;
  }
  return out;
}

// ---- multipart/related (RFC 2387) ----

export function boundaryOf(contentType: string): string | null {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : null;
}

/**
 * Splits a buffered multipart body into part bodies. Orthanc's boundary is unquoted and its body may end without a
 * trailing CRLF (orthanc.md), so the reader only relies on `--boundary` delimiters and the blank line after headers.
 */
export function multipartBodies(body: Buffer, boundary: string): Buffer[] {
  const delim = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let pos = body.indexOf(delim);
  while (pos !== -1) {
    let start = pos + delim.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // closing delimiter
    const next = body.indexOf(delim, start);
    if (next === -1) break; // truncated: no closing delimiter, the part cannot be trusted
    const headerEnd = body.indexOf('\r\n\r\n', start);
    if (headerEnd === -1 || headerEnd > next) {
      pos = next;
      continue;
    }
    start = headerEnd + 4;
    let end = next;
    if (body[end - 2] === 0x0d && body[end - 1] === 0x0a) end -= 2; // the CRLF before a delimiter belongs to it
    parts.push(body.subarray(start, end));
    pos = next;
  }
  return parts;
}

/**
 * WADO-RS retrieve of one instance as Part 10 bytes. `transfer-syntax=*` asks for the stored encoding (PS3.18 8.7.3.5):
 * the node must ingest exactly what the PACS holds, not a transcoded copy.
 */
export async function wadoInstance(
  pacs: PacsConfig,
  studyUID: string,
  seriesUID: string,
  sopUID: string,
  codes: FailureCodes,
  /** '*' (the default): as the PACS stores it; a UID asks the PACS to transcode (PS3.18 8.7.3.5.2). */
  transferSyntax = '*',
): Promise<Uint8Array> {
  const path = `studies/${studyUID}/series/${seriesUID}/instances/${sopUID}`;
  const res = await pacsFetch(
    pacs,
    joinUrl(pacs.url, path),
    { headers: { Accept: `multipart/related; type="application/dicom"; transfer-syntax=${transferSyntax}` }, what: 'WADO-RS instance' },
    codes,
  );
  const ct = res.headers.get('content-type') ?? '';
  const body = Buffer.from(await res.arrayBuffer());
  if (/^application\/dicom\b/i.test(ct)) return body; // some PACS answer a single instance without multipart
  const boundary = boundaryOf(ct);
  const parts = boundary ? multipartBodies(body, boundary) : [];
  if (parts.length !== 1) {
    throw new RadnodeError(codes.rejected, 'WADO-RS answer is not one DICOM part', {
      details: { what: 'WADO-RS instance', contentType: ct, parts: parts.length, bytes: body.length },
    });
  }
  return parts[0];
}
