/**
 * SR Document Content Module attributes → content tree: the inverse of encode.ts (highdicom's `from_dataset`).
 * Lenient about what it does not know (it returns what it finds); the validator judges.
 */
import { num, nums, seq, str, type DicomDataset } from '../dicom-io.ts';
import type { CodedConcept } from './codes.ts';
import type { ContentItem, GraphicType2D, GraphicType3D, RelationshipType } from './content-items.ts';

export function decodeCode(ds: DicomDataset | undefined): CodedConcept | undefined {
  if (!ds) return undefined;
  const value = str(ds, 'CodeValue') ?? str(ds, 'LongCodeValue') ?? str(ds, 'URNCodeValue');
  const scheme = str(ds, 'CodingSchemeDesignator') ?? '';
  const meaning = str(ds, 'CodeMeaning') ?? '';
  return value === undefined ? undefined : { value, scheme, meaning };
}

const NO_CONCEPT: CodedConcept = { value: '', scheme: '', meaning: '' };

export function decodeItem(ds: DicomDataset): ContentItem {
  const relationship = str(ds, 'RelationshipType') as RelationshipType | undefined;
  const concept = decodeCode(seq(ds, 'ConceptNameCodeSequence')[0]);
  const children = seq(ds, 'ContentSequence').map(decodeItem);
  const common = { ...(relationship ? { relationship } : {}), ...(children.length ? { children } : {}) };
  const named = { ...common, concept: concept ?? NO_CONCEPT };
  const valueType = str(ds, 'ValueType');
  switch (valueType) {
    case 'CONTAINER': {
      const templateId = str(seq(ds, 'ContentTemplateSequence')[0], 'TemplateIdentifier');
      return { ...named, valueType, continuity: str(ds, 'ContinuityOfContent') === 'CONTINUOUS' ? 'CONTINUOUS' : 'SEPARATE', ...(templateId ? { templateId } : {}) };
    }
    case 'CODE':
      return { ...named, valueType, code: decodeCode(seq(ds, 'ConceptCodeSequence')[0]) ?? NO_CONCEPT };
    case 'TEXT':
      return { ...named, valueType, text: str(ds, 'TextValue') ?? '' };
    case 'UIDREF':
      return { ...named, valueType, uid: str(ds, 'UID') ?? '' };
    case 'NUM': {
      const mv = seq(ds, 'MeasuredValueSequence')[0];
      const value = num(mv, 'FloatingPointValue') ?? num(mv, 'NumericValue') ?? Number.NaN;
      return { ...named, valueType, value, unit: decodeCode(seq(mv, 'MeasurementUnitsCodeSequence')[0]) ?? NO_CONCEPT };
    }
    case 'IMAGE': {
      const ref = seq(ds, 'ReferencedSOPSequence')[0];
      const frame = num(ref, 'ReferencedFrameNumber');
      return {
        ...common,
        ...(concept ? { concept } : {}),
        valueType,
        sopClassUID: str(ref, 'ReferencedSOPClassUID') ?? '',
        sopInstanceUID: str(ref, 'ReferencedSOPInstanceUID') ?? '',
        ...(frame !== undefined ? { frame } : {}),
      };
    }
    case 'SCOORD':
      return { ...named, valueType, graphicType: (str(ds, 'GraphicType') ?? 'POINT') as GraphicType2D, data: nums(ds, 'GraphicData') };
    case 'SCOORD3D':
      return {
        ...named,
        valueType,
        graphicType: (str(ds, 'GraphicType') ?? 'POINT') as GraphicType3D,
        data: nums(ds, 'GraphicData'),
        frameOfReferenceUID: str(ds, 'ReferencedFrameOfReferenceUID') ?? '',
      };
    default:
      // Value types radnode never writes (DATE, PNAME, COMPOSITE, WAVEFORM, ...): keep the concept as TEXT-less item.
      return { ...named, valueType: 'TEXT', text: `[${valueType ?? 'no value type'}]` };
  }
}

/** The document's root container: its attributes sit at the top level of the dataset. */
export function decodeDocumentContent(ds: DicomDataset): ContentItem {
  const { RelationshipType: _ignored, ...rest } = ds;
  return decodeItem(rest);
}

export function sameCode(a: CodedConcept | undefined, b: CodedConcept): boolean {
  return a !== undefined && a.value === b.value && a.scheme === b.scheme;
}
