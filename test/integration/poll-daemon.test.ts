/**
 * Issue 2 (b): radnode polls Orthanc — its /changes feed (StableStudy) or QIDO-RS — pulls the study by WADO-RS,
 * processes it and delivers the SR back into it. No Lua, no push: the PACS only has to be readable.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, newUid, startOrthanc, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { sharedFile } from '../helpers/paths.ts';
import { jobsOf, startRadnode, TEST_DETECTOR_MODULE } from '../helpers/radnode.ts';

const CR = sharedFile('cxr/dicom/rsna/00436515-870c-4b36-a041-de91049b9ab4.dcm');
const MG = sharedFile('dicom/fo-dicom/GH133.dcm');
const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');

let orthanc: OrthancHandle;
beforeAll(async () => {
  orthanc = await startOrthanc({ stableAgeSec: 1 });
});
afterAll(async () => {
  await orthanc?.stop();
});

for (const source of ['orthanc-changes', 'qido'] as const) {
  describe(`radnode polls Orthanc (${source})`, () => {
    it('pulls a new study, processes it once, and delivers the SR into it; series no rule wants are not pulled', async () => {
      const rn = await startRadnode({
        workflow: { quietSeconds: 1, tickMs: 100 },
        routing: { rules: [{ detector: 'test-echo', match: { modality: ['CR'] } }] },
        detectors: { modules: [TEST_DETECTOR_MODULE] },
        pacs: { kind: 'orthanc', url: orthanc.dicomWebUrl },
        delivery: { mode: 'pacs', confirmTimeoutMs: 10_000 },
        poll: { enabled: true, source, schedule: '*/1 * * * * *', lookbackDays: 1, onlyRoutedModalities: true },
      });
      try {
        const studyUID = newUid();
        const dir = mkdtempSync(join(tmpdir(), 'rn-poll-'));
        const cr = await makeInstance(CR, dir, { studyUID, patientId: 'RN-POLL', studyDate: today });
        // A second series of another modality in the same study: routing wants only CR, so it is never pulled.
        await makeInstance(MG, dir, { studyUID, patientId: 'RN-POLL', studyDate: today, modality: 'MG' }).then((m) => orthanc.upload(m.path));
        await orthanc.upload(cr.path);
        const job = await waitFor('job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered'), 40_000, 200);
        expect(job.detector).toBe('test-echo');
        const studies = await rn.api<{ studies: { study: string; series: { modality: string; instances: number }[] }[] }>('/api/studies');
        const held = studies.studies.find((s) => s.study === studyUID)!;
        expect(held.series.filter((s) => s.modality !== 'SR')).toEqual([expect.objectContaining({ modality: 'CR', instances: 1 })]);
        expect((await orthanc.instancesOfStudy(studyUID)).filter((i) => i.modality === 'SR')).toHaveLength(1);
        // Later polls see the study again (and radnode's own SR in it): nothing new is pulled, no second job.
        await new Promise((r) => setTimeout(r, 3000));
        expect(await jobsOf(rn, studyUID)).toHaveLength(1);
      } finally {
        await rn.stop();
      }
    });
  });
}
