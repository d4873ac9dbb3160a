/**
 * Streaming multipart/related reader for STOW-RS (PS3.18 §10.5, §8.6.1.2; RFC 2046 §5.1, RFC 2387).
 *
 * A whole study arrives as one POST (Orthanc sends a stable study in a single chunked request, shared/notes/orthanc.md),
 * so the body is never held in memory: it is split on the fly, each part written to its own temp file while its
 * sha256 and size are computed, and fsync'd before anyone else sees it (DESIGN §3: temp file, fsync, rename, record).
 *
 * Two layers: `MultipartSplitter` is a pure, synchronous state machine (bytes in, events out) so that every chunking
 * of a body can be tested without I/O; `receiveMultipart` drives it from a stream and owns the temp files until it
 * returns. On any failure it deletes every temp file it created, so a failed request leaves nothing on disk.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { RadnodeError } from '../../errors.ts';

/** The media type every part of a STOW-RS request carries (PS3.18 §10.5.1.1, Table 8.6.1.2-1 "DICOM"). */
export const DICOM_MEDIA_TYPE = 'application/dicom';

/*
 * RFC 2046 §5.1.1 caps a boundary at 70 characters, but Orthanc's DICOMweb client sends two UUIDs joined by '-'
 * (73 characters, shared/notes/orthanc.md), so a strict cap would refuse the PACS we are built for. We only bound it
 * to keep the delimiter search cheap and the carried-over tail small.
 */
const MAX_BOUNDARY_LENGTH = 200;
/** Part headers are a few short lines; more than this is not a STOW client, and we refuse to buffer it. */
const MAX_PART_HEADER_BYTES = 16 * 1024;
/** How many finished parts may be fsync'ing in the background while the next part streams in. */
const MAX_PENDING_FINALIZE = 8;

export type StowContentType = {
  /** Always lower case `multipart/related`. */
  mediaType: 'multipart/related';
  boundary: string;
  /** The `type` parameter as sent (already checked to name application/dicom). */
  type: string;
  /** Other parameters, names lower-cased (e.g. `start`, `transfer-syntax`). */
  params: Record<string, string>;
};

type ParsedMediaType = { mediaType: string; params: Record<string, string> };

/**
 * Parses `type/subtype; name=value; name="quoted value"` per RFC 9110 §8.3.1: parameter names are case-insensitive,
 * values are tokens or quoted-strings with backslash escapes. Returns undefined when the syntax is broken.
 */
export function parseMediaType(header: string): ParsedMediaType | undefined {
  const s = header;
  let i = 0;
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  skipWs();
  const semi = s.indexOf(';', i);
  const mediaType = (semi === -1 ? s.slice(i) : s.slice(i, semi)).trim().toLowerCase();
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(mediaType)) return undefined;
  const params: Record<string, string> = {};
  i = semi === -1 ? s.length : semi;
  while (i < s.length) {
    if (s[i] !== ';') return undefined;
    i++;
    skipWs();
    if (i >= s.length) break; // a trailing ';' is tolerated
    const eq = s.indexOf('=', i);
    if (eq === -1) return undefined;
    const name = s.slice(i, eq).trim().toLowerCase();
    if (!/^[a-z0-9!#$&^_.+-]+$/.test(name)) return undefined;
    i = eq + 1;
    skipWs();
    let value = '';
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const c = s[i];
        if (c === '\\' && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          closed = true;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return undefined;
    } else {
      const start = i;
      while (i < s.length && s[i] !== ';') i++;
      value = s.slice(start, i).trim();
    }
    skipWs();
    if (!(name in params)) params[name] = value;
  }
  return { mediaType, params };
}

/**
 * Checks a STOW-RS request's Content-Type: PS3.18 §10.5.1.1 requires `multipart/related` with a `type` parameter
 * naming application/dicom (the only payload radnode accepts; the metadata+bulkdata forms, type
 * application/dicom+json or +xml, are refused). Throws RN_INGEST_BAD_CONTENT_TYPE (415) with a message that says
 * what was expected.
 */
export function parseStowContentType(header: string | undefined): StowContentType {
  const expected = 'expected multipart/related; type="application/dicom"; boundary=...';
  if (header === undefined || header.trim() === '') {
    throw new RadnodeError('RN_INGEST_BAD_CONTENT_TYPE', `Content-Type is missing; ${expected}`);
  }
  const parsed = parseMediaType(header);
  if (parsed === undefined) {
    throw new RadnodeError('RN_INGEST_BAD_CONTENT_TYPE', `Content-Type cannot be parsed; ${expected}`, { details: { contentType: header } });
  }
  if (parsed.mediaType !== 'multipart/related') {
    throw new RadnodeError('RN_INGEST_BAD_CONTENT_TYPE', `Content-Type is ${parsed.mediaType}; ${expected}`, { details: { contentType: header } });
  }
  const type = parsed.params['type'];
  if (type === undefined) {
    throw new RadnodeError('RN_INGEST_BAD_CONTENT_TYPE', `Content-Type has no type parameter; ${expected}`, { details: { contentType: header } });
  }
  // The type value may itself carry parameters (e.g. a transfer-syntax); only its media type matters here.
  const typeMedia = type.split(';')[0].trim().toLowerCase();
  if (typeMedia !== DICOM_MEDIA_TYPE) {
    throw new RadnodeError('RN_INGEST_BAD_CONTENT_TYPE', `type="${type}" is not supported; ${expected}`, { details: { contentType: header } });
  }
  const boundary = parsed.params['boundary'];
  if (boundary === undefined || boundary.length === 0 || boundary.length > MAX_BOUNDARY_LENGTH || /[\r\n]/.test(boundary)) {
    throw new RadnodeError('RN_INGEST_BAD_CONTENT_TYPE', `Content-Type has no usable boundary parameter; ${expected}`, { details: { contentType: header } });
  }
  return { mediaType: 'multipart/related', boundary, type, params: parsed.params };
}

/** Media type of one part, lower-cased and without parameters; a missing header means the root type (RFC 2387 §3.1). */
export function partMediaType(headers: Record<string, string>): string {
  const raw = headers['content-type'];
  if (raw === undefined || raw.trim() === '') return DICOM_MEDIA_TYPE;
  return (parseMediaType(raw)?.mediaType ?? raw.trim().toLowerCase());
}

export type MultipartEvent =
  | { kind: 'part-begin'; headers: Record<string, string> }
  | { kind: 'part-data'; data: Buffer }
  | { kind: 'part-end' }
  | { kind: 'close' };

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

type SplitterState = 'preamble' | 'after-delimiter' | 'headers' | 'body' | 'epilogue';

/**
 * RFC 2046 §5.1.1 body splitter. Pure and synchronous: `push` returns the events that chunk completes, `end` says
 * whether the close delimiter was seen. The delimiter is CRLF "--" boundary; the CRLF belongs to the delimiter, so
 * the first boundary (which has no CRLF before it when there is no preamble, as Orthanc sends it) is found by
 * seeding the stream with a virtual CRLF. Only the last `delimiter.length - 1` bytes are ever carried between
 * chunks, so a boundary split across any chunk position is found and memory stays flat.
 */
export class MultipartSplitter {
  private readonly delimiter: Buffer;
  private state: SplitterState = 'preamble';
  private carry: Buffer = CRLF;
  private partCount = 0;

  constructor(boundary: string) {
    this.delimiter = Buffer.from('\r\n--' + boundary, 'latin1');
  }

  get parts(): number {
    return this.partCount;
  }

  get closed(): boolean {
    return this.state === 'epilogue';
  }

  push(chunk: Buffer): MultipartEvent[] {
    const events: MultipartEvent[] = [];
    if (this.state === 'epilogue') return events; // RFC 2046: the epilogue is ignored
    let buf = this.carry.length === 0 ? chunk : Buffer.concat([this.carry, chunk]);
    this.carry = EMPTY;
    for (;;) {
      switch (this.state) {
        case 'preamble': {
          const at = buf.indexOf(this.delimiter);
          if (at === -1) {
            this.carry = tail(buf, this.delimiter.length - 1);
            return events;
          }
          buf = buf.subarray(at + this.delimiter.length);
          this.state = 'after-delimiter';
          break;
        }
        case 'after-delimiter': {
          // Either "--" (close delimiter) or optional transport padding (LWSP) then CRLF (RFC 2046 §5.1.1 BNF).
          if (buf.length < 2) {
            this.carry = Buffer.from(buf); // copied: the source may reuse its chunk buffers
            return events;
          }
          if (buf[0] === 0x2d && buf[1] === 0x2d) {
            this.state = 'epilogue';
            events.push({ kind: 'close' });
            return events;
          }
          let i = 0;
          while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
          if (i > MAX_PART_HEADER_BYTES) throw malformed('boundary line is too long');
          if (i + 1 >= buf.length) {
            this.carry = Buffer.from(buf);
            return events;
          }
          if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) throw malformed('boundary is not followed by CRLF or "--"');
          buf = buf.subarray(i + 2);
          this.state = 'headers';
          break;
        }
        case 'headers': {
          // An empty header block is legal: the part starts with CRLF (RFC 2046 §5.1.1, RFC 5322 field syntax).
          if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) {
            events.push({ kind: 'part-begin', headers: {} });
            this.partCount++;
            buf = buf.subarray(2);
            this.state = 'body';
            break;
          }
          const at = buf.indexOf(HEADER_END);
          if (at === -1) {
            if (buf.length > MAX_PART_HEADER_BYTES) throw malformed('part headers are too long');
            this.carry = Buffer.from(buf);
            return events;
          }
          if (at > MAX_PART_HEADER_BYTES) throw malformed('part headers are too long');
          events.push({ kind: 'part-begin', headers: parseHeaderBlock(buf.toString('latin1', 0, at)) });
          this.partCount++;
          buf = buf.subarray(at + HEADER_END.length);
          this.state = 'body';
          break;
        }
        case 'body': {
          const at = buf.indexOf(this.delimiter);
          if (at === -1) {
            const keep = Math.min(buf.length, this.delimiter.length - 1);
            if (buf.length > keep) events.push({ kind: 'part-data', data: buf.subarray(0, buf.length - keep) });
            this.carry = keep === 0 ? EMPTY : Buffer.from(buf.subarray(buf.length - keep));
            return events;
          }
          if (at > 0) events.push({ kind: 'part-data', data: buf.subarray(0, at) });
          events.push({ kind: 'part-end' });
          buf = buf.subarray(at + this.delimiter.length);
          this.state = 'after-delimiter';
          break;
        }
        default:
          return events;
      }
    }
  }

  /** Call at end of input: throws RN_INGEST_MALFORMED_MULTIPART unless the close delimiter was seen. */
  end(): void {
    if (this.state !== 'epilogue') {
      throw malformed(
        this.state === 'preamble'
          ? 'the body holds no multipart boundary'
          : 'the body ended before the closing boundary (truncated request)',
      );
    }
    if (this.partCount === 0) throw malformed('the multipart body holds no parts');
  }
}

const EMPTY = Buffer.alloc(0);

function tail(buf: Buffer, n: number): Buffer {
  if (buf.length <= n) return Buffer.from(buf);
  return Buffer.from(buf.subarray(buf.length - n));
}

function malformed(reason: string, details: Record<string, unknown> = {}): RadnodeError {
  return new RadnodeError('RN_INGEST_MALFORMED_MULTIPART', `Malformed multipart/related body: ${reason}`, { details });
}

function parseHeaderBlock(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('a part header line has no name');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

export type ReceivedPart = {
  /** 0-based position in the request. */
  index: number;
  tempPath: string;
  size: number;
  /** Hex sha256 of the part body. */
  sha256: string;
  /** The part's media type, lower-cased, without parameters. */
  contentType: string;
  /** The part's own headers, names lower-cased. */
  headers: Record<string, string>;
  /** The part's Content-Length header when it sent one (Orthanc does). */
  declaredLength?: number;
};

export type ReceiveOptions = {
  boundary: string;
  /** Where temp files go: the data dir's tmp, same filesystem as the store so it can rename(). */
  tmpDir: string;
  /** Counted over the raw body; going over stops reading with RN_INGEST_BODY_TOO_LARGE. */
  maxBodyBytes: number;
  /** Prefix for temp file names (e.g. the request id) so an operator can tell whose leftovers they are. */
  tempPrefix?: string;
  /**
   * Told of each part once its first 4 KiB and 64 KiB are on disk (where a header is), and again when it ends, before
   * the rest of the body arrives: the handler learns which study is streaming. A hint; its errors are ignored.
   */
  onPartHead?: (tempPath: string) => void;
};

const HEAD_HINTS = [4 * 1024, 64 * 1024];

type OpenPart = {
  index: number;
  tempPath: string;
  fh: FileHandle;
  hash: ReturnType<typeof createHash>;
  size: number;
  headers: Record<string, string>;
};

/**
 * Reads a whole multipart/related body from `source`, writing each part to a temp file, and returns the parts once
 * the close delimiter has been seen and every temp file is fsync'd. The caller then owns those files.
 *
 * On any failure (malformed or truncated body, too large, client abort, disk error) every temp file created so far
 * is deleted and a RadnodeError is thrown: RN_INGEST_MALFORMED_MULTIPART, RN_INGEST_BODY_TOO_LARGE,
 * RN_INGEST_DISK_FULL (ENOSPC) or RN_INTERNAL.
 */
export async function receiveMultipart(source: AsyncIterable<Buffer | string>, opts: ReceiveOptions): Promise<ReceivedPart[]> {
  const splitter = new MultipartSplitter(opts.boundary);
  const prefix = (opts.tempPrefix ?? 'stow').replace(/[^A-Za-z0-9_-]/g, '_');
  const created: string[] = [];
  const done: ReceivedPart[] = [];
  const pending: Promise<void>[] = [];
  let current: OpenPart | undefined;
  let received = 0;

  const hint = (tempPath: string) => {
    try {
      opts.onPartHead?.(tempPath);
    } catch {
      // a hint only: the part is judged with the others once the body is complete
    }
  };

  const beginPart = async (headers: Record<string, string>) => {
    const index = created.length;
    // The daemon empties the tmp folder at start-up (crash recovery), so it may not exist yet.
    if (index === 0) await mkdir(opts.tmpDir, { recursive: true });
    const tempPath = join(opts.tmpDir, `${prefix}-${index}-${randomUUID()}.part`);
    created.push(tempPath);
    const fh = await open(tempPath, 'wx', 0o600);
    current = { index, tempPath, fh, hash: createHash('sha256'), size: 0, headers };
  };

  const endPart = async () => {
    const p = current;
    if (p === undefined) return;
    current = undefined;
    const cl = p.headers['content-length'];
    const declared = cl !== undefined && /^\s*\d+\s*$/.test(cl) ? Number(cl) : undefined;
    done.push({
      index: p.index,
      tempPath: p.tempPath,
      size: p.size,
      sha256: p.hash.digest('hex'),
      contentType: partMediaType(p.headers),
      headers: p.headers,
      ...(declared === undefined ? {} : { declaredLength: declared }),
    });
    hint(p.tempPath);
    // fsync in the background while the next part streams in; bounded so a study of thousands of small files does
    // not hold thousands of open descriptors. Nothing is handed over before all of these have settled.
    const finalize = p.fh.sync().finally(() => p.fh.close());
    finalize.catch(() => undefined); // observed below; avoid an unhandled rejection in the meantime
    pending.push(finalize);
    if (pending.length >= MAX_PENDING_FINALIZE) await pending.shift();
  };

  try {
    for await (const raw of source) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
      received += chunk.length;
      if (received > opts.maxBodyBytes) {
        throw new RadnodeError('RN_INGEST_BODY_TOO_LARGE', `The request body exceeds the limit of ${opts.maxBodyBytes} bytes`, {
          details: { maxBodyBytes: opts.maxBodyBytes },
        });
      }
      for (const ev of splitter.push(chunk)) {
        switch (ev.kind) {
          case 'part-begin':
            await beginPart(ev.headers);
            break;
          case 'part-data': {
            const p = current;
            if (p === undefined) break;
            p.hash.update(ev.data);
            // Positional write: the data views point into the chunk, which nothing mutates while the write runs.
            await p.fh.write(ev.data, 0, ev.data.length, p.size);
            const before = p.size;
            p.size += ev.data.length;
            if (HEAD_HINTS.some((at) => before < at && p.size >= at)) hint(p.tempPath);
            break;
          }
          case 'part-end':
            await endPart();
            break;
          case 'close':
            break;
        }
      }
    }
    splitter.end();
    await Promise.all(pending);
    return done;
  } catch (err) {
    if (current !== undefined) pending.push(current.fh.close());
    await Promise.allSettled(pending);
    await Promise.allSettled(created.map((p) => unlink(p)));
    throw toReceiveError(err);
  }
}

function toReceiveError(err: unknown): RadnodeError {
  if (err instanceof RadnodeError) return err;
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new RadnodeError('RN_INGEST_DISK_FULL', 'No space left to store the request body', { cause: err });
  }
  // Node raises ECONNRESET "aborted" on the request stream when the client goes away mid-body.
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new RadnodeError('RN_INGEST_MALFORMED_MULTIPART', 'The client closed the connection before the body was complete', {
      cause: err,
      details: { clientAborted: true },
    });
  }
  return new RadnodeError('RN_INTERNAL', `Receiving the multipart body failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
