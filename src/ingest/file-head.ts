import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** The first `maxBytes` of a file (all of it when shorter): where a DICOM header is, without reading the pixels. */
export function readHead(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(Math.min(maxBytes, fstatSync(fd).size));
    return head.subarray(0, readSync(fd, head, 0, head.length, 0));
  } finally {
    closeSync(fd);
  }
}
