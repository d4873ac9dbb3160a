import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, wherever the clone lives. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Shared public data sits beside the project and is read in place, never copied (shared/data/README.md). */
export const SHARED_DATA = resolve(REPO_ROOT, '../shared/data');
/** Where ../shared/data/unpack puts the .tar.xz archives (git-ignored). */
export const UNPACKED_DATA = resolve(REPO_ROOT, '.cache/data');

/** A file from ../shared/data; a missing file fails the test with its path rather than skipping silently. */
export function sharedFile(rel: string): string {
  const p = resolve(SHARED_DATA, rel);
  if (!existsSync(p)) throw new Error(`shared data file missing: ${p}`);
  return p;
}

/** Unpacks the shared archives once (idempotent, skips what is already unpacked) and returns a path inside them. */
export function unpackedFile(rel: string): string {
  const p = resolve(UNPACKED_DATA, rel);
  if (!existsSync(p)) {
    const r = spawnSync(resolve(SHARED_DATA, 'unpack'), [UNPACKED_DATA], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`../shared/data/unpack failed with status ${r.status}`);
  }
  if (!existsSync(p)) throw new Error(`unpacked data file missing: ${p}`);
  return p;
}
