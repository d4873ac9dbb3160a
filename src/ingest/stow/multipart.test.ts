import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RadnodeError } from '../../errors.ts';
import { sharedFile } from '../../../test/helpers/paths.ts';
import { MultipartSplitter, parseStowContentType, receiveMultipart, type MultipartEvent } from './multipart.ts';

const MR = sharedFile('dicom/pydicom/MR_small.dcm');
const J2K = sharedFile('dicom/pydicom/JPEG2000.dcm');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type TestPart = { headers?: string[]; body: Buffer };
/** Builds a body the way Orthanc does by default: no preamble, no CRLF after the close delimiter. */
function body(boundary: string, parts: TestPart[], o: { preamble?: string; epilogue?: string } = {}): Buffer {
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

/** Runs the splitter over the given chunks and returns each part's headers and bytes. */
function split(boundary: string, chunks: Buffer[]): { headers: Record<string, string>; data: Buffer }[] {
  const s = new MultipartSplitter(boundary);
  const parts: { headers: Record<string, string>; data: Buffer[] }[] = [];
  const handle = (ev: MultipartEvent) => {
    if (ev.kind === 'part-begin') parts.push({ headers: ev.headers, data: [] });
    else if (ev.kind === 'part-data') parts[parts.length - 1].data.push(Buffer.from(ev.data));
  };
  for (const c of chunks) s.push(c).forEach(handle);
  s.end();
  return parts.map((p) => ({ headers: p.headers, data: Buffer.concat(p.data) }));
}

function expectCode(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RadnodeError);
    expect((err as RadnodeError).code).toBe(code);
    return;
  }
  throw new RadnodeError('RN_INTERNAL', `expected ${code}, nothing was thrown`);
}

describe('parseStowContentType (PS3.18 §10.5.1.1)', () => {
  it("accepts Orthanc's header: quoted type, unquoted 73-character boundary", () => {
    const b = 'eb00d1a5-3253-42f5-badd-7e7c35c267a0-eb00d1a5-3253-42f5-badd-7e7c35c267a0';
    const ct = parseStowContentType(`multipart/related; type="application/dicom"; boundary=${b}`);
    expect(ct.boundary).toBe(b);
  });

  it('accepts a quoted boundary, unquoted type and upper-case names', () => {
    expect(parseStowContentType('Multipart/Related; TYPE=application/dicom; Boundary="a b:c"').boundary).toBe('a b:c');
    expect(parseStowContentType('multipart/related;type="application/dicom; transfer-syntax=1.2.840.10008.1.2.1";boundary=x').boundary).toBe('x');
  });

  it('refuses other types with RN_INGEST_BAD_CONTENT_TYPE', () => {
    for (const h of [
      undefined,
      '',
      'application/dicom',
      'multipart/related; boundary=x',
      'multipart/related; type="application/dicom+json"; boundary=x',
      'multipart/form-data; type="application/dicom"; boundary=x',
      'multipart/related; type="application/dicom"',
      'multipart/related; type="application/dicom; boundary=x',
    ]) {
      expectCode(() => parseStowContentType(h), 'RN_INGEST_BAD_CONTENT_TYPE');
    }
  });
});

describe('MultipartSplitter (RFC 2046 §5.1.1)', () => {
  const boundary = 'b0undary-XYZ';
  const a = Buffer.from('first part\r\n-- not a boundary\r\n--b0undary-XY almost');
  const b = Buffer.from('second');
  const whole = body(boundary, [{ body: a }, { body: b }, { headers: [], body: Buffer.alloc(0) }]);

  it('finds boundaries split at every chunk position', () => {
    for (let cut = 0; cut <= whole.length; cut++) {
      const parts = split(boundary, [whole.subarray(0, cut), whole.subarray(cut)]);
      expect(parts.map((p) => p.data.toString())).toEqual([a.toString(), b.toString(), '']);
      expect(parts[0].headers['content-length']).toBe(String(a.length));
    }
  });

  it('splits a real DICOM body fed one byte at a time', () => {
    const mr = readFileSync(MR);
    const j2k = readFileSync(J2K);
    const whole2 = body(boundary, [{ body: mr }, { body: j2k }]);
    const bytes: Buffer[] = [];
    for (let i = 0; i < whole2.length; i++) bytes.push(whole2.subarray(i, i + 1));
    const parts = split(boundary, bytes);
    expect(parts.map((p) => sha(p.data))).toEqual([sha(mr), sha(j2k)]);
  });

  it('skips a preamble and an epilogue, with or without the final CRLF', () => {
    for (const epilogue of [undefined, '\r\n', '\r\nthis is the epilogue\r\n--b0undary-XYZ\r\n']) {
      const w = body(boundary, [{ body: a }], { preamble: 'This is a preamble.', ...(epilogue === undefined ? {} : { epilogue }) });
      expect(split(boundary, [w])[0].data.equals(a)).toBe(true);
    }
  });

  it('accepts transport padding after the boundary', () => {
    const w = Buffer.from(`--${boundary}  \t\r\nContent-Type: application/dicom\r\n\r\nxyz\r\n--${boundary}--`);
    expect(split(boundary, [w])[0].data.toString()).toBe('xyz');
  });

  it('reports truncation at every cut before the close delimiter', () => {
    for (let cut = 0; cut < whole.length - 1; cut++) {
      expectCode(() => split(boundary, [whole.subarray(0, cut)]), 'RN_INGEST_MALFORMED_MULTIPART');
    }
  });

  it('refuses a body without boundary, a bad boundary line and a body without parts', () => {
    expectCode(() => split(boundary, [Buffer.from('just some bytes')]), 'RN_INGEST_MALFORMED_MULTIPART');
    expectCode(() => split(boundary, [Buffer.from(`--${boundary}junk\r\n\r\nx\r\n--${boundary}--`)]), 'RN_INGEST_MALFORMED_MULTIPART');
    expectCode(() => split(boundary, [Buffer.from(`--${boundary}--`)]), 'RN_INGEST_MALFORMED_MULTIPART');
  });
});

describe('receiveMultipart', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stow-mp-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function* chunks(buf: Buffer, size: number): AsyncGenerator<Buffer> {
    for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
  }

  it('writes each part to an fsync\'d temp file with its sha256 and size', async () => {
    const mr = readFileSync(MR);
    const j2k = readFileSync(J2K);
    const parts = await receiveMultipart(chunks(body('bnd', [{ body: mr }, { headers: ['Content-Type: text/plain'], body: j2k }]), 777), {
      boundary: 'bnd',
      tmpDir: dir,
      maxBodyBytes: 1e9,
    });
    expect(parts.map((p) => [p.size, p.sha256, p.contentType, p.declaredLength])).toEqual([
      [mr.length, sha(mr), 'application/dicom', mr.length],
      [j2k.length, sha(j2k), 'text/plain', undefined],
    ]);
    expect(sha(readFileSync(parts[0].tempPath))).toBe(sha(mr));
    expect(readdirSync(dir)).toHaveLength(2);
  });

  it('creates the temp folder when it does not exist yet (the daemon empties it at start-up)', async () => {
    const mr = readFileSync(MR);
    const sub = join(dir, 'not', 'yet');
    const parts = await receiveMultipart(chunks(body('bnd', [{ body: mr }]), 4096), { boundary: 'bnd', tmpDir: sub, maxBodyBytes: 1e9 });
    expect(readdirSync(sub)).toHaveLength(parts.length);
  });

  it('deletes every temp file of a truncated body', async () => {
    const mr = readFileSync(MR);
    const whole = body('bnd', [{ body: mr }, { body: mr }]);
    await expect(
      receiveMultipart(chunks(whole.subarray(0, whole.length - 100), 1000), { boundary: 'bnd', tmpDir: dir, maxBodyBytes: 1e9 }),
    ).rejects.toMatchObject({ code: 'RN_INGEST_MALFORMED_MULTIPART' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('stops at the byte limit and deletes its temp files', async () => {
    const mr = readFileSync(MR);
    const whole = body('bnd', [{ body: mr }, { body: mr }, { body: mr }]);
    await expect(
      receiveMultipart(chunks(whole, 4096), { boundary: 'bnd', tmpDir: dir, maxBodyBytes: mr.length + 5000 }),
    ).rejects.toMatchObject({ code: 'RN_INGEST_BODY_TOO_LARGE' });
    expect(readdirSync(dir)).toEqual([]);
  });
});
