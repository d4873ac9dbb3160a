/**
 * TID 1500 Measurement Report (PS3.16, https://dicom.nema.org/medical/dicom/current/output/chtml/part16/chapter_A.html#sect_TID_1500),
 * with its included templates: TID 1204 language (row 2), TID 1001/1002/1004 observer context with the algorithm as
 * device observer (row 3), procedure reported (row 4), TID 1600 Image Library (row 5), Imaging Measurements (row 6)
 * and Qualitative Evaluations (row 12).
 *
 * OHIF only displays an SR whose root concept is (126000, DCM) and which has an Image Library with an Image Library
 * Group (getSopClassHandlerModule.ts, `_getReferencedImagesList`), and hydrates only with template identifier 1500
 * (cornerstone adapters MeasurementReport.ts). All three are always written here.
 *
 * Every measurement group must have an image region. OHIF 3.13.2 (extensions/cornerstone-dicom-sr/src/
 * getSopClassHandlerModule.ts) turns a group without SCOORD/SCOORD3D, and without a NUM INFERRED FROM one, into a
 * measurement with `coords: []` (`_processNonGeometricallyDefinedMeasurement`); `_checkIfCanAddMeasurementsToDisplaySet`
 * then reads `measurement.coords[0].ReferencedSOPSequence`, the TypeError escapes `_load`, and the whole viewer route
 * shows "Something went wrong". A TID 1501 group is valid DICOM but fatal there, so content with no image region
 * (the study-level score, findings without a place) goes into Qualitative Evaluations (row 12), which OHIF does not
 * read. Rows 13–14 allow only CODE and TEXT there (PS3.16 TID 1500; pixelmed 20220618 checks the same rows).
 * Imaging Measurements (row 6) is written only when there is a group: row 7 is 1-n, and row 6 is needed only
 * when row 12 is absent (row 12 is always written).
 */
import { RadnodeError } from '../../../errors.ts';
import { DCM, LANGUAGE_EN_US, type CodedConcept } from '../codes.ts';
import type { CodeItem, ContainerItem, ContentItem, ImageItem, TextItem } from '../content-items.ts';
import { checkCode, checkUid } from './checks.ts';

export type DeviceObserver = { uid: string; name: string; manufacturer: string; modelName: string };

/** TID 1500 row 13 (CODE, any concept name, optional row 13b modifiers) and row 14 (TEXT, any concept name). */
export type QualitativeEvaluationItem = CodeItem | TextItem;

export type MeasurementReportInput = {
  observer: DeviceObserver;
  procedureReported: CodedConcept[];
  /** TID 1600: every image the report is about (OHIF loads the display sets of these). */
  imageLibrary: ImageItem[];
  /** TID 1410 groups, each with its image region (see above). */
  measurementGroups: ContainerItem[];
  /** Row 12; must not be empty (it carries at least the triage priority in radnode's SR). */
  qualitativeEvaluations: QualitativeEvaluationItem[];
};

/** TID 1204 Language of Content Item and Descendants. */
export function tid1204Language(language: CodedConcept = LANGUAGE_EN_US): ContentItem {
  return { valueType: 'CODE', relationship: 'HAS CONCEPT MOD', concept: DCM.LanguageOfContentItemAndDescendants, code: language };
}

/** TID 1002 Observer Context with TID 1004 Device Observer Identifying Attributes. */
export function tid1004DeviceObserver(o: DeviceObserver): ContentItem[] {
  checkUid(o.uid, 'observer.uid');
  return [
    { valueType: 'CODE', relationship: 'HAS OBS CONTEXT', concept: DCM.ObserverType, code: DCM.Device },
    { valueType: 'UIDREF', relationship: 'HAS OBS CONTEXT', concept: DCM.DeviceObserverUID, uid: o.uid },
    { valueType: 'TEXT', relationship: 'HAS OBS CONTEXT', concept: DCM.DeviceObserverName, text: o.name },
    { valueType: 'TEXT', relationship: 'HAS OBS CONTEXT', concept: DCM.DeviceObserverManufacturer, text: o.manufacturer },
    { valueType: 'TEXT', relationship: 'HAS OBS CONTEXT', concept: DCM.DeviceObserverModelName, text: o.modelName },
  ];
}

/** TID 1600 Image Library: one Image Library Group holding the IMAGE references (OHIF reads the first group). */
export function tid1600ImageLibrary(images: ImageItem[]): ContainerItem {
  return {
    valueType: 'CONTAINER',
    relationship: 'CONTAINS',
    concept: DCM.ImageLibrary,
    continuity: 'SEPARATE',
    children: [
      {
        valueType: 'CONTAINER',
        relationship: 'CONTAINS',
        concept: DCM.ImageLibraryGroup,
        continuity: 'SEPARATE',
        children: images.map((i) => ({ ...i, relationship: 'CONTAINS' as const })),
      },
    ],
  };
}

/** What OHIF takes as a measurement's geometry: a SCOORD/SCOORD3D in the group, or one a NUM is INFERRED FROM. */
export function hasImageRegion(group: ContainerItem): boolean {
  const graphic = (i: ContentItem) => i.valueType === 'SCOORD' || i.valueType === 'SCOORD3D';
  return (group.children ?? []).some((i) => graphic(i) || (i.valueType === 'NUM' && (i.children ?? []).some(graphic)));
}

export function tid1500MeasurementReport(r: MeasurementReportInput): ContainerItem {
  if (r.procedureReported.length === 0) {
    throw new RadnodeError('RN_RESULT_INVALID', 'procedureReported needs at least one code (TID 1500 row 4 is mandatory)', {
      details: { argument: 'procedureReported' },
    });
  }
  if (r.imageLibrary.length === 0) {
    throw new RadnodeError('RN_RESULT_INVALID', 'imageLibrary needs at least one image (OHIF reads the Image Library)', {
      details: { argument: 'imageLibrary' },
    });
  }
  if (r.qualitativeEvaluations.length === 0 && r.measurementGroups.length === 0) {
    throw new RadnodeError('RN_RESULT_INVALID', 'a report needs measurement groups or qualitative evaluations (TID 1500 rows 6 and 12)', {
      details: { argument: 'qualitativeEvaluations' },
    });
  }
  r.measurementGroups.forEach((g, i) => {
    if (!hasImageRegion(g)) {
      throw new RadnodeError('RN_RESULT_INVALID', `measurementGroups[${i}] has no image region; OHIF 3.13.2 fails the whole viewer on such a group`, {
        details: { argument: `measurementGroups[${i}]` },
      });
    }
  });
  // Rows 13–14: CODE or TEXT (the type admits nothing else), each with its own concept name.
  r.qualitativeEvaluations.forEach((q, i) => checkCode(q.concept, `qualitativeEvaluations[${i}].concept`));
  r.procedureReported.forEach((c, i) => checkCode(c, `procedureReported[${i}]`));
  const children: ContentItem[] = [
    tid1204Language(),
    ...tid1004DeviceObserver(r.observer),
    ...r.procedureReported.map((code): ContentItem => ({ valueType: 'CODE', relationship: 'HAS CONCEPT MOD', concept: DCM.ProcedureReported, code })),
    tid1600ImageLibrary(r.imageLibrary),
  ];
  if (r.measurementGroups.length > 0) {
    children.push({ valueType: 'CONTAINER', relationship: 'CONTAINS', concept: DCM.ImagingMeasurements, continuity: 'SEPARATE', children: r.measurementGroups });
  }
  if (r.qualitativeEvaluations.length > 0) {
    children.push({
      valueType: 'CONTAINER',
      relationship: 'CONTAINS',
      concept: DCM.QualitativeEvaluations,
      continuity: 'SEPARATE',
      children: r.qualitativeEvaluations.map((q) => ({ ...q, relationship: 'CONTAINS' as const })),
    });
  }
  return { valueType: 'CONTAINER', concept: DCM.ImagingMeasurementReport, continuity: 'SEPARATE', templateId: '1500', children };
}
