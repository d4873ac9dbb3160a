/**
 * A 5×7 bitmap font for the burned-in label (no canvas in Node). Each glyph is 7 rows of 5 bits, most significant
 * bit leftmost, written as 14 hex digits (one pair per row). Lower-case letters are drawn as capitals, which keeps
 * the table small; '\u2014' is the em dash of "AI result \u2014 not for diagnosis".
 */
const GLYPHS: Record<string, string> = {
  A: '0e11111f111111', B: '1e11111e11111e', C: '0e11101010110e', D: '1e11111111111e', E: '1f10101e10101f',
  F: '1f10101e101010', G: '0e11101711110f', H: '1111111f111111', I: '0e04040404040e', J: '0702020202120c',
  K: '11121418141211', L: '1010101010101f', M: '111b1515111111', N: '11111915131111', O: '0e11111111110e',
  P: '1e11111e101010', Q: '0e11111115120d', R: '1e11111e141211', S: '0f10100e01011e', T: '1f040404040404',
  U: '1111111111110e', V: '11111111110a04', W: '1111111515150a', X: '11110a040a1111', Y: '11110a04040404',
  Z: '1f01020408101f',
  '0': '0e11131519110e', '1': '040c040404040e', '2': '0e11010204081f', '3': '1f02040201110e', '4': '02060a121f0202',
  '5': '1f101e0101110e', '6': '0608101e11110e', '7': '1f010204080808', '8': '0e11110e11110e', '9': '0e11110f01020c',
  ' ': '00000000000000', '.': '00000000000c0c', ',': '00000000000c08', ':': '000c0c000c0c00', '-': '0000001f000000',
  '\u2014': '0000001f000000', _: '0000000000001f', '/': '00010204081000', '(': '02040808080402', ')': '08040202020408',
  '@': '0e11010d15150e', '^': '040a1100000000', '=': '00001f001f0000', '+': '0004041f040400', '#': '0a0a1f0a1f0a0a',
  '%': '18190204081303', "'": '0c040800000000', '?': '0e110102040004', '!': '04040404000004',
};

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;

/** Row bitmasks of a character (unknown characters draw as '?'). */
export function glyphRows(ch: string): number[] {
  const hex = GLYPHS[ch.toUpperCase()] ?? GLYPHS['?'];
  return Array.from({ length: GLYPH_HEIGHT }, (_, r) => parseInt(hex.slice(2 * r, 2 * r + 2), 16));
}

/** Width in pixels of a text at a scale, with one column of spacing between glyphs. */
export function textWidth(text: string, scale: number): number {
  return [...text].length * (GLYPH_WIDTH + 1) * scale - scale;
}
