import type { ModelManifest } from './manifest.ts';
import type { HotRegion } from './image.ts';
import type { MammoContent, MammoPeak } from './mammogram.ts';
import type { Code, SkippedSeries } from '../results/findings.ts';
import type { Nodule } from '../detectors/ct/types.ts';

/** The messages between the main thread (runtime.ts) and the inference worker (worker.ts). */

export type ExecutionProvider = 'cpu' | 'cuda';

export type SessionSettings = { intraOpThreads: number; interOpThreads: number; executionProviders: ExecutionProvider[] };

export type TensorInfo = { name: string; type?: string; shape: (number | string)[] };

export type OpenRequest = { type: 'open'; key: string; path: string; settings: SessionSettings };
export type OpenReply = { inputs: TensorInfo[]; outputs: TensorInfo[]; provider: ExecutionProvider; warnings: string[] };

/** What the worker needs of a manifest to run a 2D image model: the input, the preprocessing and the outputs. */
export type Image2DSpec = Pick<ModelManifest, 'input' | 'preprocess' | 'outputs'>;

export type RadiographRequest = { type: 'radiograph'; key: string; path: string; spec: Image2DSpec; /** also map the CAM to the source image */ wantHeatmap: boolean };

export type StageTimings = { decode: number; preprocess: number; infer: number; postprocess: number };

/** A 2D image the worker did not read: colour pixels, or (mammograms) an object of several frames. */
export type ImageRefused = { kind: 'refused'; reason: 'colour' | 'multiframe'; detail: string; timingsMs: Pick<StageTimings, 'decode'> };

export type RadiographReply =
  | {
      kind: 'ok';
      rows: number;
      columns: number;
      photometricInterpretation: string;
      /**
       * The patient's side under the hot region, known only when Patient Orientation placed the film (the worker then
       * turned it to the standard display for the model; `hot` and the heatmap are on the stored image either way).
       */
      side?: 'right' | 'left';
      /** Per-image facts the series row cannot show (it holds the first image's): the detector refuses on them. */
      viewPosition: string;
      viewCode: string;
      presentationIntent: string;
      /** The patient's age at the study in completed years, when the header tells it (dicom/age.ts). */
      ageYears?: number;
      /** One score per output element of the probabilities/logits output, sigmoid applied to logits. */
      scores: number[];
      cam?: { height: number; width: number; values: Float32Array };
      /** The CAM at source resolution (rows × columns), 0..1. */
      heatmap?: Float32Array;
      hot?: HotRegion;
      timingsMs: StageTimings;
    }
  | ImageRefused;

/** A mammogram (issue 6): as a radiograph, plus chest wall at column 0 and a crop to the breast (mammogram.ts). */
export type MammogramRequest = { type: 'mammogram'; key: string; path: string; spec: Image2DSpec; wantHeatmap: boolean };

export type MammogramReply =
  | {
      kind: 'ok';
      rows: number;
      columns: number;
      /** Image Laterality / Laterality, View Position or View Code, and how the image was turned (chest wall left). */
      laterality: 'L' | 'R' | 'B' | 'U';
      view: string;
      orientation: { transpose: boolean; flipHorizontal: boolean; flipVertical: boolean; source: 'PatientOrientation' | 'content' };
      /** Per-image facts the series attributes do not carry: the detector refuses on them with a coded reason. */
      presentationIntent: string;
      imageType: string[];
      /** View Position as stored, and View Code Sequence's first item as "value meaning". */
      viewPosition: string;
      viewCode: string;
      /** "value meaning" of each View Modifier, nested in View Code Sequence (PS3.3 C.8.11.7) or at the top level. */
      viewModifiers: string[];
      implantPresent: boolean;
      /** Quality Control Image (0028,0300): YES, NO, BOTH or ''. */
      qualityControlImage: string;
      /** Content checks (mammogram.ts): a synthetic, mostly flat image is not read as a breast. */
      content: MammoContent;
      scores: number[];
      /** Cell map over the model input (0..1) and its peak on the stored image. */
      cam?: { height: number; width: number; values: Float32Array };
      peak?: MammoPeak;
      heatmap?: Float32Array;
      timingsMs: StageTimings;
    }
  | ImageRefused;

/**
 * A chest CT study (issue 7): every candidate CT series of the study with its files; the worker reads the headers,
 * chooses the series (detectors/ct/select.ts), builds its volume and runs the nodule pipeline
 * (detectors/ct/pipeline.ts) with the session as the patch classifier. The volume never crosses the thread boundary.
 */
export type CtRequest = {
  type: 'ct';
  key: string;
  series: { seriesInstanceUID: string; paths: string[] }[];
  spec: Pick<ModelManifest, 'input' | 'outputs'>;
  /** Nodules below this probability are neither measured nor returned (the manifest's positive operating point). */
  minProbability: number;
  /** Candidates classified at most, highest blob response first. */
  maxCandidates?: number;
};

export type CtTimings = {
  /** Reading headers and choosing the series. */
  select: number;
  /** Reading the chosen series' files and decoding them into a volume. */
  decode: number;
  /** detectNodules' own stages: lungMask, candidates, patches, classify, measure. */
  [stage: string]: number;
};

export type CtReply =
  | {
      kind: 'ok';
      seriesInstanceUID: string;
      /** Why this series (the study-level choice). */
      why: string;
      skipped: SkippedSeries[];
      frameOfReferenceUID: string;
      rows: number;
      columns: number;
      /** [row, column] mm. */
      pixelSpacingMm: [number, number];
      sliceSpacingMm: number;
      /** SOP Instance UID of each slice, in volume order (k). */
      sliceSopInstanceUIDs: string[];
      nodules: Nodule[];
      candidateCount: number;
      lungVolumeMl: number;
      timingsMs: CtTimings;
    }
  /** Nothing read: every series refused on its headers, or the chosen one holds no lungs. */
  | { kind: 'refused'; skipped: SkippedSeries[]; reason?: Code; timingsMs: CtTimings };

export type WorkerRequest = ({ type: 'close'; key: string } | OpenRequest | RadiographRequest | MammogramRequest | CtRequest) & { id: number };
export type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; code: string; message: string; details?: Record<string, unknown> };
