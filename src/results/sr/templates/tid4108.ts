/**
 * TID 4108 Tracking Identifier (PS3.16, https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_4108.html).
 * Both rows are written: OHIF reads 112039 and 112040 unconditionally (extensions/cornerstone-dicom-sr/src/
 * getSopClassHandlerModule.ts, `_getMeasurements`), so in practice both are mandatory. The UID is the caller's
 * deterministic one; this builder never makes a UID.
 */
import { RadnodeError } from '../../../errors.ts';
import { DCM } from '../codes.ts';
import type { ContentItem } from '../content-items.ts';
import { checkUid } from './checks.ts';

export function tid4108TrackingIdentifier(trackingIdentifier: string, trackingUniqueIdentifier: string): ContentItem[] {
  // TEXT is UT in an SR content item, but 64 characters keeps it inside OHIF's label field and LO-sized viewers.
  if (trackingIdentifier.length === 0 || trackingIdentifier.length > 64) {
    throw new RadnodeError('RN_RESULT_INVALID', `trackingIdentifier must be 1..64 characters, got ${trackingIdentifier.length}`, {
      details: { argument: 'trackingIdentifier' },
    });
  }
  checkUid(trackingUniqueIdentifier, 'trackingUniqueIdentifier');
  return [
    { valueType: 'TEXT', relationship: 'HAS OBS CONTEXT', concept: DCM.TrackingIdentifier, text: trackingIdentifier },
    { valueType: 'UIDREF', relationship: 'HAS OBS CONTEXT', concept: DCM.TrackingUniqueIdentifier, uid: trackingUniqueIdentifier },
  ];
}
