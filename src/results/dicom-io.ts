/**
 * The one place src/results touches dcmjs (0.51.1, untyped: types/dcmjs.d.ts). Everything else works on the
 * naturalized dataset typed below, so that `any` never leaks out of this file.
 */
import dcmjs from 'dcmjs';
import { readHeader, readInstance } from '../dicom/index.ts';
import { RadnodeError } from '../errors.ts';

/** A naturalized DICOM dataset (dcmjs keyword form): values are strings, numbers, arrays, nested datasets or bytes. */
export type DicomValue = string | number | ArrayBuffer | DicomDataset[] | (string | number)[] | PersonName[] | ArrayBuffer[];
export type PersonName = { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
export type DicomDataset = { [keyword: string]: DicomValue | undefined | Record<string, string> };

type DcmjsData = {
  DicomMessage: { readFile(buffer: ArrayBuffer, options?: Record<string, unknown>): { meta: unknown; dict: unknown } };
  DicomMetaDictionary: {
    naturalizeDataset(dict: unknown): DicomDataset;
    denaturalizeDataset(ds: DicomDataset): unknown;
  };
  DicomDict: new (meta: unknown) => { dict: unknown; write(options?: Record<string, unknown>): ArrayBuffer };
};
const lib = dcmjs as { data: DcmjsData; log?: { setLevel?: (level: string) => void } };
// dcmjs logs warnings ("Invalid vr type ox") on console for ordinary vendor files; they are noise for a server.
lib.log?.setLevel?.('error');

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** radnode's Implementation Class UID lives under the node root in the writer; this names the writer in Part 10 meta. */
export const IMPLEMENTATION_VERSION_NAME = 'RADNODE_RESULTS1';

export type ParsedPart10 = { meta: DicomDataset; dataset: DicomDataset };

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** Parses a Part 10 file (PS3.10 §7.1); untrusted input, so any dcmjs failure becomes RN_DICOM_MALFORMED. */
export function readPart10(bytes: Uint8Array, options: { untilPixelData?: boolean } = {}): ParsedPart10 {
  try {
    const file = lib.data.DicomMessage.readFile(toArrayBuffer(bytes), options.untilPixelData ? { untilTag: '7FE00010' } : {});
    return {
      meta: lib.data.DicomMetaDictionary.naturalizeDataset(file.meta),
      dataset: lib.data.DicomMetaDictionary.naturalizeDataset(file.dict),
    };
  } catch (cause) {
    // dcmjs reads one character set only (and not all of them): Japanese, Korean and Chinese sites name patients with
    // ISO 2022 code extensions. The imaging core decodes those (dicom/charset.ts) into the same naturalized form.
    if (cause instanceof Error && /character set/i.test(cause.message)) return readWithCoreCharsets(bytes, options);
    throw new RadnodeError('RN_DICOM_MALFORMED', 'not a readable DICOM Part 10 object', { cause });
  }
}

function readWithCoreCharsets(bytes: Uint8Array, options: { untilPixelData?: boolean }): ParsedPart10 {
  const instance = options.untilPixelData ? readHeader(bytes) : readInstance(bytes);
  return { meta: { TransferSyntaxUID: instance.transferSyntaxUID }, dataset: instance.dataset as DicomDataset };
}

/**
 * Writes a dataset as Part 10, Explicit VR Little Endian. Deterministic: the same dataset gives the same bytes,
 * which the exactly-once delivery relies on (DESIGN §3).
 */
export function writePart10(dataset: DicomDataset, implementationClassUID: string): Uint8Array {
  const sopClassUID = dataset.SOPClassUID;
  const sopInstanceUID = dataset.SOPInstanceUID;
  if (typeof sopClassUID !== 'string' || typeof sopInstanceUID !== 'string') {
    throw new RadnodeError('RN_RESULT_INVALID', 'a result dataset needs SOPClassUID and SOPInstanceUID');
  }
  const meta: DicomDataset = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUID,
    MediaStorageSOPInstanceUID: sopInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: implementationClassUID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  };
  try {
    const dict = new lib.data.DicomDict(lib.data.DicomMetaDictionary.denaturalizeDataset(meta));
    dict.dict = lib.data.DicomMetaDictionary.denaturalizeDataset(dataset);
    return new Uint8Array(dict.write());
  } catch (cause) {
    throw new RadnodeError('RN_RESULT_INVALID', `dcmjs could not encode the result: ${String(cause)}`, { cause });
  }
}

// ---- small typed readers over a naturalized dataset ----

export function str(ds: DicomDataset | undefined, keyword: string): string | undefined {
  const v = ds?.[keyword];
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v) && (typeof v[0] === 'string' || typeof v[0] === 'number')) return String(v[0]);
  return undefined;
}

export function num(ds: DicomDataset | undefined, keyword: string): number | undefined {
  const v = ds?.[keyword];
  const first = Array.isArray(v) ? v[0] : v;
  if (typeof first === 'number') return first;
  if (typeof first === 'string' && first.trim() !== '' && Number.isFinite(Number(first))) return Number(first);
  return undefined;
}

export function nums(ds: DicomDataset | undefined, keyword: string): number[] {
  const v = ds?.[keyword];
  if (v === undefined) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.map((x) => (typeof x === 'number' ? x : Number(x)));
}

export function seq(ds: DicomDataset | undefined, keyword: string): DicomDataset[] {
  const v = ds?.[keyword];
  if (Array.isArray(v) && v.every((x) => typeof x === 'object' && x !== null && !(x instanceof ArrayBuffer))) {
    return v as DicomDataset[];
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof ArrayBuffer)) return [v as DicomDataset];
  return [];
}

export function strs(ds: DicomDataset | undefined, keyword: string): string[] {
  const v = ds?.[keyword];
  if (v === undefined) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.filter((x): x is string | number => typeof x === 'string' || typeof x === 'number').map(String);
}

/** PS3.5 §6.2 DS: at most 16 characters; keep as many significant digits as fit. */
export function formatDS(value: number): string {
  if (!Number.isFinite(value)) throw new RadnodeError('RN_RESULT_INVALID', `cannot encode ${value} as DS`);
  let s = String(value);
  for (let p = 15; s.length > 16 && p >= 1; p--) s = Number(value.toPrecision(p)).toString();
  if (s.length > 16) for (let p = 10; s.length > 16 && p >= 1; p--) s = value.toExponential(p);
  return s;
}

/** PS3.5 §6.2 DA/TM in UTC: the frozen Content Date/Time of a job (DESIGN §3). */
/** DA and TM of an instant, as the wall clock reads `offsetMinutes` east of UTC (0: UTC). */
export function dicomDateTime(instant: Date, offsetMinutes = 0): { date: string; time: string } {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const d = new Date(instant.getTime() + offsetMinutes * 60_000);
  return {
    date: `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`,
    time: `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`,
  };
}
