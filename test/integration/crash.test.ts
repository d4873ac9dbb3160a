/**
 * Issue 2, "How it is checked" (d), (e), (h) and the corrections' kill tests: radnode is killed with SIGKILL at
 * named crash points (RADNODE_CRASH_AT) and at random moments; after a restart every job finishes and Orthanc holds
 * exactly one copy of each output. Orthanc stopped during delivery: results arrive after it restarts. radnode down
 * while Orthanc pushes, or killed in the middle of a STOW: the reconciliation poll still gets the study processed.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stowFiles } from '../../bench/stow-client.ts';
import { makeInstance, newUid, startOrthanc, waitFor, type OrthancHandle } from '../helpers/orthanc.ts';
import { REPO_ROOT, sharedFile } from '../helpers/paths.ts';
import { jobsOf, startRadnode, TEST_DETECTOR_MODULE, type RadnodeHandle } from '../helpers/radnode.ts';

const CR = [
  'cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm',
  'cxr/dicom/rsna/00322d4d-1c29-4943-afc9-b6754be640eb.dcm',
  'cxr/dicom/rsna/003d8fa0-6bf1-40ed-b54c-ac657f8495c5.dcm',
].map(sharedFile);
const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');

let orthanc: OrthancHandle;
beforeAll(async () => {
  orthanc = await startOrthanc({ stableAgeSec: 1 });
});
afterAll(async () => {
  await orthanc?.stop();
});

/** A study of real CR images, already in the PACS (so the source-study check passes), files ready to STOW. */
async function studyInPacs(n = 2): Promise<{ studyUID: string; files: string[] }> {
  const studyUID = newUid();
  const seriesUID = newUid();
  const dir = mkdtempSync(join(tmpdir(), 'rn-crash-study-'));
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const inst = await makeInstance(CR[i % CR.length], dir, { studyUID, seriesUID, patientId: 'RN-CRASH', studyDate: today, instanceNumber: i + 1 });
    await orthanc.upload(inst.path);
    files.push(inst.path);
  }
  return { studyUID, files };
}

function nodeConfig(extra: Record<string, unknown> = {}) {
  return {
    workflow: { quietSeconds: 1, tickMs: 100, backoffBaseMs: 200, backoffMaxMs: 1000, maxAttempts: 50, leaseMs: 60_000 },
    routing: { rules: [{ detector: 'test-echo', match: { modality: ['CR'] } }] },
    detectors: { modules: [TEST_DETECTOR_MODULE] },
    pacs: { kind: 'orthanc', url: orthanc.dicomWebUrl },
    delivery: { mode: 'pacs', confirmTimeoutMs: 10_000 },
    ...extra,
  };
}

/** radnode's outputs in the PACS: the SR and the heatmap secondary captures (Modality OT). */
const outputsInPacs = async (pacs: OrthancHandle, studyUID: string) =>
  (await pacs.instancesOfStudy(studyUID)).filter((i) => i.modality === 'SR' || i.modality === 'OT').map((i) => i.sopInstanceUID).sort();

/** The job delivered, and the PACS holds exactly the job's outputs: one SR, one SC per image, nothing more. */
async function expectDeliveredOnce(rn: RadnodeHandle, studyUID: string, pacs: OrthancHandle = orthanc) {
  const job = await waitFor('job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered'), 40_000, 200);
  expect(await jobsOf(rn, studyUID)).toHaveLength(1);
  const detail = await rn.api<{ outputs: { sopInstanceUID: string; kind: string }[] }>(`/api/jobs/${job.id}`);
  expect(detail.outputs.filter((o) => o.kind === 'sr')).toHaveLength(1);
  expect(await outputsInPacs(pacs, studyUID)).toEqual(detail.outputs.map((o) => o.sopInstanceUID).sort());
  return job;
}

describe('kill -9 at named crash points during a job and during delivery', () => {
  for (const point of ['before-run', 'after-write', 'after-run', 'before-send', 'after-send', 'after-confirm']) {
    it(`${point}: after restart the job finishes and Orthanc holds exactly one SR`, async () => {
      const { studyUID, files } = await studyInPacs();
      const rn = await startRadnode(nodeConfig(), { env: { RADNODE_CRASH_AT: point } });
      try {
        const r = await stowFiles(`${rn.url}/dicom-web/studies`, files);
        expect(r.status).toEqual([200]);
        await rn.exited(); // killed itself at the crash point
        expect(rn.log()).toContain(`crash point ${point} reached`);
        await rn.start({ RADNODE_CRASH_AT: '' });
        const job = await expectDeliveredOnce(rn, studyUID);
        const detail = await rn.api<{ audit: { action: string }[] }>(`/api/jobs/${job.id}`);
        // after-run: the job was already recorded as written and held no lease; every other point died holding one.
        if (point !== 'after-run') expect(detail.audit.map((a) => a.action)).toContain('job.lease-released');
        else expect(detail.audit.map((a) => a.action).filter((a) => a === 'job.running')).toHaveLength(1);
      } finally {
        await rn.stop();
      }
    });
  }

  it('the same SR bytes are written again after a crash between writing and recording (frozen UIDs and times)', async () => {
    const { studyUID, files } = await studyInPacs(1);
    const rn = await startRadnode(nodeConfig(), { env: { RADNODE_CRASH_AT: 'after-write' } });
    try {
      await stowFiles(`${rn.url}/dicom-web/studies`, files);
      await rn.exited();
      const outputs = join(rn.dir, 'data', 'outputs');
      const { readdirSync } = await import('node:fs');
      const [jobDir] = readdirSync(outputs);
      const written = readdirSync(join(outputs, jobDir)).sort();
      expect(written.length).toBeGreaterThanOrEqual(2); // the SR and the heatmap SC
      const before = written.map((f) => readFileSync(join(outputs, jobDir, f)));
      await rn.start({ RADNODE_CRASH_AT: '' });
      await expectDeliveredOnce(rn, studyUID);
      expect(readdirSync(join(outputs, jobDir)).sort()).toEqual(written);
      written.forEach((f, i) => expect(readFileSync(join(outputs, jobDir, f)).equals(before[i])).toBe(true));
    } finally {
      await rn.stop();
    }
  });

  it('random kills while studies are processed: every job ends delivered, one SR per study', async () => {
    const rn = await startRadnode(nodeConfig(), { env: { RADNODE_TEST_DETECTOR_DELAY_MS: '300' } });
    const studies: string[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        const { studyUID, files } = await studyInPacs(1);
        studies.push(studyUID);
        await stowFiles(`${rn.url}/dicom-web/studies`, files);
        await new Promise((r) => setTimeout(r, 800 + Math.floor(Math.random() * 1500)));
        await rn.kill9();
        await rn.start({ RADNODE_TEST_DETECTOR_DELAY_MS: '300' });
      }
      for (const s of studies) await expectDeliveredOnce(rn, s);
    } finally {
      await rn.stop();
    }
  });
});

describe('(e) Orthanc stopped during delivery', () => {
  it('the delivery retries with backoff and the SR arrives once Orthanc is back', async () => {
    const { studyUID, files } = await studyInPacs(1);
    const rn = await startRadnode(nodeConfig(), { env: { RADNODE_TEST_DETECTOR_DELAY_MS: '1500' } });
    try {
      await stowFiles(`${rn.url}/dicom-web/studies`, files);
      await waitFor('job running', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'running'), 20_000, 50);
      await orthanc.stop();
      const failed = await waitFor('delivery attempt failed', async () => (await jobsOf(rn, studyUID)).find((j) => j.reason?.code === 'RN_DELIVERY_UNREACHABLE'), 20_000, 100);
      expect(failed.state).toBe('written');
      await orthanc.restart();
      await expectDeliveredOnce(rn, studyUID);
    } finally {
      await rn.stop();
    }
  });
});

describe('(h) radnode down while Orthanc pushes, or killed mid-STOW: the reconciliation poll finds the study', () => {
  const POLL = { enabled: true, source: 'qido', schedule: '*/2 * * * * *', lookbackDays: 1 };
  const pollCfg = () => nodeConfig({ poll: POLL });

  it('a study pushed while radnode was down is processed after radnode starts', async () => {
    const rnDir = mkdtempSync(join(tmpdir(), 'radnode-it-'));
    const rn = await startRadnode(pollCfg(), { dir: rnDir, start: false });
    // Orthanc pushes with the shipped Lua while nothing listens on radnode's port: its STOW job fails, never retried.
    const pusher = await startOrthanc({
      stableAgeSec: 1,
      lua: readFileSync(resolve(REPO_ROOT, 'deploy/orthanc/radnode-forward.lua'), 'utf8'),
      servers: { radnode: `${rn.url}/dicom-web/` },
    });
    try {
      const cfg = parse(readFileSync(rn.configPath, 'utf8'));
      cfg.pacs = { kind: 'orthanc', url: pusher.dicomWebUrl };
      writeFileSync(rn.configPath, stringify(cfg));
      const studyUID = newUid();
      const dir = mkdtempSync(join(tmpdir(), 'rn-h-'));
      const inst = await makeInstance(CR[0], dir, { studyUID, patientId: 'RN-H', studyDate: today });
      await pusher.upload(inst.path);
      await waitFor('Orthanc push job failed', async () => pusher.log().includes("Couldn't connect") || pusher.log().includes('radnode'), 15_000, 200);
      await rn.start();
      const job = await expectDeliveredOnce(rn, studyUID, pusher);
      expect(job.detector).toBe('test-echo');
    } finally {
      await rn.stop();
      await pusher.stop();
    }
  });

  for (const point of ['after-fsync', 'after-record']) {
    it(`killed mid-STOW at ${point}: after restart the study is complete and processed once`, async () => {
      const { studyUID, files } = await studyInPacs(3);
      // The crashing run has no poller: its start-up reconciliation poll would otherwise pull other tests' studies
      // from the shared Orthanc and reach the crash point before the STOW does. The restart polls, as a site would.
      const rn = await startRadnode(nodeConfig(), { env: { RADNODE_CRASH_AT: `${point}:2` } });
      try {
        await stowFiles(`${rn.url}/dicom-web/studies`, files).catch(() => undefined); // the connection dies with radnode
        await rn.exited();
        const cfg = parse(readFileSync(rn.configPath, 'utf8'));
        cfg.poll = POLL;
        // Long enough for the start-up reconciliation poll to pull the instance the crash lost before planning.
        cfg.workflow.quietSeconds = 6;
        writeFileSync(rn.configPath, stringify(cfg));
        await rn.start({ RADNODE_CRASH_AT: '' });
        const job = await expectDeliveredOnce(rn, studyUID);
        const detail = await rn.api<{ result: { sourceSeries: string[] } }>(`/api/jobs/${job.id}`);
        expect(detail.result.sourceSeries).toHaveLength(1);
        const studies = await rn.api<{ studies: { study: string; series: { instances: number; modality: string }[] }[] }>('/api/studies');
        expect(studies.studies.find((s) => s.study === studyUID)!.series.find((s) => s.modality === 'CR')!.instances).toBe(3);
      } finally {
        await rn.stop();
      }
    });
  }
});
