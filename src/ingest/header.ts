import { readHeader, type DicomInstance } from '../dicom/index.ts';
import { RadnodeError } from '../errors.ts';
import type { InstanceAttributes } from '../store/types.ts';

/** The attributes ingest, routing and the loop guard need from each received instance. */
export type IngestHeader = InstanceAttributes & {
  manufacturer?: string;
  /** Device UIDs listed in Contributing Equipment Sequence (IHE AIR provenance; the loop guard reads it). */
  contributingDeviceUIDs: string[];
};

/**
 * Reads the header of a Part 10 object with src/dicom's parser, stopping at Pixel Data, so that ingest never parses
 * pixels (ingest throughput is benchmarked against Orthanc). Only the attributes radnode routes on are kept.
 */
export function readIngestHeader(bytes: Uint8Array): IngestHeader {
  let inst: DicomInstance;
  try {
    inst = readHeader(bytes);
  } catch (err) {
    if (err instanceof RadnodeError) throw err;
    throw new RadnodeError('RN_DICOM_MALFORMED', `not a readable DICOM Part 10 object: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  // STOW-RS carries Part 10 objects (PS3.18 §10.5) and every stage after ingest (results writers, delivery) reads
  // stored files as Part 10: a bare data set without preamble and File Meta is refused here, not half-way through a job.
  if (!inst.isPart10)
    throw new RadnodeError('RN_DICOM_MALFORMED', 'not a DICOM Part 10 file: no preamble and File Meta Information (PS3.10 §7.1)');
  const h = inst.header;
  const text = (key: string): string | undefined => {
    const v = h.string(key)?.trim();
    return v ? v : undefined;
  };
  const num = (key: string): number | undefined => {
    const v = h.number(key);
    return v !== undefined && Number.isFinite(v) ? v : undefined;
  };
  const required = (key: string, v: string | undefined): string => {
    if (!v) throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', `the instance has no ${key}`, { details: { attribute: key } });
    return v;
  };
  const imageType = h.has('ImageType') ? h.strings('ImageType').map((x) => x.trim().toUpperCase()) : undefined;
  return {
    sopInstanceUID: required('SOPInstanceUID', inst.SOPInstanceUID),
    sopClassUID: required('SOPClassUID', inst.SOPClassUID),
    studyInstanceUID: required('StudyInstanceUID', inst.StudyInstanceUID),
    seriesInstanceUID: required('SeriesInstanceUID', inst.SeriesInstanceUID),
    transferSyntaxUID: inst.TransferSyntaxUID,
    instanceNumber: num('InstanceNumber'),
    patientID: text('PatientID'),
    patientName: text('PatientName'),
    accessionNumber: text('AccessionNumber'),
    studyDate: text('StudyDate'),
    studyDescription: text('StudyDescription'),
    modality: text('Modality')?.toUpperCase(),
    seriesNumber: num('SeriesNumber'),
    seriesDescription: text('SeriesDescription'),
    bodyPartExamined: text('BodyPartExamined')?.toUpperCase(),
    viewPosition: text('ViewPosition')?.toUpperCase(),
    imageType,
    sliceThicknessMm: num('SliceThickness'),
    photometricInterpretation: text('PhotometricInterpretation'),
    samplesPerPixel: num('SamplesPerPixel'),
    numberOfFrames: num('NumberOfFrames'),
    manufacturer: text('Manufacturer'),
    contributingDeviceUIDs: h.items('ContributingEquipmentSequence').map((c) => c.string('DeviceUID')?.trim()).filter((x): x is string => !!x),
  };
}
