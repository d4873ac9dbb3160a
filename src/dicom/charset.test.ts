/** The PS3.5 Annex H, I and J examples: Japanese, Korean and Chinese person names with code extensions. */
import { describe, expect, it } from 'vitest';
import { decodeDicomText } from './charset.ts';

const ESC = 0x1b;
const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));
const jis = (s: string) => [ESC, 0x24, 0x42, ...[...s].map((c) => c.charCodeAt(0)), ESC, 0x28, 0x42];

describe('decodeDicomText', () => {
  it('H.3.1: \\ISO 2022 IR 87, JIS X 0208 between ESC $ B and ESC ( B', () => {
    const v = bytes('Yamada^Tarou=', jis(';3ED'), '^', jis('B@O:'), '=', jis('$d$^$@'), '^', jis('$?$m$&'));
    expect(decodeDicomText(v, ['', 'ISO 2022 IR 87'], true)).toBe('Yamada^Tarou=山田^太郎=やまだ^たろう');
  });
  it('H.3.2: ISO 2022 IR 13\\ISO 2022 IR 87, half-width katakana in G1 and kanji in G0', () => {
    const toJ = (s: string) => [ESC, 0x24, 0x42, ...[...s].map((c) => c.charCodeAt(0)), ESC, 0x28, 0x4a];
    const v = bytes([0xd4, 0xcf, 0xc0, 0xde], '^', [0xc0, 0xdb, 0xb3], '=', toJ(';3ED'), '^', toJ('B@O:'), '=', toJ('$d$^$@'), '^', toJ('$?$m$&'));
    expect(decodeDicomText(v, ['ISO 2022 IR 13', 'ISO 2022 IR 87'], true)).toBe('ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう');
  });
  it('a kanji pair may hold the bytes of = ^ \\ (秋 is 0x3D 0x29): they delimit only in a single-byte G0', () => {
    const v = bytes(jis('=);3'), '^', jis('2V;R'));
    expect(decodeDicomText(v, ['', 'ISO 2022 IR 87'], true)).toBe('秋山^花子');
    expect(decodeDicomText(bytes(jis('=)')), ['', 'ISO 2022 IR 87'])).toBe('秋');
  });
  it('outside a person name ^ and = are text: a G1 designation holds across them (LO, \\ISO 2022 IR 149)', () => {
    const v = bytes([ESC, 0x24, 0x29, 0x43, 0xb1, 0xe6], '^', [0xb5, 0xbf]);
    expect(decodeDicomText(v, ['', 'ISO 2022 IR 149'])).toBe('길^동');
  });
  it('I.2: \\ISO 2022 IR 149, KS X 1001 in G1 after ESC $ ) C', () => {
    const ks = (...b: number[]) => [ESC, 0x24, 0x29, 0x43, ...b];
    const v = bytes('Hong^Gildong=', ks(0xfb, 0xf3), '^', ks(0xd1, 0xce, 0xd4, 0xd7), '=', ks(0xc8, 0xab), '^', ks(0xb1, 0xe6, 0xb5, 0xbf));
    expect(decodeDicomText(v, ['', 'ISO 2022 IR 149'], true)).toBe('Hong^Gildong=洪^吉洞=홍^길동');
  });
  it('J.3: GB18030 and the ISO 2022 IR 58 (GB 2312) extension', () => {
    expect(decodeDicomText(bytes('Wang^XiaoDong=', [0xcd, 0xf5, 0x5e, 0xd0, 0xa1, 0xb6, 0xab], '='), ['GB18030'])).toBe('Wang^XiaoDong=王^小东=');
    const gb = (...b: number[]) => [ESC, 0x24, 0x29, 0x41, ...b];
    expect(decodeDicomText(bytes('Zhang^XiaoDong=', gb(0xd5, 0xc5), '^', gb(0xd0, 0xa1, 0xb6, 0xab), '='), ['', 'ISO 2022 IR 58'], true)).toBe('Zhang^XiaoDong=张^小东=');
  });
  it('single-byte sets by their own tables; UTF-8; the default repertoire', () => {
    expect(decodeDicomText(bytes('Buc^J', [0xe9], 'r', [0xf4], 'me'), ['ISO_IR 100'])).toBe('Buc^Jérôme');
    expect(decodeDicomText(bytes([0xbb, 0xee, 0xda]), ['ISO_IR 144'])).toBe('Люк'); // ISO 8859-5: А = 0xB0 … я = 0xEF
    expect(decodeDicomText(bytes([0xa4]), ['ISO_IR 203'])).toBe('€');
    expect(decodeDicomText(Uint8Array.from(Buffer.from('Müller^Jürgen', 'utf8')), ['ISO_IR 192'])).toBe('Müller^Jürgen');
    expect(decodeDicomText(bytes('DOE^JOHN'), [])).toBe('DOE^JOHN');
  });
  it('the G1 Latin set of an extension: ISO 2022 IR 6\\ISO 2022 IR 100 with ESC - A', () => {
    expect(decodeDicomText(bytes([ESC, 0x2d, 0x41], 'M', [0xfc], 'ller'), ['ISO 2022 IR 6', 'ISO 2022 IR 100'])).toBe('Müller');
  });
});
