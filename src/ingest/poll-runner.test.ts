/**
 * The orthanc-changes source against a stand-in Orthanc on 127.0.0.1: a study its QIDO reconciliation pass finds is
 * pulled but not completed (only StableStudy says Orthanc has the whole study), and that pass runs even when the
 * change feed fails.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedFile } from '../../test/helpers/paths.ts';
import type { PacsConfig } from '../config/types.ts';
import { silentLogger } from '../log.ts';
import { pollSources } from './poll-runner.ts';
import type { PollSink } from './poll/sink.ts';

const tag = (vr: string, v: unknown) => ({ vr, Value: [v] });
const native = new Uint8Array(readFileSync(sharedFile('dicom/pydicom/MR_small.dcm')));
let feedBroken = false;
let study = 'S';
const server = http.createServer((req, res) => {
  const u = req.url ?? '';
  const json = (v: unknown) => res.setHeader('content-type', 'application/json').end(JSON.stringify(v));
  if (u.startsWith('/changes')) return feedBroken ? res.writeHead(500).end() : json({ Changes: [], Done: true, Last: 7 });
  if (/\/dicom-web\/studies\?/.test(u)) return json([{ '0020000D': tag('UI', study), '00201208': tag('IS', 1), '00080061': { vr: 'CS', Value: ['MR'] } }]);
  if (/\/series(\?|$)/.test(u)) return json([{ '0020000E': tag('UI', `${study}.1`), '00080060': tag('CS', 'MR'), '00201209': tag('IS', 1) }]);
  if (/\/instances(\?|$)/.test(u)) return json([{ '00080018': tag('UI', `${study}.1.1`) }]);
  const b = 'b';
  res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${b}` });
  res.end(Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(native), Buffer.from(`\r\n--${b}--\r\n`)]));
});
let pacs: PacsConfig;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const root = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  pacs = { kind: 'orthanc', url: `${root}/dicom-web`, orthancUrl: root, auth: { type: 'none' }, timeoutMs: 5000 };
});
afterAll(() => server.close());

describe('orthanc-changes polling', () => {
  it('pulls what the QIDO pass finds without completing it, and runs that pass when the feed fails', async () => {
    for (const broken of [false, true]) {
      feedBroken = broken;
      // Another study each time: the QIDO pass remembers a walked study for an hour.
      study = broken ? 'S2' : 'S1';
      const ingested: string[] = [];
      const completed: string[] = [];
      const sink: PollSink = {
        getCheckpoint: async () => null, setCheckpoint: async () => undefined,
        knownInstanceCount: async () => 0, knownInstances: async () => new Set(),
        ingest: async (_b, o) => void ingested.push(o.studyInstanceUID),
        studyRetrieved: async (s) => void completed.push(s),
      };
      const run = pollSources('orthanc-changes', pacs, sink, { lookbackDays: 2, log: silentLogger });
      if (broken) await expect(run()).rejects.toThrow();
      else await run();
      expect([broken, ingested, completed]).toEqual([broken, [study], []]);
    }
  });
});
