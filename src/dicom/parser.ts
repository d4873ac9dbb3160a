import { inflateRawSync, inflateSync } from 'node:zlib';
import { RadnodeError } from '../errors.ts';
import { tagString, vrForTag } from './dictionary.ts';
import { TS, transferSyntaxInfo, type TransferSyntaxInfo } from './transfer-syntax.ts';

/**
 * A byte-level DICOM parser (PS3.5 section 7 and PS3.10 section 7). It never copies element values (they are
 * subarrays of the input), checks every length against the bytes that remain, and advances at least 8 bytes per
 * element, so malformed or truncated input ends in RN_DICOM_MALFORMED rather than an exception, a hang or an
 * unbounded allocation.
 */

export const TAG = {
  TransferSyntaxUID: 0x00020010,
  SpecificCharacterSet: 0x00080005,
  PixelData: 0x7fe00010,
  FloatPixelData: 0x7fe00008,
  DoubleFloatPixelData: 0x7fe00009,
  ExtendedOffsetTable: 0x7fe00001,
  ExtendedOffsetTableLengths: 0x7fe00002,
  Item: 0xfffee000,
  ItemDelimitation: 0xfffee00d,
  SequenceDelimitation: 0xfffee0dd,
} as const;

export interface EncapsulatedPixelData {
  /** Basic Offset Table entries (byte offsets of each frame's first item, from the first fragment item). */
  basicOffsetTable: number[];
  /** Fragments after the Basic Offset Table, in order; each is a view into the input. */
  fragments: Uint8Array[];
  /** Offset of each fragment's item tag relative to the first fragment's item tag (to resolve the BOT). */
  fragmentOffsets: number[];
}

export interface DicomElement {
  tag: number;
  vr: string;
  /** Value bytes (a view of the input) for every VR except SQ and encapsulated Pixel Data. */
  value?: Uint8Array;
  littleEndian: boolean;
  items?: ElementMap[];
  encapsulated?: EncapsulatedPixelData;
}

export type ElementMap = Map<number, DicomElement>;

export interface ParseOptions {
  /** Stop before the top-level Pixel Data element: a cheap header read. */
  stopAtPixelData?: boolean;
  /** Cap on the inflated size of a deflated dataset (PS3.5 A.5), against decompression bombs. */
  maxInflatedBytes?: number;
}

export interface ParsedDicom {
  isPart10: boolean;
  meta: ElementMap;
  dataset: ElementMap;
  transferSyntaxUID: string;
  transferSyntax: TransferSyntaxInfo;
  /** True when the parse stopped at Pixel Data (header-only read) and the pixel data was not parsed. */
  stoppedAtPixelData: boolean;
  /** Where the encoded dataset begins in the input: after the preamble, "DICM" and the File Meta group. */
  datasetOffset: number;
}

export const DEFAULT_MAX_INFLATED_BYTES = 2 * 1024 ** 3 - 1;
/**
 * A deflated dataset may inflate to 64 times its size, at least 256 MiB: ordinary images compress 2-10 times, and a
 * 1.5 MB "deflate bomb" of 1.5 GiB of zeros is refused before it fills memory on the thread that reads it.
 */
const INFLATE_RATIO = 64;
const MIN_INFLATE_CAP = 256 * 1024 ** 2;
/**
 * Data elements and items one object may hold. Each costs about 25 bytes of heap per byte of file; a file of millions
 * of tiny items would otherwise end the process out of memory. Large real objects (enhanced multi-frame functional
 * groups, RT structure sets) hold tens to hundreds of thousands.
 */
export const MAX_ELEMENTS = 1_000_000;
const MAX_DEPTH = 32;

const VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FL', 'FD', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'PN', 'SH',
  'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
/** VRs with a 2-byte reserved field and a 4-byte length in Explicit VR (PS3.5 7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

function malformed(message: string, offset: number, cause?: unknown): RadnodeError {
  return new RadnodeError('RN_DICOM_MALFORMED', `${message} (at byte ${offset})`, { details: { offset }, cause });
}

interface Ctx {
  bytes: Uint8Array;
  view: DataView;
  explicit: boolean;
  little: boolean;
  stopAtPixelData: boolean;
  stoppedAtPixelData: boolean;
  /** Elements and items parsed so far (MAX_ELEMENTS). */
  count: number;
}

function counted(ctx: Ctx, pos: number): void {
  if (++ctx.count > MAX_ELEMENTS)
    throw new RadnodeError('RN_DICOM_TOO_LARGE', `more than ${MAX_ELEMENTS} data elements and items (at byte ${pos})`, { details: { offset: pos } });
}

function u16(ctx: Ctx, pos: number): number {
  return ctx.view.getUint16(pos, ctx.little);
}
function u32(ctx: Ctx, pos: number): number {
  return ctx.view.getUint32(pos, ctx.little);
}
function readTag(ctx: Ctx, pos: number): number {
  return ((u16(ctx, pos) << 16) | u16(ctx, pos + 2)) >>> 0;
}

function isUpper(b: number): boolean {
  return b >= 0x41 && b <= 0x5a;
}

/** Parses elements from `pos` until `end`, or until an Item Delimitation Item when `inUndefinedItem`. */
function parseElements(ctx: Ctx, pos: number, end: number, depth: number, inUndefinedItem: boolean): { map: ElementMap; pos: number } {
  if (depth > MAX_DEPTH) throw malformed('sequences nested deeper than 32 levels', pos);
  const map: ElementMap = new Map();
  while (pos < end) {
    if (end - pos < 8) {
      // Trailing zero padding after the last element is harmless; anything else is a truncated element.
      if (depth === 0 && ctx.bytes.subarray(pos, end).every((b) => b === 0)) return { map, pos: end };
      throw malformed('truncated element header', pos);
    }
    const tag = readTag(ctx, pos);
    if (tag === TAG.ItemDelimitation) {
      if (inUndefinedItem) return { map, pos: pos + 8 };
      throw malformed('item delimitation outside an item', pos);
    }
    if (tag === TAG.SequenceDelimitation || tag === TAG.Item) {
      if (depth === 0 && tag === TAG.SequenceDelimitation) {
        // Some writers leave a stray sequence delimiter at the end of the dataset; skip it.
        pos += 8;
        continue;
      }
      throw malformed(`unexpected ${tagString(tag)} among elements`, pos);
    }
    if (depth === 0 && ctx.stopAtPixelData && tag === TAG.PixelData) {
      ctx.stoppedAtPixelData = true;
      return { map, pos };
    }
    counted(ctx, pos);
    let vr: string;
    let length: number;
    let valuePos: number;
    let elementLittle = ctx.little;
    const b4 = ctx.bytes[pos + 4];
    const b5 = ctx.bytes[pos + 5];
    if (ctx.explicit && isUpper(b4) && isUpper(b5) && VRS.has(String.fromCharCode(b4, b5))) {
      vr = String.fromCharCode(b4, b5);
      if (LONG_VRS.has(vr)) {
        if (end - pos < 12) throw malformed('truncated element header', pos);
        length = u32(ctx, pos + 8);
        valuePos = pos + 12;
      } else {
        length = u16(ctx, pos + 6);
        valuePos = pos + 8;
      }
    } else {
      // Implicit VR, or an Explicit VR file with one implicitly encoded element (a known writer defect): take the
      // VR from the dictionary and a 4-byte length.
      vr = vrForTag(tag);
      length = u32(ctx, pos + 4);
      valuePos = pos + 8;
    }

    if (length === 0xffffffff) {
      if (tag === TAG.PixelData) {
        const r = parseEncapsulated(ctx, valuePos, end);
        map.set(tag, { tag, vr: vr === 'UN' ? 'OB' : vr, littleEndian: true, encapsulated: r.pixel });
        pos = r.pos;
        continue;
      }
      if (vr === 'SQ' || vr === 'UN') {
        // PS3.5 6.2.2: UN with undefined length is a sequence encoded in Implicit VR Little Endian.
        const sub: Ctx = vr === 'UN' ? { ...ctx, explicit: false, little: true } : ctx;
        const r = parseSequence(sub, valuePos, end, depth, true);
        map.set(tag, { tag, vr: 'SQ', littleEndian: sub.little, items: r.items });
        pos = r.pos;
        continue;
      }
      throw malformed(`undefined length on ${tagString(tag)} with VR ${vr}`, pos);
    }
    if (length > end - valuePos) throw malformed(`value of ${tagString(tag)} (${length} bytes) runs past the end of the data`, pos);
    if (vr === 'SQ') {
      const r = parseSequence(ctx, valuePos, valuePos + length, depth, false);
      map.set(tag, { tag, vr, littleEndian: ctx.little, items: r.items });
    } else {
      if (tag === TAG.PixelData && !ctx.little) elementLittle = false;
      map.set(tag, { tag, vr, littleEndian: elementLittle, value: ctx.bytes.subarray(valuePos, valuePos + length) });
    }
    pos = valuePos + length;
  }
  if (inUndefinedItem) throw malformed('item without its delimitation item', pos);
  return { map, pos };
}

function parseSequence(ctx: Ctx, pos: number, end: number, depth: number, undefinedLength: boolean): { items: ElementMap[]; pos: number } {
  const items: ElementMap[] = [];
  while (pos < end) {
    if (end - pos < 8) throw malformed('truncated item header', pos);
    const tag = readTag(ctx, pos);
    const length = u32(ctx, pos + 4);
    if (tag === TAG.SequenceDelimitation) {
      if (undefinedLength) return { items, pos: pos + 8 };
      throw malformed('sequence delimitation in a defined-length sequence', pos);
    }
    if (tag !== TAG.Item) throw malformed(`expected an item, found ${tagString(tag)}`, pos);
    counted(ctx, pos);
    if (length === 0xffffffff) {
      const r = parseElements(ctx, pos + 8, end, depth + 1, true);
      items.push(r.map);
      pos = r.pos;
    } else {
      if (length > end - pos - 8) throw malformed('item runs past the end of its sequence', pos);
      const r = parseElements(ctx, pos + 8, pos + 8 + length, depth + 1, false);
      items.push(r.map);
      pos = pos + 8 + length;
    }
  }
  if (undefinedLength) throw malformed('sequence without its sequence delimitation item', pos);
  return { items, pos };
}

/** PS3.5 A.4: items of encapsulated pixel data; the first is the Basic Offset Table. Item lengths are trusted, never
 * delimiter bytes inside fragments (pydicom #1140). */
function parseEncapsulated(ctx: Ctx, pos: number, end: number): { pixel: EncapsulatedPixelData; pos: number } {
  const view = ctx.view;
  const fragments: Uint8Array[] = [];
  const fragmentOffsets: number[] = [];
  let bot: number[] | undefined;
  let firstFragmentPos = -1;
  while (true) {
    if (end - pos < 8) throw malformed('encapsulated pixel data ends without a sequence delimitation item', pos);
    const tag = ((view.getUint16(pos, true) << 16) | view.getUint16(pos + 2, true)) >>> 0;
    const length = view.getUint32(pos + 4, true);
    if (tag === TAG.SequenceDelimitation) {
      pos += 8;
      break;
    }
    if (tag !== TAG.Item) throw malformed(`expected a pixel data item, found ${tagString(tag)}`, pos);
    if (length === 0xffffffff || length > end - pos - 8) throw malformed('pixel data item runs past the end of the data', pos);
    const value = ctx.bytes.subarray(pos + 8, pos + 8 + length);
    if (bot === undefined) {
      if (length % 4 !== 0) throw malformed('Basic Offset Table length is not a multiple of 4', pos);
      bot = [];
      for (let i = 0; i < length; i += 4) bot.push(view.getUint32(pos + 8 + i, true));
    } else {
      if (firstFragmentPos < 0) firstFragmentPos = pos;
      fragmentOffsets.push(pos - firstFragmentPos);
      fragments.push(value);
    }
    pos += 8 + length;
  }
  return { pixel: { basicOffsetTable: bot ?? [], fragments, fragmentOffsets }, pos };
}

function asciiAt(bytes: Uint8Array, pos: number, n: number): string {
  let s = '';
  for (let i = 0; i < n && pos + i < bytes.length; i++) s += String.fromCharCode(bytes[pos + i]);
  return s;
}

function trimUid(v: Uint8Array | undefined): string {
  if (!v) return '';
  let s = '';
  for (const b of v) if (b !== 0) s += String.fromCharCode(b);
  return s.trim();
}

/** Group and element values that plausibly start a dataset which has no Part 10 header (ACR-NEMA style). */
function looksLikeRawDataset(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  const group = bytes[0] | (bytes[1] << 8);
  return group === 0x0002 || group === 0x0008 || group === 0x0010 || group === 0x0018 || group === 0x0020 || group === 0x0028;
}

/**
 * Parses a Part 10 file (preamble, "DICM", File Meta) or a bare dataset without File Meta, whose transfer syntax is
 * then guessed between Implicit and Explicit VR Little Endian from its first element.
 */
export function parseDicom(bytes: Uint8Array, options: ParseOptions = {}): ParsedDicom {
  if (!(bytes instanceof Uint8Array)) throw new RadnodeError('RN_DICOM_MALFORMED', 'input is not a byte array');
  // A Node Buffer's slice() is a view, not a copy: work on a plain Uint8Array so that element values never carry
  // Buffer semantics into the codecs.
  bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const isPart10 = bytes.length >= 132 && asciiAt(bytes, 128, 4) === 'DICM';
  // Some writers drop the preamble and "DICM" but keep the File Meta group (pydicom-data JLSL_*): read it anyway.
  const bareMeta = !isPart10 && bytes.length >= 8 && bytes[0] === 0x02 && bytes[1] === 0x00 && isUpper(bytes[4]) && isUpper(bytes[5]);
  let pos = 0;
  let meta: ElementMap = new Map();
  if (isPart10 || bareMeta) {
    pos = isPart10 ? 132 : 0;
    const metaCtx: Ctx = { bytes, view, explicit: true, little: true, stopAtPixelData: false, stoppedAtPixelData: false, count: 0 };
    // Read the File Meta group element by element: its group length is wrong in enough files not to trust it.
    let metaEnd = pos;
    while (metaEnd + 8 <= bytes.length && view.getUint16(metaEnd, true) === 0x0002) {
      const b4 = bytes[metaEnd + 4];
      const b5 = bytes[metaEnd + 5];
      if (!isUpper(b4) || !isUpper(b5)) throw malformed('File Meta element without an explicit VR', metaEnd);
      const vr = String.fromCharCode(b4, b5);
      const len = LONG_VRS.has(vr) ? (metaEnd + 12 <= bytes.length ? view.getUint32(metaEnd + 8, true) : Infinity) : view.getUint16(metaEnd + 6, true);
      const headerLength = LONG_VRS.has(vr) ? 12 : 8;
      if (len === 0xffffffff || metaEnd + headerLength + len > bytes.length) throw malformed('truncated File Meta', metaEnd);
      metaEnd += headerLength + len;
    }
    meta = parseElements(metaCtx, pos, metaEnd, 0, false).map;
    pos = metaEnd;
  } else if (!looksLikeRawDataset(bytes)) {
    throw new RadnodeError('RN_DICOM_MALFORMED', 'not DICOM: no "DICM" prefix at byte 128 and no recognisable dataset start', {
      details: { byteLength: bytes.length },
    });
  }

  let tsUid = trimUid(meta.get(TAG.TransferSyntaxUID)?.value);
  if (tsUid === '') {
    if (isPart10 && pos >= bytes.length) throw malformed('File Meta without a dataset', pos);
    if (isPart10 && meta.size === 0) throw malformed('Part 10 file without File Meta', pos);
    // No File Meta: decide from the first element whether the VR is explicit.
    const b4 = bytes[pos + 4];
    const b5 = bytes[pos + 5];
    const explicit = isUpper(b4) && isUpper(b5) && VRS.has(String.fromCharCode(b4, b5));
    tsUid = explicit ? TS.ExplicitVRLittleEndian : TS.ImplicitVRLittleEndian;
  }
  const tsInfo = transferSyntaxInfo(tsUid);
  const datasetOffset = pos;

  let dsBytes = bytes;
  let dsView = view;
  if (tsInfo.deflatedDataset) {
    const deflated = bytes.subarray(pos);
    const maxOutputLength = options.maxInflatedBytes ?? Math.min(DEFAULT_MAX_INFLATED_BYTES, Math.max(MIN_INFLATE_CAP, INFLATE_RATIO * deflated.length));
    let inflated: Buffer;
    try {
      inflated = inflateRawSync(deflated, { maxOutputLength });
    } catch (err) {
      if (err instanceof RangeError || (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new RadnodeError('RN_DICOM_TOO_LARGE', `deflated dataset inflates past ${maxOutputLength} bytes`, { cause: err });
      }
      try {
        // A few writers wrapped the stream in a zlib header although PS3.5 A.5 asks for raw deflate.
        inflated = inflateSync(deflated, { maxOutputLength });
      } catch (err2) {
        throw malformed('deflated dataset does not inflate', pos, err2);
      }
    }
    dsBytes = new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength);
    dsView = new DataView(dsBytes.buffer, dsBytes.byteOffset, dsBytes.byteLength);
    pos = 0;
  }

  const ctx: Ctx = {
    bytes: dsBytes,
    view: dsView,
    explicit: tsInfo.explicitVr,
    little: tsInfo.littleEndian,
    stopAtPixelData: options.stopAtPixelData ?? false,
    stoppedAtPixelData: false,
    count: 0,
  };
  let dataset: ElementMap;
  try {
    dataset = parseElements(ctx, pos, dsBytes.length, 0, false).map;
  } catch (err) {
    if (err instanceof RadnodeError) throw err;
    throw malformed('unreadable dataset', pos, err);
  }
  if (dataset.size === 0 && !ctx.stoppedAtPixelData) throw malformed('empty dataset', pos);
  return { isPart10, meta, dataset, transferSyntaxUID: tsUid, transferSyntax: tsInfo, stoppedAtPixelData: ctx.stoppedAtPixelData, datasetOffset };
}
