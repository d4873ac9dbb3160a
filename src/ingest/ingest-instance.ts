import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crashPoint } from '../crash.ts';
import { RadnodeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { fsyncDir } from '../store/durable-file.ts';
import type { SqliteStore } from '../store/store.ts';
import type { InstanceSource } from '../store/types.ts';
import { isOwnInstance } from '../workflow/loop-guard.ts';
import { readHeader, type DicomInstance } from '../dicom/index.ts';
import { readHead } from './file-head.ts';
import { readIngestHeader } from './header.ts';

export type IngestDeps = {
  store: SqliteStore;
  dataDir: string;
  minFreeMb: number;
  node: { uidRoot: string; manufacturer: string };
  log: Logger;
};

export type IngestOutcome = {
  sopClassUID: string;
  sopInstanceUID: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  status: 'stored' | 'duplicate';
  isOwn: boolean;
  reopened: boolean;
};

const UID = /^[0-9]+(\.[0-9]+)*$/;
/** UIDs become path segments: anything that is not a plain UID is hashed, so no name can escape the folder. */
const safeName = (uid: string) => (UID.test(uid) && uid.length <= 64 ? uid : 'h' + createHash('sha1').update(uid).digest('hex'));

export function instancePath(dataDir: string, study: string, series: string, sop: string): string {
  return join(dataDir, 'instances', safeName(study), safeName(series), safeName(sop) + '.dcm');
}


export function freeMb(dir: string): number {
  const s = statfsSync(dir);
  return (s.bavail * s.bsize) / (1024 * 1024);
}

/**
 * Takes ownership of a complete, fsync'd temp file and makes it a stored instance (DESIGN §3): parse the header,
 * rename into data/instances/<study>/<series>/<sop>.dcm, fsync the folder, then record it. Only after this resolves
 * may the sender be acknowledged. On any failure the temp file is gone and nothing is recorded.
 */
/** Two Part 10 files whose data sets (everything after the File Meta) are byte for byte the same. */
export function sameDataSet(a: Uint8Array, b: Uint8Array | undefined): boolean {
  if (!b) return false;
  let x: DicomInstance;
  let y: DicomInstance;
  try {
    [x, y] = [readHeader(a), readHeader(b)];
  } catch {
    return false;
  }
  if (x.transferSyntaxUID !== y.transferSyntaxUID || a.length - x.datasetOffset !== b.length - y.datasetOffset) return false;
  return Buffer.from(a.buffer, a.byteOffset + x.datasetOffset, a.length - x.datasetOffset).equals(Buffer.from(b.buffer, b.byteOffset + y.datasetOffset, b.length - y.datasetOffset));
}

/**
 * Files up to this size are read whole; a larger one (a breast tomosynthesis stack, a whole-slide image) only for its
 * head, where the header is, and hashed as a stream: Node cannot hold a file of 2 GiB or more in one buffer, and an
 * instance that size was refused by every route although STOW allows 4 GiB.
 */
const WHOLE_READ_MAX = 256 * 1024 ** 2;
const HEAD_BYTES = 64 * 1024 ** 2;

async function readForIngest(file: { tempPath: string; sha256?: string }): Promise<{ bytes: Uint8Array; size: number; sha256: string }> {
  const size = statSync(file.tempPath).size;
  if (size <= WHOLE_READ_MAX) {
    const bytes = await readFile(file.tempPath);
    return { bytes, size, sha256: file.sha256 ?? createHash('sha256').update(bytes).digest('hex') };
  }
  const head = readHead(file.tempPath, HEAD_BYTES);
  let sha256 = file.sha256;
  if (sha256 === undefined) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file.tempPath)) hash.update(chunk as Buffer);
    sha256 = hash.digest('hex');
  }
  return { bytes: head, size, sha256 };
}

async function readWhole(path: string): Promise<Uint8Array | undefined> {
  try {
    return statSync(path).size <= WHOLE_READ_MAX ? await readFile(path) : undefined;
  } catch {
    return undefined;
  }
}

export async function ingestFile(
  deps: IngestDeps,
  file: { tempPath: string; sha256?: string; size?: number },
  opts: { source: InstanceSource; expectedStudyUID?: string },
): Promise<IngestOutcome> {
  let moved = false;
  try {
    const { bytes, size, sha256 } = await readForIngest(file);
    const header = readIngestHeader(bytes);
    if (opts.expectedStudyUID && header.studyInstanceUID !== opts.expectedStudyUID)
      throw new RadnodeError('RN_INGEST_STUDY_MISMATCH', `instance ${header.sopInstanceUID} belongs to study ${header.studyInstanceUID}, not ${opts.expectedStudyUID}`, {
        details: { sopInstanceUID: header.sopInstanceUID, sopClassUID: header.sopClassUID },
      });
    const isOwn = isOwnInstance(header, deps.node);
    const base = { sopClassUID: header.sopClassUID, sopInstanceUID: header.sopInstanceUID, studyInstanceUID: header.studyInstanceUID, seriesInstanceUID: header.seriesInstanceUID, isOwn };
    const existing = await deps.store.getInstance(header.sopInstanceUID);
    if (existing?.purged_at && existing.sha256 === sha256) {
      // Retention deleted this file after delivery; the same bytes are back (the study was re-sent): keep them again.
      const dir = join(existing.path, '..');
      mkdirSync(dir, { recursive: true });
      renameSync(file.tempPath, existing.path);
      moved = true;
      fsyncDir(dir);
      const { reopened } = await deps.store.restoreInstance(header.sopInstanceUID);
      return { ...base, status: 'stored', reopened };
    }
    if (existing) {
      // The File Meta is the sender's (or, for C-STORE, radnode's, naming the calling AE): the same object re-sent by
      // another AE or through another route differs there only, and is the same instance.
      if (existing.sha256 !== sha256 && !existing.purged_at && bytes.byteLength === size && sameDataSet(bytes, await readWhole(existing.path))) {
        return { ...base, status: 'duplicate', reopened: false };
      }
      if (existing.sha256 !== sha256) {
        // Different bytes under a known SOP Instance UID: kept aside and audited, never silently replacing the first.
        const dir = join(deps.dataDir, 'conflicts');
        mkdirSync(dir, { recursive: true });
        const path = join(dir, `${safeName(header.sopInstanceUID)}.${sha256.slice(0, 16)}.dcm`);
        renameSync(file.tempPath, path);
        moved = true;
        await deps.store.recordConflict(header.sopInstanceUID, path, sha256);
        deps.log.warn('instance re-sent with different bytes; kept as a conflict', { sopInstanceUID: header.sopInstanceUID });
        // The sender must not read "stored" (PS3.18 10.5.3: 200 means every instance was): a corrected object sent
        // under the old UID was not taken, and it must know to send it with a new SOP Instance UID.
        throw new RadnodeError('RN_INGEST_CONFLICT', `SOP Instance ${header.sopInstanceUID} is already stored with other content; this version was kept aside as a conflict, not stored (send a changed object under a new SOP Instance UID)`, {
          details: { sopInstanceUID: header.sopInstanceUID, sopClassUID: header.sopClassUID },
        });
      }
      return { ...base, status: 'duplicate', reopened: false };
    }
    const seriesStudy = await deps.store.studyOfSeries(header.seriesInstanceUID);
    if (seriesStudy !== undefined && seriesStudy !== header.studyInstanceUID)
      // A Series Instance UID is unique across studies (PS3.3 C.7.3.1); one reused by a modality or a PACS merge
      // would put one patient's image into another patient's series and job.
      throw new RadnodeError('RN_INGEST_SERIES_IN_OTHER_STUDY', `instance ${header.sopInstanceUID} of study ${header.studyInstanceUID} names Series Instance UID ${header.seriesInstanceUID}, which belongs to study ${seriesStudy}: not stored`, {
        details: { sopInstanceUID: header.sopInstanceUID, sopClassUID: header.sopClassUID },
      });
    if (deps.minFreeMb > 0 && freeMb(deps.dataDir) < deps.minFreeMb)
      throw new RadnodeError('RN_INGEST_DISK_FULL', `less than ${deps.minFreeMb} MB free in the data folder`, { details: { sopInstanceUID: header.sopInstanceUID, sopClassUID: header.sopClassUID } });
    const path = instancePath(deps.dataDir, header.studyInstanceUID, header.seriesInstanceUID, header.sopInstanceUID);
    const dir = join(path, '..');
    mkdirSync(dir, { recursive: true });
    renameSync(file.tempPath, path);
    moved = true;
    fsyncDir(dir);
    crashPoint('after-fsync');
    const { reopened } = await deps.store.recordInstance({
      ...header, path, size, sha256, source: opts.source, isOwn,
    });
    crashPoint('after-record');
    return { ...base, status: 'stored', reopened };
  } finally {
    if (!moved) rmSync(file.tempPath, { force: true });
  }
}
