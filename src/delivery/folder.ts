/** Delivery with no PACS configured: result files in a folder tree, written atomically (DESIGN §3, §6). */
import { open, mkdir, rename, readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { RadnodeError } from '../errors.ts';
import type { ResultObject } from '../results/objects.ts';

/** A UID is digits and dots (PS3.5 9.1); anything else must not become a path component (no `..`, no `/`). */
const UID_RE = /^[0-9]+(\.[0-9]+)*$/;

function checkUid(name: string, uid: string): void {
  if (!UID_RE.test(uid) || uid.length > 64) {
    throw new RadnodeError('RN_RESULT_INVALID', `${name} is not a valid UID`, { details: { [name]: uid } });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function sameBytes(path: string, bytes: Uint8Array): Promise<boolean> {
  try {
    const existing = await readFile(path);
    return existing.byteLength === bytes.byteLength && Buffer.compare(existing, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) === 0;
  } catch {
    return false;
  }
}

/**
 * Writes `<dir>/<study>/<series>/<sop>.dcm` for each object: temp file, fsync, rename, fsync of the folder, so a
 * crash leaves either the whole file or none. Idempotent: a file already holding the same bytes is left alone.
 * Returns the paths, in the order of `objects`.
 */
export async function writeToFolder(dir: string, objects: ResultObject[]): Promise<string[]> {
  const paths: string[] = [];
  for (const o of objects) {
    checkUid('studyInstanceUID', o.studyInstanceUID);
    checkUid('seriesInstanceUID', o.seriesInstanceUID);
    checkUid('sopInstanceUID', o.sopInstanceUID);
    const folder = join(dir, o.studyInstanceUID, o.seriesInstanceUID);
    const target = join(folder, `${o.sopInstanceUID}.dcm`);
    paths.push(target);
    if (await sameBytes(target, o.bytes)) continue;
    await mkdir(folder, { recursive: true });
    const tmp = join(folder, `.${o.sopInstanceUID}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(o.bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, target);
      await fsyncDir(folder);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new RadnodeError('RN_INTERNAL', 'could not write a result file', { cause: err, details: { path: target } });
    }
  }
  return paths;
}
