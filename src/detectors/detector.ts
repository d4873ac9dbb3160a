import type { RoutingMatch } from '../config/types.ts';
import type { Logger } from '../log.ts';
import type { Code, DetectorResult } from '../results/findings.ts';

/** What routing and `select` know of a series: its stored attributes, never its pixels. */
export type SeriesInfo = {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  modality?: string;
  sopClassUID?: string;
  seriesDescription?: string;
  bodyPartExamined?: string;
  viewPosition?: string;
  imageType?: string[];
  sliceThicknessMm?: number;
  /** Of the series' first instance: a colour series is refused before any pixel is read (detectors/colour.ts). */
  photometricInterpretation?: string;
  samplesPerPixel?: number;
  instanceCount: number;
  /** How many of them hold more than one frame (a tomosynthesis slice stack, an enhanced multi-frame object). */
  multiFrameCount?: number;
  isOwn: boolean;
};

export type SelectResult = { accepted: true } | { accepted: false; reason: Code; detail: string };

export type DetectorInput = {
  studyInstanceUID: string;
  series: { info: SeriesInfo; instances: { sopInstanceUID: string; sopClassUID: string; path: string }[] }[];
};

export type DetectorManifest = {
  id: string;
  version: string;
  modelSha256: string;
  /** Routing hints as data (DESIGN §4): printed by `radnode models list`, used when no rule names the detector. */
  routing?: RoutingMatch;
};

/**
 * One declared surface per detector folder (style.md §2, OHIF's extension modules): a manifest, a `select` that
 * refuses with a coded reason as a value, and `run` from pixels to findings. A detector knows no HTTP, SQL or SR.
 */
export type Detector = {
  manifest: DetectorManifest;
  select(series: SeriesInfo): SelectResult;
  run(input: DetectorInput, ctx: { log: Logger; signal?: AbortSignal }): Promise<DetectorResult>;
  /**
   * Why this input set is worth waiting on (a better series often follows: CT's thin reconstruction after the thick
   * one), or null. The engine then holds a new job for `workflow.thinSliceWaitMinutes` (DESIGN §3).
   */
  worthWaiting?(series: SeriesInfo[]): string | null;
};

export function isDetector(x: unknown): x is Detector {
  const d = x as Detector;
  return (
    typeof d === 'object' && d !== null && typeof d.select === 'function' && typeof d.run === 'function' &&
    typeof d.manifest?.id === 'string' && typeof d.manifest?.version === 'string' && typeof d.manifest?.modelSha256 === 'string'
  );
}
