import type { RoutingMatch } from '../config/types.ts';
import type { Code } from '../results/findings.ts';

/**
 * A model's manifest, `models/<id>/manifest.json` (DESIGN §4). The node refuses, at start-up, a model whose file
 * hash differs from `sha256` or whose ONNX inputs/outputs do not fit `input`/`outputs`. A site can drop in its own
 * model with a manifest and no code change, as long as an existing detector (`detector`) fits it.
 */
export type ModelManifest = {
  id: string;
  version: string;
  /** sha256 (hex) of model.onnx. */
  sha256: string;
  /** The detector that uses the model, e.g. 'cxr'. */
  detector: string;
  /** File name of the ONNX graph inside the model folder; default model.onnx. */
  file?: string;
  /** Routing hints as data (printed by `radnode models list`). */
  routing?: RoutingMatch;
  /**
   * The patients the model was trained on, in completed years [min, max]: an image whose patient's age is known
   * (Patient's Age, or Patient's Birth Date and the Study Date) and outside it is not read (RN-NP-AGE). A site that
   * has validated the model on other ages widens it here.
   */
  population?: { ageYears: [number, number] };
  input: {
    name: string;
    /** e.g. [1, 1, 224, 224]; -1 or a string for a dynamic axis (batch). */
    shape: (number | string)[];
    layout: 'NCHW' | 'NCDHW';
    dtype: 'float32';
  };
  preprocess: {
    /** 'image': the image's own VOI window; 'percentile': [low, high] percentiles; 'fixed': centre/width. */
    window: { kind: 'image' } | { kind: 'percentile'; low: number; high: number } | { kind: 'fixed'; center: number; width: number };
    /** Target size in pixels [height, width] (2D) or spacing in mm (3D). */
    size?: [number, number];
    spacingMm?: [number, number, number];
    /** How the grey values map to the tensor: (x - mean) / std after scaling to 0..1. */
    normalise: { mean: number; std: number };
    /** 'letterbox' keeps the aspect ratio with padding; 'stretch' resizes both axes. */
    resize?: 'letterbox' | 'stretch';
  };
  outputs: {
    name: string;
    /** probabilities: one per label, after sigmoid/softmax inside the graph; logits: before; cam: class activation map; boxes. */
    kind: 'probabilities' | 'logits' | 'cam' | 'boxes';
    shape?: (number | string)[];
  }[];
  /** Index → coded concept of each output label. */
  labels: { index: number; code: Code }[];
  /** Thresholds on the study score, with what they gave on held-out data (CARD.md). */
  operatingPoints: {
    positive: { threshold: number; sensitivity?: number; specificity?: number };
    urgent?: { threshold: number; sensitivity?: number; specificity?: number };
  };
  /** Relative path of the model card, normally CARD.md. */
  card: string;
};
