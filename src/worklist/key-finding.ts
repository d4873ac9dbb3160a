import type { Finding, Measurement } from '../results/findings.ts';

/** What key-finding text needs of a stored result summary (summary.json of DESIGN §5: findings without pixels). */
export type ResultSummary = { studyScore: number; findings: Finding[] };

// Named assessment scales are shown by their own name ("Lung-RADS 4A"), as readers say them, not by the concept
// name of the SR row ("Lung-RADS assessment category").
const NAMED_SCALE = /^(Lung-RADS|BI-RADS|LI-RADS|PI-RADS|TI-RADS|O-RADS|C-RADS)/i;
const LENGTH_UNITS = new Set(['mm', 'cm']);
// UCUM "1" and "{score}" are dimensionless: a score, shown with two decimals like a probability.
const SCORE_UNITS = new Set(['1', '{score}', '{probability}', '']);

const lower = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);
const fixed = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : '?');

function evaluationText(concept: string, value: string): string {
  const scale = NAMED_SCALE.exec(concept)?.[1];
  if (!scale) return `${lower(concept)} ${lower(value)}`;
  return value.toUpperCase().startsWith(scale.toUpperCase()) ? value : `${scale} ${value}`;
}

function headText(f: Finding): string {
  const name = lower(f.concept.meaning);
  const length = f.measurements?.find((m: Measurement) => LENGTH_UNITS.has(m.unit));
  if (length) return `${name} ${fixed(length.value, 1)} ${length.unit}`;
  // A study-level score reported as a measurement ("exam score 0.81"): the measurement names it.
  const score = f.measurements?.find((m: Measurement) => SCORE_UNITS.has(m.unit));
  if (score) return `${lower(score.concept.meaning)} ${fixed(score.value, 2)}`;
  return `${name} p=${fixed(f.probability, 2)}`;
}

/** The finding a reader should see first: the most probable one; ties keep the detector's order. */
export function keyFindingOf(findings: readonly Finding[]): Finding | undefined {
  let best: Finding | undefined;
  for (const f of findings) if (!best || f.probability > best.probability) best = f;
  return best;
}

/**
 * The key finding in words, as a radiologist would read it off a worklist: "nodule 7.4 mm, Lung-RADS 4A, right upper
 * lobe"; "opacity p=0.93, right lower zone"; "exam score 0.81, left breast". Null when the result has no finding.
 */
export function keyFindingText(summary: ResultSummary): string | null {
  const f = keyFindingOf(summary.findings);
  if (!f) return null;
  const parts = [headText(f)];
  for (const e of f.evaluations ?? []) parts.push(evaluationText(e.concept.meaning, e.value.meaning));
  if (f.site) parts.push(lower(f.site.meaning));
  return parts.join(', ');
}
