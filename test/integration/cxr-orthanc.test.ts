/**
 * Issue 5, "How it is checked": with a real Orthanc, a CR study pushed to radnode (the shipped Lua, a whole-study
 * sender) comes back into Orthanc as an SR and a heatmap SC in the same study, from the shipped chest model.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, newUid, startOrthanc, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from '../helpers/paths.ts';
import { jobsOf, startRadnode, type RadnodeHandle } from '../helpers/radnode.ts';

const PUSH = { username: 'orthanc-push', password: 'push-secret-123' };
const OPERATOR = { username: 'op', password: 'op-secret-456' };
const basic = (u: { username: string; password: string }) => 'Basic ' + Buffer.from(`${u.username}:${u.password}`).toString('base64');
const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');

describe.skipIf(!existsSync(join(REPO_ROOT, 'models/cxr/manifest.json')))('chest detector against a real Orthanc', () => {
  let rn: RadnodeHandle;
  let orthanc: OrthancHandle;
  beforeAll(async () => {
    rn = await startRadnode(
      {
        server: { host: '127.0.0.1', users: [{ ...PUSH, roles: ['ingest'] }, { ...OPERATOR, roles: ['reader', 'operator'] }] },
        workflow: { quietSeconds: 30, tickMs: 100, wholeStudySenders: [PUSH.username] },
        delivery: { mode: 'pacs', confirmTimeoutMs: 10_000 },
      },
      { start: false, authorization: basic(OPERATOR) },
    );
    orthanc = await startOrthanc({
      stableAgeSec: 1,
      lua: readFileSync(resolve(REPO_ROOT, 'deploy/orthanc/radnode-forward.lua'), 'utf8'),
      servers: { radnode: [`${rn.url}/dicom-web/`, PUSH.username, PUSH.password] },
    });
    const cfg = parse(readFileSync(rn.configPath, 'utf8'));
    cfg.pacs = { kind: 'orthanc', url: orthanc.dicomWebUrl };
    writeFileSync(rn.configPath, stringify(cfg));
    await rn.start();
  }, 60_000);
  afterAll(async () => {
    await rn?.stop();
    await orthanc?.stop();
  });

  it('a CR study pushed by Orthanc comes back as SR + heatmap SC in the same study', async () => {
    const ready = await rn.api<{ detectors: string[]; problems: unknown[] }>('/readyz');
    expect(ready.detectors).toContain('cxr');
    expect(ready.problems).toEqual([]);
    const studyUID = newUid();
    const dir = mkdtempSync(join(tmpdir(), 'rn-cxr-'));
    const made = await makeInstance(sharedFile('cxr/dicom/rsna/00436515-870c-4b36-a041-de91049b9ab4.dcm'), dir, { studyUID, patientId: 'RN-CXR-1', studyDate: today, instanceNumber: 1 });
    await orthanc.upload(made.path);
    const job = await waitFor('cxr job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered'), 60_000, 200);
    expect(job.detector).toBe('cxr');
    const inPacs = await orthanc.instancesOfStudy(studyUID);
    expect(inPacs.filter((i) => i.modality === 'SR')).toHaveLength(1);
    expect(inPacs.filter((i) => i.modality === 'OT')).toHaveLength(1);
    expect(inPacs.filter((i) => i.modality === 'CR').map((i) => i.sopInstanceUID)).toEqual([made.sopInstanceUID]);
    const detail = await rn.api<{ priority: string; studyScore: number }>(`/api/jobs/${job.id}`);
    expect(['urgent', 'positive', 'negative']).toContain(detail.priority);
  }, 90_000);
});
