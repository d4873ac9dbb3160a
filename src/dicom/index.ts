/**
 * radnode's DICOM imaging core (issue 3): Part 10 parsing, pixel decoding for every common transfer syntax, the
 * grayscale pipeline to model input, and CT volumes. Pure functions; no I/O beyond the bytes given.
 */
export { readInstance, readHeader, DicomInstance, type ImageAttributes, type InstanceUids, type PixelDataRef } from './instance.ts';
export { DataSetView, type NaturalizedDataset } from './dataset.ts';
export { patientAgeYears } from './age.ts';
export { parseDicom, type ParseOptions, type ParsedDicom, type DicomElement, type ElementMap, DEFAULT_MAX_INFLATED_BYTES } from './parser.ts';
export { decodeFrames, DEFAULT_MAX_DECODED_BYTES, type DecodedFrame, type DecodeOptions, type PixelArray } from './decode.ts';
export { TS, transferSyntaxInfo, isKnownTransferSyntax, hasPixelDecoder, type TransferSyntaxInfo, type PixelEncoding } from './transfer-syntax.ts';
export { splitMultipartRelated } from './multipart.ts';
export {
  modalityLut,
  physicalValues,
  voiWindows,
  voiLutTables,
  applyWindow,
  applyVoiLut,
  percentileWindow,
  exactPercentileWindow,
  toDisplay,
  pixelSpacing,
  mammographyOrientation,
  normaliseMammogram,
  reorient,
  radiographTurn,
  inverseTurn,
  turnedPointToStored,
  type Turn,
  type ModalityLut,
  type VoiWindow,
  type VoiLutTable,
  type GrayscaleOptions,
  type PixelSpacing,
  type MammoOrientation,
  type Laterality,
  type MammoView,
} from './grayscale.ts';
export {
  planVolumes,
  loadVolume,
  buildVolumes,
  patientToVoxel,
  voxelToPatient,
  type Volume,
  type VolumePlan,
  type StackPlan,
  type VolumeIssue,
  type VolumeIssueCode,
  type Vec3,
} from './volume.ts';
export { inspectInstance, serialiseStoredValues, type InspectSummary } from './inspect.ts';
