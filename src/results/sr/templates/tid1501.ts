/**
 * TID 1501 Measurement and Qualitative Evaluation Group (PS3.16,
 * https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_1501.html): measurements with no image
 * region, used for the study-level score. OHIF shows such a group through its non-geometric path
 * (`_processNonGeometricallyDefinedMeasurement`, extensions/cornerstone-dicom-sr/src/getSopClassHandlerModule.ts).
 */
import { DCM } from '../codes.ts';
import type { ContainerItem } from '../content-items.ts';
import { groupHead, groupTail, type MeasurementGroupInput } from './group-common.ts';

export function tid1501MeasurementGroup(g: MeasurementGroupInput): ContainerItem {
  return {
    valueType: 'CONTAINER',
    relationship: 'CONTAINS',
    concept: DCM.MeasurementGroup,
    continuity: 'SEPARATE',
    templateId: '1501',
    children: [...groupHead(g), ...groupTail(g)],
  };
}
