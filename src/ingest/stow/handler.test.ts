/**
 * STOW-RS server edge cases (issue 2, "How it is checked"): a real express app on 127.0.0.1:0, real DICOM bytes
 * from ../shared/data, and a test ingestPart that parses UIDs with dcmjs and renames the temp file into a folder.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile, rename, unlink } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RadnodeError } from '../../errors.ts';
import { silentLogger } from '../../log.ts';
import { sharedFile } from '../../../test/helpers/paths.ts';
import { stowFiles } from '../../../bench/stow-client.ts';
import { createStowHandler, STOW_PATHS, type StowDeps, type StowIngestResult, type StowPart, type StowPartContext } from './handler.ts';
import { FailureReason, type DicomJsonDataset } from './response.ts';

const MR = sharedFile('dicom/pydicom/MR_small.dcm');
const CT = sharedFile('dicom/cs-wadoimageloader/CTImage.dcm');
const J2K = sharedFile('dicom/pydicom/JPEG2000.dcm');
const MR_STUDY = '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457';
const ORTHANC_BOUNDARY = 'eb00d1a5-3253-42f5-badd-7e7c35c267a0-eb00d1a5-3253-42f5-badd-7e7c35c267a0';
const MAX_BODY = 4 * 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type Naturalized = { SOPClassUID?: string; SOPInstanceUID?: string; StudyInstanceUID?: string; SeriesInstanceUID?: string };

/** A stand-in for the lead's store: parse UIDs with dcmjs, check the study, rename into storeDir (DESIGN §3). */
class TestStore {
  calls = 0;
  readonly shaBySop = new Map<string, string>();
  constructor(readonly storeDir: string) {}

  async ingest(part: StowPart, ctx: StowPartContext): Promise<StowIngestResult> {
    this.calls++;
    const bytes = await readFile(part.tempPath);
    let ds: Naturalized;
    try {
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
      const dict = dcmjs.data.DicomMessage.readFile(ab, { untilTag: '7FE00010', includeUntilTagValue: false });
      ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.dict) as Naturalized;
    } catch (err) {
      await unlink(part.tempPath);
      throw new RadnodeError('RN_DICOM_MALFORMED', 'not a DICOM Part 10 file', { cause: err });
    }
    const { SOPClassUID, SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID } = ds;
    if (!SOPClassUID || !SOPInstanceUID || !StudyInstanceUID || !SeriesInstanceUID) {
      await unlink(part.tempPath);
      throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', 'UIDs missing');
    }
    if (ctx.studyInstanceUID !== undefined && ctx.studyInstanceUID !== StudyInstanceUID) {
      await unlink(part.tempPath);
      throw new RadnodeError('RN_INGEST_STUDY_MISMATCH', 'study mismatch', { details: { sopClassUID: SOPClassUID, sopInstanceUID: SOPInstanceUID } });
    }
    const known = this.shaBySop.get(SOPInstanceUID);
    if (known !== undefined) {
      await unlink(part.tempPath);
      if (known !== part.sha256) throw new RadnodeError('RN_INGEST_CONFLICT', 'different bytes', { details: { sopClassUID: SOPClassUID, sopInstanceUID: SOPInstanceUID } });
      return { sopClassUID: SOPClassUID, sopInstanceUID: SOPInstanceUID, studyInstanceUID: StudyInstanceUID, seriesInstanceUID: SeriesInstanceUID, status: 'duplicate' };
    }
    await rename(part.tempPath, join(this.storeDir, `${SOPInstanceUID}.dcm`));
    this.shaBySop.set(SOPInstanceUID, part.sha256);
    return { sopClassUID: SOPClassUID, sopInstanceUID: SOPInstanceUID, studyInstanceUID: StudyInstanceUID, seriesInstanceUID: SeriesInstanceUID, status: 'stored' };
  }
}

type Reply = { status: number; headers: http.IncomingHttpHeaders; text: string };

/** Sends a POST; `chunks` are written one by one (chunked unless a content-length header is given). */
function post(port: number, path: string, headers: Record<string, string | number>, chunks: Iterable<Buffer> | AsyncIterable<Buffer>, o: { abortAfterBytes?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers, agent: false }, (res) => {
      const bufs: Buffer[] = [];
      res.on('data', (c: Buffer) => bufs.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(bufs).toString() }));
      res.on('error', reject);
    });
    let answered = false;
    req.on('response', () => (answered = true));
    // The server may close after answering a refused body early (413, 400): that is not a test failure.
    req.on('error', (err) => (answered ? undefined : reject(err)));
    (async () => {
      let sent = 0;
      for await (const c of chunks) {
        if (answered || req.destroyed) return;
        if (o.abortAfterBytes !== undefined && sent + c.length > o.abortAfterBytes) {
          req.write(c.subarray(0, o.abortAfterBytes - sent));
          await new Promise((r) => setTimeout(r, 50));
          req.destroy();
          resolve({ status: 0, headers: {}, text: '' });
          return;
        }
        sent += c.length;
        if (!req.write(c)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(reject);
  });
}

type TestPart = { headers?: string[]; body: Buffer };
function multipart(boundary: string, parts: TestPart[], o: { preamble?: string; epilogue?: string } = {}): Buffer {
  const out: Buffer[] = [];
  if (o.preamble !== undefined) out.push(Buffer.from(o.preamble + '\r\n'));
  parts.forEach((p, i) => {
    const headers = p.headers ?? ['Content-Type: application/dicom', `Content-Length: ${p.body.length}`];
    out.push(Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\n${headers.map((h) => h + '\r\n').join('')}\r\n`));
    out.push(p.body);
  });
  out.push(Buffer.from(`\r\n--${boundary}--`));
  if (o.epilogue !== undefined) out.push(Buffer.from(o.epilogue));
  return Buffer.concat(out);
}
function* inChunks(buf: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
const dicomCT = (boundary: string, quoted = false) => `multipart/related; type="application/dicom"; boundary=${quoted ? `"${boundary}"` : boundary}`;

function seq(body: DicomJsonDataset, tag: string): DicomJsonDataset[] {
  const a = body[tag];
  return a && a.vr === 'SQ' ? (a.Value ?? []) : [];
}
function str(ds: DicomJsonDataset, tag: string): string | undefined {
  const a = ds[tag];
  return a && (a.vr === 'UI' || a.vr === 'UR') ? a.Value?.[0] : undefined;
}
function num(ds: DicomJsonDataset, tag: string): number | undefined {
  const a = ds[tag];
  return a && a.vr === 'US' ? a.Value?.[0] : undefined;
}

describe('STOW-RS handler', () => {
  let root: string;
  let tmpDir: string;
  let storeDir: string;
  let store: TestStore;
  let completed: { studies: string[]; requestId: string }[];
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'stow-handler-'));
    const app = express();
    const deps: StowDeps = {
      get tmpDir() {
        return tmpDir;
      },
      maxBodyBytes: MAX_BODY,
      log: silentLogger,
      ingestPart: (part, ctx) => store.ingest(part, ctx),
      onRequestComplete: (info) => completed.push({ studies: info.studies, requestId: info.requestId }),
    };
    app.post(STOW_PATHS, createStowHandler(deps));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    tmpDir = mkdtempSync(join(root, 'tmp-'));
    storeDir = mkdtempSync(join(root, 'store-'));
    store = new TestStore(storeDir);
    completed = [];
  });

  it("stores a chunked body sent exactly like Orthanc's (unquoted 73-char boundary, no trailing CRLF) and answers 00081199 per instance", async () => {
    const files = [J2K, MR, CT].map((f) => readFileSync(f));
    const body = multipart(ORTHANC_BOUNDARY, files.map((b) => ({ body: b })));
    expect(body.subarray(-2).toString()).toBe('--');
    const r = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT(ORTHANC_BOUNDARY), Accept: 'application/dicom+json', 'Transfer-Encoding': 'chunked' }, inChunks(body, 16 * 1024));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/dicom\+json/);
    const json = JSON.parse(r.text) as DicomJsonDataset;
    const refs = seq(json, '00081199');
    expect(refs).toHaveLength(3);
    expect(refs.map((x) => str(x, '00081150'))).toEqual(['1.2.840.10008.5.1.4.1.1.7', '1.2.840.10008.5.1.4.1.1.4', '1.2.840.10008.5.1.4.1.1.2']);
    expect(str(refs[1], '00081155')).toBe('1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457');
    expect(str(refs[1], '00081190')).toBe(`http://127.0.0.1:${port}/dicom-web/studies/${MR_STUDY}/series/1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457/instances/1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457`);
    expect(json['00081198']).toBeUndefined();
    // The stored bytes are the sent bytes, and nothing is left in the temp dir.
    expect(sha(readFileSync(join(storeDir, '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457.dcm')))).toBe(sha(files[1]));
    expect(readdirSync(storeDir)).toHaveLength(3);
    expect(readdirSync(tmpDir)).toEqual([]);
    expect(completed[0].studies).toHaveLength(3);
  });

  it('stores a Content-Length body with a quoted boundary, a preamble and an epilogue', async () => {
    const boundary = 'quoted boundary:with=specials';
    const body = multipart(boundary, [{ body: readFileSync(MR) }], { preamble: 'preamble text', epilogue: '\r\nepilogue text\r\n' });
    const r = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT(boundary, true), 'Content-Length': body.length }, [body]);
    expect(r.status).toBe(200);
    expect(seq(JSON.parse(r.text) as DicomJsonDataset, '00081199')).toHaveLength(1);
    expect(str(JSON.parse(r.text) as DicomJsonDataset, '00081190')).toBe(`http://127.0.0.1:${port}/dicom-web/studies/${MR_STUDY}`);
  });

  it('finds a boundary split at every position of a one-byte-at-a-time chunked body', async () => {
    const body = multipart('b', [{ body: readFileSync(MR) }, { body: readFileSync(J2K) }]);
    // Every byte becomes its own HTTP chunk; Node may coalesce some on the wire, the splitter tests cover the rest.
    const r = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, inChunks(body, 1));
    expect(r.status).toBe(200);
    expect(readdirSync(storeDir).sort()).toHaveLength(2);
  });

  it('counts a re-sent identical instance as stored (Orthanc re-sends whole studies)', async () => {
    const body = multipart('b', [{ body: readFileSync(MR) }]);
    const first = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, [body]);
    const again = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, [body]);
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(seq(JSON.parse(again.text) as DicomJsonDataset, '00081199')).toHaveLength(1);
  });

  it('answers 415 with a clear reason for a wrong content type, without reading the body', async () => {
    for (const ct of ['application/dicom', 'multipart/related; boundary=b', 'multipart/related; type="application/dicom+json"; boundary=b']) {
      const r = await post(port, '/dicom-web/studies', { 'Content-Type': ct }, [multipart('b', [{ body: readFileSync(MR) }])]);
      expect(r.status).toBe(415);
      const e = JSON.parse(r.text) as { code: string; message: string };
      expect(e.code).toBe('RN_INGEST_BAD_CONTENT_TYPE');
      expect(e.message).toContain('type="application/dicom"');
    }
    expect(store.calls).toBe(0);
  });

  it('answers 400 for a malformed body and stores nothing', async () => {
    const bad = Buffer.from(`--b\r\nContent-Type: application/dicom\r\n\r\n${'x'.repeat(100)}\r\n--bXX garbage`);
    for (const body of [Buffer.from('no multipart here'), bad]) {
      const r = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, [body]);
      expect(r.status).toBe(400);
      expect((JSON.parse(r.text) as { code: string }).code).toBe('RN_INGEST_MALFORMED_MULTIPART');
    }
    expect(store.calls).toBe(0);
    expect(readdirSync(tmpDir)).toEqual([]);
  });

  it('answers 400 to a truncated body: complete earlier parts are not stored either, the temp dir is empty', async () => {
    const body = multipart('b', [{ body: readFileSync(MR) }, { body: readFileSync(CT) }]);
    // The chunked body ends cleanly at the HTTP level, 1000 bytes before the close delimiter.
    const r = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, inChunks(body.subarray(0, body.length - 1000), 64 * 1024));
    expect(r.status).toBe(400);
    expect((JSON.parse(r.text) as { message: string }).message).toMatch(/truncated/);
    expect(store.calls).toBe(0);
    expect(readdirSync(tmpDir)).toEqual([]);
    expect(readdirSync(storeDir)).toEqual([]);
  });

  it('survives a client that disconnects mid-body, leaving no temp file', async () => {
    const body = multipart('b', [{ body: readFileSync(MR) }, { body: readFileSync(CT) }]);
    await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, inChunks(body, 32 * 1024), { abortAfterBytes: 200_000 });
    for (let i = 0; i < 100 && readdirSync(tmpDir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(tmpDir)).toEqual([]);
    expect(store.calls).toBe(0);
    const ok = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, [multipart('b', [{ body: readFileSync(MR) }])]);
    expect(ok.status).toBe(200);
  });

  it('answers 202 with FailedSOPSequence (C000) for a non-DICOM part beside a good one, 409 when none is stored', async () => {
    const mixed = multipart('b', [
      { body: readFileSync(MR) },
      { headers: ['Content-Type: text/plain'], body: Buffer.from('hello') },
      { body: Buffer.from('application/dicom in name only') },
    ]);
    const r = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, [mixed]);
    expect(r.status).toBe(202);
    const json = JSON.parse(r.text) as DicomJsonDataset;
    expect(seq(json, '00081199')).toHaveLength(1);
    const failed = seq(json, '00081198');
    expect(failed.map((f) => num(f, '00081197'))).toEqual([FailureReason.CannotUnderstand, FailureReason.CannotUnderstand]);
    expect(store.calls).toBe(2); // the text/plain part never reaches the store

    const none = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, [multipart('b', [{ body: Buffer.alloc(2000, 7) }])]);
    expect(none.status).toBe(409);
    const nj = JSON.parse(none.text) as DicomJsonDataset;
    expect(nj['00081199']).toBeUndefined();
    expect(num(seq(nj, '00081198')[0], '00081197')).toBe(0xc000);
    expect(readdirSync(tmpDir)).toEqual([]);
  });

  it('refuses an instance of another study when the URL names one (C409) and stores the rest', async () => {
    const body = multipart('b', [{ body: readFileSync(MR) }, { body: readFileSync(CT) }]);
    const r = await post(port, `/dicom-web/studies/${MR_STUDY}`, { 'Content-Type': dicomCT('b') }, [body]);
    expect(r.status).toBe(202);
    const json = JSON.parse(r.text) as DicomJsonDataset;
    expect(str(json, '00081190')).toBe(`http://127.0.0.1:${port}/dicom-web/studies/${MR_STUDY}`);
    const failed = seq(json, '00081198');
    expect(failed).toHaveLength(1);
    expect(num(failed[0], '00081197')).toBe(FailureReason.StudyInstanceUIDMismatch);
    expect(str(failed[0], '00081155')).toBe('1.2.840.113619.2.30.1.1762295590.1623.978668950.109');
    expect(readdirSync(storeDir)).toHaveLength(1);
    expect(readdirSync(tmpDir)).toEqual([]);
  });

  it('answers 413 straight away for a Content-Length over the limit, and 413 mid-stream for a chunked one; nothing stays', async () => {
    const big = Buffer.alloc(MAX_BODY + 1024 * 1024, 1);
    const body = multipart('b', [{ body: big }]);
    const declared = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b'), 'Content-Length': body.length }, inChunks(body, 256 * 1024));
    expect(declared.status).toBe(413);
    expect((JSON.parse(declared.text) as { code: string }).code).toBe('RN_INGEST_BODY_TOO_LARGE');

    const chunked = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('b') }, inChunks(body, 256 * 1024));
    expect(chunked.status).toBe(413);
    expect(store.calls).toBe(0);
    for (let i = 0; i < 50 && readdirSync(tmpDir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(tmpDir)).toEqual([]);
  });

  it('is driven by the bench client both chunked and with Content-Length, in batches', async () => {
    const chunked = await stowFiles(`http://127.0.0.1:${port}/dicom-web/studies`, [MR, CT, J2K], { batchSize: 2 });
    expect(chunked.status).toEqual([200, 200]);
    expect(chunked.instances).toBe(3);
    const plain = await stowFiles(`http://127.0.0.1:${port}/dicom-web/studies`, [MR, CT, J2K], { chunked: false });
    expect(plain.status).toEqual([200]);
    expect(existsSync(join(storeDir, '1.2.840.113619.2.30.1.1762295590.1623.978668950.109.dcm'))).toBe(true);
  });
});

describe('STOW-RS handler memory', () => {
  it('streams a 200 MB body to disk with a flat RSS', async () => {
    const root = mkdtempSync(join(tmpdir(), 'stow-mem-'));
    const sizes: number[] = [];
    const app = express();
    app.post(
      STOW_PATHS,
      createStowHandler({
        tmpDir: root,
        maxBodyBytes: 1024 * 1024 * 1024,
        log: silentLogger,
        ingestPart: async (part) => {
          sizes.push(part.size);
          await unlink(part.tempPath);
          return { sopClassUID: '1.2.3', sopInstanceUID: `1.2.3.${sizes.length}`, studyInstanceUID: '1.2.3.4', status: 'stored' };
        },
      }),
    );
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const partBytes = 50 * 1024 * 1024;
      const slab = Buffer.alloc(1024 * 1024, 0x42);
      async function* generate(): AsyncGenerator<Buffer> {
        for (let p = 0; p < 4; p++) {
          yield Buffer.from(`${p === 0 ? '' : '\r\n'}--mem\r\nContent-Type: application/dicom\r\nContent-Length: ${partBytes}\r\n\r\n`);
          for (let i = 0; i < partBytes / slab.length; i++) yield slab;
        }
        yield Buffer.from('\r\n--mem--');
      }
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
      const r = await post(port, '/dicom-web/studies', { 'Content-Type': dicomCT('mem') }, generate());
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(r.status).toBe(200);
      expect(sizes).toEqual([partBytes, partBytes, partBytes, partBytes]);
      expect(peak - before).toBeLessThan(100 * 1024 * 1024);
    } finally {
      await new Promise((r) => server.close(r));
      rmSync(root, { recursive: true, force: true });
    }
  });
});
