/**
 * Transfer syntaxes radnode knows (PS3.6 Annex A). `kind` says how the pixel data is stored; the decoder table in
 * `decode.ts` maps each kind to a codec.
 */
export type PixelEncoding =
  | 'native'
  | 'rle'
  | 'jpeg-baseline' // .50 (8-bit sequential)
  | 'jpeg-extended' // .51 (8 or 12-bit sequential)
  | 'jpeg-progressive' // retired .53/.55
  | 'jpeg-lossless' // .57, .70
  | 'jpeg-ls' // .80, .81
  | 'jpeg-2000' // .90, .91
  | 'htj2k' // .201, .202, .203
  | 'deflated-frame' // .8.1 Deflated Image Frame Compression
  | 'jpeg-xl'
  | 'video'
  | 'unknown';

export interface TransferSyntaxInfo {
  uid: string;
  name: string;
  explicitVr: boolean;
  littleEndian: boolean;
  /** Everything after the File Meta group is one raw deflate stream (PS3.5 A.5). */
  deflatedDataset: boolean;
  encapsulated: boolean;
  lossy: boolean;
  encoding: PixelEncoding;
}

export const TS = {
  ImplicitVRLittleEndian: '1.2.840.10008.1.2',
  ExplicitVRLittleEndian: '1.2.840.10008.1.2.1',
  EncapsulatedUncompressed: '1.2.840.10008.1.2.1.98',
  DeflatedExplicitVRLittleEndian: '1.2.840.10008.1.2.1.99',
  ExplicitVRBigEndian: '1.2.840.10008.1.2.2',
  JPEGBaseline8Bit: '1.2.840.10008.1.2.4.50',
  JPEGExtended12Bit: '1.2.840.10008.1.2.4.51',
  JPEGSpectralSelection: '1.2.840.10008.1.2.4.53',
  JPEGFullProgression: '1.2.840.10008.1.2.4.55',
  JPEGLossless: '1.2.840.10008.1.2.4.57',
  JPEGLosslessSV1: '1.2.840.10008.1.2.4.70',
  JPEGLSLossless: '1.2.840.10008.1.2.4.80',
  JPEGLSNearLossless: '1.2.840.10008.1.2.4.81',
  JPEG2000Lossless: '1.2.840.10008.1.2.4.90',
  JPEG2000: '1.2.840.10008.1.2.4.91',
  HTJ2KLossless: '1.2.840.10008.1.2.4.201',
  HTJ2KLosslessRPCL: '1.2.840.10008.1.2.4.202',
  HTJ2K: '1.2.840.10008.1.2.4.203',
  JPEGXLLossless: '1.2.840.10008.1.2.4.110',
  JPEGXLJPEGRecompression: '1.2.840.10008.1.2.4.111',
  JPEGXL: '1.2.840.10008.1.2.4.112',
  RLELossless: '1.2.840.10008.1.2.5',
  DeflatedImageFrame: '1.2.840.10008.1.2.8.1',
} as const;

function ts(uid: string, name: string, encoding: PixelEncoding, opts: Partial<TransferSyntaxInfo> = {}): TransferSyntaxInfo {
  return {
    uid,
    name,
    explicitVr: true,
    littleEndian: true,
    deflatedDataset: false,
    encapsulated: encoding !== 'native',
    lossy: false,
    encoding,
    ...opts,
  };
}

const TABLE: TransferSyntaxInfo[] = [
  ts(TS.ImplicitVRLittleEndian, 'Implicit VR Little Endian', 'native', { explicitVr: false }),
  ts(TS.ExplicitVRLittleEndian, 'Explicit VR Little Endian', 'native'),
  ts(TS.EncapsulatedUncompressed, 'Encapsulated Uncompressed Explicit VR Little Endian', 'native', { encapsulated: true }),
  ts(TS.DeflatedExplicitVRLittleEndian, 'Deflated Explicit VR Little Endian', 'native', { deflatedDataset: true }),
  ts(TS.ExplicitVRBigEndian, 'Explicit VR Big Endian', 'native', { littleEndian: false }),
  ts(TS.JPEGBaseline8Bit, 'JPEG Baseline (Process 1)', 'jpeg-baseline', { lossy: true }),
  ts(TS.JPEGExtended12Bit, 'JPEG Extended (Process 2 & 4)', 'jpeg-extended', { lossy: true }),
  ts(TS.JPEGSpectralSelection, 'JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8) (Retired)', 'jpeg-progressive', { lossy: true }),
  ts(TS.JPEGFullProgression, 'JPEG Full Progression, Non-Hierarchical (Process 10 & 12) (Retired)', 'jpeg-progressive', { lossy: true }),
  ts(TS.JPEGLossless, 'JPEG Lossless, Non-Hierarchical (Process 14)', 'jpeg-lossless'),
  ts(TS.JPEGLosslessSV1, 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])', 'jpeg-lossless'),
  ts(TS.JPEGLSLossless, 'JPEG-LS Lossless Image Compression', 'jpeg-ls'),
  ts(TS.JPEGLSNearLossless, 'JPEG-LS Lossy (Near-Lossless) Image Compression', 'jpeg-ls', { lossy: true }),
  ts(TS.JPEG2000Lossless, 'JPEG 2000 Image Compression (Lossless Only)', 'jpeg-2000'),
  ts(TS.JPEG2000, 'JPEG 2000 Image Compression', 'jpeg-2000', { lossy: true }),
  ts(TS.HTJ2KLossless, 'High-Throughput JPEG 2000 Image Compression (Lossless Only)', 'htj2k'),
  ts(TS.HTJ2KLosslessRPCL, 'High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)', 'htj2k'),
  ts(TS.HTJ2K, 'High-Throughput JPEG 2000 Image Compression', 'htj2k', { lossy: true }),
  ts(TS.JPEGXLLossless, 'JPEG XL Lossless', 'jpeg-xl'),
  ts(TS.JPEGXLJPEGRecompression, 'JPEG XL JPEG Recompression', 'jpeg-xl'),
  ts(TS.JPEGXL, 'JPEG XL', 'jpeg-xl', { lossy: true }),
  ts(TS.RLELossless, 'RLE Lossless', 'rle'),
  ts(TS.DeflatedImageFrame, 'Deflated Image Frame Compression', 'deflated-frame'),
  ts('1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile / Main Level', 'video', { lossy: true }),
  ts('1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264 High Profile / Level 4.1', 'video', { lossy: true }),
  ts('1.2.840.10008.1.2.4.107', 'HEVC/H.265 Main Profile / Level 5.1', 'video', { lossy: true }),
];

const BY_UID = new Map(TABLE.map((t) => [t.uid, t]));

/**
 * Looks a transfer syntax up. An unknown UID is assumed to be an encapsulated (compressed) syntax in Explicit VR
 * Little Endian, which PS3.5 section 10 requires of every syntax beyond the three native ones; decoding it then
 * fails with RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX naming the UID.
 */
export function transferSyntaxInfo(uid: string): TransferSyntaxInfo {
  return BY_UID.get(uid) ?? ts(uid, `unknown transfer syntax ${uid}`, 'unknown');
}

export function isKnownTransferSyntax(uid: string): boolean {
  return BY_UID.has(uid);
}

/** Encapsulated encodings radnode has no decoder for (JPEG XL, video, syntaxes it does not know). */
const NO_DECODER: ReadonlySet<PixelEncoding> = new Set(['jpeg-xl', 'video', 'unknown']);

/** Whether radnode can decode pixel data stored in this transfer syntax (the retrieve path asks the PACS otherwise). */
export function hasPixelDecoder(ts: TransferSyntaxInfo): boolean {
  return !NO_DECODER.has(ts.encoding);
}
