/**
 * DESIGN §3 retention: a delivered study's instance files are deleted `data.purgeAfterHours` after its jobs settled;
 * the rows stay, so a re-sent copy restores the file without a second result, and a job that needs purged files
 * fails RN_INPUT_PURGED until the study is re-sent, then runs. The delivered job's result files go with the study's
 * (the outbox holds the delivered copies), their rows stay. A real radnode (HTTP STOW, SQLite, folder delivery).
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stowFiles } from '../../bench/stow-client.ts';
import { loadConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { startNode } from '../../src/serve.ts';
import { detector as testDetector } from '../fixtures/test-detector.ts';
import { makeInstance, newUid, waitFor } from '../helpers/orthanc.ts';
import { sharedFile } from '../helpers/paths.ts';

const CR = sharedFile('cxr/dicom/rsna/009eb222-eabc-4150-8121-d5a6d06b8ebf.dcm');
// 1.8 s: long enough for a job to be delivered first, short enough for a test.
const PURGE_AFTER_HOURS = 0.0005;

describe('retention: instance files purged after delivery', () => {
  it('purges a delivered study, restores a re-sent copy without a second result, and re-runs a job that needed purged files once they are back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-retention-'));
    const config = loadConfig({
      env: {},
      overrides: {
        server: { port: 0 }, data: { dir: join(dir, 'data'), minFreeMb: 0, purgeAfterHours: PURGE_AFTER_HOURS },
        workflow: { quietSeconds: 0.5, tickMs: 100 },
        routing: { rules: [{ detector: 'test-echo', match: { modality: ['CR'] } }] },
      },
    });
    const n = await startNode(config, { log: silentLogger, extraDetectors: [testDetector] });
    const stow = (path: string) => stowFiles(`http://127.0.0.1:${n.port}/dicom-web/studies`, [path]);
    const row = async (sop: string) => (await n.store.getInstance(sop))!;
    try {
      const studyUID = newUid();
      const first = await makeInstance(CR, mkdtempSync(join(tmpdir(), 'rn-retention-s-')), { studyUID, patientId: 'RN-RETAIN' });
      expect((await stow(first.path)).status).toEqual([200]);
      const stored = (await row(first.sopInstanceUID)).path;
      expect(existsSync(stored)).toBe(true);

      // Delivered, then purged: the file and its study folder go, and so do the job's result files (the outbox keeps
      // the delivered copies); every row stays.
      const job = await waitFor('job delivered', async () => (await n.store.listJobs({ study: studyUID })).find((j) => j.state === 'delivered'), 30_000, 100);
      const outputs = await n.store.listOutputs(job.id);
      expect(outputs.length).toBeGreaterThanOrEqual(2);
      for (const o of outputs) expect(existsSync(o.path)).toBe(true);
      const outbox = readdirSync(join(dir, 'data', 'outbox'), { recursive: true }).length;
      await waitFor('study purged', async () => ((await row(first.sopInstanceUID)).purged_at !== null ? true : undefined), 30_000, 100);
      expect(existsSync(stored)).toBe(false);
      expect(readdirSync(join(dir, 'data', 'instances'))).toEqual([]);
      const purged = (await n.store.listAudit('study', studyUID)).find((a) => a.action === 'study.purged')!;
      expect(JSON.parse(purged.detail_json!)).toMatchObject({ instances: 1, outputs: outputs.length });
      for (const o of await n.store.listOutputs(job.id)) {
        expect(existsSync(o.path)).toBe(false);
        expect(o.purged_at).not.toBeNull();
      }
      expect(readdirSync(join(dir, 'data', 'outputs'))).toEqual([]);
      const view = (await (await fetch(`http://127.0.0.1:${n.port}/api/jobs/${job.id}`)).json()) as { outputs: { purgedAt: number | null }[] };
      expect(view.outputs.map((o) => o.purgedAt !== null)).toEqual(outputs.map(() => true));
      expect(readdirSync(join(dir, 'data', 'outbox'), { recursive: true }).length).toBe(outbox);
      // The worklist no longer offers a thumbnail it cannot draw, and says why when asked for one.
      const wl = (await (await fetch(`http://127.0.0.1:${n.port}/api/worklist`)).json()) as { rows: { study: string; hasHeatmap: boolean }[] };
      expect(wl.rows.find((r) => r.study === studyUID)).toMatchObject({ hasHeatmap: false });
      const thumb = await fetch(`http://127.0.0.1:${n.port}/api/worklist/${studyUID}/heatmap.png`);
      expect([thumb.status, ((await thumb.json()) as { message: string }).message]).toEqual([404, expect.stringContaining('deleted by retention')]);

      // The same bytes re-sent: the file is back, the study is planned again, and no second job or output appears.
      expect((await stow(first.path)).status).toEqual([200]);
      expect((await row(first.sopInstanceUID)).purged_at).toBeNull();
      expect(existsSync(stored)).toBe(true);
      await waitFor('re-planned', async () => ((await n.store.getStudy(studyUID))!.state === 'complete' ? true : undefined), 30_000, 100);
      expect((await n.store.listJobs({ study: studyUID })).map((j) => j.id)).toEqual([job.id]);

      // Purged again; then a late series: its job needs the purged film too, so it fails with a reason that says so.
      await waitFor('purged again', async () => ((await row(first.sopInstanceUID)).purged_at !== null ? true : undefined), 30_000, 100);
      const late = await makeInstance(CR, mkdtempSync(join(tmpdir(), 'rn-retention-l-')), { studyUID, patientId: 'RN-RETAIN' });
      expect((await stow(late.path)).status).toEqual([200]);
      const blocked = await waitFor('late job failed', async () => (await n.store.listJobs({ study: studyUID })).find((j) => j.id !== job.id && j.state === 'failed'), 30_000, 100);
      expect(blocked.reason_code).toBe('RN_INPUT_PURGED');
      // A failed job keeps the study's files: the late film is not purged meanwhile.
      await new Promise((r) => setTimeout(r, 2500));
      expect((await row(late.sopInstanceUID)).purged_at).toBeNull();

      // The PACS re-sends the study: the failed job runs again over the same inputs and is delivered.
      expect((await stow(first.path)).status).toEqual([200]);
      const rerun = await waitFor('late job delivered', async () => {
        const j = await n.store.getJob(blocked.id);
        return j?.state === 'delivered' ? j : undefined;
      }, 30_000, 100);
      expect(rerun.predecessor_job_id).toBe(job.id);
      expect((await n.store.listJobs({ study: studyUID })).map((j) => j.id).sort()).toEqual([job.id, blocked.id].sort());
    } finally {
      await n.stop();
    }
  }, 120_000);
});
