import dcmjs from 'dcmjs';

/** One entry of the PS3.6 data dictionary as dcmjs ships it. */
interface DictionaryEntry {
  tag: string;
  vr: string;
  vm: string;
  name: string;
}

interface DcmjsDictionaryModule {
  data: { DicomMetaDictionary: { nameMap: Record<string, DictionaryEntry> } };
}

let byTag: Map<number, { vr: string; keyword: string }> | undefined;
let byKeyword: Map<string, number> | undefined;

/**
 * dcmjs writes the ambiguous VRs of PS3.6 in lower case: 'ox' (OB or OW), 'xs' (US or SS), 'lt' (US or OW, the LUT
 * data) and 'up' (UL, retired offsets). For Implicit VR we choose the form that keeps the bytes intact: OW for the
 * binary ones, US for 'xs' (the sign is applied later from Pixel Representation where it matters).
 */
function concreteVr(vr: string): string {
  switch (vr) {
    case 'ox':
    case 'lt':
      return 'OW';
    case 'xs':
      return 'US';
    case 'up':
      return 'UL';
    case 'na':
      return 'UN';
    default:
      return vr;
  }
}

function build(): void {
  const mod = dcmjs as unknown as DcmjsDictionaryModule;
  byTag = new Map();
  byKeyword = new Map();
  for (const entry of Object.values(mod.data.DicomMetaDictionary.nameMap)) {
    const m = /^\(([0-9A-F]{4}),([0-9A-F]{4})\)$/.exec(entry.tag);
    if (!m) continue;
    const tag = (parseInt(m[1], 16) << 16) | parseInt(m[2], 16);
    const t = tag >>> 0;
    byTag.set(t, { vr: concreteVr(entry.vr), keyword: entry.name });
    byKeyword.set(entry.name, t);
  }
}

/** Overlay (60xx) elements are repeating groups that the dictionary lists once, for group 6000 (PS3.3 C.9.2). */
const OVERLAY_VR: Record<number, string> = { 0x0010: 'US', 0x0011: 'US', 0x0040: 'CS', 0x0050: 'SS', 0x0100: 'US', 0x0102: 'US', 0x3000: 'OW', 0x0022: 'LO' };

/** The VR of a tag for Implicit VR Little Endian; private and unknown tags are UN. */
export function vrForTag(tag: number): string {
  if (!byTag) build();
  const hit = byTag!.get(tag >>> 0);
  if (hit) return hit.vr;
  const group = tag >>> 16;
  const element = tag & 0xffff;
  if (element === 0) return 'UL'; // group length
  if ((group & 0xff00) === 0x6000 && (group & 1) === 0) return OVERLAY_VR[element] ?? 'UN';
  return 'UN';
}

export function keywordForTag(tag: number): string | undefined {
  if (!byTag) build();
  return byTag!.get(tag >>> 0)?.keyword;
}

export function tagForKeyword(keyword: string): number | undefined {
  if (!byKeyword) build();
  return byKeyword!.get(keyword);
}

export function tagString(tag: number): string {
  const g = (tag >>> 16).toString(16).toUpperCase().padStart(4, '0');
  const e = (tag & 0xffff).toString(16).toUpperCase().padStart(4, '0');
  return `(${g},${e})`;
}

export function tagHex(tag: number): string {
  return (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
}
