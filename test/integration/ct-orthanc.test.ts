/**
 * Issue 7, "How it is checked": with a real Orthanc, the LIDC-IDRI-0001 chest CT (133 slices) pushed to radnode by
 * the shipped Lua comes back into Orthanc as one SR and one heatmap SC whose frames are the key slices only, in the
 * same study; the Philips exam-summary study (localizer and console screenshots, Modality CT) pushed beside it gets
 * coded reasons and no job.
 *
 * The detector runs on the shipped CT model when models/ct holds one; before that, on the throw-away graph of
 * src/detectors/ct/test-model.ts, which checks the plumbing and the objects, never the detector.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { REPO_ROOT, sharedFile, unpackedFile } from '../helpers/paths.ts';
import { jobsOf, type RadnodeHandle } from '../helpers/radnode.ts';
import { startPushStack, type PushStack } from '../helpers/push-stack.ts';
import { writeModel } from '../../src/inference/test-support/models.ts';
import { readFindings } from '../../src/results/sr/read.ts';
import { tinyCtManifest, tinyCtModel } from '../../src/detectors/ct/test-model.ts';


const LIDC1_STUDY = '1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178';
const PHILIPS_STUDY = '1.3.46.670589.33.1.15053592413351079234.27718218421047494460';
const HAVE_PIPELINE = existsSync(join(REPO_ROOT, 'src/detectors/ct/pipeline.ts'));
const SHIPPED_CT = join(REPO_ROOT, 'models/ct/manifest.json');

/** The shipped models folder when the CT model is in it, else a temp folder with the throw-away graph only. */
function modelsDir(): string {
  if (existsSync(SHIPPED_CT)) return join(REPO_ROOT, 'models');
  const dir = mkdtempSync(join(tmpdir(), 'rn-ct-it-models-'));
  const bytes = tinyCtModel();
  writeModel(dir, 'ct-lung-nodule', bytes, tinyCtManifest(bytes));
  return dir;
}

describe.runIf(HAVE_PIPELINE)('CT lung-nodule detector against a real Orthanc', () => {
  let stack: PushStack;
  let rn: RadnodeHandle;
  let orthanc: OrthancHandle;
  beforeAll(async () => {
    stack = await startPushStack({ stableAgeSec: 2, modelsDir: modelsDir() });
    ({ rn, orthanc } = stack);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('LIDC-IDRI-0001 pushed by Orthanc comes back as SR + one key-slice SC in the same study; Philips screenshots get coded reasons', async () => {
    const ready = await rn.api<{ detectors: string[]; problems: unknown[] }>('/readyz');
    expect(ready.detectors).toContain('ct');
    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.dcm')).sort()) await orthanc.upload(join(dir, f));
    const philips = sharedFile('ct/edge/philips-ingenuity-exam-summary/localizer_S1000_I10.dcm').replace(/[^/]+$/, '');
    for (const f of readdirSync(philips).sort()) await orthanc.upload(join(philips, f));

    const job = await waitFor('ct job delivered', async () => {
      const j = (await jobsOf(rn, LIDC1_STUDY)).find((x) => x.state === 'delivered' || x.state === 'failed');
      return j;
    }, 240_000, 500);
    expect(job.state, JSON.stringify(job.reason)).toBe('delivered');
    expect(job.detector).toBe('ct');

    const inPacs = await orthanc.instancesOfStudy(LIDC1_STUDY);
    expect(inPacs.filter((i) => i.modality === 'CT')).toHaveLength(133);
    const sr = inPacs.filter((i) => i.modality === 'SR');
    const sc = inPacs.filter((i) => i.modality === 'OT');
    expect(sr).toHaveLength(1);
    expect(sc).toHaveLength(1);

    // One frame per key slice: the SR's bidirectional key images are the SC's Source Image Sequence.
    const detail = await rn.api<{ priority: string; studyScore: number }>(`/api/jobs/${job.id}`);
    expect(['urgent', 'positive', 'negative']).toContain(detail.priority);
    const scId = (await orthanc.lookup(sc[0].sopInstanceUID))!;
    const tags = (await (await fetch(`${orthanc.url}/instances/${scId}/simplified-tags`)).json()) as { NumberOfFrames?: string; SourceImageSequence?: { ReferencedSOPInstanceUID: string }[] };
    const frames = Number(tags.NumberOfFrames ?? 1);
    const sources = new Set((tags.SourceImageSequence ?? []).map((s) => s.ReferencedSOPInstanceUID));
    const ctSops = new Set(inPacs.filter((i) => i.modality === 'CT').map((i) => i.sopInstanceUID));
    expect(frames).toBeGreaterThanOrEqual(1);
    expect(frames).toBeLessThan(133);
    for (const s of sources) expect(ctSops.has(s)).toBe(true);
    expect(sources.size).toBe(frames);

    // The SR as the PACS stores it says which series was analysed and why (issue 7 item 1).
    const srId = (await orthanc.lookup(sr[0].sopInstanceUID))!;
    const report = readFindings(new Uint8Array(await (await fetch(`${orthanc.url}/instances/${srId}/file`)).arrayBuffer()));
    expect(report.seriesChoice).toMatch(/^the only series that qualified: /);

    // The Philips study: every series refused with a coded reason, no job.
    type Studies = { studies: { study: string; series: { modality: string; notProcessed: { code: string } | null }[] }[] };
    const ph = await waitFor('philips study planned', async () => {
      const s = (await rn.api<Studies>('/api/studies')).studies.find((x) => x.study === PHILIPS_STUDY);
      return s && s.series.every((x) => x.notProcessed) ? s : null;
    }, 60_000, 500);
    expect(ph.series.map((s) => s.notProcessed!.code).sort()).toEqual(expect.arrayContaining(['RN-NP-LOCALIZER', 'RN-NP-DOSE']));
    expect(await jobsOf(rn, PHILIPS_STUDY)).toEqual([]);
  }, 300_000);
});
