import { RadnodeError } from '../errors.ts';
import { DataSetView, type NaturalizedDataset } from './dataset.ts';
import { splitFrames } from './frames.ts';
import { parseDicom, TAG, type EncapsulatedPixelData, type ParsedDicom, type ParseOptions } from './parser.ts';
import type { TransferSyntaxInfo } from './transfer-syntax.ts';

/** Image Pixel module attributes (PS3.3 C.7.6.3), with the defaults the standard implies when one is absent. */
export interface ImageAttributes {
  Rows: number;
  Columns: number;
  BitsAllocated: number;
  BitsStored: number;
  HighBit: number;
  PixelRepresentation: number;
  SamplesPerPixel: number;
  PhotometricInterpretation: string;
  PlanarConfiguration: number;
  NumberOfFrames: number;
}

export interface PixelDataRef {
  /** Native pixel data bytes as stored (still big endian for Explicit VR Big Endian), or undefined if encapsulated. */
  native?: Uint8Array;
  encapsulated?: EncapsulatedPixelData;
  vr: string;
  littleEndian: boolean;
  /** The tag holding the pixels: Pixel Data, Float Pixel Data or Double Float Pixel Data. */
  tag: number;
}

export interface InstanceUids {
  StudyInstanceUID: string;
  SeriesInstanceUID: string;
  SOPInstanceUID: string;
  SOPClassUID: string;
}

/** A parsed DICOM instance: the header as a typed view, the File Meta, and (unless read with readHeader) the pixels. */
export class DicomInstance {
  readonly header: DataSetView;
  readonly meta: DataSetView;
  readonly isPart10: boolean;
  readonly transferSyntaxUID: string;
  readonly transferSyntax: TransferSyntaxInfo;
  /** False for instances read with readHeader: they carry no pixel data. */
  readonly hasPixelDataLoaded: boolean;
  /** Where the encoded dataset begins in the bytes read (after the File Meta). */
  readonly datasetOffset: number;
  private naturalized?: NaturalizedDataset;
  private encodedFrames?: Uint8Array[];

  constructor(parsed: ParsedDicom) {
    this.header = new DataSetView(parsed.dataset);
    this.meta = new DataSetView(parsed.meta);
    this.isPart10 = parsed.isPart10;
    this.transferSyntaxUID = parsed.transferSyntaxUID;
    this.transferSyntax = parsed.transferSyntax;
    this.hasPixelDataLoaded = !parsed.stoppedAtPixelData;
    this.datasetOffset = parsed.datasetOffset;
  }

  /** The whole dataset in dcmjs's naturalized form (computed on first use). */
  get dataset(): NaturalizedDataset {
    this.naturalized ??= this.header.naturalize();
    return this.naturalized;
  }

  get StudyInstanceUID(): string | undefined {
    return this.header.string('StudyInstanceUID');
  }
  get SeriesInstanceUID(): string | undefined {
    return this.header.string('SeriesInstanceUID');
  }
  get SOPInstanceUID(): string | undefined {
    return this.header.string('SOPInstanceUID') ?? this.meta.string('MediaStorageSOPInstanceUID');
  }
  get SOPClassUID(): string | undefined {
    return this.header.string('SOPClassUID') ?? this.meta.string('MediaStorageSOPClassUID');
  }
  get TransferSyntaxUID(): string {
    return this.transferSyntaxUID;
  }
  get Modality(): string | undefined {
    return this.header.string('Modality');
  }

  /** The four identifying UIDs, or RN_DICOM_MISSING_ATTRIBUTE naming the first one absent. */
  uids(): InstanceUids {
    const out = {
      StudyInstanceUID: this.StudyInstanceUID,
      SeriesInstanceUID: this.SeriesInstanceUID,
      SOPInstanceUID: this.SOPInstanceUID,
      SOPClassUID: this.SOPClassUID,
    };
    for (const [k, v] of Object.entries(out)) {
      if (!v) throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', `${k} is missing`, { details: { attribute: k } });
    }
    return out as InstanceUids;
  }

  /** Image Pixel attributes, or undefined for an object without an image (SR, KO, PR...). */
  get image(): ImageAttributes | undefined {
    const h = this.header;
    const rows = h.number('Rows');
    const columns = h.number('Columns');
    if (rows === undefined || columns === undefined) return undefined;
    const bitsAllocated = h.number('BitsAllocated') ?? 16;
    const bitsStored = h.number('BitsStored') ?? bitsAllocated;
    const frames = h.number('NumberOfFrames');
    return {
      Rows: rows,
      Columns: columns,
      BitsAllocated: bitsAllocated,
      BitsStored: bitsStored,
      HighBit: h.number('HighBit') ?? bitsStored - 1,
      PixelRepresentation: h.number('PixelRepresentation') ?? 0,
      SamplesPerPixel: h.number('SamplesPerPixel') ?? 1,
      PhotometricInterpretation: h.string('PhotometricInterpretation') ?? 'MONOCHROME2',
      PlanarConfiguration: h.number('PlanarConfiguration') ?? 0,
      NumberOfFrames: frames !== undefined && frames >= 1 ? Math.floor(frames) : 1,
    };
  }

  /** The top-level pixel data element (the one inside an Icon Image Sequence is never taken for it). */
  get pixelData(): PixelDataRef | undefined {
    for (const tag of [TAG.PixelData, TAG.FloatPixelData, TAG.DoubleFloatPixelData]) {
      const el = this.header.elements.get(tag);
      if (!el) continue;
      return { native: el.value, encapsulated: el.encapsulated, vr: el.vr, littleEndian: el.littleEndian, tag };
    }
    return undefined;
  }

  /** The compressed bytes of each frame (encapsulated syntaxes only). */
  encapsulatedFrames(): Uint8Array[] {
    if (this.encodedFrames) return this.encodedFrames;
    const pd = this.pixelData;
    if (!pd?.encapsulated) throw new RadnodeError('RN_DICOM_MISSING_ATTRIBUTE', 'no encapsulated pixel data');
    const n = this.image?.NumberOfFrames ?? 1;
    const eot = this.header.element(TAG.ExtendedOffsetTable);
    let extended: number[] | undefined;
    if (eot?.value && eot.value.length % 8 === 0) {
      const dv = new DataView(eot.value.buffer, eot.value.byteOffset, eot.value.byteLength);
      extended = [];
      for (let i = 0; i < eot.value.length; i += 8) extended.push(Number(dv.getBigUint64(i, true)));
    }
    this.encodedFrames = splitFrames(pd.encapsulated, n, this.transferSyntax.encoding, extended);
    return this.encodedFrames;
  }
}

/**
 * Parses a Part 10 object (or a bare dataset without File Meta). Non-DICOM or truncated input gives
 * RN_DICOM_MALFORMED; nothing else escapes.
 */
export function readInstance(bytes: Uint8Array, options: ParseOptions = {}): DicomInstance {
  return new DicomInstance(guard(() => parseDicom(bytes, options)));
}

/** Like readInstance but stops before the top-level Pixel Data: the ingest path's cheap read. */
export function readHeader(bytes: Uint8Array, options: Omit<ParseOptions, 'stopAtPixelData'> = {}): DicomInstance {
  return new DicomInstance(guard(() => parseDicom(bytes, { ...options, stopAtPixelData: true })));
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RadnodeError) throw err;
    throw new RadnodeError('RN_DICOM_MALFORMED', `unreadable DICOM: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
