import { RadnodeError } from '../errors.ts';

function fail(message: string): RadnodeError {
  return new RadnodeError('RN_DICOM_DECODE_FAILED', `RLE: ${message}`);
}

/** PackBits-decodes one segment into exactly `length` bytes (PS3.5 G.3.1); trailing pad bytes are ignored. */
function decodeSegment(src: Uint8Array, start: number, end: number, out: Uint8Array, outOffset: number, stride: number, length: number): void {
  let pos = start;
  let written = 0;
  let o = outOffset;
  while (written < length && pos < end) {
    const n = src[pos++];
    if (n < 128) {
      const count = n + 1;
      if (pos + count > end) throw fail('literal run past the end of its segment');
      for (let i = 0; i < count && written < length; i++, written++, o += stride) out[o] = src[pos + i];
      pos += count;
    } else if (n > 128) {
      const count = 257 - n;
      if (pos >= end) throw fail('replicate run past the end of its segment');
      const v = src[pos++];
      for (let i = 0; i < count && written < length; i++, written++, o += stride) out[o] = v;
    }
    // n === 128 (-128) is a no-op
  }
  if (written < length) throw fail(`segment decodes to ${written} bytes, expected ${length}`);
}

/**
 * Decodes one RLE Lossless frame (PS3.5 Annex G) into pixel-interleaved little-endian samples: segment s·B+k holds
 * byte k (most significant first) of sample s.
 */
export function rleDecodeFrame(frame: Uint8Array, rows: number, columns: number, samplesPerPixel: number, bitsAllocated: number): Uint8Array {
  if (frame.length < 64) throw fail('frame shorter than its 64-byte header');
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const nSegments = dv.getUint32(0, true);
  const bytesPerSample = Math.ceil(bitsAllocated / 8);
  const expected = samplesPerPixel * bytesPerSample;
  if (nSegments !== expected) throw fail(`${nSegments} segments, expected ${expected}`);
  const offsets: number[] = [];
  for (let i = 0; i < nSegments; i++) offsets.push(dv.getUint32(4 + i * 4, true));
  const pixels = rows * columns;
  const stride = samplesPerPixel * bytesPerSample;
  const out = new Uint8Array(pixels * stride);
  for (let s = 0; s < samplesPerPixel; s++) {
    for (let k = 0; k < bytesPerSample; k++) {
      const seg = s * bytesPerSample + k;
      const start = offsets[seg];
      const end = seg + 1 < nSegments ? offsets[seg + 1] : frame.length;
      if (start < 64 || end > frame.length || end < start) throw fail(`segment ${seg} offsets out of range`);
      decodeSegment(frame, start, end, out, s * bytesPerSample + (bytesPerSample - 1 - k), stride, pixels);
    }
  }
  return out;
}
