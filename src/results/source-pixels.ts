/**
 * Adapter: decoded source pixels for the heatmap SC. src/dicom (issue 3) owns pixel decoding; until its
 * `readInstance` + `decodeFrames` land in src/dicom/index.ts, this file decodes native (uncompressed, little
 * endian) grayscale pixel data itself and refuses everything else with a coded error. Nothing else in src/results
 * decodes pixels, so swapping to src/dicom touches only this file.
 */
import { readFile } from 'node:fs/promises';
import { RadnodeError } from '../errors.ts';
import { num, nums, readPart10, str, type DicomDataset } from './dicom-io.ts';

export type SourceImage = {
  rows: number;
  columns: number;
  /** Modality values (rescale applied), one array per frame, row-major. */
  frames: Float32Array[];
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  /** First VOI window of the source, if any (PS3.3 §C.11.2). */
  window?: { center: number; width: number };
  header: DicomDataset;
};

const NATIVE_LE = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);

export async function loadSourceImage(path: string): Promise<SourceImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new RadnodeError('RN_INPUT_MISSING', 'source instance file missing', { cause, details: { path } });
  }
  const { meta, dataset } = readPart10(bytes);
  const ts = str(meta, 'TransferSyntaxUID') ?? '';
  if (!NATIVE_LE.has(ts)) {
    throw new RadnodeError('RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX', `heatmap source in transfer syntax ${ts} needs src/dicom decoding`, { details: { transferSyntax: ts } });
  }
  const photometric = str(dataset, 'PhotometricInterpretation');
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2') {
    throw new RadnodeError('RN_DICOM_DECODE_FAILED', `heatmap sources are grayscale; got ${photometric}`, { details: { photometric } });
  }
  const rows = num(dataset, 'Rows') ?? 0;
  const columns = num(dataset, 'Columns') ?? 0;
  const bitsAllocated = num(dataset, 'BitsAllocated') ?? 16;
  const bitsStored = num(dataset, 'BitsStored') ?? bitsAllocated;
  const signed = num(dataset, 'PixelRepresentation') === 1;
  const frameCount = num(dataset, 'NumberOfFrames') ?? 1;
  const slope = num(dataset, 'RescaleSlope') ?? 1;
  const intercept = num(dataset, 'RescaleIntercept') ?? 0;
  const pd = dataset.PixelData;
  const raw = Array.isArray(pd) && pd[0] instanceof ArrayBuffer ? pd[0] : pd instanceof ArrayBuffer ? pd : undefined;
  const frameBytes = rows * columns * (bitsAllocated / 8);
  if (!raw || (bitsAllocated !== 8 && bitsAllocated !== 16) || raw.byteLength < frameBytes * frameCount) {
    throw new RadnodeError('RN_DICOM_DECODE_FAILED', 'native pixel data is missing or shorter than Rows × Columns × frames', { details: { rows, columns, bitsAllocated } });
  }
  const view = new DataView(raw);
  const mask = bitsStored >= 32 ? 0xffffffff : 2 ** bitsStored - 1;
  const frames: Float32Array[] = [];
  for (let f = 0; f < frameCount; f++) {
    const out = new Float32Array(rows * columns);
    const base = f * frameBytes;
    for (let i = 0; i < out.length; i++) {
      let v = bitsAllocated === 8 ? view.getUint8(base + i) : view.getUint16(base + 2 * i, true);
      v &= mask; // PS3.5 §8.1.1: bits above High Bit are not part of the value
      if (signed && v >= 2 ** (bitsStored - 1)) v -= 2 ** bitsStored;
      out[i] = v * slope + intercept;
    }
    frames.push(out);
  }
  const centers = nums(dataset, 'WindowCenter');
  const widths = nums(dataset, 'WindowWidth');
  const window = centers.length && widths.length && widths[0] > 0 ? { center: centers[0], width: widths[0] } : undefined;
  return { rows, columns, frames, photometric, ...(window ? { window } : {}), header: dataset };
}
