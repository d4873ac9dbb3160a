/**
 * Modules every radnode result object carries: Patient and General Study copied from the source (an SR without
 * them shows up as a separate patient, OHIF issue 3148), General Equipment describing radnode, IHE AIR
 * Contributing Equipment, SOP Common, and the deterministic UIDs and series numbers (DESIGN §3).
 */
import { createHash } from 'node:crypto';
import { RadnodeError } from '../errors.ts';
import { dicomDateTime, readPart10, seq, str, type DicomDataset } from './dicom-io.ts';
import type { DetectorIdentity } from './findings.ts';
import type { NodeIdentity, SourceInstance, SourceTimezone, WriteContext } from './objects.ts';
import { deriveUid } from './uids.ts';
import { readFile } from 'node:fs/promises';

/** Bumped when the bytes written for the same input change; part of every output UID's seed via ctx.inputKey. */
export const WRITER_VERSION = 'radnode-results/4';

export const SOP_CLASS = {
  comprehensive3DSR: '1.2.840.10008.5.1.4.1.1.88.34',
  multiframeTrueColorSC: '1.2.840.10008.5.1.4.1.1.7.4',
} as const;

/** IHE AIR (Rev 1.1 §6.5.3.1): Purpose of Reference of the algorithm's Contributing Equipment item. */
export const PURPOSE_PROCESSING_ALGORITHM = { CodeValue: 'Newcode1', CodingSchemeDesignator: '99IHE', CodeMeaning: 'Processing Algorithm' };

// PS3.3 §C.7.1.1 Patient, §C.7.2.1 General Study, §C.7.2.2 Patient Study. Type 2 keywords must be present (empty
// when the source lacks them); the others are copied only when present.
const PATIENT_STUDY_TYPE2 = ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'StudyDate', 'StudyTime', 'ReferringPhysicianName', 'StudyID', 'AccessionNumber'];
const PATIENT_STUDY_OPTIONAL = [
  'IssuerOfPatientID',
  'IssuerOfPatientIDQualifiersSequence',
  'PatientBirthTime',
  'OtherPatientIDsSequence',
  'PatientComments',
  'PatientIdentityRemoved',
  'DeidentificationMethod',
  'DeidentificationMethodCodeSequence',
  'IssuerOfAccessionNumberSequence',
  'StudyDescription',
  'PatientAge',
  'PatientSize',
  'PatientWeight',
];

export type SourceHeader = { source: SourceInstance; dataset: DicomDataset };

/** Reads a source's header (not its pixels) from the store's Part 10 file. */
export async function readSourceHeader(source: SourceInstance): Promise<SourceHeader> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(source.path);
  } catch (cause) {
    throw new RadnodeError('RN_INPUT_MISSING', `source instance file missing: ${source.sopInstanceUID}`, { cause, details: { sopInstanceUID: source.sopInstanceUID } });
  }
  return { source, dataset: readPart10(bytes, { untilPixelData: true }).dataset };
}

export function copyPatientAndStudy(from: DicomDataset, studyInstanceUID: string): DicomDataset {
  const sourceStudy = str(from, 'StudyInstanceUID');
  if (sourceStudy !== studyInstanceUID) {
    throw new RadnodeError('RN_RESULT_INVALID', 'the first source instance is not in the result\'s study', {
      details: { resultStudy: studyInstanceUID, sourceStudy },
    });
  }
  const out: DicomDataset = { StudyInstanceUID: studyInstanceUID };
  for (const k of PATIENT_STUDY_TYPE2) out[k] = from[k] ?? '';
  for (const k of PATIENT_STUDY_OPTIONAL) if (from[k] !== undefined && from[k] !== '') out[k] = from[k];
  // Vendors write placeholder dates such as 00000000 (fo-dicom GH133); copying one would make radnode's own object
  // fail dciodvfy. An invalid Type 2 date or time becomes empty, which PS3.5 allows.
  for (const k of ['PatientBirthDate', 'StudyDate']) if (typeof out[k] === 'string' && !isValidDA(out[k])) out[k] = '';
  for (const k of ['PatientBirthTime', 'StudyTime']) if (typeof out[k] === 'string' && !/^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?\s*$/.test(out[k])) out[k] = '';
  // Optional Patient Study values that break their VR (the RSNA films carry Patient's Age "32", not "032Y") are dropped.
  if (typeof out.PatientAge === 'string' && !/^\d{3}[DWMY]$/.test(out.PatientAge)) delete out.PatientAge;
  return out;
}

/** PS3.5 §6.2 DA: YYYYMMDD with a real month and day (empty is allowed for Type 2). */
export function isValidDA(v: string): boolean {
  if (v === '') return true;
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(v.trim());
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return y > 0 && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

export function deviceUid(node: NodeIdentity, detector: DetectorIdentity): string {
  // IHE AIR: the Device UID changes whenever the model changes, so it is derived from the model's hash and version.
  return deriveUid(node.uidRoot, 'device', [detector.modelSha256, detector.version]);
}

export function implementationClassUid(node: NodeIdentity): string {
  return deriveUid(node.uidRoot, 'implementation', [WRITER_VERSION]);
}

export function generalEquipment(node: NodeIdentity): DicomDataset {
  return {
    Manufacturer: node.manufacturer,
    ManufacturerModelName: node.modelName,
    SoftwareVersions: node.softwareVersion,
    ...(node.institutionName ? { InstitutionName: node.institutionName } : {}),
    ...(node.stationName ? { StationName: node.stationName } : {}),
  };
}

/**
 * PS3.3 C.12.1.1.8: Timezone Offset From UTC applies to every DA and TM in the instance, and radnode copies the
 * source's Study Date/Time unchanged: so its objects take the source's offset, and write their own dates and times
 * in it. A source that declares none is in an undefined local time (the site's, as a rule): radnode's objects then
 * declare none either and write the node's local wall clock.
 */
export function timezoneOf(source: DicomDataset, instant: Date): SourceTimezone {
  const declared = str(source, 'TimezoneOffsetFromUTC')?.trim();
  const m = declared ? /^([+-])(\d{2})(\d{2})$/.exec(declared) : null;
  if (m && Number(m[2]) <= 14 && Number(m[3]) < 60) return { offsetMinutes: (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])), attribute: declared };
  return { offsetMinutes: -instant.getTimezoneOffset() };
}

/** Content Date/Time of radnode's objects, in the source's time zone (UTC without one). */
export function contentDateTime(ctx: WriteContext): { date: string; time: string } {
  return dicomDateTime(ctx.contentDateTime, ctx.timezone?.offsetMinutes ?? 0);
}

const offsetSuffix = (minutes: number): string => {
  const a = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}${String(a % 60).padStart(2, '0')}`;
};

export function contributingEquipment(ctx: WriteContext, detector: DetectorIdentity): DicomDataset[] {
  const { date, time } = contentDateTime(ctx);
  return [
    {
      PurposeOfReferenceCodeSequence: [PURPOSE_PROCESSING_ALGORITHM],
      Manufacturer: ctx.node.manufacturer,
      ManufacturerModelName: detector.id,
      SoftwareVersions: detector.version,
      DeviceUID: deviceUid(ctx.node, detector),
      // DT carries its own offset (PS3.5 Table 6.2-1): unambiguous whatever the instance declares.
      ContributionDateTime: `${date}${time}${offsetSuffix(ctx.timezone?.offsetMinutes ?? 0)}`,
      ContributionDescription: `${detector.id} ${detector.version} (model sha256 ${detector.modelSha256.slice(0, 16)})`.slice(0, 64),
    },
  ];
}

export function sopCommon(ctx: WriteContext, sopClassUID: string, sopInstanceUID: string): DicomDataset {
  const { date, time } = contentDateTime(ctx);
  return {
    // PS3.5 §6.1.2.5.3: UTF-8, because series descriptions carry an em dash and patient names may be anything.
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: sopClassUID,
    SOPInstanceUID: sopInstanceUID,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    ...(ctx.timezone === undefined ? { TimezoneOffsetFromUTC: '+0000' } : ctx.timezone.attribute !== undefined ? { TimezoneOffsetFromUTC: ctx.timezone.attribute } : {}),
  };
}

/** The SR series is derived from (study, detector) only, so a superseding SR lands in the same series (DESIGN §3). */
export function srSeriesUid(node: NodeIdentity, studyInstanceUID: string, detectorId: string): string {
  return deriveUid(node.uidRoot, 'series', [studyInstanceUID, detectorId, 'sr']);
}

/** Heatmaps are a new series per input set: older ones are retracted through the PACS adapter (DESIGN §3). */
export function heatmapSeriesUid(node: NodeIdentity, inputKey: string): string {
  return deriveUid(node.uidRoot, 'series', [inputKey, 'heatmap-sc']);
}

export function objectUid(node: NodeIdentity, inputKey: string, kind: 'sr' | 'heatmap-sc', index: number): string {
  return deriveUid(node.uidRoot, 'instance', [inputKey, kind, String(index)]);
}

/** PS3.5 §6.2 IS: an integer in the signed 32-bit range. */
export const IS_MAX = 2 ** 31 - 1;
/** The highest 1000-block that still holds every series number radnode gives out ([start + 900, start + 999]). */
const LAST_BLOCK_START = Math.floor((IS_MAX - 999) / 1000) * 1000;

/**
 * Series numbers for a detector's SR (even) and heatmap SC (odd), sorting after the source series. OHIF orders a
 * study's display sets by Series Number (platform/core/src/utils/sortStudy.ts, `seriesInfoSortingCriteria`; SR is a
 * "low priority" modality and goes last anyway, the OT heatmap does not), so a fixed 99xx put the heatmap before a
 * CT numbered 3000566 (LIDC-IDRI-0001).
 *
 * The numbers lie in the 1000-block above the highest source Series Number (at least the block 9000–9999, so a
 * study of series 1..n keeps radnode's usual 99xx), at +900 + 2·h(detector) and +901 + 2·h. Rounding to a block keeps
 * them stable when a series is added to the study: a superseding SR goes into the same SR series (DESIGN §3) and
 * keeps its number unless the sources cross a 1000 boundary. Deterministic: same detector and source numbers, same
 * result. Bounded to IS: sources numbered above 2147482999 get the last block (they then sort before radnode's).
 */
export function seriesNumbers(detectorId: string, sourceSeriesNumbers: readonly number[] = []): { sr: number; heatmap: number } {
  const h = createHash('sha256').update(detectorId).digest().readUInt16BE(0) % 50;
  const highest = Math.max(0, ...sourceSeriesNumbers.filter((n) => Number.isSafeInteger(n)));
  const start = Math.min(LAST_BLOCK_START, Math.max(9000, (Math.floor(highest / 1000) + 1) * 1000));
  return { sr: start + 900 + 2 * h, heatmap: start + 901 + 2 * h };
}

export function lo(s: string): string {
  // PS3.5 §6.2 LO: 64 characters.
  return s.length <= 64 ? s : s.slice(0, 64);
}

export function firstCode(ds: DicomDataset, keyword: string): DicomDataset | undefined {
  return seq(ds, keyword)[0];
}
