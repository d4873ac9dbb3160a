/**
 * Issue 6, "How it is checked": with a real Orthanc, an MG study (the real digital mammogram GH133 and a mirrored
 * copy as the other breast, written by the test) pushed to radnode by the shipped Lua comes back into Orthanc as an
 * SR and heatmap SCs in the same study, from the shipped mammography model.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, newUid, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from '../helpers/paths.ts';
import { fromDicom, mirror, writeMg } from '../../src/detectors/mammo/test-support.ts';
import { jobsOf, type RadnodeHandle } from '../helpers/radnode.ts';
import { startPushStack, type PushStack } from '../helpers/push-stack.ts';

const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');

describe.skipIf(!existsSync(join(REPO_ROOT, 'models/mammo/manifest.json')))('mammography detector against a real Orthanc', () => {
  let stack: PushStack;
  let rn: RadnodeHandle;
  let orthanc: OrthancHandle;
  beforeAll(async () => {
    stack = await startPushStack({ stableAgeSec: 1 });
    ({ rn, orthanc } = stack);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
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
