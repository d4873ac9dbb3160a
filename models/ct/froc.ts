/**
 * FROC scoring of nodule detections the LUNA16 way (Setio et al., Med Image Anal 2017;42:1; the challenge's
 * noduleCADEvaluationLUNA16.py), for any detector's output:
 * - a detection hits a nodule when its centre lies strictly within the nodule's radius of the nodule's centre;
 *   an excluded mark without a size (−1: non-nodules, nodules < 3 mm) counts with a 10 mm diameter, as there;
 * - a nodule hit several times keeps its most probable hit, the others are ignored (neither TP nor FP);
 * - detections on excluded marks are ignored; every other detection is a false positive;
 * - at most 100 detections per scan are scored (the most probable), as the challenge did;
 * - the curve comes from the ROC of the scored detections (sklearn.roc_curve), FP per scan = FPR × negatives / scans,
 *   sensitivity = TPR × detected / all nodules (missed nodules never reach the curve), read at 1/8 … 8 FP per scan
 *   by linear interpolation (np.interp); the CPM is the mean of those seven sensitivities.
 * The bootstrap resamples scans with replacement (the challenge's 95 % CI); it needs several scans to mean anything.
 */
import type { Vec3 } from '../../src/dicom/volume.ts';
import { rng } from './rng.ts';

export type Annotation = { seriesuid: string; coord: Vec3; diameterMm: number; attrs?: Record<string, string> };
export type Detection = { seriesuid: string; coord: Vec3; probability: number; diameterMm?: number };

export const LUNA_FP_RATES = [0.125, 0.25, 0.5, 1, 2, 4, 8] as const;

export type FrocOptions = {
  /** Every scan evaluated (a scan without detections or nodules still counts in FP per scan). */
  scans: string[];
  maxMarksPerScan?: number;
  fpRates?: readonly number[];
  /** Bootstrap resamples of the scans; 0 = none. */
  bootstrap?: number;
  seed?: number;
  /** The reference size a hit's diameter is compared with (default the annotation's diameter_mm, which sets the hit radius). */
  referenceDiameter?: (a: Annotation) => number;
};

export type NoduleOutcome = { annotation: Annotation; hit?: Detection };

export type FrocResult = {
  scans: number;
  nodules: number;
  detected: number;
  falsePositives: number;
  ignoredOnExcluded: number;
  doubleDetections: number;
  curve: { fps: number[]; sens: number[]; thresholds: number[] };
  sensitivityAt: { fpRate: number; sensitivity: number; threshold: number; ci?: [number, number] }[];
  cpm: number;
  cpmCi?: [number, number];
  /** Hit nodules whose hit carries a diameter: |detected − reference| and detected − reference, mm. */
  diameter: { n: number; meanAbsErrorMm: number; meanErrorMm: number; maxAbsErrorMm: number };
  outcomes: NoduleOutcome[];
};

const d2 = (a: Vec3, b: Vec3): number => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;

type Scored = { label: 0 | 1; prob: number; scan: string; excluded: boolean };

/** Matches one scan's detections to its marks; returns the ROC samples and the per-nodule outcomes. */
function matchScan(
  scan: string,
  dets: Detection[],
  included: Annotation[],
  excluded: Annotation[],
  maxMarks: number,
): { scored: Scored[]; outcomes: NoduleOutcome[]; ignored: number; doubles: number } {
  let cands = [...dets].sort((a, b) => b.probability - a.probability);
  if (cands.length > maxMarks) {
    // The challenge keeps the marks strictly above the (maxMarks+1)-th probability.
    const cut = cands[maxMarks].probability;
    cands = cands.filter((c) => c.probability > cut).slice(0, maxMarks);
  }
  const remaining = new Set(cands.map((_, i) => i));
  const scored: Scored[] = [];
  const outcomes: NoduleOutcome[] = [];
  let ignored = 0;
  let doubles = 0;
  for (const a of included) {
    const r2 = (a.diameterMm / 2) ** 2;
    const matches = cands.map((c, i) => ({ c, i })).filter(({ c }) => d2(c.coord, a.coord) < r2);
    for (const { i } of matches) remaining.delete(i);
    if (matches.length > 1) doubles += matches.length - 1;
    if (matches.length > 0) {
      const best = matches.reduce((x, y) => (y.c.probability > x.c.probability ? y : x)).c;
      scored.push({ label: 1, prob: best.probability, scan, excluded: false });
      outcomes.push({ annotation: a, hit: best });
    } else {
      scored.push({ label: 1, prob: -1e9, scan, excluded: true });
      outcomes.push({ annotation: a });
    }
  }
  for (const a of excluded) {
    const r2 = ((a.diameterMm < 0 ? 10 : a.diameterMm) / 2) ** 2;
    cands.forEach((c, i) => {
      if (remaining.has(i) && d2(c.coord, a.coord) < r2) {
        remaining.delete(i);
        ignored++;
      }
    });
  }
  for (const i of remaining) scored.push({ label: 0, prob: cands[i].probability, scan, excluded: false });
  return { scored, outcomes, ignored, doubles };
}

/** The FROC points of a set of ROC samples (computeFROC of the challenge script). */
export function frocCurve(samples: Scored[], scans: number): { fps: number[]; sens: number[]; thresholds: number[] } {
  const totalLesions = samples.filter((s) => s.label === 1).length;
  const local = samples.filter((s) => !s.excluded).sort((a, b) => b.prob - a.prob);
  const detected = local.filter((s) => s.label === 1).length;
  const negatives = local.length - detected;
  const fps = [0];
  const sens = [0];
  const thresholds = [Infinity];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < local.length; i++) {
    if (local[i].label === 1) tp++;
    else fp++;
    if (i + 1 < local.length && local[i + 1].prob === local[i].prob) continue;
    // Per scan: FPR × negatives / scans = fp / scans; TPR × detected / total = tp / total.
    fps.push(negatives === 0 ? 0 : fp / scans);
    sens.push(totalLesions === 0 ? 0 : tp / totalLesions);
    thresholds.push(local[i].prob);
  }
  return { fps, sens, thresholds };
}

/** np.interp: linear between the neighbouring points, the end values outside; with repeated x, the last one's y. */
export function interp(x: number, xp: number[], fp: number[]): number {
  if (xp.length === 0) return 0;
  if (x < xp[0]) return fp[0];
  let j = 0;
  while (j + 1 < xp.length && xp[j + 1] <= x) j++;
  if (j === xp.length - 1) return fp[j];
  return fp[j] + ((x - xp[j]) * (fp[j + 1] - fp[j])) / (xp[j + 1] - xp[j]);
}

/** The lowest probability threshold whose FP rate stays within `rate` (the operating point for that rate). */
function thresholdAt(curve: { fps: number[]; thresholds: number[] }, rate: number): number {
  let t = Infinity;
  for (let i = 0; i < curve.fps.length; i++) if (curve.fps[i] <= rate) t = curve.thresholds[i];
  return t;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))));
  return sorted[idx];
}

export function evaluateFroc(detections: Detection[], included: Annotation[], excluded: Annotation[], options: FrocOptions): FrocResult {
  const maxMarks = options.maxMarksPerScan ?? 100;
  const rates = options.fpRates ?? LUNA_FP_RATES;
  const perScan = new Map<string, ReturnType<typeof matchScan>>();
  for (const scan of options.scans) {
    perScan.set(
      scan,
      matchScan(
        scan,
        detections.filter((d) => d.seriesuid === scan),
        included.filter((a) => a.seriesuid === scan),
        excluded.filter((a) => a.seriesuid === scan),
        maxMarks,
      ),
    );
  }
  const all = [...perScan.values()];
  const samples = all.flatMap((s) => s.scored);
  const outcomes = all.flatMap((s) => s.outcomes);
  const curve = frocCurve(samples, options.scans.length);
  const sensitivityAt: FrocResult['sensitivityAt'] = rates.map((r) => ({ fpRate: r, sensitivity: interp(r, curve.fps, curve.sens), threshold: thresholdAt(curve, r) }));
  const cpm = sensitivityAt.reduce((s, x) => s + x.sensitivity, 0) / sensitivityAt.length;

  let cpmCi: [number, number] | undefined;
  if ((options.bootstrap ?? 0) > 0 && options.scans.length > 1) {
    const r = rng(options.seed ?? 1);
    const cpms: number[] = [];
    const perRate: number[][] = rates.map(() => []);
    for (let b = 0; b < (options.bootstrap ?? 0); b++) {
      const pick = options.scans.map(() => options.scans[r.int(options.scans.length)]);
      const bs = pick.flatMap((s) => perScan.get(s)?.scored ?? []);
      const c = frocCurve(bs, pick.length);
      const sens = rates.map((x) => interp(x, c.fps, c.sens));
      sens.forEach((s, i) => perRate[i].push(s));
      cpms.push(sens.reduce((a, x) => a + x, 0) / sens.length);
    }
    cpms.sort((a, b) => a - b);
    cpmCi = [percentile(cpms, 0.025), percentile(cpms, 0.975)];
    perRate.forEach((v, i) => {
      v.sort((a, b) => a - b);
      sensitivityAt[i].ci = [percentile(v, 0.025), percentile(v, 0.975)];
    });
  }

  const sized = outcomes.filter((o) => o.hit?.diameterMm !== undefined && Number.isFinite(o.hit.diameterMm));
  const ref = options.referenceDiameter ?? ((a: Annotation) => a.diameterMm);
  const errs = sized.map((o) => (o.hit?.diameterMm ?? 0) - ref(o.annotation));
  return {
    scans: options.scans.length,
    nodules: included.filter((a) => options.scans.includes(a.seriesuid)).length,
    detected: outcomes.filter((o) => o.hit).length,
    falsePositives: samples.filter((s) => s.label === 0).length,
    ignoredOnExcluded: all.reduce((s, x) => s + x.ignored, 0),
    doubleDetections: all.reduce((s, x) => s + x.doubles, 0),
    curve,
    sensitivityAt,
    cpm,
    cpmCi,
    diameter: {
      n: errs.length,
      meanAbsErrorMm: errs.length ? errs.reduce((s, e) => s + Math.abs(e), 0) / errs.length : NaN,
      meanErrorMm: errs.length ? errs.reduce((s, e) => s + e, 0) / errs.length : NaN,
      maxAbsErrorMm: errs.length ? Math.max(...errs.map(Math.abs)) : NaN,
    },
    outcomes,
  };
}

/**
 * A stratum of the reference: nodules outside it become excluded marks of their own size (a detection on them is
 * neither a hit nor a false positive), so a stratum's FP rate stays the whole system's.
 */
export function stratify(included: Annotation[], excluded: Annotation[], keep: (a: Annotation) => boolean): { included: Annotation[]; excluded: Annotation[] } {
  return { included: included.filter(keep), excluded: [...excluded, ...included.filter((a) => !keep(a))] };
}

/** A CSV with a header row → records (no quoting: LUNA16 files and ours have none). */
export function readCsvRecords(text: string): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  const header = lines[0].split(',').map((h) => h.trim());
  return lines.slice(1).map((l) => {
    const f = l.split(',');
    return Object.fromEntries(header.map((h, i) => [h, (f[i] ?? '').trim()]));
  });
}

const num = (r: Record<string, string>, key: string): number => {
  const v = Number(r[key]);
  if (r[key] === undefined || r[key] === '' || !Number.isFinite(v)) throw new Error(`CSV row without a numeric ${key}: ${JSON.stringify(r)}`);
  return v;
};

export function annotationsFromCsv(text: string): Annotation[] {
  return readCsvRecords(text).map((r) => {
    const { seriesuid, coordX, coordY, coordZ, diameter_mm, ...attrs } = r;
    void coordX;
    void coordY;
    void coordZ;
    void diameter_mm;
    return { seriesuid, coord: [num(r, 'coordX'), num(r, 'coordY'), num(r, 'coordZ')], diameterMm: num(r, 'diameter_mm'), attrs };
  });
}

export function detectionsFromCsv(text: string): Detection[] {
  return readCsvRecords(text).map((r) => ({
    seriesuid: r.seriesuid,
    coord: [num(r, 'coordX'), num(r, 'coordY'), num(r, 'coordZ')],
    probability: num(r, 'probability'),
    diameterMm: r.diameter_mm !== undefined && r.diameter_mm !== '' ? num(r, 'diameter_mm') : undefined,
  }));
}

export function detectionsToCsv(dets: Detection[]): string {
  return ['seriesuid,coordX,coordY,coordZ,probability,diameter_mm', ...dets.map((d) => [d.seriesuid, ...d.coord.map((v) => v.toFixed(3)), d.probability.toFixed(6), d.diameterMm?.toFixed(2) ?? ''].join(','))].join('\n') + '\n';
}

export function annotationsToCsv(rows: Annotation[], attrKeys: string[] = []): string {
  return (
    [
      ['seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm', ...attrKeys].join(','),
      ...rows.map((a) => [a.seriesuid, ...a.coord.map((v) => v.toFixed(3)), a.diameterMm.toFixed(2), ...attrKeys.map((k) => a.attrs?.[k] ?? '')].join(',')),
    ].join('\n') + '\n'
  );
}
