/**
 * readFindings: the inverse of the SR writer. It reads a radnode TID 1500 SR back into the findings model, so that
 * the main test is write → read → compare (style.md §1). Coordinates are FL in DICOM (PS3.3 §C.18.6), so they read
 * back as float32 values (Math.fround of what was written); measurements and probabilities are exact (FD), and so
 * is the study-level score (a TEXT holding the shortest round-trip decimal).
 *
 * Findings come back as the TID 1410 groups (findings with a place) in order, then the findings without a place
 * from Qualitative Evaluations in order: a result that mixes the two reads back in that order (write-sr.ts).
 */
import { RadnodeError } from '../../errors.ts';
import { readPart10, str } from '../dicom-io.ts';
import type { Code, CodingScheme, DetectorIdentity, Evaluation, Finding, Measurement, Place2D, Priority, SkippedSeries } from '../findings.ts';
import { DCM, RADNODE, SCT, type CodedConcept } from './codes.ts';
import type { CodeItem, ContainerItem, ContentItem, ScoordItem } from './content-items.ts';
import { decodeDocumentContent, sameCode } from './decode.ts';
import { polylineToBox } from './templates/geometry.ts';
import { MODEL_SHA256_PARAMETER } from './write-sr.ts';

export type ReadReport = {
  detector: DetectorIdentity;
  studyInstanceUID: string;
  studyScore: number;
  priority: Priority;
  findings: Finding[];
  skipped: SkippedSeries[];
  seriesChoice?: string;
};

const SCHEMES: readonly CodingScheme[] = ['SCT', 'DCM', 'RADLEX', 'LN', 'UCUM', '99RADNODE'];

function invalid(message: string, details: Record<string, unknown> = {}): RadnodeError {
  return new RadnodeError('RN_RESULT_INVALID', message, { details });
}

function toCode(c: CodedConcept): Code {
  if (!(SCHEMES as readonly string[]).includes(c.scheme)) throw invalid(`coding scheme ${c.scheme} is outside the findings model`, { code: c });
  return { scheme: c.scheme as CodingScheme, value: c.value, meaning: c.meaning };
}

function child(items: ContentItem[] | undefined, concept: CodedConcept): ContentItem | undefined {
  return items?.find((i) => sameCode(i.concept, concept));
}

function textOf(items: ContentItem[] | undefined, concept: CodedConcept): string | undefined {
  const i = child(items, concept);
  return i?.valueType === 'TEXT' ? i.text : undefined;
}

function place2D(s: ScoordItem): Place2D {
  const image = s.children?.find((c) => c.valueType === 'IMAGE');
  if (!image || image.valueType !== 'IMAGE') throw invalid('an image region has no IMAGE reference');
  const pairs = (d: number[]): [number, number][] => Array.from({ length: d.length >> 1 }, (_, i) => [d[2 * i], d[2 * i + 1]]);
  const box = s.graphicType === 'POLYLINE' ? polylineToBox(s.data) : undefined;
  const shape: Place2D['shape'] = s.graphicType === 'POINT' ? 'point' : s.graphicType === 'ELLIPSE' ? 'ellipse' : box ? 'box' : 'polyline';
  return {
    sopInstanceUID: image.sopInstanceUID,
    ...(image.frame !== undefined ? { frame: image.frame } : {}),
    shape,
    points: box ?? pairs(s.data),
  };
}

function readGroup(g: ContainerItem): Finding {
  const items = g.children ?? [];
  const trackingUid = child(items, DCM.TrackingUniqueIdentifier);
  const trackingText = textOf(items, DCM.TrackingIdentifier);
  const finding = child(items, DCM.Finding);
  const probability = child(items, DCM.CertaintyOfFinding);
  if (trackingUid?.valueType !== 'UIDREF' || trackingText === undefined) throw invalid('a measurement group lacks its tracking identifier or UID');
  if (finding?.valueType !== 'CODE') throw invalid('a measurement group lacks its Finding', { trackingUid: trackingUid.uid });
  if (probability?.valueType !== 'NUM') throw invalid('a measurement group lacks its probability', { trackingUid: trackingUid.uid });
  const site = child(items, SCT.FindingSite);
  // A bidirectional finding's axes are NUMs inferred from two-point SCOORDs: they are its place, not measurements.
  const axis = (c: CodedConcept) => {
    const n = child(items, c);
    const s = n?.valueType === 'NUM' ? n.children?.find((k): k is ScoordItem => k.valueType === 'SCOORD' && k.data.length === 4) : undefined;
    return n && s ? { num: n, scoord: s } : undefined;
  };
  const longAxis = axis(SCT.LongAxis);
  const shortAxis = axis(SCT.ShortAxis);
  const axes = longAxis && shortAxis ? [longAxis.num, shortAxis.num] : [];
  const measurements: Measurement[] = items
    .filter((i) => i.valueType === 'NUM' && i !== probability && !axes.includes(i))
    .map((i) => (i.valueType === 'NUM' ? { concept: toCode(i.concept), value: i.value, unit: i.unit.value } : (undefined as never)));
  const evaluations: Evaluation[] = items
    .filter((i) => i.valueType === 'CODE' && i.relationship === 'CONTAINS' && i !== finding)
    .map((i) => (i.valueType === 'CODE' ? { concept: toCode(i.concept), value: toCode(i.code) } : (undefined as never)));
  const region = items.find((i): i is ScoordItem => i.valueType === 'SCOORD');
  const center = items.find((i) => i.valueType === 'SCOORD3D');
  const out: Finding = {
    trackingUid: trackingUid.uid,
    trackingId: textOf(items, RADNODE.DetectorTrackingId) ?? trackingText,
    concept: toCode(finding.code),
    probability: probability.value,
  };
  if (site?.valueType === 'CODE') out.site = toCode(site.code);
  if (region) {
    const key = place2D(region);
    if (longAxis && shortAxis) {
      const [a, b, c, d] = [...longAxis.scoord.data, ...shortAxis.scoord.data].reduce<number[][]>((acc, v, i) => (i % 2 ? acc[acc.length - 1].push(v) : acc.push([v]), acc), []);
      key.shape = 'bidirectional';
      key.points = [a, b, c, d].map(([x, y]): [number, number] => [x, y]);
    }
    out.place =
      center?.valueType === 'SCOORD3D'
        ? { frameOfReferenceUID: center.frameOfReferenceUID, point: [center.data[0], center.data[1], center.data[2]], keyImage: key }
        : key;
  }
  if (measurements.length) out.measurements = measurements;
  if (evaluations.length) out.evaluations = evaluations;
  return out;
}

/** A finding without a place: a Qualitative Evaluations CODE (121071, DCM, "Finding") with its properties. */
function readPlaceless(item: CodeItem): Finding {
  const items = item.children ?? [];
  const trackingUid = child(items, DCM.TrackingUniqueIdentifier);
  const trackingId = textOf(items, DCM.TrackingIdentifier);
  const probability = child(items, DCM.CertaintyOfFinding);
  if (trackingUid?.valueType !== 'UIDREF' || trackingId === undefined) throw invalid('a finding without a place lacks its tracking identifier or UID');
  if (probability?.valueType !== 'NUM') throw invalid('a finding without a place lacks its probability', { trackingUid: trackingUid.uid });
  const site = child(items, SCT.FindingSite);
  const measurements: Measurement[] = items.flatMap((i) => (i.valueType === 'NUM' && i !== probability ? [{ concept: toCode(i.concept), value: i.value, unit: i.unit.value }] : []));
  const evaluations: Evaluation[] = items.flatMap((i) => (i.valueType === 'CODE' && i.relationship === 'HAS PROPERTIES' ? [{ concept: toCode(i.concept), value: toCode(i.code) }] : []));
  const out: Finding = { trackingUid: trackingUid.uid, trackingId, concept: toCode(item.code), probability: probability.value };
  if (site?.valueType === 'CODE') out.site = toCode(site.code);
  if (measurements.length) out.measurements = measurements;
  if (evaluations.length) out.evaluations = evaluations;
  return out;
}

/** The study-level score TEXT: a finite decimal number, written by Number::toString. */
function readScore(item: ContentItem | undefined): { score: number; algorithm: ContentItem[] } {
  const text = item?.valueType === 'TEXT' ? item.text.trim() : '';
  const score = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(score)) throw invalid('the report has no study-level score', { text });
  return { score, algorithm: item?.children ?? [] };
}

export function readFindings(bytes: Uint8Array): ReadReport {
  const { dataset } = readPart10(bytes);
  const root = decodeDocumentContent(dataset);
  if (root.valueType !== 'CONTAINER' || !sameCode(root.concept, DCM.ImagingMeasurementReport)) {
    throw invalid('not a TID 1500 Imaging Measurement Report');
  }
  const measurementsContainer = child(root.children, DCM.ImagingMeasurements);
  const groups = (measurementsContainer?.children ?? []).filter((c): c is ContainerItem => c.valueType === 'CONTAINER' && sameCode(c.concept, DCM.MeasurementGroup));
  const evals = child(root.children, DCM.QualitativeEvaluations);
  const evalItems = evals?.children ?? [];
  const { score, algorithm } = readScore(child(evalItems, RADNODE.StudyLevelScore));
  const params = algorithm.filter((i) => sameCode(i.concept, DCM.AlgorithmParameters)).map((i) => (i.valueType === 'TEXT' ? i.text : ''));
  const sha = params.find((p) => p.startsWith(MODEL_SHA256_PARAMETER))?.slice(MODEL_SHA256_PARAMETER.length);
  const name = textOf(algorithm, DCM.AlgorithmName);
  const version = textOf(algorithm, DCM.AlgorithmVersion);
  if (!name || !version || !sha) throw invalid('the study-level score lacks its algorithm identification');
  const priorityItem = child(evalItems, RADNODE.TriagePriority);
  const priority = (Object.keys(RADNODE.priority) as Priority[]).find((p) => priorityItem?.valueType === 'CODE' && sameCode(priorityItem.code, RADNODE.priority[p]));
  if (!priority) throw invalid('the report has no triage priority');
  const codes = evalItems.filter((i): i is CodeItem => i.valueType === 'CODE');
  const choice = child(evalItems, RADNODE.SeriesChoice);
  return {
    detector: { id: name, version, modelSha256: sha },
    studyInstanceUID: str(dataset, 'StudyInstanceUID') ?? '',
    studyScore: score,
    priority,
    findings: [...groups.map(readGroup), ...codes.filter((i) => sameCode(i.concept, DCM.Finding)).map(readPlaceless)],
    skipped: codes
      .filter((i) => sameCode(i.concept, RADNODE.SeriesNotProcessed))
      .map((i): SkippedSeries => {
        const uid = child(i.children, DCM.SeriesInstanceUID);
        return {
          seriesInstanceUID: uid?.valueType === 'UIDREF' ? uid.uid : '',
          reason: toCode(i.code),
          detail: textOf(i.children, DCM.Comment) ?? '',
        };
      }),
    ...(choice?.valueType === 'TEXT' ? { seriesChoice: choice.text } : {}),
  };
}
