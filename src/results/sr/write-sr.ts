/**
 * The radnode SR: a Comprehensive 3D SR (PS3.3 §A.35.13) whose content is a TID 1500 Measurement Report: one TID 1410
 * measurement group per finding with a place, and everything without an image region in the report-level
 * Qualitative Evaluations (TID 1500 row 12): the triage priority, findings without a place and skipped series as
 * row 13 CODEs, the study-level score with its algorithm identification as a row 14 TEXT. A measurement group
 * without an image region makes stock OHIF 3.13.2 fail the whole viewer (see templates/tid1500.ts), and a site's
 * own OHIF must show radnode's SR unmodified.
 */
import { RadnodeError } from '../../errors.ts';
import { writePart10, type DicomDataset } from '../dicom-io.ts';
import { isPlace3D, type DetectorResult, type Finding, type Place2D, type Place3D, type SkippedSeries } from '../findings.ts';
import {
  contentDateTime,
  contributingEquipment,
  copyPatientAndStudy,
  deviceUid,
  generalEquipment,
  implementationClassUid,
  lo,
  objectUid,
  seriesNumbers,
  sopCommon,
  SOP_CLASS,
  srSeriesUid,
  type SourceHeader,
} from '../modules.ts';
import type { ResultObject, SourceInstance, TrackingIdentifierStyle, WriteContext } from '../objects.ts';
import { DCM, procedureForModality, RADNODE, SCT, UCUM, ucumUnit } from './codes.ts';
import type { CodeItem, ContainerItem, ContentItem, ImageItem, NumItem, TextItem } from './content-items.ts';
import { encodeDocumentContent } from './encode.ts';
import { checkCode, checkFinite, checkUid } from './templates/checks.ts';
import { axisLengthMm, imageReference, inferredFrom, scoord3DPoint, scoordRegion } from './templates/geometry.ts';
import type { MeasurementGroupInput } from './templates/group-common.ts';
import { tid1410PlanarRoiGroup } from './templates/tid1410.ts';
import { tid1500MeasurementReport, type QualitativeEvaluationItem } from './templates/tid1500.ts';
import { tid300Measurement } from './templates/tid300.ts';
import { tid4019AlgorithmIdentification, type AlgorithmIdentification } from './templates/tid4019.ts';
import { tid4108TrackingIdentifier } from './templates/tid4108.ts';

/** OHIF's tool-name prefix (cornerstone3D adapters, Cornerstone3D/cornerstone3DTag.js). */
// Case matters: OHIF 3.13.2's adapters compare with startsWith('Cornerstone3DTools@^0.1.0:<Tool>') (MeasurementReport
// isValidCornerstoneTrackingIdentifier); the lower-case spelling was listed but never hydrated (issue 8).
export const CORNERSTONE3D_TAG = 'Cornerstone3DTools@^0.1.0';
/** Algorithm parameter that carries the model hash (TID 4019 row 3) so the reader recovers the detector identity. */
export const MODEL_SHA256_PARAMETER = 'modelSha256=';

/** The OHIF tool that draws a region like this one (adapter files in cornerstone adapters src/adapters/Cornerstone3D/). */
export function cornerstoneToolFor(place: Place2D): string {
  switch (place.shape) {
    case 'point':
      return 'Probe';
    case 'ellipse':
      return 'EllipticalROI';
    case 'box':
      return 'RectangleROI';
    case 'polyline':
      return place.points.length === 2 ? 'Length' : 'PlanarFreehandROI';
    case 'bidirectional':
      return 'Bidirectional';
  }
}

/** Pixel spacing of a source image in mm (PS3.3 §10.7.1.3: row spacing first), keyed by SOP Instance UID. */
export type SpacingBySop = Map<string, { rowMm: number; columnMm: number }>;

function sourceFor(sources: SourceInstance[], sopInstanceUID: string): SourceInstance {
  const s = sources.find((x) => x.sopInstanceUID === sopInstanceUID);
  if (!s) {
    // OHIF attaches a measurement only to an image it has loaded (peers.md §3 D): a reference outside the inputs
    // would be unresolvable.
    throw new RadnodeError('RN_RESULT_INVALID', 'a finding refers to an image that is not among the sources', { details: { sopInstanceUID } });
  }
  return s;
}

function imageOf(sources: SourceInstance[], place: Place2D): ImageItem {
  const s = sourceFor(sources, place.sopInstanceUID);
  return imageReference(s.sopClassUID, s.sopInstanceUID, place.frame);
}

/** A finding with a place: a TID 1410 group whose region is on its (key) image. */
function findingGroup(
  f: Finding & { place: Place2D | Place3D },
  sources: SourceInstance[],
  algorithm: AlgorithmIdentification,
  style: TrackingIdentifierStyle,
  spacing: SpacingBySop,
): ContainerItem {
  const key = isPlace3D(f.place) ? f.place.keyImage : f.place;
  const useTool = style === 'cornerstone3D';
  const region = scoordRegion(DCM.ImageRegion, key.shape, key.points, imageOf(sources, key));
  const probability = tid300Measurement(DCM.CertaintyOfFinding, f.probability, UCUM.probability);
  // OHIF's hydration takes the group's FIRST NUM and needs a SCOORD inferred from it (cornerstone adapters
  // MeasurementReport.getSetupMeasurementData): the axes of a bidirectional finding, else the probability.
  const geometryNums: NumItem[] = [];
  if (key.shape === 'bidirectional') {
    const s = spacing.get(key.sopInstanceUID);
    if (!s) throw new RadnodeError('RN_RESULT_INVALID', 'a bidirectional finding needs the pixel spacing of its image', { details: { sopInstanceUID: key.sopInstanceUID } });
    const image = imageOf(sources, key);
    const [a, b, c, d] = key.points;
    geometryNums.push(
      tid300Measurement(SCT.LongAxis, axisLengthMm(a, b, s), UCUM.mm, [inferredFrom(scoordRegion(DCM.ImageRegion, 'polyline', [a, b], image))]),
      tid300Measurement(SCT.ShortAxis, axisLengthMm(c, d, s), UCUM.mm, [inferredFrom(scoordRegion(DCM.ImageRegion, 'polyline', [c, d], image))]),
    );
  } else if (useTool) {
    probability.children = [inferredFrom(region)];
  }
  const g: MeasurementGroupInput = {
    trackingIdentifier: useTool ? `${CORNERSTONE3D_TAG}:${cornerstoneToolFor(key)}` : f.trackingId,
    trackingUniqueIdentifier: f.trackingUid,
    finding: f.concept,
    findingSite: f.site,
    algorithm,
    measurements: [...geometryNums, probability, ...(f.measurements ?? []).map((m) => tid300Measurement(m.concept, m.value, ucumUnit(m.unit)))],
    evaluations: f.evaluations ?? [],
    extra: useTool ? [{ valueType: 'TEXT', relationship: 'CONTAINS', concept: RADNODE.DetectorTrackingId, text: f.trackingId }] : [],
  };
  return tid1410PlanarRoiGroup({
    ...g,
    region,
    ...(isPlace3D(f.place) ? { center3D: scoord3DPoint(DCM.Center, f.place.point, f.place.frameOfReferenceUID) } : {}),
  });
}

/**
 * A finding without a place as a TID 1500 row 13 CODE: (121071, DCM, "Finding") = its concept. Its tracking rows
 * (TID 4108) are HAS OBS CONTEXT as in a group; the finding site is HAS CONCEPT MOD (TID 1419 row 1); probability,
 * measurements and evaluations are HAS PROPERTIES (PS3.3 Table A.35.13-2 allows CODE → HAS PROPERTIES → NUM/CODE).
 * Not a TID 1501 group: OHIF 3.13.2 fails on a group without an image region (templates/tid1500.ts).
 */
function placelessFinding(f: Finding): CodeItem {
  checkCode(f.concept, 'finding');
  const props = (i: NumItem | CodeItem): ContentItem => ({ ...i, relationship: 'HAS PROPERTIES' });
  const children: ContentItem[] = [...tid4108TrackingIdentifier(f.trackingId, f.trackingUid)];
  if (f.site) {
    checkCode(f.site, 'findingSite');
    children.push({ valueType: 'CODE', relationship: 'HAS CONCEPT MOD', concept: SCT.FindingSite, code: f.site });
  }
  children.push(props(tid300Measurement(DCM.CertaintyOfFinding, f.probability, UCUM.probability)));
  for (const m of f.measurements ?? []) children.push(props(tid300Measurement(m.concept, m.value, ucumUnit(m.unit))));
  for (const [i, e] of (f.evaluations ?? []).entries()) {
    checkCode(e.concept, `evaluations[${i}].concept`);
    checkCode(e.value, `evaluations[${i}].value`);
    children.push({ valueType: 'CODE', relationship: 'HAS PROPERTIES', concept: e.concept, code: e.value });
  }
  return { valueType: 'CODE', relationship: 'CONTAINS', concept: DCM.Finding, code: f.concept, children };
}

/**
 * The study-level score as a TID 1500 row 14 TEXT (rows 13–14 allow no NUM): the shortest decimal that reads back
 * as the same double (ECMAScript Number::toString), with the algorithm (TID 4019) as HAS CONCEPT MOD, as a TID 1501
 * group would have carried it.
 */
/** Row 14 TEXT: why the analysed series was chosen, with the series it names (one per source series). */
function seriesChoiceText(why: string, sourceSeries: string[]): TextItem {
  for (const uid of sourceSeries) checkUid(uid, 'sourceSeries');
  return {
    valueType: 'TEXT',
    relationship: 'CONTAINS',
    concept: RADNODE.SeriesChoice,
    text: why,
    children: sourceSeries.map((uid) => ({ valueType: 'UIDREF' as const, relationship: 'HAS PROPERTIES' as const, concept: DCM.SeriesInstanceUID, uid })),
  };
}

export function studyScoreText(score: number, algorithm: AlgorithmIdentification): TextItem {
  checkFinite(score, 'studyScore');
  return { valueType: 'TEXT', relationship: 'CONTAINS', concept: RADNODE.StudyLevelScore, text: String(score), children: tid4019AlgorithmIdentification(algorithm) };
}

function evidence(sources: SourceInstance[], studyInstanceUID: string): DicomDataset[] {
  const bySeries = new Map<string, SourceInstance[]>();
  for (const s of sources) bySeries.set(s.seriesInstanceUID, [...(bySeries.get(s.seriesInstanceUID) ?? []), s]);
  return [
    {
      StudyInstanceUID: studyInstanceUID,
      ReferencedSeriesSequence: [...bySeries].map(([series, list]) => ({
        SeriesInstanceUID: series,
        ReferencedSOPSequence: list.map((s) => ({ ReferencedSOPClassUID: s.sopClassUID, ReferencedSOPInstanceUID: s.sopInstanceUID })),
      })),
    },
  ];
}

/** A skipped series as a report-level qualitative evaluation: the coded reason, with the series and the detail. */
function notProcessed(k: SkippedSeries): CodeItem {
  checkCode(k.reason, 'skipped.reason');
  checkUid(k.seriesInstanceUID, 'skipped.seriesInstanceUID');
  return {
    valueType: 'CODE',
    relationship: 'CONTAINS',
    concept: RADNODE.SeriesNotProcessed,
    code: k.reason,
    children: [
      { valueType: 'UIDREF', relationship: 'HAS PROPERTIES', concept: DCM.SeriesInstanceUID, uid: k.seriesInstanceUID },
      ...(k.detail ? [{ valueType: 'TEXT' as const, relationship: 'HAS PROPERTIES' as const, concept: DCM.Comment, text: k.detail }] : []),
    ],
  };
}

export function buildSrContent(
  result: DetectorResult,
  sources: SourceInstance[],
  ctx: WriteContext,
  modality: string | undefined,
  spacing: SpacingBySop = new Map(),
): ContainerItem {
  const { detector } = result;
  const style = ctx.srOptions?.trackingIdentifierStyle ?? 'detector';
  const algorithm: AlgorithmIdentification = {
    name: detector.id,
    version: detector.version,
    parameters: [`${MODEL_SHA256_PARAMETER}${detector.modelSha256}`],
  };
  const priority: CodeItem = { valueType: 'CODE', relationship: 'CONTAINS', concept: RADNODE.TriagePriority, code: RADNODE.priority[result.priority] };
  const placed = result.findings.filter((f): f is Finding & { place: Place2D | Place3D } => f.place !== undefined);
  const placeless = result.findings.filter((f) => f.place === undefined);
  // Rows 13 (CODE) before row 14 (TEXT), in template order.
  const qualitativeEvaluations: QualitativeEvaluationItem[] = [
    priority,
    ...placeless.map(placelessFinding),
    ...result.skipped.map((k) => notProcessed(k)),
    ...(result.seriesChoice ? [seriesChoiceText(result.seriesChoice, result.sourceSeries)] : []),
    studyScoreText(result.studyScore, algorithm),
  ];
  return tid1500MeasurementReport({
    observer: { uid: deviceUid(ctx.node, detector), name: detector.id, manufacturer: ctx.node.manufacturer, modelName: `${detector.id} ${detector.version}` },
    procedureReported: [procedureForModality(modality)],
    imageLibrary: sources.map((s) => ({ ...imageReference(s.sopClassUID, s.sopInstanceUID), relationship: 'CONTAINS' })),
    measurementGroups: placed.map((f) => findingGroup(f, sources, algorithm, style, spacing)),
    qualitativeEvaluations,
  });
}

/** What write.ts works out once per result: pixel spacing of bidirectional key images, and the SR's Series Number. */
export type SrExtras = { spacing?: SpacingBySop; seriesNumber?: number };

export function writeSr(result: DetectorResult, sources: SourceInstance[], first: SourceHeader, ctx: WriteContext, extras: SrExtras = {}): ResultObject {
  const { date, time } = contentDateTime(ctx);
  const sopInstanceUID = objectUid(ctx.node, ctx.inputKey, 'sr', 0);
  const seriesInstanceUID = srSeriesUid(ctx.node, result.studyInstanceUID, result.detector.id);
  const content: ContentItem = buildSrContent(result, sources, ctx, typeof first.dataset.Modality === 'string' ? first.dataset.Modality : undefined, extras.spacing);
  const dataset: DicomDataset = {
    ...sopCommon(ctx, SOP_CLASS.comprehensive3DSR, sopInstanceUID),
    ...copyPatientAndStudy(first.dataset, result.studyInstanceUID),
    // PS3.3 §C.17.1 SR Document Series
    Modality: 'SR',
    SeriesInstanceUID: seriesInstanceUID,
    // After the source series (modules.ts seriesNumbers); without the sources' numbers, radnode's usual 99xx.
    SeriesNumber: extras.seriesNumber ?? seriesNumbers(result.detector.id).sr,
    SeriesDescription: lo(`radnode ${result.detector.id} AI report`),
    ReferencedPerformedProcedureStepSequence: [],
    ...generalEquipment(ctx.node),
    // PS3.3 §C.17.2 SR Document General
    InstanceNumber: ctx.srInstanceNumber,
    CompletionFlag: 'COMPLETE',
    // IHE AIR: results of an algorithm are never verified by a person at creation.
    VerificationFlag: 'UNVERIFIED',
    ContentDate: date,
    ContentTime: time,
    ContributingEquipmentSequence: contributingEquipment(ctx, result.detector),
    CurrentRequestedProcedureEvidenceSequence: evidence(sources, result.studyInstanceUID),
    PerformedProcedureCodeSequence: [],
    ...(ctx.predecessor
      ? {
          PredecessorDocumentsSequence: [
            {
              StudyInstanceUID: ctx.predecessor.studyInstanceUID,
              ReferencedSeriesSequence: [
                {
                  SeriesInstanceUID: ctx.predecessor.seriesInstanceUID,
                  ReferencedSOPSequence: [{ ReferencedSOPClassUID: ctx.predecessor.sopClassUID, ReferencedSOPInstanceUID: ctx.predecessor.sopInstanceUID }],
                },
              ],
            },
          ],
        }
      : {}),
    ...encodeDocumentContent(content as ContainerItem),
  };
  return {
    kind: 'sr',
    studyInstanceUID: result.studyInstanceUID,
    seriesInstanceUID,
    sopInstanceUID,
    sopClassUID: SOP_CLASS.comprehensive3DSR,
    instanceNumber: ctx.srInstanceNumber,
    bytes: writePart10(dataset, implementationClassUid(ctx.node)),
    fingerprint: `${date} ${time}`,
  };
}
