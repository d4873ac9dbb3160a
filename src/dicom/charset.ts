import { TextDecoder } from 'node:util';

/**
 * Text values in the character sets of Specific Character Set (0008,0005), PS3.3 C.12.1.1.2 and PS3.5 6.1: single
 * byte sets, UTF-8 and GB18030/GBK by their own decoders, and ISO 2022 code extensions (Japanese JIS X 0201/0208/0212,
 * Korean KS X 1001, Chinese GB 2312, the Latin/Cyrillic/Greek/... G1 sets) by following the escape sequences inside
 * the value. dcmjs refuses more than one character set, and Japanese and Korean sites use them for every patient name.
 */

const decoders = new Map<string, TextDecoder>();
const decoder = (label: string): TextDecoder => {
  let d = decoders.get(label);
  if (!d) decoders.set(label, (d = new TextDecoder(label)));
  return d;
};

/** Defined terms of one value of (0008,0005), without the `ISO 2022 ` / `ISO_` prefix difference, to a WHATWG label. */
const SINGLE_BYTE: Record<string, string> = {
  'IR 6': 'latin1', 'IR 100': 'latin1', 'IR 101': 'iso-8859-2', 'IR 109': 'iso-8859-3', 'IR 110': 'iso-8859-4',
  'IR 144': 'iso-8859-5', 'IR 127': 'iso-8859-6', 'IR 126': 'iso-8859-7', 'IR 138': 'iso-8859-8', 'IR 148': 'iso-8859-9',
  'IR 203': 'iso-8859-15', 'IR 166': 'windows-874', 'IR 13': 'shift_jis',
};
/** Whole-value decoders of the sets that admit no code extension. */
const WHOLE: Record<string, string> = { 'ISO_IR 192': 'utf-8', GB18030: 'gb18030', GBK: 'gbk' };

/** G1 sets by the final byte of `ESC - F` (96-character sets, PS3.3 Table C.12-3). */
const G1_96: Record<number, string> = {
  0x41: 'latin1', 0x42: 'iso-8859-2', 0x43: 'iso-8859-3', 0x44: 'iso-8859-4', 0x4c: 'iso-8859-5', 0x47: 'iso-8859-6',
  0x46: 'iso-8859-7', 0x48: 'iso-8859-8', 0x4d: 'iso-8859-9', 0x62: 'iso-8859-15', 0x54: 'windows-874',
};

type G0 = 'ascii' | 'jis0208' | 'jis0212';
type G1 = { kind: 'single'; label: string } | { kind: 'katakana' } | { kind: 'double'; label: string } | null;
type State = { g0: G0; g1: G1 };

const term = (v: string): string => v.trim().replace(/^ISO[ _](2022 )?/, '');

function initialState(first: string): State {
  const t = term(first);
  if (t === 'IR 13') return { g0: 'ascii', g1: { kind: 'katakana' } };
  const label = SINGLE_BYTE[t];
  return { g0: 'ascii', g1: label && t !== 'IR 6' ? { kind: 'single', label } : null };
}

/** The escape sequence at `i` (bytes after ESC); returns its length, or 0 when it is not one radnode knows. */
function escape(b: Uint8Array, i: number, s: State): number {
  const [a, c, d] = [b[i], b[i + 1], b[i + 2]];
  if (a === 0x28 && (c === 0x42 || c === 0x4a)) return (s.g0 = 'ascii'), 2; // ESC ( B, ESC ( J
  if (a === 0x29 && c === 0x49) return (s.g1 = { kind: 'katakana' }), 2; // ESC ) I
  if (a === 0x24 && (c === 0x42 || c === 0x40)) return (s.g0 = 'jis0208'), 2; // ESC $ B, ESC $ @
  if (a === 0x24 && c === 0x28 && d === 0x44) return (s.g0 = 'jis0212'), 3; // ESC $ ( D
  if (a === 0x24 && c === 0x29 && d === 0x43) return (s.g1 = { kind: 'double', label: 'euc-kr' }), 3; // ESC $ ) C
  if (a === 0x24 && c === 0x29 && d === 0x41) return (s.g1 = { kind: 'double', label: 'gb18030' }), 3; // ESC $ ) A
  if (a === 0x2d && G1_96[c] !== undefined) return (s.g1 = { kind: 'single', label: G1_96[c] }), 2; // ESC - F
  return 0;
}

/**
 * PS3.5 6.1.2.5.3: the initial sets are back in force at each value (\\), at line and tab controls, and in a person
 * name at its component (^) and group (=) delimiters. Only in a single-byte G0: inside a JIS X 0208 pair those bytes
 * are half of a kanji (秋 is 0x3D 0x29).
 */
const RESETS = new Set([0x5c, 0x0a, 0x0d, 0x09, 0x0c]); // \ LF CR TAB FF
const PN_RESETS = new Set([...RESETS, 0x5e, 0x3d]); // and ^ =

function decodeIso2022(bytes: Uint8Array, charsets: string[], personName: boolean): string {
  const resets = personName ? PN_RESETS : RESETS;
  const start = (): State => initialState(charsets[0] ?? '');
  let s = start();
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    if (b === 0x1b) {
      const n = escape(bytes, i + 1, s);
      i += 1 + n; // an unknown escape is dropped with its ESC, the rest read as is
      continue;
    }
    if (b < 0x80) {
      if (s.g0 !== 'ascii' && b > 0x20 && b < 0x7f && i + 1 < bytes.length && bytes[i + 1] > 0x20 && bytes[i + 1] < 0x7f) {
        const pair = [b | 0x80, bytes[i + 1] | 0x80];
        out += decoder('euc-jp').decode(Uint8Array.from(s.g0 === 'jis0212' ? [0x8f, ...pair] : pair));
        i += 2;
      } else {
        out += String.fromCharCode(b);
        if (resets.has(b)) s = start();
        i++;
      }
      continue;
    }
    const g1 = s.g1;
    if (g1?.kind === 'double' && i + 1 < bytes.length && bytes[i + 1] >= 0x80) {
      out += decoder(g1.label).decode(bytes.subarray(i, i + 2));
      i += 2;
    } else {
      out += decoder(g1?.kind === 'single' ? g1.label : g1?.kind === 'katakana' ? 'shift_jis' : 'latin1').decode(bytes.subarray(i, i + 1));
      i++;
    }
  }
  return out;
}

/**
 * The text of a value's bytes under the values of Specific Character Set (empty: the default repertoire).
 * `personName`: a PN value, whose ^ and = also end a code extension.
 */
export function decodeDicomText(bytes: Uint8Array, charsets: readonly string[], personName = false): string {
  const cs = charsets.map((c) => c.trim());
  const extended = cs.length > 1 || cs.some((c) => c.startsWith('ISO 2022'));
  if (!extended) {
    const only = cs[0] ?? '';
    const label = WHOLE[only] ?? SINGLE_BYTE[term(only)] ?? 'latin1';
    return decoder(label).decode(bytes);
  }
  // A value without ESC or high bytes is plain ASCII whatever the sets: the common case, kept cheap.
  if (!bytes.some((b) => b === 0x1b || b >= 0x80)) return decoder('latin1').decode(bytes);
  return decodeIso2022(bytes, cs, personName);
}
