/**
 * Issue 6, "How it is checked": with a real Orthanc, an MG study (the real digital mammogram GH133 and a mirrored
 * copy as the other breast, written by the test) pushed to radnode by the shipped Lua comes back into Orthanc as an
 * SR and heatmap SCs in the same study, from the shipped mammography model.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, newUid, startOrthanc, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from '../helpers/paths.ts';
import { fromDicom, mirror, writeMg } from '../../src/detectors/mammo/test-support.ts';
import { jobsOf, startRadnode, type RadnodeHandle } from '../helpers/radnode.ts';

const PUSH = { username: 'orthanc-push', password: 'push-secret-123' };
const OPERATOR = { username: 'op', password: 'op-secret-456' };
const basic = (u: { username: string; password: string }) => 'Basic ' + Buffer.from(`${u.username}:${u.password}`).toString('base64');
const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');

describe.skipIf(!existsSync(join(REPO_ROOT, 'models/mammo/manifest.json')))('mammography detector against a real Orthanc', () => {
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

  it('an MG study pushed by Orthanc comes back as SR + heatmap SCs in the same study', async () => {
    const ready = await rn.api<{ detectors: string[]; problems: unknown[] }>('/readyz');
    expect(ready.detectors).toContain('mammo');
    const studyUID = newUid();
    const dir = mkdtempSync(join(tmpdir(), 'rn-mg-'));
    const right = await makeInstance(sharedFile('dicom/fo-dicom/GH133.dcm'), dir, { studyUID, patientId: 'RN-MG-1', studyDate: today, instanceNumber: 1 });
    const gh = await fromDicom(sharedFile('dicom/fo-dicom/GH133.dcm'));
    const left = writeMg(dir, mirror(gh), { studyUID, laterality: 'L', view: 'MLO', orientation: ['A', 'FR'], patientId: 'RN-MG-1' });
    // Both instances must carry the same patient and study date for Orthanc to keep one study.
    const { spawnSync } = await import('node:child_process');
    spawnSync('dcmodify', ['-nb', '-i', `(0008,0020)=${today}`, left.path]);
    await orthanc.upload(right.path);
    await orthanc.upload(left.path);
    const job = await waitFor('mammo job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered'), 90_000, 200);
    expect(job.detector).toBe('mammo');
    const inPacs = await orthanc.instancesOfStudy(studyUID);
    expect(inPacs.filter((i) => i.modality === 'SR')).toHaveLength(1);
    expect(inPacs.filter((i) => i.modality === 'OT').length).toBeGreaterThanOrEqual(1);
    expect(inPacs.filter((i) => i.modality === 'MG').map((i) => i.sopInstanceUID).sort()).toEqual([right.sopInstanceUID, left.sopInstanceUID].sort());
    const detail = await rn.api<{ priority: string; studyScore: number }>(`/api/jobs/${job.id}`);
    expect(['urgent', 'positive', 'negative']).toContain(detail.priority);
  }, 120_000);
});
