import dcmjs from 'dcmjs';
import { decodeDicomText } from './charset.ts';
import { keywordForTag, tagForKeyword, tagHex } from './dictionary.ts';
import type { DicomElement, ElementMap } from './parser.ts';

/** A dcmjs "naturalized" dataset: keywords as keys, single values unwrapped, sequences as arrays of datasets. */
export type NaturalizedDataset = Record<string, unknown>;

const TEXT_VRS = new Set(['SH', 'LO', 'ST', 'LT', 'UT', 'PN', 'UC']);
/** VRs whose value is one string, never split on backslash (PS3.5 6.2). */
const SINGLE_STRING_VRS = new Set(['LT', 'ST', 'UT', 'UR']);
const STRING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);
const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);

/** Bytes → text under one data set's Specific Character Set (charset.ts: single-byte, UTF-8, GB18030, ISO 2022). */
type TextDecoding = { charset: string[]; decode(bytes: Uint8Array, vr?: string): string };
function decoderFor(charset: string[]): TextDecoding {
  return { charset, decode: (bytes, vr) => decodeDicomText(bytes, charset, vr === 'PN') };
}

function ascii(v: Uint8Array): string {
  let s = '';
  for (let i = 0; i < v.length; i++) s += String.fromCharCode(v[i]);
  return s;
}

function stripPadding(s: string): string {
  return s.replace(/[\0 ]+$/, '');
}

/**
 * A typed, read-only view of one dataset (or one sequence item). Lookups are by keyword or numeric tag; the values
 * are decoded on demand from the parsed bytes, so a header read that touches five attributes costs five decodes.
 */
export class DataSetView {
  readonly elements: ElementMap;
  private readonly decoder: TextDecoding;

  constructor(elements: ElementMap, charset?: string[]) {
    this.elements = elements;
    const own = DataSetView.charsetOf(elements);
    const cs = own.length > 0 ? own : (charset ?? []);
    this.decoder = decoderFor(cs);
  }

  private static charsetOf(elements: ElementMap): string[] {
    const el = elements.get(0x00080005);
    return el?.value ? ascii(el.value).split('\\') : [];
  }

  element(key: string | number): DicomElement | undefined {
    const tag = typeof key === 'number' ? key : tagForKeyword(key);
    return tag === undefined ? undefined : this.elements.get(tag >>> 0);
  }

  has(key: string | number): boolean {
    const el = this.element(key);
    return el !== undefined && ((el.value?.length ?? 0) > 0 || (el.items?.length ?? 0) > 0 || el.encapsulated !== undefined);
  }

  /** All values of a string VR, padding removed. */
  strings(key: string | number): string[] {
    const el = this.element(key);
    if (!el?.value || el.value.length === 0) return [];
    const text = TEXT_VRS.has(el.vr) ? this.decoder.decode(el.value, el.vr) : ascii(el.value);
    if (SINGLE_STRING_VRS.has(el.vr)) return [stripPadding(text)];
    return text.split('\\').map((s) => stripPadding(s).trim());
  }

  string(key: string | number): string | undefined {
    const v = this.strings(key)[0];
    return v === undefined || v === '' ? undefined : v;
  }

  /** Numeric values of binary number VRs (US, SS, UL, SL, FL, FD, SV, UV, AT) or of IS/DS strings. NaN-free. */
  numbers(key: string | number): number[] {
    const el = this.element(key);
    if (!el?.value || el.value.length === 0) return [];
    return elementNumbers(el, this.decoder);
  }

  number(key: string | number): number | undefined {
    return this.numbers(key)[0];
  }

  items(key: string | number): DataSetView[] {
    const el = this.element(key);
    if (!el?.items) return [];
    return el.items.map((m) => new DataSetView(m, this.charsetFallback()));
  }

  /** PS3.5 7.5.3: a sequence item without its own Specific Character Set uses its parent's. */
  private charsetFallback(): string[] {
    return this.decoder.charset;
  }

  /** Converts to dcmjs's naturalized form (keywords, unwrapped single values), for code that already speaks dcmjs. */
  naturalize(): NaturalizedDataset {
    const dict = toDcmjsDict(this.elements, this.decoder);
    const meta = (dcmjs as unknown as { data: { DicomMetaDictionary: { naturalizeDataset(d: unknown): NaturalizedDataset } } }).data
      .DicomMetaDictionary;
    return meta.naturalizeDataset(dict);
  }
}

function elementNumbers(el: DicomElement, decoder: TextDecoding): number[] {
  const v = el.value!;
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const le = el.littleEndian;
  const out: number[] = [];
  switch (el.vr) {
    case 'US':
      for (let i = 0; i + 2 <= v.length; i += 2) out.push(dv.getUint16(i, le));
      return out;
    case 'SS':
      for (let i = 0; i + 2 <= v.length; i += 2) out.push(dv.getInt16(i, le));
      return out;
    case 'UL':
      for (let i = 0; i + 4 <= v.length; i += 4) out.push(dv.getUint32(i, le));
      return out;
    case 'SL':
      for (let i = 0; i + 4 <= v.length; i += 4) out.push(dv.getInt32(i, le));
      return out;
    case 'FL':
      for (let i = 0; i + 4 <= v.length; i += 4) out.push(dv.getFloat32(i, le));
      return out;
    case 'FD':
      for (let i = 0; i + 8 <= v.length; i += 8) out.push(dv.getFloat64(i, le));
      return out;
    case 'SV':
      for (let i = 0; i + 8 <= v.length; i += 8) out.push(Number(dv.getBigInt64(i, le)));
      return out;
    case 'UV':
      for (let i = 0; i + 8 <= v.length; i += 8) out.push(Number(dv.getBigUint64(i, le)));
      return out;
    case 'AT':
      for (let i = 0; i + 4 <= v.length; i += 4) out.push(((dv.getUint16(i, le) << 16) | dv.getUint16(i + 2, le)) >>> 0);
      return out;
    default: {
      if (!STRING_VRS.has(el.vr) && el.vr !== 'UN') return out;
      const text = decoder.decode(v);
      for (const part of text.split('\\')) {
        const t = part.replace(/\0/g, '').trim();
        if (t === '') continue;
        const n = Number(t);
        if (Number.isFinite(n)) out.push(n);
      }
      return out;
    }
  }
}

interface DcmjsElement {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
}

function personName(value: string): { Alphabetic: string; Ideographic?: string; Phonetic?: string } {
  const [alphabetic, ideographic, phonetic] = value.split('=');
  return { Alphabetic: alphabetic, ...(ideographic ? { Ideographic: ideographic } : {}), ...(phonetic ? { Phonetic: phonetic } : {}) };
}

function toDcmjsDict(elements: ElementMap, decoder: TextDecoding): Record<string, DcmjsElement> {
  const dict: Record<string, DcmjsElement> = {};
  for (const el of elements.values()) {
    const key = tagHex(el.tag);
    const vr = el.vr;
    if (el.items) {
      dict[key] = { vr: 'SQ', Value: el.items.map((m) => toDcmjsDict(m, decoder)) };
      continue;
    }
    if (el.encapsulated) {
      dict[key] = { vr, Value: el.encapsulated.fragments.map((f) => f.slice().buffer) };
      continue;
    }
    const v = el.value ?? new Uint8Array(0);
    if (BINARY_VRS.has(vr)) {
      dict[key] = { vr, Value: [v.slice().buffer] };
    } else if (vr === 'PN') {
      const text = stripPadding(decoder.decode(v, 'PN'));
      // PS3.5 6.2.1: up to three component groups, alphabetic=ideographic=phonetic (Japanese and Korean names).
      dict[key] = { vr, Value: text === '' ? [] : text.split('\\').map(personName) };
    } else if (vr === 'IS' || vr === 'DS') {
      dict[key] = { vr, Value: elementNumbers(el, decoder) };
    } else if (STRING_VRS.has(vr)) {
      const text = TEXT_VRS.has(vr) ? decoder.decode(v) : ascii(v);
      const parts = SINGLE_STRING_VRS.has(vr) ? [stripPadding(text)] : text.split('\\').map((s) => stripPadding(s).trim());
      dict[key] = { vr, Value: parts.length === 1 && parts[0] === '' ? [] : parts };
    } else {
      dict[key] = { vr, Value: elementNumbers(el, decoder) };
    }
    if (keywordForTag(el.tag) === undefined && !BINARY_VRS.has(vr)) dict[key].vr = vr;
  }
  return dict;
}
