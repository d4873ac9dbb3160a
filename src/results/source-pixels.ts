/**
 * Adapter: decoded source pixels for the heatmap SC, from src/dicom (issue 3), which owns pixel decoding for every
 * transfer syntax. The header used for copying Patient/Study attributes is read with the same dcmjs naturalization
 * as the SR writer, so both objects carry identical values.
 */
import { readFile } from 'node:fs/promises';
import { RadnodeError } from '../errors.ts';
import { decodeFrames, modalityLut, physicalValues, readInstance, voiWindows } from '../dicom/index.ts';
import { readPart10, type DicomDataset } from './dicom-io.ts';

export type SourceImage = {
  rows: number;
  columns: number;
  /** Modality values (modality LUT applied), one array per decoded frame, row-major. */
  frames: Float32Array[];
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  /** First VOI window of the source, if any (PS3.3 §C.11.2). */
  window?: { center: number; width: number };
  header: DicomDataset;
  /** The pixels have been through lossy compression: the source says so (0028,2110), or its transfer syntax is lossy. */
  lossy?: boolean;
};

/** Decodes the given zero-based frames (default: the first) of a grayscale source. */
export async function loadSourceImage(path: string, frameIndexes: number[] = [0]): Promise<SourceImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new RadnodeError('RN_INPUT_MISSING', 'source instance file missing', { cause, details: { path } });
  }
  const instance = readInstance(bytes);
  const decoded = await decodeFrames(instance, { frames: frameIndexes });
  const photometric = decoded[0]?.photometricInterpretation;
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2') {
    throw new RadnodeError('RN_DICOM_DECODE_FAILED', `heatmap sources are grayscale; got ${photometric}`, { details: { photometric } });
  }
  const frames = decoded.map((f) => physicalValues(f, modalityLut(instance, f.index)));
  const w = voiWindows(instance, frameIndexes[0])[0];
  const header = readPart10(bytes, { untilPixelData: true }).dataset;
  const flag = header.LossyImageCompression;
  return {
    rows: decoded[0].rows,
    columns: decoded[0].columns,
    frames,
    photometric,
    ...(w ? { window: { center: w.center, width: w.width } } : {}),
    header,
    lossy: flag === '01' || (flag !== '00' && instance.transferSyntax.lossy),
  };
}
