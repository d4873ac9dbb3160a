/**
 * TID 300 Measurement (PS3.16, https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_300.html):
 * a NUM with a UCUM unit, optionally with algorithm identification (TID 4019) and the region it was inferred from.
 */
import type { CodedConcept } from '../codes.ts';
import type { ContentItem, NumItem } from '../content-items.ts';
import { checkCode, checkFinite } from './checks.ts';

export function tid300Measurement(concept: CodedConcept, value: number, unit: CodedConcept, children: ContentItem[] = []): NumItem {
  checkCode(concept, 'measurement.concept');
  checkCode(unit, 'measurement.unit');
  checkFinite(value, `measurement ${concept.meaning}`);
  return { valueType: 'NUM', relationship: 'CONTAINS', concept, value, unit, ...(children.length ? { children } : {}) };
}
