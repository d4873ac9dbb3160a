/**
 * TID 1410 Planar ROI Measurements and Qualitative Evaluations (PS3.16,
 * https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_1410.html): a finding with its region on
 * one image (SCOORD with an IMAGE child, SELECTED FROM). For a finding placed in the patient the key-image SCOORD
 * comes first and the SCOORD3D second: OHIF takes the first graphic item of a group as its geometry
 * (`_processTID1410Measurement`, getSopClassHandlerModule.ts) and its SCOORD3D display is unreliable (OHIF issue 5081).
 */
import { RadnodeError } from '../../../errors.ts';
import { DCM } from '../codes.ts';
import type { ContainerItem, Scoord3DItem, ScoordItem } from '../content-items.ts';
import { groupHead, groupTail, type MeasurementGroupInput } from './group-common.ts';

export type PlanarGroupInput = MeasurementGroupInput & { region: ScoordItem; center3D?: Scoord3DItem };

export function tid1410PlanarRoiGroup(g: PlanarGroupInput): ContainerItem {
  const image = g.region.children?.find((c) => c.valueType === 'IMAGE');
  if (!image || image.relationship !== 'SELECTED FROM') {
    // PS3.3 §C.18.6: a SCOORD's coordinates mean nothing without the image they are on; OHIF needs it too.
    throw new RadnodeError('RN_RESULT_INVALID', 'region needs an IMAGE child with relationship SELECTED FROM', { details: { argument: 'region' } });
  }
  return {
    valueType: 'CONTAINER',
    relationship: 'CONTAINS',
    concept: DCM.MeasurementGroup,
    continuity: 'SEPARATE',
    templateId: '1410',
    children: [...groupHead(g), g.region, ...(g.center3D ? [g.center3D] : []), ...groupTail(g)],
  };
}
