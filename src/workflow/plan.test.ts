import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../config/defaults.ts';
import type { Detector } from '../detectors/detector.ts';
import { selectCt, thinSliceWorthWaiting } from '../detectors/ct/select.ts';
import { silentLogger } from '../log.ts';
import { SqliteStore } from '../store/store.ts';
import type { InstanceRecord } from '../store/types.ts';
import { planStudy } from './plan.ts';

const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';

/** A CT series of `n` slices as the store records it (headers only: planning never reads pixels). */
async function recordCtSeries(store: SqliteStore, series: string, thicknessMm: number, n = 60): Promise<void> {
  for (let i = 0; i < n; i++) {
    const sop = `${series}.${i + 1}`;
    const rec: InstanceRecord = {
      sopInstanceUID: sop, sopClassUID: CT_IMAGE, seriesInstanceUID: series, studyInstanceUID: 'ST1', path: `/x/${sop}.dcm`, size: 1,
      sha256: `sha-${sop}`, source: 'stow', isOwn: false, modality: 'CT', bodyPartExamined: 'CHEST', imageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
      sliceThicknessMm: thicknessMm, patientID: 'P1',
    };
    await store.recordInstance(rec);
  }
}

/** The CT detector's own routing surface (select and worthWaiting); `run` is never reached by planning. */
const ct: Detector = {
  manifest: { id: 'ct', version: '1', modelSha256: '0'.repeat(64) },
  select: selectCt,
  worthWaiting: thinSliceWorthWaiting,
  run: () => Promise.reject(new Error('planning never runs a detector')),
};
const deps = (store: SqliteStore, waitMs: number) => ({ store, rules: DEFAULT_CONFIG.routing.rules, detectors: new Map([['ct', ct]]), log: silentLogger, waitMs });

describe('planStudy: waiting for a thin-slice CT reconstruction (DESIGN §3, workflow.thinSliceWaitMinutes)', () => {
  it('holds a thick-slice-only CT job for the wait, and a thin series arriving meanwhile supersedes it and runs at once', async () => {
    const store = SqliteStore.open(':memory:');
    await recordCtSeries(store, 'THICK', 2.5);
    const t0 = Date.now();
    const [first] = (await planStudy(deps(store, 10 * 60_000), 'ST1')).jobsCreated;
    const held = (await store.getJob(first))!;
    expect(held.state).toBe('queued');
    expect(held.next_attempt_at).toBeGreaterThanOrEqual(t0 + 10 * 60_000);
    expect(await store.claimJob('run', 'w', 60_000)).toBeUndefined();
    const created = (await store.listAudit('job', first)).find((a) => a.action === 'job.created')!;
    expect(JSON.parse(created.detail_json ?? '{}').why).toMatch(/no series of 1.5 mm or thinner yet \(thinnest 2.5 mm\)/);

    await recordCtSeries(store, 'THIN', 1.25);
    const [second] = (await planStudy(deps(store, 10 * 60_000), 'ST1')).jobsCreated;
    expect((await store.getJob(first))!).toMatchObject({ state: 'superseded', superseded_by: second });
    const claimed = await store.claimJob('run', 'w', 60_000);
    expect(claimed?.id).toBe(second);
    expect(JSON.parse(claimed!.inputs_json).series.map((s: { seriesInstanceUID: string }) => s.seriesInstanceUID).sort()).toEqual(['THICK', 'THIN']);
  });

  it('runs at once when the wait is 0 (the default) or a thin series is already there', async () => {
    const thickOnly = SqliteStore.open(':memory:');
    await recordCtSeries(thickOnly, 'THICK', 2.5);
    const [a] = (await planStudy(deps(thickOnly, 0), 'ST1')).jobsCreated;
    expect((await thickOnly.claimJob('run', 'w', 60_000))?.id).toBe(a);
    expect(DEFAULT_CONFIG.workflow.thinSliceWaitMinutes).toBe(0);

    const withThin = SqliteStore.open(':memory:');
    await recordCtSeries(withThin, 'THIN', 1);
    await recordCtSeries(withThin, 'THICK', 2.5);
    const [b] = (await planStudy(deps(withThin, 10 * 60_000), 'ST1')).jobsCreated;
    expect((await withThin.claimJob('run', 'w', 60_000))?.id).toBe(b);
  });

  it('does not wait when a series has no Slice Thickness (nothing says a thinner one is coming)', () => {
    const info = (t: number | undefined) => ({ studyInstanceUID: 'ST1', seriesInstanceUID: 'S', modality: 'CT', sliceThicknessMm: t, instanceCount: 60, isOwn: false });
    expect(thinSliceWorthWaiting([info(undefined)])).toBeNull();
    expect(thinSliceWorthWaiting([info(3), info(undefined)])).toBeNull();
    expect(thinSliceWorthWaiting([info(1.5)])).toBeNull();
    expect(thinSliceWorthWaiting([info(2), info(3)])).toMatch(/thinnest 2 mm/);
  });
});
