/**
 * Issue 2, STOW edge cases against the whole daemon (real store, real files): each bad request gets the right status
 * and a clear reason, and nothing half-stored is left — no instance rows, no instance files, no temp files.
 */
import { mkdtempSync, readdirSync, readFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { startNode, type RunningNode } from '../../src/serve.ts';
import { makeInstance, newUid } from '../helpers/orthanc.ts';
import { sharedFile } from '../helpers/paths.ts';

const CR = sharedFile('cxr/dicom/rsna/00704310-78a8-4b38-8475-49f4573b2dbb.dcm');
const USER = { username: 'pacs', password: 'pacs-secret-1' };
const READER = { username: 'viewer', password: 'viewer-secret-1' };
const auth = (u = USER) => 'Basic ' + Buffer.from(`${u.username}:${u.password}`).toString('base64');

let node: RunningNode;
let base: string;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rn-stow-edge-'));
  const config = loadConfig({
    env: {},
    overrides: {
      server: { port: 0, maxStowBytes: 2 * 1024 * 1024, users: [{ ...USER, roles: ['ingest'] }, { ...READER, roles: ['reader'] }] },
      data: { dir: dataDir, minFreeMb: 0 },
      workflow: { quietSeconds: 3600 },
    },
  });
  node = await startNode(config, { log: silentLogger });
  base = `http://127.0.0.1:${node.port}`;
  sameFolder = config;
});
let sameFolder: ReturnType<typeof loadConfig>;
afterAll(async () => {
  await node?.stop().catch(() => undefined);
});

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}
const instanceRows = () => (node.store.db.prepare('SELECT COUNT(*) AS n FROM instances').get() as { n: number }).n;
function expectNothingStoredSince(rowsBefore: number, filesBefore: number) {
  expect(instanceRows()).toBe(rowsBefore);
  expect(filesUnder(join(dataDir, 'instances'))).toHaveLength(filesBefore);
  expect(filesUnder(join(dataDir, 'tmp'))).toEqual([]);
}
const snapshot = () => [instanceRows(), filesUnder(join(dataDir, 'instances')).length] as const;

function multipart(parts: { type?: string; body: Buffer }[], boundary = 'rn-boundary-1') {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.type ?? 'application/dicom'}\r\n\r\n`), p.body, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

async function post(path: string, body: Buffer, contentType: string, authorization: string | null = auth()) {
  const headers: Record<string, string> = { 'content-type': contentType, accept: 'application/dicom+json' };
  if (authorization) headers.authorization = authorization;
  const r = await fetch(base + path, { method: 'POST', headers, body });
  return { status: r.status, json: (await r.json()) as Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }> & { code?: string; message?: string } };
}

async function dicom(studyUID = newUid()) {
  const m = await makeInstance(CR, mkdtempSync(join(tmpdir(), 'rn-edge-')), { studyUID, patientId: 'RN-EDGE' });
  return { ...m, studyUID, bytes: readFileSync(m.path) };
}

describe('STOW-RS edge cases on the running daemon', () => {
  it('stores a valid instance (200) and recognises it when re-sent, without a second copy', async () => {
    const inst = await dicom();
    const { body, contentType } = multipart([{ body: inst.bytes }]);
    const first = await post('/dicom-web/studies', body, contentType);
    expect(first.status).toBe(200);
    const rows = instanceRows();
    const again = await post('/dicom-web/studies', body, contentType);
    expect(again.status).toBe(200);
    expect(instanceRows()).toBe(rows);
    expect(JSON.stringify(again.json['00081199'])).toContain(inst.sopInstanceUID);
  });

  it('an instance naming a Series Instance UID of another study is refused (409, C409) and not stored: two patients never share a series', async () => {
    const a = await dicom();
    const first = multipart([{ body: a.bytes }]);
    expect((await post('/dicom-web/studies', first.body, first.contentType)).status).toBe(200);
    const m = await makeInstance(CR, mkdtempSync(join(tmpdir(), 'rn-edge-')), { studyUID: newUid(), seriesUID: a.seriesInstanceUID, patientId: 'RN-OTHER' });
    const [rows, files] = snapshot();
    const second = multipart([{ body: readFileSync(m.path) }]);
    const res = await post('/dicom-web/studies', second.body, second.contentType);
    expect(res.status).toBe(409);
    const failed = res.json['00081198'] as { Value: Record<string, { Value: unknown[] }>[] };
    expect(failed.Value[0]['00081197'].Value[0]).toBe(0xc409);
    expectNothingStoredSince(rows, files);
  });

  it('the same SOP Instance UID with different bytes is kept as an audited conflict, never replacing the first', async () => {
    const inst = await dicom();
    const { body, contentType } = multipart([{ body: inst.bytes }]);
    expect((await post('/dicom-web/studies', body, contentType)).status).toBe(200);
    const changed = Buffer.from(inst.bytes);
    changed[changed.length - 1] ^= 0xff; // one pixel differs
    const conflicts = await node.store.countConflicts();
    const r = multipart([{ body: changed }]);
    // Not "stored": the sender learns that this version was not taken (PS3.18 10.5.3), reason 0111 (duplicate SOP
    // Instance), so a corrected object is re-sent under a new UID rather than deleted as delivered.
    const res = await post('/dicom-web/studies', r.body, r.contentType);
    expect(res.status).toBe(409);
    const failed = res.json['00081198'] as { Value: Record<string, { Value: unknown[] }>[] };
    expect(failed.Value[0]['00081197'].Value[0]).toBe(0x0111);
    expect(await node.store.countConflicts()).toBe(conflicts + 1);
    const stored = await node.store.getInstance(inst.sopInstanceUID);
    expect(readFileSync(stored!.path).equals(inst.bytes)).toBe(true);
    expect((await node.store.listAudit('instance', inst.sopInstanceUID)).map((a) => a.action)).toContain('instance.conflict');
  });

  it('wrong content type: 415 with a reason, nothing stored', async () => {
    const [rows, files] = snapshot();
    const inst = await dicom();
    const r = await post('/dicom-web/studies', inst.bytes, 'application/dicom');
    expect(r.status).toBe(415);
    expect(r.json.code).toBe('RN_INGEST_BAD_CONTENT_TYPE');
    expectNothingStoredSince(rows, files);
  });

  it('malformed multipart (no boundary line at all): 400, nothing stored', async () => {
    const [rows, files] = snapshot();
    const r = await post('/dicom-web/studies', Buffer.from('this is not multipart'), 'multipart/related; type="application/dicom"; boundary=xyz');
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('RN_INGEST_MALFORMED_MULTIPART');
    expectNothingStoredSince(rows, files);
  });

  it('truncated body (connection ends before the close delimiter): 400 and not even the complete first part is stored', async () => {
    const [rows, files] = snapshot();
    const a = await dicom();
    const b = await dicom(a.studyUID);
    const { body, contentType } = multipart([{ body: a.bytes }, { body: b.bytes }]);
    const cut = body.subarray(0, body.length - Math.floor(b.bytes.length / 2));
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${base}/dicom-web/studies`, { method: 'POST', headers: { 'content-type': contentType, authorization: auth(), 'content-length': String(cut.length) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(cut);
    });
    expect(status).toBe(400);
    expectNothingStoredSince(rows, files);
  });

  it('a non-DICOM part beside a valid one: 202, the valid one stored, the other in FailedSOPSequence with reason C000', async () => {
    const [rows] = snapshot();
    const inst = await dicom();
    const { body, contentType } = multipart([{ body: inst.bytes }, { body: Buffer.from('definitely not DICOM') }]);
    const r = await post('/dicom-web/studies', body, contentType);
    expect(r.status).toBe(202);
    expect(r.json['00081198'].Value).toHaveLength(1);
    expect(r.json['00081198'].Value![0]['00081197'].Value).toEqual([0xc000]);
    expect(instanceRows()).toBe(rows + 1);
    expect(filesUnder(join(dataDir, 'tmp'))).toEqual([]);
  });

  it('only non-DICOM parts: 409, nothing stored', async () => {
    const [rows, files] = snapshot();
    const { body, contentType } = multipart([{ body: Buffer.from('DICM? no') }]);
    const r = await post('/dicom-web/studies', body, contentType);
    expect(r.status).toBe(409);
    expectNothingStoredSince(rows, files);
  });

  it('an instance of another study than the URL names: refused (409, reason C409), nothing stored', async () => {
    const [rows, files] = snapshot();
    const inst = await dicom();
    const { body, contentType } = multipart([{ body: inst.bytes }]);
    const r = await post(`/dicom-web/studies/${newUid()}`, body, contentType);
    expect(r.status).toBe(409);
    expect(r.json['00081198'].Value![0]['00081197'].Value).toEqual([0xc409]);
    expectNothingStoredSince(rows, files);
  });

  it('a body over the configured limit: 413, nothing stored', async () => {
    const [rows, files] = snapshot();
    const inst = await dicom();
    const parts = Array.from({ length: Math.ceil((3 * 1024 * 1024) / inst.bytes.length) }, () => ({ body: inst.bytes }));
    const { body, contentType } = multipart(parts);
    const r = await post('/dicom-web/studies', body, contentType).catch(() => ({ status: 413, json: {} as never }));
    expect(r.status).toBe(413);
    expectNothingStoredSince(rows, files);
  });

  it('missing or wrong credentials: 401; a reader may not STOW: 403; nothing stored', async () => {
    const [rows, files] = snapshot();
    const inst = await dicom();
    const { body, contentType } = multipart([{ body: inst.bytes }]);
    expect((await post('/dicom-web/studies', body, contentType, null)).status).toBe(401);
    expect((await post('/dicom-web/studies', body, contentType, auth({ username: 'pacs', password: 'wrong' }))).status).toBe(401);
    const forbidden = await post('/dicom-web/studies', body, contentType, auth(READER));
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.code).toBe('RN_AUTH_FORBIDDEN');
    expectNothingStoredSince(rows, files);
  });
});

describe('one daemon per data folder', () => {
  it('a second radnode on the running one\'s data folder is refused before its recovery touches anything', async () => {
    const parked = join(dataDir, 'tmp', 'in-flight.part'); // as a STOW part of the running daemon would be
    writeFileSync(parked, 'x');
    await expect(startNode(sameFolder, { log: silentLogger })).rejects.toMatchObject({ code: 'RN_DATA_DIR_IN_USE' });
    expect(existsSync(parked)).toBe(true);
    rmSync(parked);
    // The running daemon still answers.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe('a STOW request that streams longer than the quiet period', () => {
  it('keeps its study open until the request ends: completed once, with both instances, never re-opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-stow-slow-'));
    const config = loadConfig({ env: {}, overrides: { server: { port: 0 }, data: { dir, minFreeMb: 0 }, workflow: { quietSeconds: 2, tickMs: 100 } } });
    const slow = await startNode(config, { log: silentLogger });
    try {
      const url = `http://127.0.0.1:${slow.port}/dicom-web/studies`;
      const study = newUid();
      const made = (n: number) => makeInstance(CR, join(dir, 'src'), { studyUID: study, instanceNumber: n });
      const first = multipart([{ body: readFileSync((await made(1)).path) }]);
      const second = multipart([{ body: readFileSync((await made(2)).path) }]);
      expect((await fetch(url, { method: 'POST', headers: { 'content-type': first.contentType }, body: first.body })).status).toBe(200);
      // The second instance trickles in over 4.8 s, more than twice the quiet period.
      const state = () => (slow.store.db.prepare('SELECT state FROM studies WHERE study_uid = ?').get(study) as { state: string }).state;
      const statesWhileStreaming: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const req = http.request(url, { method: 'POST', headers: { 'content-type': second.contentType, 'content-length': second.body.length } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`STOW answered ${res.statusCode}`))));
        });
        req.on('error', reject);
        const slices = 6;
        const size = Math.ceil(second.body.length / slices);
        let i = 0;
        const next = () => {
          req.write(second.body.subarray(i * size, (i + 1) * size));
          statesWhileStreaming.push(state());
          if (++i < slices) setTimeout(next, 800);
          else req.end();
        };
        next();
      });
      expect(statesWhileStreaming).toEqual(statesWhileStreaming.map(() => 'receiving'));
      await new Promise((r) => setTimeout(r, 3000));
      expect(state()).toBe('complete');
      expect((await slow.store.listAudit('study', study)).map((a) => a.action).filter((a) => a.startsWith('study.'))).not.toContain('study.reopened');
      expect((slow.store.db.prepare('SELECT COUNT(*) AS n FROM instances WHERE study_uid = ?').get(study) as { n: number }).n).toBe(2);
    } finally {
      await slow.stop();
    }
  }, 60_000);
});
