/**
 * Which CT series the lung-nodule detector reads (issue 7, item 1), in two steps:
 *
 * - `selectCt(series)`: per series, from the stored attributes only (routing calls it for every series): a CT image
 *   object, not a localizer or a screenshot, a chest, slices ≤ 3 mm when the thickness is known, enough of them.
 * - `chooseCtSeries(facts)`: per study, once the headers are read (in the inference worker): the slice geometry
 *   (gantry tilt, gaps, orientation) refuses a series with a coded reason, and among the series left the thinnest
 *   slices win, then a lung (sharp) kernel. Every other series gets a coded reason that names the one preferred.
 *
 * Pure functions: no file is read here.
 */
import type { Code, SkippedSeries } from '../../results/findings.ts';
import type { VolumeIssue } from '../../dicom/volume.ts';
import { NOT_PROCESSED } from '../../workflow/reasons.ts';
import { refuseColour } from '../colour.ts';
import type { SelectResult, SeriesInfo } from '../detector.ts';

/** PS3.4 B.5: CT Image Storage, Enhanced CT Image Storage, Legacy Converted Enhanced CT Image Storage. */
export const CT_IMAGE_SOP_CLASSES = ['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.2.1', '1.2.840.10008.5.1.4.1.1.2.2'];
/**
 * The two multi-frame classes: their slice geometry lives in per-frame functional groups, which the volume planner
 * does not read yet, so they are refused with that reason rather than as "too few images" (one object per series).
 */
const ENHANCED_CT_SOP_CLASSES = ['1.2.840.10008.5.1.4.1.1.2.1', '1.2.840.10008.5.1.4.1.1.2.2'];
/** More duplicated positions than this share of a stack's slices means two volumes in one series, not a re-send. */
export const MAX_DUPLICATE_SHARE = 0.1;
/** A series covering less than this share of the longest qualifying series' extent is a partial reconstruction. */
export const MIN_COVERAGE_SHARE = 0.8;

/** Nodules of 5–10 mm vanish between thicker slices (Lung-RADS v2022 and the ACR CT protocol ask for ≤ 2.5–3 mm). */
export const MAX_SLICE_THICKNESS_MM = 3;
/** The candidate filter needs a chest's worth of slices: 40 × 2.5 mm is 10 cm, the least that holds a lung apex to base slab. */
export const MIN_SLICES = 40;
/** Below this the lung mask holds no lungs (an adult's two lungs hold 3–7 l; a slab through the bases still ~0.5 l). */
export const MIN_LUNG_VOLUME_ML = 500;
/** An "axial" stack's normal within this of the patient's head–foot axis: a tilted gantry stays (up to ~30°), reformats go. */
export const MAX_AXIAL_ANGLE_DEG = 35;

/**
 * Body Part Examined values (PS3.16 CID 4031 defined terms, and common vendor spellings) whose field of view holds the
 * lungs. An empty value is accepted: many chest CTs carry none, and the lung-volume check catches the rest.
 */
const CHEST_BODY_PARTS = new Set(['', 'CHEST', 'THORAX', 'LUNG', 'LUNGS', 'CHESTABDOMEN', 'CHEST_ABDOMEN', 'CHESTABDPELVIS', 'CHEST_TO_PELVIS', 'TORSO', 'WHOLEBODY', 'WHOLE_BODY', 'THORAXABDOMEN', 'HEART', 'CARDIAC', 'CTA_CHEST', 'BREAST']);

const refuse = (reason: Code, detail: string): SelectResult => ({ accepted: false, reason, detail });

/** A reconstruction this thin or thinner is worth reading first; thicker ones may be followed by one (DESIGN §3). */
export const THIN_SLICE_MM = 1.5;

/**
 * Why a study's accepted CT series are worth waiting on: none is thin yet (scanners often send the thick
 * reconstruction first and the thin lung one minutes later), or null when one is, or the thickness is unknown.
 */
export function thinSliceWorthWaiting(series: SeriesInfo[]): string | null {
  const known = series.map((s) => s.sliceThicknessMm).filter((t): t is number => t !== undefined);
  if (!known.length || known.length < series.length) return null;
  const thinnest = Math.min(...known);
  return thinnest <= THIN_SLICE_MM ? null : `no series of ${THIN_SLICE_MM} mm or thinner yet (thinnest ${thinnest} mm): a thin reconstruction may follow`;
}

export function selectCt(s: SeriesInfo): SelectResult {
  const modality = (s.modality ?? '').toUpperCase();
  if (modality !== 'CT') return refuse(NOT_PROCESSED.declined, `modality ${s.modality ?? '(none)'}: the CT lung-nodule detector reads CT only`);
  const colour = refuseColour(s);
  if (colour) return colour;
  const imageType = (s.imageType ?? []).map((t) => t.toUpperCase());
  if (imageType.includes('LOCALIZER')) return refuse(NOT_PROCESSED.localizer, `Image Type ${imageType.join('\\')}`);
  // Screenshots of a CT console (Philips "Exam Summary", GE "SCREEN SAVE") are Secondary Captures with Modality CT.
  if (s.sopClassUID && !CT_IMAGE_SOP_CLASSES.includes(s.sopClassUID))
    return refuse(NOT_PROCESSED.notCtImage, `SOP Class ${s.sopClassUID}${imageType.length ? `, Image Type ${imageType.join('\\')}` : ''}`);
  if (imageType[0] === 'DERIVED' && imageType.includes('SECONDARY')) return refuse(NOT_PROCESSED.derived, `Image Type ${imageType.join('\\')}`);
  if (s.sopClassUID && ENHANCED_CT_SOP_CLASSES.includes(s.sopClassUID)) return refuse(NOT_PROCESSED.enhancedCt, `SOP Class ${s.sopClassUID}`);
  const body = (s.bodyPartExamined ?? '').toUpperCase().replace(/\s+/g, '');
  if (!CHEST_BODY_PARTS.has(body)) return refuse(NOT_PROCESSED.notChest, `Body Part Examined ${s.bodyPartExamined}`);
  if (s.sliceThicknessMm !== undefined && s.sliceThicknessMm > MAX_SLICE_THICKNESS_MM)
    return refuse(NOT_PROCESSED.sliceTooThick, `Slice Thickness ${s.sliceThicknessMm} mm over ${MAX_SLICE_THICKNESS_MM} mm`);
  if (s.instanceCount < MIN_SLICES) return refuse(NOT_PROCESSED.tooFewImages, `${s.instanceCount} images, at least ${MIN_SLICES} slices needed`);
  return { accepted: true };
}

/** What the worker learns of one candidate series from its headers (planVolumes, first instance). */
export type CtSeriesFacts = {
  seriesInstanceUID: string;
  seriesDescription?: string;
  convolutionKernel?: string;
  bodyPartExamined?: string;
  /** Slice Thickness (0018,0050) of the first slice, when present. */
  sliceThicknessMm?: number;
  /** The stacks planVolumes found (one for a clean series). */
  stacks: { slices: number; sliceSpacingMm: number; normal: [number, number, number]; issues: VolumeIssue[] }[];
  /** Issues of the series as a whole (MIXED_ORIENTATION, MULTIPLE_ACQUISITIONS). */
  issues: VolumeIssue[];
  /** Instances without usable geometry (localizers, no position), with why. */
  excluded: number;
};

/**
 * Geometry that makes a series unreadable as one volume: the reason, or undefined. A few duplicates (a slice sent
 * twice) are dropped by the planner, first kept; many (more than MAX_DUPLICATE_SHARE of the slices: two
 * reconstructions or a repeat scan over the same positions in one series) refuse, since the planner would interleave
 * slices of both into one volume. Repeat acquisitions at distinct positions form one stack and do not refuse.
 */
export function geometryRefusal(f: CtSeriesFacts): { reason: Code; detail: string } | undefined {
  if (f.stacks.length === 0) return { reason: NOT_PROCESSED.missingGeometry, detail: `no slice has Image Position/Orientation (Patient) (${f.excluded} image(s) left out)` };
  const mixed = f.issues.find((i) => i.code === 'MIXED_ORIENTATION');
  if (mixed || f.stacks.length > 1) return { reason: NOT_PROCESSED.notAxial, detail: mixed?.detail ?? `${f.stacks.length} stacks in one series (repeat acquisitions over the same positions)` };
  const stack = f.stacks[0];
  const angle = (Math.acos(Math.min(1, Math.abs(stack.normal[2]))) * 180) / Math.PI;
  if (angle > MAX_AXIAL_ANGLE_DEG) return { reason: NOT_PROCESSED.notAxial, detail: `slice normal ${angle.toFixed(1)}° from the head–foot axis: a coronal, sagittal or oblique stack` };
  const first = (code: VolumeIssue['code']) => stack.issues.find((i) => i.code === code);
  const dup = first('DUPLICATE_SLICES');
  if (dup && (dup.count ?? 0) > Math.max(2, MAX_DUPLICATE_SHARE * stack.slices))
    return { reason: NOT_PROCESSED.irregularSlices, detail: `${dup.count} slices repeat positions of the ${stack.slices} kept: two reconstructions or scans in one series, which cannot be told apart slice by slice` };
  const tilt = first('GANTRY_TILT');
  if (tilt) return { reason: NOT_PROCESSED.gantryTilt, detail: tilt.detail };
  const gap = first('MISSING_SLICES') ?? first('NON_UNIFORM_SPACING');
  if (gap) return { reason: NOT_PROCESSED.irregularSlices, detail: gap.detail };
  const geometry = first('MISSING_GEOMETRY');
  if (geometry) return { reason: NOT_PROCESSED.missingGeometry, detail: geometry.detail };
  if (stack.slices < MIN_SLICES) return { reason: NOT_PROCESSED.tooFewImages, detail: `${stack.slices} slices in the stack, at least ${MIN_SLICES} needed` };
  // The header's Slice Thickness may be absent or wrong; the spacing of the positions is what the volume has.
  const spacing = stack.sliceSpacingMm;
  if (spacing > MAX_SLICE_THICKNESS_MM + 0.01) return { reason: NOT_PROCESSED.sliceTooThick, detail: `slices ${spacing.toFixed(2)} mm apart, over ${MAX_SLICE_THICKNESS_MM} mm` };
  const thickness = f.sliceThicknessMm;
  if (thickness !== undefined && thickness > MAX_SLICE_THICKNESS_MM) return { reason: NOT_PROCESSED.sliceTooThick, detail: `Slice Thickness ${thickness} mm over ${MAX_SLICE_THICKNESS_MM} mm` };
  const body = (f.bodyPartExamined ?? '').toUpperCase().replace(/\s+/g, '');
  if (!CHEST_BODY_PARTS.has(body)) return { reason: NOT_PROCESSED.notChest, detail: `Body Part Examined ${f.bodyPartExamined}` };
  return undefined;
}

/**
 * How well a reconstruction kernel suits lung parenchyma: 2 for a named lung kernel, 1 for a sharp (bone/edge)
 * kernel, 0 otherwise (soft tissue, standard). Vendors: Siemens B60f–B80f and Br59+/Bl57/Bl64 ("l" = lung), GE LUNG
 * and BONE/BONEPLUS/EDGE, Philips L/YA/YB/YC (lung) and D/E (sharp), Toshiba/Canon FC5x/FC8x (lung); any series
 * described as LUNG. A sharp kernel shows the nodule margins and small airways that a soft one blurs.
 */
export function lungKernelScore(kernel: string | undefined, description: string | undefined): number {
  const k = (kernel ?? '').toUpperCase().trim();
  const d = (description ?? '').toUpperCase();
  if (/LUNG/.test(k) || /\bLUNG\b/.test(d) || /^BL\d/.test(k) || /^L$|^Y[ABC]$/.test(k) || /^FC(5\d|8\d)/.test(k)) return 2;
  if (/BONE|EDGE|SHARP|DETAIL/.test(k) || /^B(6\d|7\d|8\d)[FS]?$/.test(k) || /^BR(59|6\d|7\d)/.test(k) || /^[DE]$/.test(k)) return 1;
  return 0;
}

export type CtChoice = {
  /** The series to read, or none when every one was refused. */
  chosen?: CtSeriesFacts;
  /** Why it was chosen (the log, summary.json and the SR's series-choice TEXT). */
  why: string;
  skipped: SkippedSeries[];
};

const describe = (f: CtSeriesFacts): string => {
  const s = f.stacks[0];
  const thickness = f.sliceThicknessMm ?? s?.sliceSpacingMm;
  return [`${f.seriesInstanceUID}`, thickness !== undefined ? `${Number(thickness.toFixed(2))} mm` : '', f.convolutionKernel ?? '', f.seriesDescription ? `"${f.seriesDescription}"` : '']
    .filter(Boolean)
    .join(', ');
};

/**
 * The study-level choice (issue 7: "prefer the thinnest lung-kernel series and say which was chosen and why"):
 * series refused on geometry are skipped with their reason; of the rest, those covering the chest first (at least
 * MIN_COVERAGE_SHARE of the longest one's head-foot extent: a thin targeted or cardiac reconstruction of part of the
 * chest must not win over the whole chest), then the thinnest slices (a 1 mm series finds 4 mm nodules that 2.5 mm
 * partial-volumes away), then the lung kernel, then the most slices, then the Series Instance UID so that the choice
 * is deterministic.
 */
export function chooseCtSeries(all: CtSeriesFacts[]): CtChoice {
  const skipped: SkippedSeries[] = [];
  const ok: CtSeriesFacts[] = [];
  for (const f of all) {
    const bad = geometryRefusal(f);
    if (bad) skipped.push({ seriesInstanceUID: f.seriesInstanceUID, ...bad });
    else ok.push(f);
  }
  if (!ok.length) return { why: 'no series qualified', skipped };
  const thickness = (f: CtSeriesFacts) => Math.round(100 * Math.max(f.sliceThicknessMm ?? 0, f.stacks[0].sliceSpacingMm)) / 100;
  const extent = (f: CtSeriesFacts) => f.stacks[0].slices * f.stacks[0].sliceSpacingMm;
  const longest = Math.max(...ok.map(extent));
  const partial = (f: CtSeriesFacts) => (extent(f) < MIN_COVERAGE_SHARE * longest ? 1 : 0);
  const ranked = [...ok].sort(
    (a, b) =>
      partial(a) - partial(b) ||
      thickness(a) - thickness(b) ||
      lungKernelScore(b.convolutionKernel, b.seriesDescription) - lungKernelScore(a.convolutionKernel, a.seriesDescription) ||
      b.stacks[0].slices - a.stacks[0].slices ||
      (a.seriesInstanceUID < b.seriesInstanceUID ? -1 : 1),
  );
  const [chosen, ...others] = ranked;
  const kernelWord = ['not a lung kernel', 'a sharp kernel', 'a lung kernel'][lungKernelScore(chosen.convolutionKernel, chosen.seriesDescription)];
  const why =
    ok.length === 1
      ? `the only series that qualified: ${describe(chosen)}`
      : `the whole chest, then thinnest slices, then lung kernel, among ${ok.length} qualifying series: ${describe(chosen)} (${kernelWord}, ${Math.round(extent(chosen))} mm head to foot)`;
  for (const o of others) skipped.push({ seriesInstanceUID: o.seriesInstanceUID, reason: NOT_PROCESSED.otherSeriesPreferred, detail: `another series was preferred: ${describe(chosen)}` });
  return { chosen, why, skipped };
}
