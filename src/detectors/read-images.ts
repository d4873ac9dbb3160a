import { isImageDataError } from '../errors.ts';
import type { ImageRefused, StageTimings } from '../inference/protocol.ts';
import type { Code, Heatmap, SkippedSeries } from '../results/findings.ts';
import { NOT_PROCESSED } from '../workflow/reasons.ts';
import type { DetectorInput } from './detector.ts';

/** What the inference worker answers for one 2D image (radiograph or mammogram). */
type ImageReply =
  | { kind: 'ok'; rows: number; columns: number; heatmap?: Float32Array; timingsMs: StageTimings }
  | ImageRefused;

/** The coded reason for each worker refusal: a new refusal kind cannot compile without one. */
const REFUSAL_REASON: Record<ImageRefused['reason'], Code> = { colour: NOT_PROCESSED.colourImage, multiframe: NOT_PROCESSED.multiFrame };

type Source = { sopInstanceUID: string; path: string };
type SeriesOf = DetectorInput['series'][number];

export type ImagesRead = { read: number; skipped: SkippedSeries[]; heatmaps: Heatmap[]; timingsMs: Record<string, number> };

/**
 * The 2D detectors' loop over every image of every input series: each goes through the worker (`infer`); a colour
 * image, a multi-frame one (mammograms), an unreadable one or one `refuse` turns down is listed as not processed with
 * its SOP Instance UID; every other image's heatmap is kept and `each` turns its scores into findings. Stage timings are summed.
 */
export async function readEachImage<R extends ImageReply>(
  input: DetectorInput,
  signal: AbortSignal | undefined,
  infer: (inst: Source) => Promise<R>,
  each: (reply: Extract<R, { kind: 'ok' }>, inst: Source, series: SeriesOf) => void,
  refuse: (reply: Extract<R, { kind: 'ok' }>) => { reason: Code; detail: string } | null | undefined = () => null,
): Promise<ImagesRead> {
  const out: ImagesRead = { read: 0, skipped: [], heatmaps: [], timingsMs: {} };
  const timings: StageTimings = { decode: 0, preprocess: 0, infer: 0, postprocess: 0 };
  for (const series of input.series) {
    const skip = (reason: Code, inst: Source, detail: string) =>
      out.skipped.push({ seriesInstanceUID: series.info.seriesInstanceUID, sopInstanceUID: inst.sopInstanceUID, reason, detail: `${inst.sopInstanceUID}: ${detail}` });
    for (const inst of series.instances) {
      if (signal?.aborted) throw signal.reason;
      let reply: R;
      try {
        reply = await infer(inst);
      } catch (err) {
        if (!isImageDataError(err)) throw err;
        skip(NOT_PROCESSED.unreadable, inst, `${err.code}: ${err.message}`);
        continue;
      }
      timings.decode += reply.timingsMs.decode;
      if (reply.kind === 'refused') {
        skip(REFUSAL_REASON[reply.reason], inst, reply.detail);
        continue;
      }
      const ok = reply as Extract<R, { kind: 'ok' }>;
      const refusal = refuse(ok);
      if (refusal) {
        skip(refusal.reason, inst, refusal.detail);
        continue;
      }
      out.read++;
      timings.preprocess += ok.timingsMs.preprocess;
      timings.infer += ok.timingsMs.infer;
      timings.postprocess += ok.timingsMs.postprocess;
      if (ok.heatmap) out.heatmaps.push({ sopInstanceUID: inst.sopInstanceUID, width: ok.columns, height: ok.rows, values: ok.heatmap });
      each(ok, inst, series);
    }
  }
  out.timingsMs = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  return out;
}
