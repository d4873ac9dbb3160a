/**
 * Issue 2, "How it is checked" (a), (c), (f), (g): a real Orthanc pushes stable studies to a real radnode process
 * through its DicomWeb.Servers STOW (the shipped Lua in deploy/orthanc/), radnode runs the test-only detector and
 * delivers the SR back into the source study, confirmed by QIDO; a late series supersedes; radnode's own outputs
 * coming back never start a job.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, newUid, startOrthanc, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from '../helpers/paths.ts';
import { jobsOf, startRadnode, TEST_DETECTOR_MODULE, type RadnodeHandle } from '../helpers/radnode.ts';

const CR = [
  'cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm',
  'cxr/dicom/rsna/00322d4d-1c29-4943-afc9-b6754be640eb.dcm',
  'cxr/dicom/rsna/003d8fa0-6bf1-40ed-b54c-ac657f8495c5.dcm',
].map(sharedFile);
const SHIPPED_LUA = readFileSync(resolve(REPO_ROOT, 'deploy/orthanc/radnode-forward.lua'), 'utf8');
// The naive forwarder of orthanc.md: everything, radnode's own SR included, so radnode's loop guard is what is tested.
const NAIVE_LUA = `function OnStableStudy(studyId, tags, metadata)
  RestApiPost('/dicom-web/servers/radnode/stow', '{"Resources":["' .. studyId .. '"],"Synchronous":false}')
end`;

const ORTHANC_USER = { username: 'orthanc-push', password: 'push-secret-123' };
const OPERATOR = { username: 'op', password: 'op-secret-456' };
const basic = (u: { username: string; password: string }) => 'Basic ' + Buffer.from(`${u.username}:${u.password}`).toString('base64');
const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');

async function uploadStudy(orthanc: OrthancHandle, files: string[], edits: { studyUID: string; seriesUID?: string; patientId?: string }) {
  const dir = mkdtempSync(join(tmpdir(), 'rn-study-'));
  const made = [];
  for (const [i, f] of files.entries()) {
    const inst = await makeInstance(f, dir, { ...edits, patientId: edits.patientId ?? 'RN-TEST-1', studyDate: today, instanceNumber: i + 1 });
    await orthanc.upload(inst.path);
    made.push(inst);
  }
  return made;
}

async function setup(lua: string) {
  const radnodeDir = mkdtempSync(join(tmpdir(), 'radnode-it-'));
  // radnode's port is fixed before Orthanc starts, since Orthanc's config names it.
  const rn = await startRadnode(
    {
      server: { host: '127.0.0.1', users: [{ ...ORTHANC_USER, roles: ['ingest'] }, { ...OPERATOR, roles: ['reader', 'operator'] }] },
      workflow: { quietSeconds: 2, tickMs: 200, wholeStudySenders: [ORTHANC_USER.username], backoffBaseMs: 200, backoffMaxMs: 1000 },
      routing: { rules: [{ detector: 'test-echo', match: { modality: ['CR', 'DX'] } }] },
      detectors: { modules: [TEST_DETECTOR_MODULE] },
      delivery: { mode: 'pacs', confirmTimeoutMs: 10_000 },
    },
    { dir: radnodeDir, start: false, authorization: basic(OPERATOR) },
  );
  const orthanc = await startOrthanc({
    stableAgeSec: 1,
    lua,
    servers: { radnode: [`${rn.url}/dicom-web/`, ORTHANC_USER.username, ORTHANC_USER.password] },
  });
  // radnode's PACS is that Orthanc: rewrite the config and start.
  const { parse, stringify } = await import('yaml');
  const cfg = parse(readFileSync(rn.configPath, 'utf8'));
  cfg.pacs = { kind: 'orthanc', url: orthanc.dicomWebUrl };
  const { writeFileSync } = await import('node:fs');
  writeFileSync(rn.configPath, stringify(cfg));
  await rn.start();
  return { rn, orthanc };
}

describe('backbone against a real Orthanc (push by the shipped Lua)', () => {
  let rn: RadnodeHandle;
  let orthanc: OrthancHandle;
  beforeAll(async () => {
    ({ rn, orthanc } = await setup(SHIPPED_LUA));
  });
  afterAll(async () => {
    await rn?.stop();
    await orthanc?.stop();
  });

  it('(a)(c) a stable study pushed by Orthanc is processed and its SR is delivered into the source study, confirmed by QIDO', async () => {
    const studyUID = newUid();
    const made = await uploadStudy(orthanc, CR.slice(0, 2), { studyUID, seriesUID: newUid() });
    const job = await waitFor('job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered'), 40_000, 250);
    expect(job.detector).toBe('test-echo');
    const inPacs = await orthanc.instancesOfStudy(studyUID);
    const srs = inPacs.filter((i) => i.modality === 'SR');
    const heatmaps = inPacs.filter((i) => i.modality === 'OT');
    expect(srs).toHaveLength(1);
    // One heatmap secondary capture per source radiograph (DESIGN §1), beside the SR.
    expect(heatmaps).toHaveLength(made.length);
    expect(inPacs.filter((i) => i.modality === 'CR').map((i) => i.sopInstanceUID).sort()).toEqual(made.map((m) => m.sopInstanceUID).sort());
    const detail = await rn.api<{ outputs: { sopInstanceUID: string; deliveredAt: number | null }[]; deliveries: { outcome: string; detail_json: string }[] }>(`/api/jobs/${job.id}`);
    const ours = [...srs, ...heatmaps].map((i) => i.sopInstanceUID).sort();
    expect(detail.outputs.map((o) => o.sopInstanceUID).sort()).toEqual(ours);
    expect(detail.outputs.every((o) => o.deliveredAt !== null)).toBe(true);
    expect(JSON.parse(detail.deliveries.at(-1)!.detail_json).sent.sort()).toEqual(ours);

    // Orthanc re-fires StableStudy after the SR lands and re-sends the images: known instances, no new job.
    await new Promise((r) => setTimeout(r, 5000));
    expect(await jobsOf(rn, studyUID)).toHaveLength(1);
    expect((await orthanc.instancesOfStudy(studyUID)).filter((i) => i.modality === 'SR' || i.modality === 'OT')).toHaveLength(1 + made.length);
  });

  it('(f) a late series supersedes the earlier result: a second SR in the same series, naming its predecessor', async () => {
    const studyUID = newUid();
    await uploadStudy(orthanc, CR.slice(0, 1), { studyUID, seriesUID: newUid() });
    const first = await waitFor('first job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered'), 40_000, 250);
    await uploadStudy(orthanc, CR.slice(1, 2), { studyUID, seriesUID: newUid() });
    const second = await waitFor('second job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.id !== first.id && j.state === 'delivered'), 40_000, 250);
    expect(second.predecessorJobId).toBe(first.id);
    expect(second.srInstanceNumber).toBe(2);
    const jobs = await jobsOf(rn, studyUID);
    expect(jobs.find((j) => j.id === first.id)!.supersededBy).toBe(second.id);
    const srs = (await orthanc.instancesOfStudy(studyUID)).filter((i) => i.modality === 'SR');
    expect(srs).toHaveLength(2);
    expect(new Set(srs.map((s) => s.seriesInstanceUID)).size).toBe(1);
    // The new SR's Predecessor Documents Sequence names the first SR (WADO-RS metadata of the PACS copy).
    const outputs = async (id: number) => (await rn.api<{ outputs: { sopInstanceUID: string; kind: string }[] }>(`/api/jobs/${id}`)).outputs;
    const firstSr = (await outputs(first.id)).find((o) => o.kind === 'sr')!.sopInstanceUID;
    const secondSr = (await outputs(second.id)).find((o) => o.kind === 'sr')!.sopInstanceUID;
    const meta = (await (await fetch(`${orthanc.dicomWebUrl}/studies/${studyUID}/series/${srs[0].seriesInstanceUID}/instances/${secondSr}/metadata`)).json()) as Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>[];
    expect(JSON.stringify(meta[0]['0040A360'])).toContain(firstSr);
    // The superseded heatmaps were retracted from Orthanc (REST DELETE); the new ones, one per source image, are there.
    const heatmapsOf = async (id: number) => (await outputs(id)).filter((o) => o.kind === 'heatmap-sc').map((o) => o.sopInstanceUID).sort();
    const otInPacs = (await orthanc.instancesOfStudy(studyUID)).filter((i) => i.modality === 'OT').map((i) => i.sopInstanceUID).sort();
    expect(await heatmapsOf(first.id)).toHaveLength(1);
    expect(otInPacs).toEqual(await heatmapsOf(second.id));
    expect(otInPacs).toHaveLength(2);
    // The studies API (the worklist's source) shows only the newest, non-superseded job.
    const studies = await rn.api<{ studies: { study: string; jobs: { id: number }[] }[] }>('/api/studies');
    expect(studies.studies.find((s) => s.study === studyUID)!.jobs.map((j) => j.id)).toEqual([second.id]);
  });

  it('STOW without credentials is refused with 401 and stores nothing', async () => {
    const r = await fetch(`${rn.url}/dicom-web/studies`, { method: 'POST', headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=x' }, body: '--x--' });
    expect(r.status).toBe(401);
    expect(((await r.json()) as { code: string }).code).toBe('RN_AUTH_REQUIRED');
    const wrong = await fetch(`${rn.url}/api/jobs`, { headers: { authorization: basic({ username: 'op', password: 'nope' }) } });
    expect(wrong.status).toBe(401);
    const forbidden = await fetch(`${rn.url}/api/jobs`, { headers: { authorization: basic(ORTHANC_USER) } });
    expect(forbidden.status).toBe(403);
  });
});

describe('loop guard against a naive forwarder that sends everything back', () => {
  let rn: RadnodeHandle;
  let orthanc: OrthancHandle;
  beforeAll(async () => {
    ({ rn, orthanc } = await setup(NAIVE_LUA));
  });
  afterAll(async () => {
    await rn?.stop();
    await orthanc?.stop();
  });

  it("(g) radnode's own SR coming back in the re-sent study is recognised and starts no job", async () => {
    const studyUID = newUid();
    await uploadStudy(orthanc, CR.slice(0, 1), { studyUID, seriesUID: newUid() });
    const job = await waitFor('job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered'), 40_000, 250);
    // Orthanc re-sends the whole study, SR included: wait until radnode holds its own SR as an ingested instance.
    const studies = async () => (await rn.api<{ studies: { study: string; series: { modality: string; notProcessed: unknown }[] }[] }>('/api/studies')).studies.find((s) => s.study === studyUID);
    await waitFor('own SR received back', async () => (await studies())?.series.some((s) => s.modality === 'SR'), 30_000, 250);
    await new Promise((r) => setTimeout(r, 4000)); // two quiet periods: a wrongly re-opened study would have planned
    const jobs = await jobsOf(rn, studyUID);
    expect(jobs.map((j) => j.id)).toEqual([job.id]);
    expect((await orthanc.instancesOfStudy(studyUID)).filter((i) => i.modality === 'SR')).toHaveLength(1);
  });
});
