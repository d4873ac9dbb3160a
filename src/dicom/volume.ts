import { RadnodeError } from '../errors.ts';
import { decodeFrames } from './decode.ts';
import { modalityLut, pixelSpacing } from './grayscale.ts';
import type { DicomInstance } from './instance.ts';

/**
 * CT series → volumes (issue 3, item 5). Slices are sorted by Image Position (Patient) projected on the slice normal
 * (the cross product of the Image Orientation (Patient) direction cosines, PS3.3 C.7.6.2.1.1), never by file name or
 * Instance Number, and the spacing comes from those positions, never from Slice Thickness.
 */

export type VolumeIssueCode =
  | 'GANTRY_TILT'
  | 'MISSING_SLICES'
  | 'DUPLICATE_SLICES'
  | 'NON_UNIFORM_SPACING'
  | 'MIXED_ORIENTATION'
  | 'MULTIPLE_ACQUISITIONS'
  | 'MISSING_GEOMETRY'
  | 'TOO_FEW_SLICES';

export interface VolumeIssue {
  code: VolumeIssueCode;
  detail: string;
  /** For GANTRY_TILT: degrees between the slice normal and the direction the slices advance in. */
  angleDeg?: number;
  /** For MISSING_SLICES: how many positions are empty; for DUPLICATE_SLICES: how many were dropped. */
  count?: number;
}

export type Vec3 = [number, number, number];

export interface StackPlan {
  seriesInstanceUID: string;
  /** Instances sorted along the normal (duplicates removed). */
  instances: DicomInstance[];
  rows: number;
  columns: number;
  /** [row spacing, column spacing] in mm. */
  pixelSpacingMm: [number, number];
  orientation: [number, number, number, number, number, number];
  normal: Vec3;
  /** Each slice's position along the normal, mm, ascending. */
  positionsMm: number[];
  /** Median distance between consecutive positions along the normal, mm. */
  sliceSpacingMm: number;
  /** Header Gantry/Detector Tilt, when present. */
  gantryDetectorTiltDeg?: number;
  acquisitionNumbers: number[];
  issues: VolumeIssue[];
  /** Voxel (i = column, j = row, k = slice; 0-based) → patient LPS mm, 4×4 row-major. */
  affine: number[];
}

export interface VolumePlan {
  stacks: StackPlan[];
  /** Instances left out of every stack, with the reason. */
  excluded: { sopInstanceUID: string; reason: string }[];
  issues: VolumeIssue[];
}

export interface Volume extends StackPlan {
  /** [columns, rows, slices] */
  dims: [number, number, number];
  /** Physical values (HU for CT), slice-major then row then column; Int16 when the modality LUT is integral. */
  voxels: Int16Array | Float32Array;
  unit?: string;
}

const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const norm = (a: Vec3): number => Math.hypot(a[0], a[1], a[2]);

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Geo {
  instance: DicomInstance;
  ipp: Vec3;
  iop: [number, number, number, number, number, number];
  sop: string;
}

function geometry(instance: DicomInstance): Geo | string {
  const ipp = instance.header.numbers('ImagePositionPatient');
  const iop = instance.header.numbers('ImageOrientationPatient');
  if (ipp.length !== 3 || iop.length !== 6) return 'no Image Position/Orientation (Patient)';
  const types = instance.header.strings('ImageType').map((s) => s.toUpperCase());
  if (types.includes('LOCALIZER')) return 'localizer';
  if (!instance.image) return 'no image';
  return { instance, ipp: ipp as Vec3, iop: iop as Geo['iop'], sop: instance.SOPInstanceUID ?? '' };
}

function stackKey(g: Geo): string {
  const img = g.instance.image!;
  const ps = pixelSpacing(g.instance);
  return [g.iop.map((v) => v.toFixed(4)).join(','), img.Rows, img.Columns, ps ? `${ps.rowMm.toFixed(4)},${ps.columnMm.toFixed(4)}` : ''].join('|');
}

function planStack(series: string, geos: Geo[], extraIssues: VolumeIssue[]): StackPlan {
  const iop = geos[0].iop;
  const row: Vec3 = [iop[0], iop[1], iop[2]];
  const col: Vec3 = [iop[3], iop[4], iop[5]];
  const nRaw = cross(row, col);
  const n: Vec3 = [nRaw[0] / norm(nRaw), nRaw[1] / norm(nRaw), nRaw[2] / norm(nRaw)];
  const issues: VolumeIssue[] = [...extraIssues];

  const sorted = geos
    .map((g) => ({ g, d: dot(g.ipp, n), inst: g.instance.header.number('InstanceNumber') ?? 0 }))
    .sort((a, b) => a.d - b.d || a.inst - b.inst);
  const kept: typeof sorted = [];
  let duplicates = 0;
  for (const s of sorted) {
    if (kept.length > 0 && Math.abs(s.d - kept[kept.length - 1].d) < 0.01) duplicates++;
    else kept.push(s);
  }
  if (duplicates > 0) issues.push({ code: 'DUPLICATE_SLICES', detail: `${duplicates} slice(s) repeat a position already taken; the first was kept`, count: duplicates });

  const positions = kept.map((k) => k.d);
  const gaps = positions.slice(1).map((p, i) => p - positions[i]);
  const spacing = gaps.length ? median(gaps) : 0;
  if (kept.length < 2) issues.push({ code: 'TOO_FEW_SLICES', detail: `${kept.length} slice(s): no volume` });
  if (gaps.length && spacing > 0) {
    const tol = Math.max(0.01, 0.01 * spacing);
    let missing = 0;
    let irregular = false;
    for (const g of gaps) {
      if (Math.abs(g - spacing) <= tol) continue;
      const k = Math.round(g / spacing);
      if (k >= 2 && Math.abs(g - k * spacing) <= Math.max(tol, 0.1 * spacing)) missing += k - 1;
      else irregular = true;
    }
    if (missing > 0) issues.push({ code: 'MISSING_SLICES', detail: `${missing} position(s) missing at a spacing of ${spacing.toFixed(3)} mm`, count: missing });
    if (irregular) {
      const distinct = [...new Set(gaps.map((g) => g.toFixed(3)))].slice(0, 6).join(', ');
      issues.push({ code: 'NON_UNIFORM_SPACING', detail: `slice spacings along the normal vary: ${distinct} mm` });
    }
  }

  const first = kept[0].g.ipp;
  const last = kept[kept.length - 1].g.ipp;
  let step: Vec3 = [n[0] * spacing, n[1] * spacing, n[2] * spacing];
  if (kept.length >= 2) {
    const span = sub(last, first);
    const along = norm(span);
    if (along > 0) {
      const angle = (Math.acos(Math.min(1, Math.abs(dot(span, n)) / along)) * 180) / Math.PI;
      if (angle > 0.5) issues.push({ code: 'GANTRY_TILT', detail: `slices advance ${angle.toFixed(2)}° off their normal (sheared volume)`, angleDeg: angle });
      step = [span[0] / (kept.length - 1), span[1] / (kept.length - 1), span[2] / (kept.length - 1)];
    }
  }
  const header = kept[0].g.instance;
  const tilt = header.header.number('GantryDetectorTilt');
  if (tilt !== undefined && Math.abs(tilt) > 0.01 && !issues.some((i) => i.code === 'GANTRY_TILT')) {
    issues.push({ code: 'GANTRY_TILT', detail: `Gantry/Detector Tilt is ${tilt}°`, angleDeg: Math.abs(tilt) });
  }
  const ps = pixelSpacing(header);
  const [dr, dc] = ps ? [ps.rowMm, ps.columnMm] : [1, 1];
  if (!ps) issues.push({ code: 'MISSING_GEOMETRY', detail: 'no Pixel Spacing: 1 mm assumed' });
  const affine = [
    row[0] * dc, col[0] * dr, step[0], first[0],
    row[1] * dc, col[1] * dr, step[1], first[1],
    row[2] * dc, col[2] * dr, step[2], first[2],
    0, 0, 0, 1,
  ];
  const img = header.image!;
  return {
    seriesInstanceUID: series,
    instances: kept.map((k) => k.g.instance),
    rows: img.Rows,
    columns: img.Columns,
    pixelSpacingMm: [dr, dc],
    orientation: iop,
    normal: n,
    positionsMm: positions,
    sliceSpacingMm: spacing,
    gantryDetectorTiltDeg: tilt,
    acquisitionNumbers: [...new Set(kept.map((k) => k.g.instance.header.number('AcquisitionNumber')).filter((a): a is number => a !== undefined))],
    issues,
    affine,
  };
}

/** Groups instances into stacks per series and checks each (no pixels decoded). */
export function planVolumes(instances: DicomInstance[]): VolumePlan {
  const excluded: VolumePlan['excluded'] = [];
  const issues: VolumeIssue[] = [];
  const bySeries = new Map<string, Geo[]>();
  for (const inst of instances) {
    const g = geometry(inst);
    if (typeof g === 'string') {
      excluded.push({ sopInstanceUID: inst.SOPInstanceUID ?? '', reason: g });
      continue;
    }
    const s = inst.SeriesInstanceUID ?? '';
    bySeries.set(s, [...(bySeries.get(s) ?? []), g]);
  }
  const stacks: StackPlan[] = [];
  for (const [series, geos] of bySeries) {
    const groups = new Map<string, Geo[]>();
    for (const g of geos) groups.set(stackKey(g), [...(groups.get(stackKey(g)) ?? []), g]);
    if (groups.size > 1) issues.push({ code: 'MIXED_ORIENTATION', detail: `series ${series} holds ${groups.size} orientations or image sizes: split into ${groups.size} stacks` });
    for (const group of groups.values()) {
      const acq = new Map<number, Geo[]>();
      for (const g of group) {
        const a = g.instance.header.number('AcquisitionNumber') ?? 0;
        acq.set(a, [...(acq.get(a) ?? []), g]);
      }
      if (acq.size > 1) {
        // Several acquisitions: separate stacks when they cover the same positions (repeat scans), else one stack.
        const n = cross([group[0].iop[0], group[0].iop[1], group[0].iop[2]], [group[0].iop[3], group[0].iop[4], group[0].iop[5]]);
        const positions = group.map((g) => dot(g.ipp, n).toFixed(2));
        const overlap = new Set(positions).size < positions.length;
        const issue: VolumeIssue = {
          code: 'MULTIPLE_ACQUISITIONS',
          detail: `series ${series} holds acquisitions ${[...acq.keys()].join(', ')}${overlap ? ' covering the same positions: one stack each' : ' at distinct positions: kept as one stack'}`,
        };
        issues.push(issue);
        if (overlap) {
          for (const part of acq.values()) stacks.push(planStack(series, part, [issue]));
          continue;
        }
        stacks.push(planStack(series, group, [issue]));
        continue;
      }
      stacks.push(planStack(series, group, []));
    }
  }
  return { stacks, excluded, issues };
}

export interface LoadOptions {
  /** Cap on the voxel buffer (default 2 GiB). */
  maxBytes?: number;
}

/** Decodes a planned stack into physical values. */
export async function loadVolume(stack: StackPlan, options: LoadOptions = {}): Promise<Volume> {
  const { rows, columns } = stack;
  const slices = stack.instances.length;
  const luts = stack.instances.map((i) => modalityLut(i));
  const integral = luts.every((l) => l.kind !== 'table' && Number.isInteger(l.slope) && Number.isInteger(l.intercept));
  const bytes = rows * columns * slices * (integral ? 2 : 4);
  const cap = options.maxBytes ?? 2 * 1024 ** 3;
  if (bytes > cap) throw new RadnodeError('RN_DICOM_TOO_LARGE', `volume would take ${bytes} bytes, over the cap of ${cap}`);
  const voxels = integral ? new Int16Array(rows * columns * slices) : new Float32Array(rows * columns * slices);
  const plane = rows * columns;
  for (let k = 0; k < slices; k++) {
    const inst = stack.instances[k];
    const img = inst.image!;
    if (img.Rows !== rows || img.Columns !== columns) throw new RadnodeError('RN_DICOM_MALFORMED', 'slice size differs within a stack');
    const [frame] = await decodeFrames(inst, { frames: [0] });
    const { slope, intercept } = luts[k];
    const src = frame.data;
    const off = k * plane;
    if (integral) {
      for (let i = 0; i < plane; i++) {
        const v = src[i] * slope + intercept;
        voxels[off + i] = v < -32768 ? -32768 : v > 32767 ? 32767 : v;
      }
    } else {
      for (let i = 0; i < plane; i++) voxels[off + i] = src[i] * slope + intercept;
    }
  }
  return { ...stack, dims: [columns, rows, slices], voxels, unit: luts[0]?.unit };
}

/** Splits into stacks, checks them and loads every stack that has at least two slices. */
export async function buildVolumes(instances: DicomInstance[], options: LoadOptions = {}): Promise<{ volumes: Volume[]; plan: VolumePlan }> {
  const plan = planVolumes(instances);
  const volumes: Volume[] = [];
  for (const s of plan.stacks) if (s.instances.length >= 2) volumes.push(await loadVolume(s, options));
  return { volumes, plan };
}

/** Patient LPS (mm) → continuous voxel index [i, j, k] through the inverse of the affine. */
export function patientToVoxel(affine: number[], p: Vec3): Vec3 {
  const a = [
    [affine[0], affine[1], affine[2]],
    [affine[4], affine[5], affine[6]],
    [affine[8], affine[9], affine[10]],
  ];
  const t: Vec3 = [p[0] - affine[3], p[1] - affine[7], p[2] - affine[11]];
  const det =
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  if (Math.abs(det) < 1e-12) throw new RadnodeError('RN_DICOM_MALFORMED', 'singular volume affine');
  const inv = [
    [(a[1][1] * a[2][2] - a[1][2] * a[2][1]) / det, (a[0][2] * a[2][1] - a[0][1] * a[2][2]) / det, (a[0][1] * a[1][2] - a[0][2] * a[1][1]) / det],
    [(a[1][2] * a[2][0] - a[1][0] * a[2][2]) / det, (a[0][0] * a[2][2] - a[0][2] * a[2][0]) / det, (a[0][2] * a[1][0] - a[0][0] * a[1][2]) / det],
    [(a[1][0] * a[2][1] - a[1][1] * a[2][0]) / det, (a[0][1] * a[2][0] - a[0][0] * a[2][1]) / det, (a[0][0] * a[1][1] - a[0][1] * a[1][0]) / det],
  ];
  return [0, 1, 2].map((r) => inv[r][0] * t[0] + inv[r][1] * t[1] + inv[r][2] * t[2]) as Vec3;
}

export function voxelToPatient(affine: number[], v: Vec3): Vec3 {
  return [0, 1, 2].map((r) => affine[r * 4] * v[0] + affine[r * 4 + 1] * v[1] + affine[r * 4 + 2] * v[2] + affine[r * 4 + 3]) as Vec3;
}
