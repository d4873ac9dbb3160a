/**
 * Rows shared by the TID 1500 measurement-group templates (TID 1410, 1411; TID 1501 too, which radnode does not
 * write: a group without an image region crashes OHIF 3.13.2, see tid1500.ts): tracking (TID 4108), the finding,
 * algorithm identification (TID 4019), finding site (TID 1419 row 1), measurements (TID 300) and qualitative
 * evaluations. Order follows highdicom's `_MeasurementsAndQualitativeEvaluations`.
 */
import { DCM, SCT, type CodedConcept } from '../codes.ts';
import type { ContentItem, NumItem } from '../content-items.ts';
import { checkCode } from './checks.ts';
import { tid4019AlgorithmIdentification, type AlgorithmIdentification } from './tid4019.ts';
import { tid4108TrackingIdentifier } from './tid4108.ts';

export type QualitativeEvaluation = { concept: CodedConcept; value: CodedConcept };

export type MeasurementGroupInput = {
  trackingIdentifier: string;
  trackingUniqueIdentifier: string;
  finding?: CodedConcept;
  findingSite?: CodedConcept;
  algorithm: AlgorithmIdentification;
  measurements: NumItem[];
  evaluations: QualitativeEvaluation[];
  /** Extra CONTAINS items after the evaluations (private rows such as the detector's own tracking id). */
  extra?: ContentItem[];
};

export function groupHead(g: MeasurementGroupInput): ContentItem[] {
  const items: ContentItem[] = [...tid4108TrackingIdentifier(g.trackingIdentifier, g.trackingUniqueIdentifier)];
  if (g.finding) {
    checkCode(g.finding, 'finding');
    items.push({ valueType: 'CODE', relationship: 'CONTAINS', concept: DCM.Finding, code: g.finding });
  }
  items.push(...tid4019AlgorithmIdentification(g.algorithm));
  if (g.findingSite) {
    checkCode(g.findingSite, 'findingSite');
    items.push({ valueType: 'CODE', relationship: 'HAS CONCEPT MOD', concept: SCT.FindingSite, code: g.findingSite });
  }
  return items;
}

export function groupTail(g: MeasurementGroupInput): ContentItem[] {
  const items: ContentItem[] = [...g.measurements];
  for (const [i, e] of g.evaluations.entries()) {
    checkCode(e.concept, `evaluations[${i}].concept`);
    checkCode(e.value, `evaluations[${i}].value`);
    items.push({ valueType: 'CODE', relationship: 'CONTAINS', concept: e.concept, code: e.value });
  }
  return [...items, ...(g.extra ?? [])];
}
