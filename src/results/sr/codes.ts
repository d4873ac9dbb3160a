/**
 * Coded concepts used by radnode's SR, as named constants (highdicom's `codes.DCM.*` habit, style.md §1).
 * Sources: DCM = PS3.16 Annex D (DICOM Controlled Terminology Definitions); SCT = SNOMED CT; UCUM = Unified Code for
 * Units of Measure; RFC5646 = language tags (TID 1204). 99RADNODE is radnode's private scheme, used only where no
 * standard concept exists (PS3.16 §8.1 allows private coding schemes; dciodvfy warns about them, nothing more).
 */
export type CodedConcept = { value: string; scheme: string; meaning: string };

const dcm = (value: string, meaning: string): CodedConcept => ({ value, scheme: 'DCM', meaning });
const sct = (value: string, meaning: string): CodedConcept => ({ value, scheme: 'SCT', meaning });
const ucum = (value: string, meaning: string): CodedConcept => ({ value, scheme: 'UCUM', meaning });
const radnode = (value: string, meaning: string): CodedConcept => ({ value, scheme: '99RADNODE', meaning });

export const DCM = {
  /** TID 1500 root, CID 7021. */
  ImagingMeasurementReport: dcm('126000', 'Imaging Measurement Report'),
  /** TID 1204 row 1. */
  LanguageOfContentItemAndDescendants: dcm('121049', 'Language of Content Item and Descendants'),
  /** TID 1002 / TID 1004 observer context. */
  ObserverType: dcm('121005', 'Observer Type'),
  Device: dcm('121007', 'Device'),
  DeviceObserverUID: dcm('121012', 'Device Observer UID'),
  DeviceObserverName: dcm('121013', 'Device Observer Name'),
  DeviceObserverManufacturer: dcm('121014', 'Device Observer Manufacturer'),
  DeviceObserverModelName: dcm('121015', 'Device Observer Model Name'),
  /** TID 1500 row 4; IHE AIR: describes the imaging procedure analysed, not the algorithm. */
  ProcedureReported: dcm('121058', 'Procedure reported'),
  /** TID 1600. */
  ImageLibrary: dcm('111028', 'Image Library'),
  ImageLibraryGroup: dcm('126200', 'Image Library Group'),
  /** TID 1500 row 6. */
  ImagingMeasurements: dcm('126010', 'Imaging Measurements'),
  MeasurementGroup: dcm('125007', 'Measurement Group'),
  /** TID 1500 row 12. */
  QualitativeEvaluations: { value: 'C0034375', scheme: 'UMLS', meaning: 'Qualitative Evaluations' } as CodedConcept,
  /** TID 4108. */
  TrackingIdentifier: dcm('112039', 'Tracking Identifier'),
  TrackingUniqueIdentifier: dcm('112040', 'Tracking Unique Identifier'),
  /** TID 1410 row "Finding"; also the concept name of a finding without a place in Qualitative Evaluations (TID 1500 row 13). */
  Finding: dcm('121071', 'Finding'),
  /** TID 1410 row 9: the region the measurements were made on. */
  ImageRegion: dcm('111030', 'Image Region'),
  /** CID 7464 / PS3.16: a point location (the lesion centre) in patient coordinates. */
  Center: dcm('111010', 'Center'),
  /** TID 4019 Algorithm Identification. */
  AlgorithmName: dcm('111001', 'Algorithm Name'),
  AlgorithmVersion: dcm('111003', 'Algorithm Version'),
  AlgorithmParameters: dcm('111002', 'Algorithm Parameters'),
  /** PS3.16 D: "certainty that the finding is present" (Mammography/Chest CAD, TID 4104); carries the probability. */
  CertaintyOfFinding: dcm('111012', 'Certainty of Finding'),
  /** PS3.16 D: properties of a not-processed row. */
  SeriesInstanceUID: dcm('112002', 'Series Instance UID'),
  Comment: dcm('121106', 'Comment'),
} as const;

export const SCT = {
  /** TID 1419 row 1; OHIF reads SCT 363698007 as the finding site (getSopClassHandlerModule.ts). */
  FindingSite: sct('363698007', 'Finding Site'),
  /** The two axes of a bidirectional measurement; cornerstone adapters' Bidirectional.ts finds them by CodeMeaning. */
  LongAxis: sct('103339001', 'Long Axis'),
  ShortAxis: sct('103340004', 'Short Axis'),
} as const;

/** CID 5000 Languages, via TID 1204. */
export const LANGUAGE_EN_US: CodedConcept = { value: 'en-US', scheme: 'RFC5646', meaning: 'English (United States)' };

export const UCUM = {
  probability: ucum('{probability}', 'probability'),
  mm: ucum('mm', 'millimeter'),
  mm3: ucum('mm3', 'cubic millimeter'),
  ratio: ucum('{ratio}', 'ratio'),
  noUnits: ucum('1', 'no units'),
  percent: ucum('%', 'percent'),
} as const;

/** Meanings for the UCUM units the findings model uses (DESIGN §4); anything else keeps its code as meaning. */
export function ucumUnit(unit: string): CodedConcept {
  const known = Object.values(UCUM).find((u) => u.value === unit);
  return known ?? ucum(unit, unit);
}

/** Private concepts: no DCM/SCT concept names a study-level AI score or radnode's triage priority. */
export const RADNODE = {
  /** TID 1500 row 14 TEXT in Qualitative Evaluations (rows 13–14 allow no NUM). */
  StudyLevelScore: radnode('study-score', 'AI study-level score'),
  TriagePriority: radnode('priority', 'AI triage priority'),
  DetectorTrackingId: radnode('tracking-id', 'Detector tracking identifier'),
  /** A series the detector did not process, valued with the coded reason (DESIGN §1 promise 3). */
  SeriesNotProcessed: radnode('not-processed', 'Series not processed'),
  /** TEXT: why the analysed series was chosen among several that qualified, with its Series Instance UID. */
  SeriesChoice: radnode('series-choice', 'Why this series was analysed'),
  priority: {
    urgent: radnode('urgent', 'Urgent'),
    positive: radnode('positive', 'Positive'),
    negative: radnode('negative', 'Negative'),
    unprocessed: radnode('unprocessed', 'Not processed'),
  },
} as const;

/**
 * Procedure reported (TID 1500 row 4, DCID 100 Quantitative Diagnostic Imaging Procedures), chosen from the source
 * modality. CID 100 has LOINC codes for CT and MR; for radiography and mammography it offers only the generic
 * (363679005, SCT, "Imaging procedure"). pixelmed's DicomSRValidator rejects codes outside CID 100.
 */
export function procedureForModality(modality: string | undefined): CodedConcept {
  switch (modality) {
    case 'CT':
      return { value: '25045-6', scheme: 'LN', meaning: 'CT unspecified body region' };
    case 'MR':
      return { value: '25056-3', scheme: 'LN', meaning: 'MRI unspecified body region' };
    default:
      return { value: '363679005', scheme: 'SCT', meaning: 'Imaging procedure' };
  }
}
