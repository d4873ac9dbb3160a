/**
 * Content tree → SR Document Content Module attributes (PS3.3 §C.17.3) in dcmjs naturalized form.
 */
import { formatDS, type DicomDataset } from '../dicom-io.ts';
import type { CodedConcept } from './codes.ts';
import type { ContainerItem, ContentItem } from './content-items.ts';

export function codeSequenceItem(c: CodedConcept): DicomDataset {
  return { CodeValue: c.value, CodingSchemeDesignator: c.scheme, CodeMeaning: c.meaning };
}

function encodeItem(item: ContentItem): DicomDataset {
  const ds: DicomDataset = {};
  if (item.relationship) ds.RelationshipType = item.relationship;
  ds.ValueType = item.valueType;
  if (item.concept) ds.ConceptNameCodeSequence = [codeSequenceItem(item.concept)];
  switch (item.valueType) {
    case 'CONTAINER':
      ds.ContinuityOfContent = item.continuity;
      if (item.templateId) ds.ContentTemplateSequence = [{ MappingResource: 'DCMR', TemplateIdentifier: item.templateId }];
      break;
    case 'CODE':
      ds.ConceptCodeSequence = [codeSequenceItem(item.code)];
      break;
    case 'TEXT':
      ds.TextValue = item.text;
      break;
    case 'UIDREF':
      ds.UID = item.uid;
      break;
    case 'NUM':
      ds.MeasuredValueSequence = [
        {
          MeasurementUnitsCodeSequence: [codeSequenceItem(item.unit)],
          NumericValue: formatDS(item.value),
          // PS3.3 §C.18.1: FD beside the 16-character DS so the value reads back exactly.
          FloatingPointValue: item.value,
        },
      ];
      break;
    case 'IMAGE':
      ds.ReferencedSOPSequence = [
        {
          ReferencedSOPClassUID: item.sopClassUID,
          ReferencedSOPInstanceUID: item.sopInstanceUID,
          ...(item.frame !== undefined ? { ReferencedFrameNumber: String(item.frame) } : {}),
        },
      ];
      break;
    case 'SCOORD':
      ds.GraphicType = item.graphicType;
      ds.GraphicData = item.data;
      break;
    case 'SCOORD3D':
      ds.GraphicType = item.graphicType;
      ds.GraphicData = item.data;
      ds.ReferencedFrameOfReferenceUID = item.frameOfReferenceUID;
      break;
  }
  if (item.children && item.children.length > 0) ds.ContentSequence = item.children.map(encodeItem);
  return ds;
}

/** The root container's attributes go into the top level of the SR dataset (PS3.3 §C.17.3, Table C.17-6). */
export function encodeDocumentContent(root: ContainerItem): DicomDataset {
  const ds = encodeItem(root);
  delete ds.RelationshipType;
  return ds;
}
