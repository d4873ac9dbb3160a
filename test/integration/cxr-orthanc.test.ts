/**
 * Issue 5, "How it is checked": with a real Orthanc, a CR study pushed to radnode (the shipped Lua, a whole-study
 * sender) comes back into Orthanc as an SR and a heatmap SC in the same study, from the shipped chest model.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, newUid, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from '../helpers/paths.ts';
import { jobsOf, type RadnodeHandle } from '../helpers/radnode.ts';
import { startPushStack, type PushStack } from '../helpers/push-stack.ts';

const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');

describe.skipIf(!existsSync(join(REPO_ROOT, 'models/cxr/manifest.json')))('chest detector against a real Orthanc', () => {
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
