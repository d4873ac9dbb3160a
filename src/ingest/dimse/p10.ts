/**
 * The Part 10 header radnode puts in front of a C-STORE data set. The data set itself is written as it arrived on the
 * wire, so a compressed push stays byte-identical; only the file meta group (PS3.10 §7.1) is ours. Group 0002 is
 * always explicit VR little endian whatever the data set's transfer syntax.
 */
/**
 * Identifies the program that wrote the header, not the site, so it is fixed here rather than derived from node.uidRoot
 * (sub-root .0.1 of radnode's placeholder root). Not imported from workflow/engine.ts to keep ingest free of it.
 */
export const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.10.1496.0.1';
export const IMPLEMENTATION_VERSION = 'RADNODE_0.1.0';

function element(group: number, elem: number, vr: string, value: Buffer): Buffer {
  const long = vr === 'OB' || vr === 'UN' || vr === 'SQ' || vr === 'UT';
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elem, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

/** UI values are padded with NUL, other strings with a space, to an even length (PS3.5 §6.2). */
function text(s: string, pad: '\0' | ' '): Buffer {
  return Buffer.from(s.length % 2 ? s + pad : s, 'latin1');
}

export function fileMetaHeader(m: { sopClassUID: string; sopInstanceUID: string; transferSyntaxUID: string; sourceAeTitle: string }): Buffer {
  const body = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x0002, 0x0002, 'UI', text(m.sopClassUID, '\0')),
    element(0x0002, 0x0003, 'UI', text(m.sopInstanceUID, '\0')),
    element(0x0002, 0x0010, 'UI', text(m.transferSyntaxUID, '\0')),
    element(0x0002, 0x0012, 'UI', text(IMPLEMENTATION_CLASS_UID, '\0')),
    element(0x0002, 0x0013, 'SH', text(IMPLEMENTATION_VERSION, ' ')),
    // Source Application Entity Title: who sent it, kept with the instance itself.
    element(0x0002, 0x0016, 'AE', text(m.sourceAeTitle, ' ')),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length, 0);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), element(0x0002, 0x0000, 'UL', length), body]);
}
