import { asRadnodeError } from '../errors.ts';
import { decodeFrames, type DecodedFrame } from './decode.ts';
import { readInstance, type ImageAttributes } from './instance.ts';

export interface InspectSummary {
  isPart10: boolean;
  transferSyntaxUID: string;
  transferSyntaxName: string;
  StudyInstanceUID?: string;
  SeriesInstanceUID?: string;
  SOPInstanceUID?: string;
  SOPClassUID?: string;
  Modality?: string;
  image?: ImageAttributes;
  encapsulated: boolean;
  fragments?: number;
  /** Whether every frame decoded; `decodeError` holds the coded reason when not. */
  pixelsDecode: boolean | 'no-pixel-data';
  decodeError?: { code: string; message: string };
}

/** `radnode inspect FILE`: a header summary and whether the pixels decode. Never throws for a readable file. */
export async function inspectInstance(bytes: Uint8Array): Promise<{ summary: InspectSummary; frames?: DecodedFrame[] }> {
  const instance = readInstance(bytes);
  const pd = instance.pixelData;
  const summary: InspectSummary = {
    isPart10: instance.isPart10,
    transferSyntaxUID: instance.transferSyntaxUID,
    transferSyntaxName: instance.transferSyntax.name,
    StudyInstanceUID: instance.StudyInstanceUID,
    SeriesInstanceUID: instance.SeriesInstanceUID,
    SOPInstanceUID: instance.SOPInstanceUID,
    SOPClassUID: instance.SOPClassUID,
    Modality: instance.Modality,
    image: instance.image,
    encapsulated: pd?.encapsulated !== undefined,
    fragments: pd?.encapsulated?.fragments.length,
    pixelsDecode: pd && instance.image ? false : 'no-pixel-data',
  };
  if (summary.pixelsDecode === 'no-pixel-data') return { summary };
  try {
    const frames = await decodeFrames(instance, { convertColour: false, applyPalette: false });
    summary.pixelsDecode = true;
    return { summary, frames };
  } catch (err) {
    const e = asRadnodeError(err, 'RN_DICOM_DECODE_FAILED');
    summary.decodeError = { code: e.code, message: e.message };
    return { summary };
  }
}

/**
 * `--pixels OUT`: decoded stored values as raw little-endian samples, BitsAllocated wide (1-bit images as one byte
 * per pixel), frames one after another, for comparison with other toolkits (DESIGN.md section 6).
 */
export function serialiseStoredValues(frames: DecodedFrame[]): Uint8Array {
  const total = frames.reduce((n, f) => n + f.data.byteLength, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const f of frames) {
    const d = f.data;
    const width = d.BYTES_PER_ELEMENT;
    for (let i = 0; i < d.length; i++, o += width) {
      const v = d[i];
      if (width === 1) out[o] = v & 0xff;
      else if (width === 2) dv.setUint16(o, v & 0xffff, true);
      else if (d instanceof Float32Array) dv.setFloat32(o, v, true);
      else if (d instanceof Float64Array) dv.setFloat64(o, v, true);
      else dv.setUint32(o, v >>> 0, true);
    }
  }
  return out;
}
