/**
 * The QIDO reconciliation poll against a fake PACS on 127.0.0.1 holding a processed study: 2 CR images, plus the SR
 * and heatmap radnode delivered (which radnode's own count leaves out, so the counts never match).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedFile } from '../../../test/helpers/paths.ts';
import type { PacsConfig } from '../../config/types.ts';
import { POLL_CODES, qidoAll } from '../../delivery/dicomweb.ts';
import { RadnodeError } from '../../errors.ts';
import { silentLogger } from '../../log.ts';
import { pollQido } from './qido.ts';
import type { PollSink } from './sink.ts';

const tag = (vr: string, v: unknown) => ({ vr, Value: [v] });
const paths: string[] = [];
const server = http.createServer((req, res) => {
  const u = req.url ?? '';
  paths.push(u.split('?')[0]);
  let body: unknown = [];
  if (/\/studies\?/.test(u)) body = [{ '0020000D': tag('UI', '1.2.3'), '00201208': tag('IS', 4), '00080061': { vr: 'CS', Value: ['CR', 'SR', 'OT'] } }];
  else if (/\/series\?/.test(u))
    body = [
      { '0020000E': tag('UI', '1.2.3.1'), '00080060': tag('CS', 'CR'), '00201209': tag('IS', 2) },
      { '0020000E': tag('UI', '1.2.3.9'), '00080060': tag('CS', 'SR'), '00201209': tag('IS', 1) },
    ];
  else if (/\/instances/.test(u)) body = [{ '00080018': tag('UI', '1.2.3.1.1') }, { '00080018': tag('UI', '1.2.3.1.2') }];
  res.setHeader('content-type', 'application/dicom+json');
  res.end(JSON.stringify(body));
});
let pacs: PacsConfig;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  pacs = { kind: 'dicomweb', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`, auth: { type: 'none' }, timeoutMs: 5000 } as PacsConfig;
});
afterAll(() => server.close());

const sink: PollSink = {
  getCheckpoint: async () => null,
  setCheckpoint: async () => undefined,
  knownInstanceCount: async () => 2,
  knownInstances: async () => new Set(['1.2.3.1.1', '1.2.3.1.2']),
  purgedInstances: async () => new Set<string>(),
  ingest: async () => undefined,
};

describe('QIDO reconciliation poll', () => {
  it('walks a processed study once, then skips it while its PACS count is unchanged, and walks it again after an hour', async () => {
    const t0 = new Date('2026-11-25T10:00:00Z');
    const poll = async (now: Date) => {
      paths.length = 0;
      await pollQido(pacs, sink, { lookbackDays: 2, modalities: ['CR'], log: silentLogger, now });
      return paths.length;
    };
    expect(await poll(t0)).toBe(3); // studies, series, the CR series' instances
    expect(await poll(new Date(t0.getTime() + 30_000))).toBe(1); // studies only
    expect(await poll(new Date(t0.getTime() + 3_600_000))).toBe(3);
  });
});

describe('a PACS that lists an instance it cannot serve', () => {
  // Study A's one instance answers 500 (a lost file, an offline tier); study B is fine.
  const native = new Uint8Array(readFileSync(sharedFile('dicom/pydicom/MR_small.dcm')));
  const b = 'radnode-test-boundary';
  const poisoned = http.createServer((req, res) => {
    const u = req.url ?? '';
    const json = (v: unknown) => res.setHeader('content-type', 'application/dicom+json').end(JSON.stringify(v));
    const study = /studies\/([^/?]+)/.exec(u)?.[1];
    if (/\/studies\?/.test(u)) return json(['A', 'B'].map((s) => ({ '0020000D': tag('UI', s), '00201208': tag('IS', 1), '00080061': { vr: 'CS', Value: ['MR'] } })));
    if (/\/series\?/.test(u) || /\/series$/.test(u.split('?')[0])) return json([{ '0020000E': tag('UI', `${study}.1`), '00080060': tag('CS', 'MR'), '00201209': tag('IS', 1) }]);
    if (/\/instances(\?|$)/.test(u)) return json([{ '00080018': tag('UI', `${study}.1.1`) }]);
    if (study === 'A') return res.writeHead(500).end();
    res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${b}` });
    res.end(Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(native), Buffer.from(`\r\n--${b}--\r\n`)]));
  });
  let poisonedPacs: PacsConfig;
  beforeAll(async () => {
    await new Promise<void>((r) => poisoned.listen(0, '127.0.0.1', r));
    poisonedPacs = { kind: 'dicomweb', url: `http://127.0.0.1:${(poisoned.address() as AddressInfo).port}/dicom-web`, auth: { type: 'none' }, timeoutMs: 5000 };
  });
  afterAll(() => poisoned.close());

  it('skips that study for this poll and still pulls the others', async () => {
    const ingested: string[] = [];
    const retrieved: string[] = [];
    const s: PollSink = {
      ...sink, knownInstanceCount: async () => 0, knownInstances: async () => new Set(),
      ingest: async (_bytes, origin) => void ingested.push(origin.studyInstanceUID),
      studyRetrieved: async (uid) => void retrieved.push(uid),
    };
    const r = await pollQido(poisonedPacs, s, { lookbackDays: 2, log: silentLogger, now: new Date('2026-11-25T10:00:00Z') });
    expect(ingested).toEqual(['B']);
    expect(retrieved).toEqual(['B']);
    expect(r).toMatchObject({ studiesPulled: 1, instancesPulled: 1 });
  });
});

describe('QIDO paging against a PACS that caps its answers', () => {
  // 250 matching studies, at most 100 per answer, with the Warning 299 PS3.18 asks for when more remain.
  const capped = http.createServer((req, res) => {
    const q = new URL(req.url ?? '', 'http://x').searchParams;
    const offset = Number(q.get('offset') ?? 0);
    const all = Array.from({ length: 250 }, (_, i) => ({ '0020000D': tag('UI', `1.2.${i}`) }));
    const page = all.slice(offset, offset + Math.min(100, Number(q.get('limit') ?? 100)));
    if (offset + page.length < all.length) res.setHeader('warning', '299 pacs: "There are additional results that can be requested"');
    res.setHeader('content-type', 'application/dicom+json');
    res.end(JSON.stringify(page));
  });
  afterAll(() => capped.close());
  it('follows the warning past the short pages and gets all 250', async () => {
    await new Promise<void>((r) => capped.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(capped.address() as AddressInfo).port}/dicom-web`;
    const got = await qidoAll({ kind: 'dicomweb', url, auth: { type: 'none' }, timeoutMs: 5000 }, 'studies', POLL_CODES);
    expect(got).toHaveLength(250);
  });
});

describe('an instance the store refuses', () => {
  it('is not downloaded again on the next poll', async () => {
    const native = new Uint8Array(readFileSync(sharedFile('dicom/pydicom/MR_small.dcm')));
    const b = 'radnode-test-boundary';
    let wado = 0;
    const srv = http.createServer((req, res) => {
      const u = req.url ?? '';
      const json = (v: unknown) => res.setHeader('content-type', 'application/dicom+json').end(JSON.stringify(v));
      if (/\/studies\?/.test(u)) return json([{ '0020000D': tag('UI', 'R'), '00201208': tag('IS', 1), '00080061': { vr: 'CS', Value: ['MR'] } }]);
      if (/\/series(\?|$)/.test(u)) return json([{ '0020000E': tag('UI', 'R.1'), '00080060': tag('CS', 'MR'), '00201209': tag('IS', 1) }]);
      if (/\/instances(\?|$)/.test(u)) return json([{ '00080018': tag('UI', 'R.1.1') }]);
      wado++;
      res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${b}` });
      res.end(Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(native), Buffer.from(`\r\n--${b}--\r\n`)]));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const p: PacsConfig = { kind: 'dicomweb', url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/dicom-web`, auth: { type: 'none' }, timeoutMs: 5000 };
    const refusing: PollSink = {
      ...sink, knownInstanceCount: async () => 0, knownInstances: async () => new Set(),
      ingest: async () => {
        throw new RadnodeError('RN_INGEST_CONFLICT', 'same UID, other bytes');
      },
    };
    for (const minutes of [0, 1]) await pollQido(p, refusing, { lookbackDays: 2, log: silentLogger, now: new Date(Date.UTC(2026, 10, 25, 10, minutes)) });
    srv.close();
    expect(wado).toBe(1);
  });
});
