import type { Vec3 } from '../../dicom/volume.ts';

/**
 * The CT lung-nodule pipeline's shared shapes (issue 7). Stages, each a pure function over a loaded
 * src/dicom Volume (HU, voxel index = k·rows·columns + j·columns + i; i column, j row, k slice along the normal):
 *
 *   lung-mask.ts   Volume → LungMask                          (airways and bowel gas out, juxtapleural nodules in)
 *   candidates.ts  Volume + LungMask → Candidate[]            (multi-scale 3D blob filter, 3–30 mm)
 *   patch.ts       Volume + Candidate → Float32Array          (the FP-reduction model's input; training uses it too)
 *   measure.ts     Volume + LungMask + centre → NoduleMeasurement
 *   categories.ts  NoduleMeasurement → Lung-RADS / Fleischner
 *   pipeline.ts    all of it with a classifier callback (the ONNX model runs behind it, in the inference worker)
 */

export type LungMask = {
  /** [columns, rows, slices], the volume's own grid. */
  dims: [number, number, number];
  /** 1 inside either lung (parenchyma, vessels, nodules, juxtapleural nodules), 0 elsewhere. */
  mask: Uint8Array;
  /** Lung volume in millilitres (a sanity figure: an adult's two lungs hold 3–7 l at inspiration). */
  volumeMl: number;
};

export type Candidate = {
  /** Centre in voxel coordinates (i, j, k), sub-voxel. */
  voxel: Vec3;
  /** Centre in patient LPS mm. */
  patient: Vec3;
  /** Diameter (mm) of the blob scale that answered most strongly. */
  scaleMm: number;
  /** Filter response at that scale (larger is more blob-like); candidates are ranked by it. */
  response: number;
};

export type NoduleType = 'solid' | 'part-solid' | 'ground-glass';

export type NoduleMeasurement = {
  centreVoxel: Vec3;
  centrePatient: Vec3;
  /** Slice index (k) of the axial slice of largest extent: the key slice. */
  keySlice: number;
  /** Long and short axis end points on the key slice, image pixel coordinates (column, row). */
  longAxis: [[number, number], [number, number]];
  shortAxis: [[number, number], [number, number]];
  longMm: number;
  shortMm: number;
  /** (long + short) / 2, rounded to 0.1 mm (Lung-RADS v2022, Fleischner 2017). */
  meanDiameterMm: number;
  volumeMm3: number;
  type: NoduleType;
  /** Mean diameter of the solid component, part-solid nodules only. */
  solidMeanDiameterMm?: number;
  meanHu: number;
  /** Number of voxels of the 3D segmentation. */
  voxelCount: number;
  /**
   * True when the segmentation failed and the sizes are the blob filter's scale (a nodule the model is sure of is
   * still reported, with this flag, rather than dropped); absent for measured nodules.
   */
  sizeEstimated?: boolean;
};

export type LungRadsCategory = '2' | '3' | '4A' | '4B';
export type FleischnerBand = '<6 mm' | '6-8 mm' | '>8 mm';

export type Nodule = NoduleMeasurement & {
  /** FP-reduction model output, 0..1. */
  probability: number;
  lungRads: LungRadsCategory;
  fleischner: FleischnerBand;
};

/**
 * Classifies n patches laid end to end (n × channels × PATCH_VOXELS floats); returns one probability per patch.
 * `channels` (1 when absent) is how many scales the model reads per candidate: channel c is the same 32³ grid at
 * PATCH_SPACING_MM · 2^c (patch.ts extractPatches), so channel 1 shows 64 mm of context around the 32 mm cube.
 */
export type PatchClassifier = {
  (patches: Float32Array, n: number): Promise<Float32Array>;
  readonly channels?: number;
};

/** The FP-reduction model's input: a cube of PATCH_SIZE³ voxels at PATCH_SPACING_MM, HU clipped and scaled (patch.ts). */
export const PATCH_SIZE = 32;
export const PATCH_SPACING_MM = 1.0;
export const PATCH_VOXELS = PATCH_SIZE ** 3;

export type DetectOptions = {
  /** Candidates classified at most (highest filter response first). */
  maxCandidates?: number;
  /** Nodules below this model probability are not returned. */
  minProbability?: number;
  signal?: AbortSignal;
};

export type DetectResult = {
  nodules: Nodule[];
  candidateCount: number;
  lungVolumeMl: number;
  /** Milliseconds per stage: lungMask, candidates, patches, classify, measure. */
  timingsMs: Record<string, number>;
};
