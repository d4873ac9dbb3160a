/**
 * The findings model (DESIGN §4): a detector's whole output, independent of how it is encoded as DICOM.
 * Detectors produce it; src/results turns it into TID 1500 SR and heatmap SC objects.
 */
export type CodingScheme = 'SCT' | 'DCM' | 'RADLEX' | 'LN' | 'UCUM' | '99RADNODE';
export type Code = { scheme: CodingScheme; value: string; meaning: string };

/**
 * A region on one image, in image pixel coordinates (column, row), DICOM SCOORD convention. Points per shape:
 * point 1; polyline ≥ 2; ellipse 4 (major axis end points, then minor axis end points); box 2 (top-left and
 * bottom-right corners); bidirectional 4 (long axis end points, then short axis end points, as OHIF's Bidirectional
 * tool draws a nodule).
 */
export type Place2D = {
  sopInstanceUID: string;
  frame?: number;
  shape: 'point' | 'polyline' | 'ellipse' | 'box' | 'bidirectional';
  points: [number, number][];
};
/** A point in the patient (LPS, mm) with the key image where a reader should look. */
export type Place3D = { frameOfReferenceUID: string; point: [number, number, number]; keyImage: Place2D };

export type Measurement = { concept: Code; value: number; unit: string };
export type Evaluation = { concept: Code; value: Code };

export type Finding = {
  trackingUid: string;
  trackingId: string;
  concept: Code;
  probability: number;
  site?: Code;
  place?: Place2D | Place3D;
  measurements?: Measurement[];
  evaluations?: Evaluation[];
};

export type Priority = 'urgent' | 'positive' | 'negative' | 'unprocessed';

export type Heatmap = { sopInstanceUID: string; frame?: number; width: number; height: number; values: Float32Array };

/** A series, or one image of it (`sopInstanceUID` set), that was not processed, with the coded reason. */
export type SkippedSeries = { seriesInstanceUID: string; sopInstanceUID?: string; reason: Code; detail: string };

export type DetectorIdentity = { id: string; version: string; modelSha256: string };

export type DetectorResult = {
  detector: DetectorIdentity;
  studyInstanceUID: string;
  sourceSeries: string[];
  studyScore: number;
  priority: Priority;
  findings: Finding[];
  heatmaps: Heatmap[];
  skipped: SkippedSeries[];
  /**
   * Why the analysed series was chosen over the study's other qualifying series (issue 7: "say which was chosen and
   * why"), for detectors that choose one; written into the SR beside the not-processed reasons.
   */
  seriesChoice?: string;
  /** Milliseconds per stage of `run` (decode, preprocess, infer, postprocess): summary.json and benchmarks (DESIGN §5). */
  timingsMs?: Record<string, number>;
};

export function isPlace3D(place: Place2D | Place3D): place is Place3D {
  return (place as Place3D).frameOfReferenceUID !== undefined;
}
