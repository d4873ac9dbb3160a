import { RadnodeError } from '../errors.ts';
import type { DataSetView } from './dataset.ts';
import type { DecodedFrame } from './decode.ts';
import type { DicomInstance } from './instance.ts';

/**
 * The grayscale pipeline of PS3.4 N.2 up to model input: Modality LUT (C.11.1) → physical values (HU for CT),
 * VOI (C.11.2) → 0..1, MONOCHROME1 inverted so that a larger value is always brighter (bone bright).
 */

const SHARED_FG = 0x52009229;
const PER_FRAME_FG = 0x52009230;

/** An attribute from the top level, else the frame's or the shared functional group macro (enhanced objects). */
function fromFunctionalGroups(instance: DicomInstance, frame: number, macro: string): DataSetView | undefined {
  const perFrame = instance.header.items(PER_FRAME_FG)[frame]?.items(macro)[0];
  if (perFrame) return perFrame;
  return instance.header.items(SHARED_FG)[0]?.items(macro)[0];
}

export interface ModalityLut {
  kind: 'identity' | 'rescale' | 'table';
  slope: number;
  intercept: number;
  /** Rescale Type or Modality LUT Type (HU for CT, OD, US = unspecified). */
  unit?: string;
  table?: { firstMapped: number; data: Uint16Array };
}

/** The Modality LUT of a frame: Modality LUT Sequence, else Rescale Slope/Intercept, else identity. */
export function modalityLut(instance: DicomInstance, frame = 0): ModalityLut {
  const h = instance.header;
  const seq = h.items('ModalityLUTSequence')[0];
  if (seq) {
    const lut = readLut(seq, h.number('PixelRepresentation') === 1);
    if (lut) return { kind: 'table', slope: 1, intercept: 0, unit: seq.string('ModalityLUTType'), table: { firstMapped: lut.firstMapped, data: lut.data } };
  }
  const src = h.has('RescaleSlope') || h.has('RescaleIntercept') ? h : fromFunctionalGroups(instance, frame, 'PixelValueTransformationSequence');
  if (src && (src.has('RescaleSlope') || src.has('RescaleIntercept'))) {
    const slope = src.number('RescaleSlope') ?? 1;
    const intercept = src.number('RescaleIntercept') ?? 0;
    const unit = src.string('RescaleType') ?? (instance.Modality === 'CT' ? 'HU' : undefined);
    return { kind: slope === 1 && intercept === 0 ? 'identity' : 'rescale', slope, intercept, unit };
  }
  return { kind: 'identity', slope: 1, intercept: 0, unit: instance.Modality === 'CT' ? 'HU' : undefined };
}

/** Stored values → physical values (HU for CT) for a grayscale frame. */
export function physicalValues(frame: DecodedFrame, lut: ModalityLut): Float32Array {
  if (frame.samplesPerPixel !== 1) throw new RadnodeError('RN_DICOM_DECODE_FAILED', 'the grayscale pipeline needs a single-sample image');
  const src = frame.data;
  const out = new Float32Array(src.length);
  if (lut.kind === 'table' && lut.table) {
    const { firstMapped, data } = lut.table;
    const last = data.length - 1;
    for (let i = 0; i < src.length; i++) {
      const k = src[i] - firstMapped;
      out[i] = data[k < 0 ? 0 : k > last ? last : k];
    }
  } else {
    const { slope, intercept } = lut;
    for (let i = 0; i < src.length; i++) out[i] = src[i] * slope + intercept;
  }
  return out;
}

export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';
export interface VoiWindow {
  center: number;
  width: number;
  function: VoiFunction;
  explanation?: string;
}

/** Every window the header offers (several values are several alternatives, PS3.3 C.11.2.1.2). */
export function voiWindows(instance: DicomInstance, frame = 0): VoiWindow[] {
  let src: DataSetView | undefined = instance.header;
  if (!src.has('WindowCenter')) src = fromFunctionalGroups(instance, frame, 'FrameVOILUTSequence');
  if (!src) return [];
  const centers = src.numbers('WindowCenter');
  const widths = src.numbers('WindowWidth');
  const explanations = src.strings('WindowCenterWidthExplanation');
  const fn = (src.string('VOILUTFunction') ?? 'LINEAR') as VoiFunction;
  const out: VoiWindow[] = [];
  for (let i = 0; i < Math.min(centers.length, widths.length); i++) {
    if (widths[i] <= 0) continue;
    out.push({ center: centers[i], width: widths[i], function: fn, explanation: explanations[i] });
  }
  return out;
}

export interface VoiLutTable {
  firstMapped: number;
  bits: number;
  data: Uint16Array;
  explanation?: string;
}

export function voiLutTables(instance: DicomInstance): VoiLutTable[] {
  const h = instance.header;
  // The VOI LUT's input is the modality output: signed when the stored values are, or when a rescale makes them so.
  const signed = h.number('PixelRepresentation') === 1 || (h.number('RescaleIntercept') ?? 0) < 0;
  return h.items('VOILUTSequence').flatMap((item) => {
    const lut = readLut(item, signed);
    return lut ? [{ ...lut, explanation: item.string('LUTExplanation') }] : [];
  });
}

/**
 * A LUT Descriptor and its LUT Data (PS3.3 C.11.1.1.1, C.11.2.1.1). The descriptor may be stored US or SS: entries
 * 0 means 65536, and the first mapped value is signed when the LUT's input is (value 2's sign is not in its VR).
 * Entries of 8 bits or fewer come two to a word, or one per word with the high byte to be ignored.
 */
function readLut(item: DataSetView, signedInput: boolean): { firstMapped: number; bits: number; data: Uint16Array } | undefined {
  const desc = item.numbers('LUTDescriptor');
  const el = item.element('LUTData');
  if (desc.length !== 3 || !el?.value) return undefined;
  const n = desc[0] <= 0 ? desc[0] + 65536 : desc[0];
  const first = desc[1] < 0 ? desc[1] + 65536 : desc[1];
  const bits = desc[2];
  if (!(n >= 1 && n <= 65536) || !Number.isInteger(first) || !(bits >= 1 && bits <= 16))
    throw new RadnodeError('RN_DICOM_MALFORMED', `LUT Descriptor ${desc.join('\\')} is not valid`);
  const bytes = el.value;
  const packed = bits <= 8 && bytes.length < 2 * n;
  // A table shorter than its descriptor keeps the entries it has (lookups clamp to the last).
  const data = new Uint16Array(Math.max(1, Math.min(n, packed ? bytes.length : bytes.length >> 1)));
  if (packed) {
    for (let i = 0; i < data.length && i < bytes.length; i++) data[i] = bytes[el.littleEndian ? i : i ^ 1];
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const mask = bits <= 8 ? 0xff : 0xffff;
    for (let i = 0; i < data.length && 2 * i + 1 < bytes.length; i++) data[i] = dv.getUint16(i * 2, el.littleEndian) & mask;
  }
  return { firstMapped: signedInput && first >= 32768 ? first - 65536 : first, bits, data };
}

/** PS3.3 C.11.2.1.2-3: the VOI window functions, onto 0..1. */
export function applyWindow(values: Float32Array, w: VoiWindow): Float32Array {
  const out = new Float32Array(values.length);
  const { center: c, width } = w;
  if (w.function === 'SIGMOID') {
    for (let i = 0; i < values.length; i++) out[i] = 1 / (1 + Math.exp((-4 * (values[i] - c)) / width));
  } else if (w.function === 'LINEAR_EXACT') {
    for (let i = 0; i < values.length; i++) {
      const v = (values[i] - c) / width + 0.5;
      out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  } else {
    const lo = c - 0.5 - (width - 1) / 2;
    const hi = c - 0.5 + (width - 1) / 2;
    for (let i = 0; i < values.length; i++) {
      const x = values[i];
      out[i] = x <= lo ? 0 : x > hi ? 1 : width <= 1 ? 1 : (x - (c - 0.5)) / (width - 1) + 0.5;
    }
  }
  return out;
}

export function applyVoiLut(values: Float32Array, lut: VoiLutTable): Float32Array {
  const out = new Float32Array(values.length);
  const last = lut.data.length - 1;
  const max = 2 ** lut.bits - 1;
  for (let i = 0; i < values.length; i++) {
    const k = Math.round(values[i]) - lut.firstMapped;
    out[i] = lut.data[k < 0 ? 0 : k > last ? last : k] / max;
  }
  return out;
}

/** A window covering the 0.5th to 99.5th percentile, for images that carry none. */
export function percentileWindow(values: Float32Array, low = 0.005, high = 0.995): VoiWindow {
  const step = Math.max(1, Math.floor(values.length / 200_000));
  // A typed array sorts numerically in native code: ~10× faster than number[] with a comparator on a 1024² film,
  // and the same order (the values are float32 either way).
  const sample = new Float32Array(Math.ceil(values.length / step));
  for (let i = 0, j = 0; i < values.length; i += step, j++) sample[j] = values[i];
  sample.sort();
  const lo = sample[Math.floor(low * (sample.length - 1))];
  const hi = sample[Math.ceil(high * (sample.length - 1))];
  const width = Math.max(1, hi - lo);
  return { center: lo + width / 2, width, function: 'LINEAR_EXACT', explanation: 'percentile' };
}

/**
 * The nearest-rank percentile window over every pixel (train.py: sorted[floor(low·(n−1))], sorted[ceil(high·(n−1))]).
 * percentileWindow samples every k-th pixel on large images, and a mirrored or transposed copy then samples other
 * pixels and gets another window: the scores of copies would differ. The models' contract (train.py) is this one.
 * Integer values (stored pixels after a linear Modality LUT with integer slope) go through a histogram, O(n); others
 * are sorted.
 */
export function exactPercentileWindow(values: Float32Array, low: number, high: number): { center: number; width: number; function: 'LINEAR_EXACT' } {
  const n = values.length;
  const kLo = Math.floor(low * (n - 1));
  const kHi = Math.ceil(high * (n - 1));
  let min = Infinity;
  let max = -Infinity;
  let integral = true;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    if (integral && v !== Math.round(v)) integral = false;
  }
  let lo: number;
  let hi: number;
  if (integral && max - min <= 1 << 20) {
    const hist = new Uint32Array(max - min + 1);
    for (let i = 0; i < n; i++) hist[values[i] - min]++;
    const kth = (k: number) => {
      let acc = 0;
      for (let b = 0; b < hist.length; b++) {
        acc += hist[b];
        if (acc > k) return b + min;
      }
      return max;
    };
    lo = kth(kLo);
    hi = kth(kHi);
  } else {
    const sorted = Float32Array.from(values).sort();
    lo = sorted[kLo];
    hi = sorted[kHi];
  }
  const width = Math.max(1, hi - lo);
  return { center: lo + width / 2, width, function: 'LINEAR_EXACT' };
}

export interface GrayscaleOptions {
  /** A detector-chosen window (e.g. lung: centre -600, width 1500), else the header's n-th window or VOI LUT. */
  window?: VoiWindow;
  /** Which of several header windows or VOI LUTs (default 0). */
  voiIndex?: number;
}

/**
 * Stored values → 0..1 display values with a larger value brighter whatever the photometric interpretation:
 * MONOCHROME1 is inverted after the VOI (PS3.4 N.2.1.1), so bone is bright in every radiograph.
 */
export function toDisplay(instance: DicomInstance, frame: DecodedFrame, options: GrayscaleOptions = {}): Float32Array {
  const values = physicalValues(frame, modalityLut(instance, frame.index));
  let out: Float32Array;
  if (options.window) out = applyWindow(values, options.window);
  else {
    const windows = voiWindows(instance, frame.index);
    const luts = voiLutTables(instance);
    const k = options.voiIndex ?? 0;
    if (windows[k]) out = applyWindow(values, windows[k]);
    else if (luts[k]) out = applyVoiLut(values, luts[k]);
    else out = applyWindow(values, percentileWindow(values));
  }
  if (frame.photometricInterpretation === 'MONOCHROME1') for (let i = 0; i < out.length; i++) out[i] = 1 - out[i];
  return out;
}

export interface PixelSpacing {
  rowMm: number;
  columnMm: number;
  source: 'PixelSpacing' | 'ImagerPixelSpacing' | 'ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor' | 'NominalScannedPixelSpacing' | 'PixelMeasuresSequence';
}

/**
 * Physical size of a pixel (row spacing = between rows). For projection radiographs Pixel Spacing, when present, is
 * already calibrated to the patient; otherwise Imager Pixel Spacing (at the detector) is divided by the Estimated
 * Radiographic Magnification Factor when present (PS3.3 C.8.11.4, 10.7.1.3).
 */
export function pixelSpacing(instance: DicomInstance, frame = 0): PixelSpacing | undefined {
  const h = instance.header;
  const pair = (v: number[]): [number, number] | undefined => (v.length >= 2 && v[0] > 0 && v[1] > 0 ? [v[0], v[1]] : undefined);
  const ps = pair(h.numbers('PixelSpacing'));
  if (ps) return { rowMm: ps[0], columnMm: ps[1], source: 'PixelSpacing' };
  const fg = fromFunctionalGroups(instance, frame, 'PixelMeasuresSequence');
  const fgps = fg ? pair(fg.numbers('PixelSpacing')) : undefined;
  if (fgps) return { rowMm: fgps[0], columnMm: fgps[1], source: 'PixelMeasuresSequence' };
  const ips = pair(h.numbers('ImagerPixelSpacing'));
  if (ips) {
    const m = h.number('EstimatedRadiographicMagnificationFactor');
    if (m && m > 0 && m !== 1) return { rowMm: ips[0] / m, columnMm: ips[1] / m, source: 'ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor' };
    return { rowMm: ips[0], columnMm: ips[1], source: 'ImagerPixelSpacing' };
  }
  const nominal = pair(h.numbers('NominalScannedPixelSpacing'));
  if (nominal) return { rowMm: nominal[0], columnMm: nominal[1], source: 'NominalScannedPixelSpacing' };
  return undefined;
}

export type Laterality = 'L' | 'R' | 'B' | 'U';
export type MammoView = 'CC' | 'MLO' | 'ML' | 'LM' | 'XCCL' | 'XCCM' | 'FB' | 'SIO' | 'OTHER';

export interface MammoOrientation {
  laterality: Laterality;
  view: MammoView;
  /** How the stored image must be transformed so the chest wall is on the left (column 0) and, for MLO/ML/LM,
   * the head at the top; for CC, lateral at the top. Applied in this order: transpose, flipHorizontal, flipVertical. */
  transpose: boolean;
  flipHorizontal: boolean;
  flipVertical: boolean;
  /** Where the decision came from: Patient Orientation (0020,0020) or the image content (tissue at the edge). */
  source: 'PatientOrientation' | 'content';
}

const VIEW_MEANINGS: [RegExp, MammoView][] = [
  [/medio-?lateral oblique/i, 'MLO'],
  [/cranio-?caudal exaggerated laterally/i, 'XCCL'],
  [/cranio-?caudal exaggerated medially/i, 'XCCM'],
  [/cranio-?caudal/i, 'CC'],
  [/medio-?lateral/i, 'ML'],
  [/latero-?medial/i, 'LM'],
];

function mammoView(instance: DicomInstance): MammoView {
  const vp = instance.header.string('ViewPosition')?.toUpperCase();
  if (vp && ['CC', 'MLO', 'ML', 'LM', 'XCCL', 'XCCM', 'FB', 'SIO'].includes(vp)) return vp as MammoView;
  const meaning = instance.header.items('ViewCodeSequence')[0]?.string('CodeMeaning');
  for (const [re, v] of VIEW_MEANINGS) if (meaning && re.test(meaning)) return v;
  return 'OTHER';
}

function laterality(instance: DicomInstance): Laterality {
  const h = instance.header;
  const v = (h.string('ImageLaterality') ?? h.string('Laterality') ?? fromFunctionalGroups(instance, 0, 'FrameAnatomySequence')?.string('FrameLaterality'))?.toUpperCase();
  return v === 'L' || v === 'R' || v === 'B' ? v : 'U';
}

/** Mean display value of the first and last 5% of columns: the chest wall side has tissue to the edge. */
function edgeMeans(display: Float32Array, rows: number, columns: number): { left: number; right: number } {
  const band = Math.max(1, Math.floor(columns * 0.05));
  let left = 0;
  let right = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < band; c++) {
      left += display[r * columns + c];
      right += display[r * columns + columns - 1 - c];
    }
  }
  return { left: left / (rows * band), right: right / (rows * band) };
}

/**
 * Mammography orientation (PS3.3 C.8.11.7 and C.7.6.1.1.1): Patient Orientation gives the patient direction of
 * increasing column and row index; the anterior (nipple) direction must point right, so the chest wall lies at
 * column 0. Without Patient Orientation the side with tissue at the image edge is taken for the chest wall.
 */
export function mammographyOrientation(
  instance: DicomInstance,
  display?: { data: Float32Array; rows: number; columns: number },
  options: { usePatientOrientation?: boolean } = {},
): MammoOrientation {
  const lat = laterality(instance);
  const view = mammoView(instance);
  const po = options.usePatientOrientation === false ? [] : instance.header.strings('PatientOrientation').map((s) => s.toUpperCase());
  const isAp = (s: string): boolean => s.includes('A') || s.includes('P');
  if (po.length === 2 && (isAp(po[0]) || isAp(po[1]))) {
    const transpose = !isAp(po[0]) && isAp(po[1]);
    const [xDir, yDir] = transpose ? [po[1], po[0]] : [po[0], po[1]];
    const flipHorizontal = xDir.includes('P');
    let flipVertical = false;
    if (yDir.includes('H') || yDir.includes('F')) flipVertical = yDir.includes('H');
    else if (lat === 'L' || lat === 'R') flipVertical = yDir.includes(lat); // CC: lateral at the top
    return { laterality: lat, view, transpose, flipHorizontal, flipVertical, source: 'PatientOrientation' };
  }
  if (!display) throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', 'Patient Orientation is missing and no pixels were given to infer the chest wall side');
  const { left, right } = edgeMeans(display.data, display.rows, display.columns);
  return { laterality: lat, view, transpose: false, flipHorizontal: right > left, flipVertical: false, source: 'content' };
}

/** Applies an orientation transform to a single-channel image. */
export function reorient(data: Float32Array, rows: number, columns: number, o: Turn): { data: Float32Array; rows: number; columns: number } {
  const outRows = o.transpose ? columns : rows;
  const outCols = o.transpose ? rows : columns;
  const out = new Float32Array(data.length);
  for (let y = 0; y < outRows; y++) {
    for (let x = 0; x < outCols; x++) {
      const sx = o.flipHorizontal ? outCols - 1 - x : x;
      const sy = o.flipVertical ? outRows - 1 - y : y;
      const [r, c] = o.transpose ? [sx, sy] : [sy, sx];
      out[y * outCols + x] = data[r * columns + c];
    }
  }
  return { data: out, rows: outRows, columns: outCols };
}

/** A turn of the pixel matrix: transpose, then flip columns, then flip rows (the order reorient applies them). */
export type Turn = Pick<MammoOrientation, 'transpose' | 'flipHorizontal' | 'flipVertical'>;

/** The turn that undoes `t`: reorient(reorient(a, t), inverseTurn(t)) is a again. */
export function inverseTurn(t: Turn): Turn {
  // Flipping rows before a transpose is flipping columns after it.
  return { transpose: t.transpose, flipHorizontal: t.transpose ? t.flipVertical : t.flipHorizontal, flipVertical: t.transpose ? t.flipHorizontal : t.flipVertical };
}

/** A point (column, row; continuous, 0 at the top-left pixel's corner) of the turned image → the stored image. */
export function turnedPointToStored(t: Turn, turnedRows: number, turnedColumns: number, x: number, y: number): [number, number] {
  const sx = t.flipHorizontal ? turnedColumns - x : x;
  const sy = t.flipVertical ? turnedRows - y : y;
  // reorient(): with transpose, turned column ↔ stored row.
  return t.transpose ? [sy, sx] : [sx, sy];
}

/**
 * Frontal radiograph orientation (PS3.3 C.7.6.1.1.1): the turn that brings the film to the standard display, rows
 * towards the patient's left (L) and columns towards the feet (F), as chest films are shown and the chest model was
 * trained. Undefined when Patient Orientation is absent or is not a left/right × head/foot pair (a lateral view's
 * A/P, an oblique): such an image is read as stored.
 */
export function radiographTurn(patientOrientation: string[]): Turn | undefined {
  if (patientOrientation.length !== 2) return undefined;
  const [a, b] = patientOrientation.map((v) => v.trim().toUpperCase());
  const lr = (v: string) => v === 'L' || v === 'R';
  const hf = (v: string) => v === 'H' || v === 'F';
  let x: string;
  let y: string;
  let transpose: boolean;
  if (lr(a) && hf(b)) [x, y, transpose] = [a, b, false];
  else if (hf(a) && lr(b)) [x, y, transpose] = [b, a, true];
  else return undefined;
  return { transpose, flipHorizontal: x === 'R', flipVertical: y === 'H' };
}

/** A mammogram as a detector wants it: 0..1, dense tissue bright, chest wall at column 0. */
export function normaliseMammogram(instance: DicomInstance, frame: DecodedFrame, options: GrayscaleOptions = {}): { data: Float32Array; rows: number; columns: number; orientation: MammoOrientation } {
  const display = toDisplay(instance, frame, options);
  const orientation = mammographyOrientation(instance, { data: display, rows: frame.rows, columns: frame.columns });
  return { ...reorient(display, frame.rows, frame.columns, orientation), orientation };
}
