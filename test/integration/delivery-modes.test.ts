/**
 * Issue 2 item 7: with no PACS configured results go to a local folder; shadow mode computes and records but sends
 * nothing; below the free-space floor STOW is refused with 507 and /readyz turns false.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stowFiles } from '../../bench/stow-client.ts';
import { loadConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { startNode } from '../../src/serve.ts';
import { detector as testDetector } from '../fixtures/test-detector.ts';
import { makeInstance, newUid, startOrthanc, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { sharedFile } from '../helpers/paths.ts';

const CR = sharedFile('cxr/dicom/rsna/009eb222-eabc-4150-8121-d5a6d06b8ebf.dcm');

async function node(overrides: Record<string, unknown>, minFreeMb = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'rn-modes-'));
  const config = loadConfig({
    env: {},
    overrides: {
      server: { port: 0 }, data: { dir: join(dir, 'data'), minFreeMb },
      workflow: { quietSeconds: 0.5, tickMs: 100 },
      routing: { rules: [{ detector: 'test-echo', match: { modality: ['CR'] } }] },
      ...overrides,
    },
  });
  const n = await startNode(config, { log: silentLogger, extraDetectors: [testDetector] });
  return { n, dir, url: `http://127.0.0.1:${n.port}` };
}

async function study(orthanc?: OrthancHandle) {
  const studyUID = newUid();
  const inst = await makeInstance(CR, mkdtempSync(join(tmpdir(), 'rn-modes-s-')), { studyUID, patientId: 'RN-MODES' });
  if (orthanc) await orthanc.upload(inst.path);
  return { studyUID, path: inst.path };
}

const delivered = async (n: Awaited<ReturnType<typeof node>>['n'], studyUID: string) =>
  waitFor('job delivered', async () => (await n.store.listJobs({ study: studyUID })).find((j) => j.state === 'delivered'), 30_000, 100);

describe('delivery modes', () => {
  let orthanc: OrthancHandle;
  beforeAll(async () => {
    orthanc = await startOrthanc({});
  });
  afterAll(async () => {
    await orthanc?.stop();
  });

  it('folder (the default, no PACS): the stored result bytes land under <data>/outbox/<study>/<series>/<sop>.dcm', async () => {
    const { n, dir } = await node({});
    try {
      const s = await study();
      await stowFiles(`http://127.0.0.1:${n.port}/dicom-web/studies`, [s.path]);
      const job = await delivered(n, s.studyUID);
      const outputs = await n.store.listOutputs(job.id);
      expect(outputs.length).toBeGreaterThanOrEqual(2); // SR + heatmap SC
      for (const o of outputs) {
        const file = join(dir, 'data', 'outbox', o.study_uid, o.series_uid, `${o.sop_instance_uid}.dcm`);
        expect(readFileSync(file).equals(readFileSync(o.path))).toBe(true);
      }
    } finally {
      await n.stop();
    }
  });

  it('shadow: the job is computed and recorded, nothing reaches the PACS', async () => {
    const { n, dir } = await node({ pacs: { kind: 'orthanc', url: orthanc.dicomWebUrl }, delivery: { mode: 'shadow' } });
    try {
      const s = await study(orthanc);
      await stowFiles(`http://127.0.0.1:${n.port}/dicom-web/studies`, [s.path]);
      const job = await delivered(n, s.studyUID);
      expect(JSON.parse((await n.store.listDeliveries(job.id)).at(-1)!.detail_json!)).toMatchObject({ mode: 'shadow' });
      expect(job.priority).toMatch(/positive|negative/);
      expect((await orthanc.instancesOfStudy(s.studyUID)).map((i) => i.modality)).toEqual(['CR']);
      expect(existsSync(join(dir, 'data', 'outbox'))).toBe(false);
    } finally {
      await n.stop();
    }
  });

  it('below the free-space floor STOW answers 507 before reading the body and /readyz is false', async () => {
    const { n, dir } = await node({}, 1e12);
    try {
      const s = await study();
      const r = await stowFiles(`http://127.0.0.1:${n.port}/dicom-web/studies`, [s.path]);
      expect(r.status).toEqual([507]);
      const ready = await fetch(`http://127.0.0.1:${n.port}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: { diskSpace: boolean } }).checks.diskSpace).toBe(false);
      expect(existsSync(join(dir, 'data', 'instances'))).toBe(false);
    } finally {
      await n.stop();
    }
  });
});
