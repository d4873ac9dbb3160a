import { inflateRawSync } from 'node:zlib';
import { RadnodeError } from '../errors.ts';
import { applyPalette, readPalette, ybr422ToYbrFull, ybrFullToRgb } from './color.ts';
import { declaredFrameSize, gdcmDecodeJpeg, jpegLosslessDecode, jpegStreamInfo, relabelAsRgb, wasmDecode, type CodecFrame } from './codecs.ts';
import type { DicomInstance, ImageAttributes } from './instance.ts';
import { TAG } from './parser.ts';
import { rleDecodeFrame } from './rle.ts';
import { hasPixelDecoder } from './transfer-syntax.ts';

export type PixelArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/** One decoded frame: stored values (no modality LUT), samples interleaved, in a typed array of the container width. */
export interface DecodedFrame {
  index: number;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** Width of each sample in `data` (8, 16, 32 or 64); 1-bit images are unpacked to 8. */
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  /** What `data` holds now: YBR and palette images come out as RGB unless asked not to. */
  photometricInterpretation: string;
  data: PixelArray;
}

export interface DecodeOptions {
  /** Zero-based frame numbers to decode; all frames when absent. */
  frames?: number[];
  /** Cap on the decoded size of all requested frames (decompression bombs, DESIGN.md section 6). Default 1 GiB. */
  maxDecodedBytes?: number;
  /** Convert YBR_FULL / YBR_FULL_422 to RGB (default true). Codecs that convert themselves (JPEG, J2K MCT) always do. */
  convertColour?: boolean;
  /** Expand PALETTE COLOR to RGB (default true); false returns the indices. */
  applyPalette?: boolean;
}

export const DEFAULT_MAX_DECODED_BYTES = 1024 ** 3;

function decodeFailed(message: string, details: Record<string, unknown> = {}): RadnodeError {
  return new RadnodeError('RN_DICOM_DECODE_FAILED', message, { details });
}

/** Raw samples of one frame before interpretation: little-endian, `bytesPerSample` wide, interleaved unless `planar`. */
interface RawFrame {
  bytes: Uint8Array;
  bytesPerSample: number;
  planar: boolean;
  photometric: string;
  /** Samples already unpacked from 1-bit. */
  unpackedBits?: boolean;
  /** For native YBR_FULL_422 the frame holds 2 samples per pixel. */
  subsampled422?: boolean;
  /** Float Pixel Data or Double Float Pixel Data. */
  float?: boolean;
}

function checkAttributes(img: ImageAttributes): void {
  const { Rows, Columns, BitsAllocated, BitsStored, SamplesPerPixel } = img;
  if (!(Rows > 0 && Columns > 0)) throw new RadnodeError('RN_DICOM_MALFORMED', `invalid image size ${Rows}×${Columns}`);
  if (![1, 8, 16, 32, 64].includes(BitsAllocated)) throw new RadnodeError('RN_DICOM_MALFORMED', `unsupported Bits Allocated ${BitsAllocated}`);
  if (!(BitsStored >= 1 && BitsStored <= BitsAllocated)) throw new RadnodeError('RN_DICOM_MALFORMED', `Bits Stored ${BitsStored} with Bits Allocated ${BitsAllocated}`);
  if (SamplesPerPixel !== 1 && SamplesPerPixel !== 3) throw new RadnodeError('RN_DICOM_MALFORMED', `unsupported Samples per Pixel ${SamplesPerPixel}`);
  // PS3.5 8.1.1: the stored bits end at High Bit, inside the container; anything else leaves no place for the value.
  const { HighBit } = img;
  if (BitsAllocated > 1 && !(HighBit >= BitsStored - 1 && HighBit < BitsAllocated))
    throw new RadnodeError('RN_DICOM_MALFORMED', `High Bit ${HighBit} with Bits Stored ${BitsStored} and Bits Allocated ${BitsAllocated}`);
}

function bytesPerContainer(bitsAllocated: number): number {
  return bitsAllocated === 1 ? 1 : bitsAllocated / 8;
}

function swapBytes(src: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i + width <= src.length; i += width) for (let k = 0; k < width; k++) out[i + k] = src[i + width - 1 - k];
  return out;
}

function unpackBits(src: Uint8Array, bitOffset: number, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const bit = bitOffset + i;
    // PS3.5 D.2.1: the first pixel is in the least significant bit
    out[i] = (src[bit >> 3] >> (bit & 7)) & 1;
  }
  return out;
}

/**
 * Decodes the requested frames of an instance to stored values. Every failure is a RadnodeError:
 * RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX (naming the syntax), RN_DICOM_DECODE_FAILED, RN_DICOM_TOO_LARGE,
 * RN_DICOM_MISSING_ATTRIBUTE or RN_DICOM_MALFORMED.
 */
export async function decodeFrames(instance: DicomInstance, options: DecodeOptions = {}): Promise<DecodedFrame[]> {
  const img = instance.image;
  if (!img) throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', 'no Rows/Columns: the object has no image');
  const pd = instance.pixelData;
  if (!pd) {
    const why = instance.hasPixelDataLoaded ? 'the object has no Pixel Data' : 'the instance was read with readHeader (no pixel data)';
    throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', why);
  }
  checkAttributes(img);
  const ts = instance.transferSyntax;
  if (pd.encapsulated && !hasPixelDecoder(ts)) {
    throw new RadnodeError('RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX', `no decoder for transfer syntax ${ts.uid} (${ts.name})`, {
      details: { transferSyntaxUID: ts.uid, transferSyntaxName: ts.name },
    });
  }
  const palette = img.PhotometricInterpretation === 'PALETTE COLOR' && options.applyPalette !== false;
  const outSamples = palette ? 3 : img.SamplesPerPixel;
  // The cap is checked before the frame list exists: Number of Frames comes from the file (999999999 in a 446-byte one).
  const outBytes = img.Rows * img.Columns * outSamples * Math.max(bytesPerContainer(img.BitsAllocated), palette ? 2 : 1) * (options.frames?.length ?? img.NumberOfFrames);
  const cap = options.maxDecodedBytes ?? DEFAULT_MAX_DECODED_BYTES;
  if (outBytes > cap) {
    throw new RadnodeError('RN_DICOM_TOO_LARGE', `decoded pixels would take ${outBytes} bytes, over the cap of ${cap}`, { details: { bytes: outBytes, cap } });
  }
  if (!pd.encapsulated && pd.native && img.NumberOfFrames > 1 && Math.ceil(img.NumberOfFrames * nativeFrameBits(img) / 8) > pd.native.length)
    throw new RadnodeError('RN_DICOM_MALFORMED', `Number of Frames ${img.NumberOfFrames} needs more than the ${pd.native.length} bytes of native Pixel Data`);
  if (pd.encapsulated && img.NumberOfFrames > Math.max(1, pd.encapsulated.fragments.length))
    throw new RadnodeError('RN_DICOM_MALFORMED', `Number of Frames ${img.NumberOfFrames} exceeds the ${pd.encapsulated.fragments.length} fragments of the Pixel Data`);
  const frameNumbers = options.frames ?? Array.from({ length: img.NumberOfFrames }, (_, i) => i);
  for (const f of frameNumbers) {
    if (!Number.isInteger(f) || f < 0 || f >= img.NumberOfFrames) throw new RadnodeError('RN_DICOM_MALFORMED', `frame ${f} out of range (${img.NumberOfFrames} frames)`);
  }

  let nativeBytes: Uint8Array | undefined;
  if (!pd.encapsulated) {
    if (!pd.native) throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', 'Pixel Data is empty');
    nativeBytes = pd.native;
    if (!pd.littleEndian) {
      // Explicit VR Big Endian: OW is swapped per 16-bit word; a 32-bit image in OW is swapped per 32-bit word, as
      // pydicom reads rtdose_expb (the data README's "ambiguity trap"); OB is never swapped.
      const width = img.BitsAllocated >= 32 ? img.BitsAllocated / 8 : pd.vr === 'OB' ? 1 : 2;
      if (width > 1) nativeBytes = swapBytes(nativeBytes, width);
    }
  }

  const lut = palette ? readPalette(instance.header) : undefined;
  const out: DecodedFrame[] = [];
  for (const index of frameNumbers) {
    const raw = pd.encapsulated ? await decodeEncapsulatedFrame(instance, img, index, cap) : nativeFrame(nativeBytes!, img, index, pd.tag);
    out.push(interpret(raw, img, index, options, lut));
  }
  return out;
}

/** Bits one native frame takes (YBR_FULL_422 8-bit: two samples per pixel). */
function nativeFrameBits(img: ImageAttributes): number {
  const subsampled422 = img.PhotometricInterpretation === 'YBR_FULL_422' && img.SamplesPerPixel === 3 && img.BitsAllocated === 8;
  return img.Rows * img.Columns * (subsampled422 ? 2 : img.SamplesPerPixel) * img.BitsAllocated;
}

function nativeFrame(bytes: Uint8Array, img: ImageAttributes, index: number, tag: number): RawFrame {
  const { Rows, Columns, SamplesPerPixel, BitsAllocated, PhotometricInterpretation } = img;
  const pixels = Rows * Columns;
  if (BitsAllocated === 1) {
    const bits = pixels * SamplesPerPixel;
    if (Math.ceil(((index + 1) * bits) / 8) > bytes.length) throw decodeFailed(`1-bit pixel data too short for frame ${index + 1}`);
    return { bytes: unpackBits(bytes, index * bits, bits), bytesPerSample: 1, planar: img.PlanarConfiguration === 1, photometric: PhotometricInterpretation, unpackedBits: true };
  }
  const subsampled422 = PhotometricInterpretation === 'YBR_FULL_422' && SamplesPerPixel === 3 && BitsAllocated === 8;
  const samples = subsampled422 ? pixels * 2 : pixels * SamplesPerPixel;
  const frameBytes = (samples * BitsAllocated) / 8;
  const start = index * frameBytes;
  if (start + frameBytes > bytes.length) {
    throw decodeFailed(`native pixel data holds ${bytes.length} bytes, frame ${index + 1} needs bytes up to ${start + frameBytes}`);
  }
  return {
    float: tag !== TAG.PixelData,
    bytes: bytes.subarray(start, start + frameBytes),
    bytesPerSample: BitsAllocated / 8,
    planar: !subsampled422 && SamplesPerPixel > 1 && img.PlanarConfiguration === 1,
    photometric: PhotometricInterpretation,
    subsampled422,
  };
}

/** Strips a JP2 file-format wrapper (non-conformant in DICOM, but written by some encoders) down to its codestream. */
export function j2kCodestream(b: Uint8Array): Uint8Array {
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51) return b;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let pos = 0;
  while (pos + 8 <= b.length) {
    let len = dv.getUint32(pos);
    const type = String.fromCharCode(b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]);
    let header = 8;
    if (len === 1 && pos + 16 <= b.length) {
      len = Number(dv.getBigUint64(pos + 8));
      header = 16;
    }
    if (type === 'jp2c') return b.subarray(pos + header, len === 0 ? b.length : Math.min(b.length, pos + len));
    if (len < header) break;
    pos += len;
  }
  return b;
}

async function decodeEncapsulatedFrame(instance: DicomInstance, img: ImageAttributes, index: number, cap: number): Promise<RawFrame> {
  const ts = instance.transferSyntax;
  const encoded = instance.encapsulatedFrames()[index];
  if (!encoded) throw decodeFailed(`frame ${index + 1} is missing from the encapsulated pixel data`);
  const { Rows, Columns, SamplesPerPixel, BitsAllocated, BitsStored, PixelRepresentation, PhotometricInterpretation } = img;
  const pi = PhotometricInterpretation;
  const expectFrame = (c: CodecFrame, photometric: string): RawFrame => {
    if (c.width !== Columns || c.height !== Rows || c.componentCount !== SamplesPerPixel) {
      throw decodeFailed(`codec gave ${c.width}×${c.height}×${c.componentCount}, header says ${Columns}×${Rows}×${SamplesPerPixel}`);
    }
    const bps = c.bitsPerSample <= 8 ? 1 : 2;
    if (c.bytes.length < Rows * Columns * SamplesPerPixel * bps) throw decodeFailed(`codec returned ${c.bytes.length} bytes, expected ${Rows * Columns * SamplesPerPixel * bps}`);
    return { bytes: c.bytes.subarray(0, Rows * Columns * SamplesPerPixel * bps), bytesPerSample: bps, planar: c.planar === true, photometric };
  };
  // A stream that declares another size than the header is refused before a codec allocates for it. A height of 0 in
  // a JPEG SOF means "given by a later DNL marker": left to the codec, and to expectFrame after it.
  const declared = ['jpeg-baseline', 'jpeg-extended', 'jpeg-progressive', 'jpeg-lossless', 'jpeg-ls', 'jpeg-2000', 'htj2k'].includes(ts.encoding)
    ? declaredFrameSize(ts.encoding === 'jpeg-2000' || ts.encoding === 'htj2k' ? j2kCodestream(encoded) : encoded)
    : undefined;
  if (declared && (declared.width !== Columns || (declared.height !== Rows && declared.height !== 0) || declared.components !== SamplesPerPixel))
    throw decodeFailed(`frame ${index + 1} declares ${declared.width}×${declared.height}×${declared.components}, the header says ${Columns}×${Rows}×${SamplesPerPixel}`);
  switch (ts.encoding) {
    case 'native': {
      // Encapsulated Uncompressed (.1.98): each fragment is a native frame.
      return nativeFrame(encoded, { ...img, NumberOfFrames: 1 }, 0, TAG.PixelData);
    }
    case 'deflated-frame': {
      const frameBytes = BitsAllocated === 1 ? Math.ceil((Rows * Columns * SamplesPerPixel) / 8) : (Rows * Columns * SamplesPerPixel * BitsAllocated) / 8;
      let inflated: Buffer;
      try {
        inflated = inflateRawSync(encoded, { maxOutputLength: Math.min(cap, frameBytes + 1024) });
      } catch (err) {
        const tooLarge = err instanceof RangeError || (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
        throw new RadnodeError(tooLarge ? 'RN_DICOM_TOO_LARGE' : 'RN_DICOM_DECODE_FAILED', `frame ${index + 1} does not inflate: ${(err as Error).message}`, { cause: err });
      }
      return nativeFrame(new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength), { ...img, NumberOfFrames: 1 }, 0, TAG.PixelData);
    }
    case 'rle': {
      const bytes = rleDecodeFrame(encoded, Rows, Columns, SamplesPerPixel, BitsAllocated);
      return { bytes, bytesPerSample: BitsAllocated / 8, planar: false, photometric: pi };
    }
    case 'jpeg-baseline':
    case 'jpeg-extended':
    case 'jpeg-progressive': {
      const info = jpegStreamInfo(encoded);
      if (!info) throw decodeFailed(`frame ${index + 1} is not a JPEG stream`);
      if (info.precision <= 8) {
        let stream = encoded;
        const rgbIds = info.componentIds.join(',') === '82,71,66';
        if (pi === 'RGB' && info.components === 3 && !info.hasJfif && info.adobeTransform === undefined && !rgbIds) stream = relabelAsRgb(encoded, info);
        const c = await wasmDecode('libjpegTurbo', stream);
        return expectFrame(c, SamplesPerPixel === 3 ? 'RGB' : pi);
      }
      const c = await gdcmDecodeJpeg(encoded, {
        rows: Rows,
        columns: Columns,
        bitsAllocated: BitsAllocated,
        bitsStored: Math.max(BitsStored, info.precision),
        pixelRepresentation: PixelRepresentation,
        samplesPerPixel: SamplesPerPixel,
        photometric: pi,
        transferSyntaxUID: ts.uid,
      });
      return expectFrame(c, SamplesPerPixel === 3 ? 'RGB' : pi);
    }
    case 'jpeg-lossless': {
      const c = jpegLosslessDecode(encoded, BitsAllocated);
      const info = jpegStreamInfo(encoded);
      if (info?.predictor === 6 && info.precision === 16 && looksWrapped(c.bytes, SamplesPerPixel)) {
        throw decodeFailed(
          'JPEG lossless predictor 6 at 16 bits decodes to wrapped values: the known encoder overflow bug ' +
            '(pylibjpeg-data JPEGLossless_1s_1f_i_16_16_bad). Only a decoder with the predictor-6 workaround ' +
            '(dcmtk dcmdjpeg +w6) recovers it; ask the PACS for another transfer syntax.',
          { predictor6Overflow: true },
        );
      }
      return expectFrame(c, pi);
    }
    case 'jpeg-ls': {
      const c = await wasmDecode('charls', encoded);
      return expectFrame(c, pi);
    }
    case 'jpeg-2000': {
      const c = await wasmDecode('openjpeg', j2kCodestream(encoded));
      return expectFrame(c, pi === 'YBR_RCT' || pi === 'YBR_ICT' ? 'RGB' : pi);
    }
    case 'htj2k': {
      const c = await wasmDecode('openjph', j2kCodestream(encoded));
      return expectFrame(c, pi === 'YBR_RCT' || pi === 'YBR_ICT' ? 'RGB' : pi);
    }
    default:
      throw new RadnodeError('RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX', `no decoder for transfer syntax ${ts.uid} (${ts.name})`, {
        details: { transferSyntaxUID: ts.uid, transferSyntaxName: ts.name },
      });
  }
}

/**
 * A 16-bit predictor-6 stream from the buggy encoder decodes, in every standard decoder, to values that jump by
 * about 2^16 between neighbours (9% of neighbouring pairs in the pylibjpeg-data trap file, none in a correct
 * stream): more than 0.5% of pairs differing by over 2^15 (read as signed) is taken for that corruption.
 */
function looksWrapped(bytes: Uint8Array, samplesPerPixel: number): boolean {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length >> 1;
  let jumps = 0;
  for (let i = samplesPerPixel; i < n; i++) {
    if (Math.abs(dv.getInt16(i * 2, true) - dv.getInt16((i - samplesPerPixel) * 2, true)) > 32768) jumps++;
  }
  return jumps > n * 0.005;
}

function typedContainer(bitsAllocated: number, signed: boolean, n: number, float: boolean): PixelArray {
  if (float) return bitsAllocated === 64 ? new Float64Array(n) : new Float32Array(n);
  switch (bitsAllocated) {
    case 1:
    case 8:
      return signed ? new Int8Array(n) : new Uint8Array(n);
    case 16:
      return signed ? new Int16Array(n) : new Uint16Array(n);
    default:
      return signed ? new Int32Array(n) : new Uint32Array(n);
  }
}

/** Turns raw bytes into stored values: container type, planar → interleaved, Bits Stored mask and sign extension. */
function interpret(raw: RawFrame, img: ImageAttributes, index: number, options: DecodeOptions, lut: ReturnType<typeof readPalette> | undefined): DecodedFrame {
  const { Rows, Columns, SamplesPerPixel, BitsAllocated, BitsStored, HighBit, PixelRepresentation } = img;
  const pixels = Rows * Columns;
  let photometric = raw.photometric;

  if (raw.subsampled422) {
    const ybr = ybr422ToYbrFull(raw.bytes, Rows, Columns);
    photometric = 'YBR_FULL';
    if (options.convertColour !== false) {
      ybrFullToRgb(ybr);
      photometric = 'RGB';
    }
    return { index, rows: Rows, columns: Columns, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0, photometricInterpretation: photometric, data: ybr };
  }

  const n = pixels * SamplesPerPixel;
  const float = raw.float === true;
  const container = BitsAllocated === 1 ? 8 : BitsAllocated;
  const signed = PixelRepresentation === 1;
  const data = typedContainer(container, signed, n, float);
  const bps = raw.bytesPerSample;
  const dv = new DataView(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength);
  const planarStride = raw.planar ? pixels : 0;
  for (let s = 0; s < SamplesPerPixel; s++) {
    for (let p = 0; p < pixels; p++) {
      const src = raw.planar ? s * planarStride + p : p * SamplesPerPixel + s;
      const dst = p * SamplesPerPixel + s;
      let v: number;
      if (bps === 1) v = raw.bytes[src];
      else if (bps === 2) v = dv.getUint16(src * 2, true);
      else if (float) v = bps === 8 ? dv.getFloat64(src * 8, true) : dv.getFloat32(src * 4, true);
      else v = dv.getUint32(src * 4, true);
      data[dst] = v;
    }
  }

  // PS3.5 8.1.1: only bits (HighBit-BitsStored+1 .. HighBit) are the value; the rest may hold overlays or garbage.
  if (!float && BitsAllocated > 1 && (BitsStored < container || HighBit !== BitsStored - 1)) {
    const shift = HighBit + 1 - BitsStored;
    const mask = BitsStored >= 32 ? 0xffffffff : 2 ** BitsStored - 1;
    const signBit = 2 ** (BitsStored - 1);
    const range = 2 ** BitsStored;
    for (let i = 0; i < n; i++) {
      let u = data[i];
      if (u < 0) u += 2 ** container; // raw bits of a signed container
      let v = Math.floor(u / 2 ** shift) % (mask + 1);
      if (signed && v >= signBit) v -= range;
      data[i] = v;
    }
  }

  if (lut && photometric === 'PALETTE COLOR') {
    const rgb = applyPalette(data, lut);
    return {
      index,
      rows: Rows,
      columns: Columns,
      samplesPerPixel: 3,
      bitsAllocated: lut.bits > 8 ? 16 : 8,
      bitsStored: lut.bits,
      pixelRepresentation: 0,
      photometricInterpretation: 'RGB',
      data: rgb,
    };
  }
  if (options.convertColour !== false && photometric === 'YBR_FULL' && SamplesPerPixel === 3 && data instanceof Uint8Array) {
    ybrFullToRgb(data);
    photometric = 'RGB';
  }
  return {
    index,
    rows: Rows,
    columns: Columns,
    samplesPerPixel: SamplesPerPixel,
    bitsAllocated: container,
    bitsStored: raw.unpackedBits ? 1 : BitsStored,
    pixelRepresentation: PixelRepresentation,
    photometricInterpretation: photometric,
    data,
  };
}
