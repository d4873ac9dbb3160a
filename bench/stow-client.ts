/**
 * One STOW-RS client for the ingest benchmark, used for radnode and Orthanc alike so that the comparison measures
 * the servers, not two clients. It sends what Orthanc's own DICOMweb client sends (shared/notes/orthanc.md):
 * `multipart/related; type="application/dicom"; boundary=<unquoted>`, no preamble, per-part Content-Type and
 * Content-Length headers, the close delimiter with no trailing CRLF; chunked by default. Files are streamed from
 * disk, never read whole, one multipart request per batch.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';

export type StowClientOptions = {
  /** true (default): Transfer-Encoding: chunked, as Orthanc's default; false: a computed Content-Length. */
  chunked?: boolean;
  /** The full Authorization header value, e.g. `Basic dXNlcjpwYXNz` or `Bearer ...`. */
  auth?: string;
  /** Instances per request; default all files in one request (Orthanc sends a stable study in one POST). */
  batchSize?: number;
};

export type StowClientResult = {
  instances: number;
  /** Sum of the DICOM file sizes sent (not counting multipart framing). */
  bytes: number;
  ms: number;
  /** HTTP status of each request, in order. */
  status: number[];
};

/** STOWs `files` to `url` (the full endpoint, e.g. `http://127.0.0.1:8042/dicom-web/studies`). */
export async function stowFiles(url: string, files: string[], opts: StowClientOptions = {}): Promise<StowClientResult> {
  const chunked = opts.chunked ?? true;
  const batchSize = opts.batchSize !== undefined && opts.batchSize > 0 ? opts.batchSize : Math.max(1, files.length);
  const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
  const status: number[] = [];
  let bytes = 0;
  const started = performance.now();
  for (let i = 0; i < files.length; i += batchSize) {
    const batch = files.slice(i, i + batchSize).map((path, k) => ({ path, size: sizes[i + k] }));
    status.push(await postBatch(new URL(url), batch, chunked, opts.auth));
    bytes += batch.reduce((n, f) => n + f.size, 0);
  }
  return { instances: files.length, bytes, ms: performance.now() - started, status };
}

type BatchFile = { path: string; size: number };

async function postBatch(url: URL, files: BatchFile[], chunked: boolean, auth: string | undefined): Promise<number> {
  const boundary = `${randomUUID()}-${randomUUID()}`;
  const partHead = (f: BatchFile, first: boolean) =>
    Buffer.from(`${first ? '' : '\r\n'}--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${f.size}\r\n\r\n`, 'latin1');
  const close = Buffer.from(`\r\n--${boundary}--`, 'latin1');
  const heads = files.map((f, k) => partHead(f, k === 0));
  const headers: Record<string, string | number> = {
    'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
    Accept: 'application/dicom+json',
  };
  if (auth !== undefined) headers['Authorization'] = auth;
  if (chunked) headers['Transfer-Encoding'] = 'chunked';
  else headers['Content-Length'] = heads.reduce((n, h) => n + h.length, 0) + files.reduce((n, f) => n + f.size, 0) + close.length;

  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<number>((resolve, reject) => {
    const req = transport.request(url, { method: 'POST', headers, agent: false }, (res) => {
      res.resume(); // the response body is read and dropped: the benchmark counts statuses
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    const write = (buf: Buffer) =>
      new Promise<void>((ok) => {
        if (req.write(buf)) ok();
        else req.once('drain', () => ok());
      });
    (async () => {
      for (let k = 0; k < files.length; k++) {
        await write(heads[k]);
        for await (const chunk of createReadStream(files[k].path, { highWaterMark: 256 * 1024 })) await write(chunk as Buffer);
      }
      req.end(close);
    })().catch((err: unknown) => req.destroy(err instanceof Error ? err : new Error(String(err))));
  });
}
