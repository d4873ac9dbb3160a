import { RadnodeError } from '../errors.ts';

/**
 * Splits a multipart/related body (DICOMweb STOW-RS and WADO-RS, PS3.18 8.6.1.2) into its parts' bodies. The
 * boundary comes from the Content-Type header; part headers are dropped. Malformed input gives RN_DICOM_MALFORMED.
 */
export function splitMultipartRelated(body: Uint8Array, contentType: string): Uint8Array[] {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw new RadnodeError('RN_DICOM_MALFORMED', 'multipart Content-Type without a boundary');
  const boundary = Buffer.from(`--${m[1] ?? m[2]}`, 'latin1');
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const parts: Uint8Array[] = [];
  let pos = buf.indexOf(boundary);
  if (pos < 0) throw new RadnodeError('RN_DICOM_MALFORMED', 'multipart body without its boundary');
  while (true) {
    const afterBoundary = pos + boundary.length;
    if (buf[afterBoundary] === 0x2d && buf[afterBoundary + 1] === 0x2d) break; // closing delimiter
    const headerEnd = buf.indexOf('\r\n\r\n', afterBoundary, 'latin1');
    if (headerEnd < 0) throw new RadnodeError('RN_DICOM_MALFORMED', 'multipart part without a header end');
    const next = buf.indexOf(Buffer.concat([Buffer.from('\r\n'), boundary]), headerEnd + 4);
    if (next < 0) throw new RadnodeError('RN_DICOM_MALFORMED', 'multipart body ends without a closing boundary');
    parts.push(new Uint8Array(body.buffer, body.byteOffset + headerEnd + 4, next - headerEnd - 4));
    pos = next + 2;
  }
  return parts;
}
