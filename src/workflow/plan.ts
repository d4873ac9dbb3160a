import type { RoutingRule } from '../config/types.ts';
import type { Detector, SeriesInfo } from '../detectors/detector.ts';
import type { Logger } from '../log.ts';
import { WRITER_VERSION } from '../results/modules.ts';
import { hashParts } from '../results/uids.ts';
import type { SqliteStore } from '../store/store.ts';
import type { JobInputs, SeriesRow } from '../store/types.ts';
import { routeSeries } from './route.ts';


export function seriesInfoOf(row: SeriesRow): SeriesInfo {
  return {
    studyInstanceUID: row.study_uid,
    seriesInstanceUID: row.series_uid,
    modality: row.modality ?? undefined,
    sopClassUID: row.sop_class_uid ?? undefined,
    seriesDescription: row.series_description ?? undefined,
    bodyPartExamined: row.body_part ?? undefined,
    viewPosition: row.view_position ?? undefined,
    imageType: row.image_type ? row.image_type.split('\\') : undefined,
    sliceThicknessMm: row.slice_thickness ?? undefined,
    photometricInterpretation: row.photometric ?? undefined,
    samplesPerPixel: row.samples_per_pixel ?? undefined,
    instanceCount: row.instance_count,
    multiFrameCount: row.multiframe_count,
    isOwn: row.is_own === 1,
  };
}

/**
 * The seed of every output UID: the sorted inputs with their content hashes, the model and the writer version (the
 * results' own constant, so a writer change always yields new UIDs rather than other bytes under old ones, DESIGN §3).
 */
export function inputKeyOf(detector: Detector, inputs: JobInputs): string {
  const parts = [detector.manifest.id, detector.manifest.version, detector.manifest.modelSha256, WRITER_VERSION];
  const sops = inputs.series.flatMap((s) => s.instances.map((i) => `${i.sopInstanceUID}:${i.sha256}`)).sort();
  return hashParts([...parts, ...sops]).toString('hex').slice(0, 32);
}

/**
 * A study is complete: route every series, record each skipped series' coded reason, and make one job per
 * detector over the input set it selected. Re-planning a study whose inputs did not change for a detector is a
 * no-op (same input key), so re-sent studies and our own outputs coming back never start a job.
 */
export async function planStudy(
  deps: { store: SqliteStore; rules: RoutingRule[]; detectors: ReadonlyMap<string, Detector>; log: Logger; waitMs?: number },
  studyUID: string,
): Promise<{ jobsCreated: number[]; skipped: number }> {
  const series = await deps.store.listSeries(studyUID);
  const byDetector = new Map<string, JobInputs>();
  const infos = new Map<string, SeriesInfo[]>();
  let skipped = 0;
  for (const row of series) {
    const info = seriesInfoOf(row);
    const decision = routeSeries(info, deps.rules, deps.detectors);
    if (decision.detector === null) {
      await deps.store.setSeriesRoute(row.series_uid, { detector: null, reasonCode: decision.reason.value, reasonDetail: decision.detail });
      skipped++;
      continue;
    }
    await deps.store.setSeriesRoute(row.series_uid, { detector: decision.detector, reasonCode: null, reasonDetail: null });
    const instances = (await deps.store.listInstances(row.series_uid)).map((i) => ({ sopInstanceUID: i.sop_instance_uid, sha256: i.sha256 }));
    const entry = byDetector.get(decision.detector) ?? { series: [] };
    entry.series.push({ seriesInstanceUID: row.series_uid, instances });
    byDetector.set(decision.detector, entry);
    infos.set(decision.detector, [...(infos.get(decision.detector) ?? []), info]);
  }
  const jobsCreated: number[] = [];
  for (const [id, inputs] of byDetector) {
    const detector = deps.detectors.get(id)!;
    const why = deps.waitMs ? (detector.worthWaiting?.(infos.get(id) ?? []) ?? null) : null;
    const now = Date.now();
    const wait = why ? { until: now + deps.waitMs!, why } : undefined;
    const { job, created } = await deps.store.upsertJob(studyUID, id, inputKeyOf(detector, inputs), inputs, now, wait);
    if (!created && job.state === 'failed' && job.reason_code === 'RN_INPUT_PURGED') {
      // The study was re-sent after retention had deleted its files: the same inputs are back, so run them.
      await deps.store.retryJob(job.id, 'workflow');
      deps.log.info('job re-queued: its purged inputs were re-sent', { jobId: job.id, detector: id, study: studyUID });
    }
    if (created) {
      jobsCreated.push(job.id);
      deps.log.info('job created', { jobId: job.id, detector: id, study: studyUID, series: inputs.series.length, ...(wait ? { waitUntil: new Date(wait.until).toISOString(), why } : {}) });
    }
  }
  return { jobsCreated, skipped };
}
