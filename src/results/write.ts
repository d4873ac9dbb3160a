/**
 * The results stage's entry point (DESIGN §2): a detector's result and its source instances in, the DICOM objects
 * radnode delivers out — the TID 1500 SR first, then the heatmap secondary captures (one per radiograph or
 * mammogram, one multi-frame SC of key slices per CT/MR series).
 */
import { isImageDataError, RadnodeError } from '../errors.ts';
import { num, nums, str } from './dicom-io.ts';
import { isPlace3D, type DetectorResult } from './findings.ts';
import { writeHeatmapSc, placesOn, type ScFrame } from './heatmap/write-sc.ts';
import { readSourceHeader, seriesNumbers, timezoneOf, type SourceHeader } from './modules.ts';
import type { ResultObject, ResultWriter, SourceInstance, WriteContext } from './objects.ts';
import { loadSourceImage } from './source-pixels.ts';
import { writeSr, type SpacingBySop } from './sr/write-sr.ts';

/** Cross-sectional modalities whose series become one multi-frame SC of key slices. */
const VOLUME_MODALITIES = new Set(['CT', 'MR', 'PT']);
/** Enough key slices to show every finding of a chest CT without sending a second volume. */
export const MAX_KEY_SLICES = 32;

export type HeatmapPlan = SourceInstance[][];

/**
 * Which sources become which SC: a volume series gives its key slices (those with a finding or a heatmap, else
 * the middle slice) in Instance Number order; every other source gives its own single-frame SC.
 */
export async function planHeatmaps(result: DetectorResult, sources: SourceInstance[]): Promise<HeatmapPlan> {
  const bySeries = new Map<string, SourceInstance[]>();
  for (const s of sources) bySeries.set(s.seriesInstanceUID, [...(bySeries.get(s.seriesInstanceUID) ?? []), s]);
  const plan: HeatmapPlan = [];
  for (const list of bySeries.values()) {
    const head = await readSourceHeader(list[0]);
    if (!(VOLUME_MODALITIES.has(str(head.dataset, 'Modality') ?? '') && list.length > 1)) {
      for (const s of list) plan.push([s]);
      continue;
    }
    const marked = new Set([...result.heatmaps.map((h) => h.sopInstanceUID), ...list.flatMap((s) => placesOn(result, s.sopInstanceUID).map(() => s.sopInstanceUID))]);
    let keys = list.filter((s) => marked.has(s.sopInstanceUID));
    const headers: SourceHeader[] = await Promise.all((keys.length ? keys : list).map(readSourceHeader));
    const ordered = headers.sort((a, b) => (num(a.dataset, 'InstanceNumber') ?? 0) - (num(b.dataset, 'InstanceNumber') ?? 0)).map((h) => h.source);
    keys = keys.length ? ordered.slice(0, MAX_KEY_SLICES) : [ordered[Math.floor(ordered.length / 2)]];
    plan.push(keys);
  }
  return plan;
}

async function framesOf(group: SourceInstance[]): Promise<ScFrame[]> {
  return Promise.all(group.map(async (source) => ({ source, image: await loadSourceImage(source.path) })));
}

export async function writeHeatmaps(result: DetectorResult, sources: SourceInstance[], ctx: WriteContext, seriesNumber: number): Promise<ResultObject[]> {
  const plan = await planHeatmaps(result, sources);
  const out: ResultObject[] = [];
  for (const [index, group] of plan.entries()) out.push(writeHeatmapSc(result, await framesOf(group), index, ctx, seriesNumber));
  return out;
}

/** The Series Number of each source series (one header per series; Type 2, so a series may have none). */
export async function sourceSeriesNumbers(sources: SourceInstance[]): Promise<number[]> {
  const firstOfSeries = new Map<string, SourceInstance>();
  for (const s of sources) if (!firstOfSeries.has(s.seriesInstanceUID)) firstOfSeries.set(s.seriesInstanceUID, s);
  // A series whose only images were unreadable has no number to give; a missing file still fails the job.
  const heads = await Promise.all([...firstOfSeries.values()].map((s) => readSourceHeader(s).catch((err: unknown) => {
    if (isImageDataError(err)) return undefined;
    throw err;
  })));
  return heads.map((h) => h && num(h.dataset, 'SeriesNumber')).filter((n): n is number => n !== undefined);
}

/** Pixel spacing of the images that carry a bidirectional finding (its axes are written in mm). */
async function spacingOfBidirectionalKeys(result: DetectorResult, sources: SourceInstance[]): Promise<SpacingBySop> {
  const out: SpacingBySop = new Map();
  for (const f of result.findings) {
    const key = f.place ? (isPlace3D(f.place) ? f.place.keyImage : f.place) : undefined;
    if (key?.shape !== 'bidirectional' || out.has(key.sopInstanceUID)) continue;
    const source = sources.find((s) => s.sopInstanceUID === key.sopInstanceUID);
    if (!source) continue; // the SR writer reports the unresolvable reference
    const h = (await readSourceHeader(source)).dataset;
    // PS3.3 §10.7.1.3: PixelSpacing is in the patient; projection radiographs may carry only ImagerPixelSpacing.
    const [rowMm, columnMm] = nums(h, 'PixelSpacing').length === 2 ? nums(h, 'PixelSpacing') : nums(h, 'ImagerPixelSpacing');
    if (rowMm > 0 && columnMm > 0) out.set(key.sopInstanceUID, { rowMm, columnMm });
  }
  return out;
}

export const writeResultObjects: ResultWriter = async (result, sources, ctx): Promise<ResultObject[]> => {
  if (sources.length === 0) {
    throw new RadnodeError('RN_RESULT_INVALID', 'a result needs at least one source instance', { details: { studyInstanceUID: result.studyInstanceUID } });
  }
  const read = sourcesRead(result, sources);
  // Images the detector turned down one by one get no heatmap SC, and their bytes are not read again: one may be
  // the unreadable file that was the reason. The SR still lists them, with their reasons, from `skipped`.
  const turnedDown = new Set(result.skipped.map((s) => s.sopInstanceUID).filter((u): u is string => u !== undefined));
  const imaged = read.filter((s) => !turnedDown.has(s.sopInstanceUID));
  const first = await readSourceHeader(imaged[0] ?? read[0]);
  ctx = { ...ctx, timezone: timezoneOf(first.dataset, ctx.contentDateTime) };
  // Every read series counts for the numbers (a superseding SR keeps its series number); readable images first.
  const numbers = seriesNumbers(result.detector.id, await sourceSeriesNumbers([...imaged, ...read.filter((s) => turnedDown.has(s.sopInstanceUID))]));
  const sr = writeSr(result, read, first, ctx, { spacing: await spacingOfBidirectionalKeys(result, read), seriesNumber: numbers.sr });
  return [sr, ...(imaged.length ? await writeHeatmaps(result, imaged, ctx, numbers.heatmap) : [])];
};

/**
 * The sources the detector really read: a CT study routed whole may hold several qualifying series of which the
 * detector chose one (the others are in `skipped` with their reason). The SR's evidence and the heatmap SCs cover
 * only what was read; a result that read nothing (every series refused after the headers) keeps all of them, so that
 * its "not processed" report still references the study's images.
 */
export function sourcesRead(result: DetectorResult, sources: SourceInstance[]): SourceInstance[] {
  if (result.sourceSeries.length === 0) return sources;
  const read = sources.filter((s) => result.sourceSeries.includes(s.seriesInstanceUID));
  return read.length ? read : sources;
}
