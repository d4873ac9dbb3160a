/**
 * Scores any nodule detector's output the LUNA16 way (froc.ts):
 *
 *   npx tsx models/ct/evaluate.ts --detections D.csv --annotations A.csv --excluded E.csv
 *       [--scans N | --seriesuids S.csv] [--min-diameter MM] [--max-diameter MM] [--where col=value]...
 *       [--bootstrap 1000] [--diameter-column COL] [--json] [--out result.json]
 *
 * D.csv: seriesuid,coordX,coordY,coordZ,probability[,diameter_mm] (patient LPS mm, the DICOM / ITK world frame).
 * A.csv, E.csv: LUNA16 annotations.csv / annotations_excluded.csv (extra columns, e.g. type or placement of inserted
 * nodules, are kept as attributes for --where). --min/--max-diameter and --where narrow the reference to a stratum:
 * the nodules left out become excluded marks, so the stratum is scored at the whole system's FP rate.
 * Scans: every seriesuid of --seriesuids, else --scans N (which must be ≥ the series seen), else the series seen in
 * the three files.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { annotationsFromCsv, detectionsFromCsv, evaluateFroc, readCsvRecords, stratify, type Annotation, type FrocResult } from './froc.ts';

type Args = {
  detections: string;
  annotations: string;
  excluded?: string;
  scans?: number;
  seriesuids?: string;
  minDiameter?: number;
  maxDiameter?: number;
  where: [string, string][];
  bootstrap: number;
  /** Annotation column holding the size the detector's diameter is compared with (default diameter_mm). */
  diameterColumn?: string;
  json: boolean;
  out?: string;
};

function usage(msg: string): never {
  process.stderr.write(`${msg}\nusage: npx tsx models/ct/evaluate.ts --detections D.csv --annotations A.csv [--excluded E.csv] [--scans N | --seriesuids S.csv] [--min-diameter MM] [--max-diameter MM] [--where col=value] [--bootstrap N] [--diameter-column COL] [--json] [--out FILE]\n`);
  process.exit(2);
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { detections: '', annotations: '', where: [], bootstrap: 1000, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) usage(`${k} needs a value`);
      return x;
    };
    const n = (): number => {
      const x = Number(v());
      if (!Number.isFinite(x)) usage(`${k} needs a number`);
      return x;
    };
    if (k === '--detections') a.detections = v();
    else if (k === '--annotations') a.annotations = v();
    else if (k === '--excluded') a.excluded = v();
    else if (k === '--scans') a.scans = n();
    else if (k === '--seriesuids') a.seriesuids = v();
    else if (k === '--min-diameter') a.minDiameter = n();
    else if (k === '--max-diameter') a.maxDiameter = n();
    else if (k === '--bootstrap') a.bootstrap = n();
    else if (k === '--diameter-column') a.diameterColumn = v();
    else if (k === '--where') {
      const [col, ...rest] = v().split('=');
      if (rest.length === 0) usage('--where needs col=value');
      a.where.push([col, rest.join('=')]);
    } else if (k === '--json') a.json = true;
    else if (k === '--out') a.out = v();
    else if (k === '--help' || k === '-h') usage('');
    else usage(`unknown argument ${k}`);
  }
  if (!a.detections || !a.annotations) usage('--detections and --annotations are required');
  return a;
}

export function runEvaluation(args: Args): FrocResult {
  const detections = detectionsFromCsv(readFileSync(args.detections, 'utf8'));
  const included0 = annotationsFromCsv(readFileSync(args.annotations, 'utf8'));
  const excluded0 = args.excluded ? annotationsFromCsv(readFileSync(args.excluded, 'utf8')) : [];
  const keep = (x: Annotation): boolean =>
    (args.minDiameter === undefined || x.diameterMm >= args.minDiameter) &&
    (args.maxDiameter === undefined || x.diameterMm <= args.maxDiameter) &&
    args.where.every(([col, val]) => (x.attrs?.[col] ?? '') === val);
  const { included, excluded } = stratify(included0, excluded0, keep);
  const seen = [...new Set([...detections, ...included0, ...excluded0].map((x) => x.seriesuid))];
  let scans: string[];
  if (args.seriesuids) scans = readCsvRecordsOrLines(readFileSync(args.seriesuids, 'utf8'));
  else if (args.scans !== undefined) {
    if (args.scans < seen.length) usage(`--scans ${args.scans} is fewer than the ${seen.length} series in the files`);
    // Scans without any mark or detection still count in the FP-per-scan divisor.
    scans = [...seen, ...Array.from({ length: args.scans - seen.length }, (_, i) => `(scan without marks ${i + 1})`)];
  } else scans = seen;
  const col = args.diameterColumn;
  const referenceDiameter = col && col !== 'diameter_mm' ? (x: Annotation): number => Number(x.attrs?.[col]) : undefined;
  return evaluateFroc(detections, included, excluded, { scans, bootstrap: args.bootstrap, referenceDiameter });
}

function readCsvRecordsOrLines(text: string): string[] {
  const recs = readCsvRecords(text);
  if (recs.length > 0 && 'seriesuid' in recs[0]) return recs.map((r) => r.seriesuid);
  return text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

export function formatResult(r: FrocResult): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `scans ${r.scans}, nodules ${r.nodules}, detected ${r.detected} (${r.nodules ? pct(r.detected / r.nodules) : '-'}), false positives ${r.falsePositives} (${(r.falsePositives / r.scans).toFixed(2)}/scan), ignored on excluded ${r.ignoredOnExcluded}, double detections ${r.doubleDetections}`,
    'FP/scan  sensitivity  95% CI            threshold',
    ...r.sensitivityAt.map((s) => `${String(s.fpRate).padEnd(8)} ${pct(s.sensitivity).padEnd(12)} ${s.ci ? `${pct(s.ci[0])}–${pct(s.ci[1])}`.padEnd(17) : '-'.padEnd(17)} ${Number.isFinite(s.threshold) ? s.threshold.toFixed(4) : '-'}`),
    `CPM ${r.cpm.toFixed(3)}${r.cpmCi ? ` (95% CI ${r.cpmCi[0].toFixed(3)}–${r.cpmCi[1].toFixed(3)})` : ''}`,
    r.diameter.n > 0
      ? `diameter error over ${r.diameter.n} hit nodules: mean |error| ${r.diameter.meanAbsErrorMm.toFixed(2)} mm, mean error ${r.diameter.meanErrorMm.toFixed(2)} mm, max |error| ${r.diameter.maxAbsErrorMm.toFixed(2)} mm`
      : 'diameter error: no hit carries a diameter',
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs(process.argv.slice(2));
  const result = runEvaluation(args);
  const { outcomes, curve, ...summary } = result;
  if (args.out) writeFileSync(args.out, JSON.stringify({ ...summary, curve, outcomes }, null, 1));
  process.stdout.write(args.json ? `${JSON.stringify(summary, null, 1)}\n` : `${formatResult(result)}\n`);
  void outcomes;
}
