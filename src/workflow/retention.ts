/**
 * Retention (DESIGN §3): instance files of a study are deleted `data.purgeAfterHours` after its last job settled.
 * The rows stay (marked purged), so a re-sent copy is recognised and restores the file, the pollers fetch the files
 * back only with a late series (ingest/poll/pull.ts), and the audit says what went when. The result files of its
 * delivered and superseded jobs (data/outputs) go with them: the PACS holds those objects now, and a mammography
 * exam's heatmaps alone are tens of megabytes. Not in shadow mode, where data/outputs is the only copy, and never a
 * cancelled job's (an operator retry resumes from them).
 */
import { rmdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../log.ts';
import type { SqliteStore } from '../store/store.ts';

export type PurgeSummary = { studies: number; files: number; bytes: number; outputs: number; outputBytes: number };

export type PurgeOptions = { purgeAfterHours: number; purgeOutputs: boolean };

/** Deletes one purged file; a file already gone is what we wanted. Returns its size (0 when it was gone). */
function deleteFile(path: string, log: Logger): number {
  let size = 0;
  try {
    size = statSync(path).size;
    rmSync(path, { force: true });
  } catch (err) {
    // Any failure leaves a stray file, never a live row without one.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('could not delete a purged file', { path, err: String(err) });
  }
  return size;
}

/** Folders, then their parents, once empty (a file arriving meanwhile keeps its folder). */
function removeEmptyFolders(folders: Iterable<string>): void {
  for (const dir of folders) {
    try {
      rmdirSync(dir);
    } catch {
      /* not empty, or gone */
    }
  }
}

export async function purgeDueStudies(store: SqliteStore, opts: PurgeOptions, log: Logger, now = Date.now()): Promise<PurgeSummary> {
  const summary: PurgeSummary = { studies: 0, files: 0, bytes: 0, outputs: 0, outputBytes: 0 };
  if (!(opts.purgeAfterHours > 0)) return summary;
  const cutoff = now - opts.purgeAfterHours * 3_600_000;
  for (const study of await store.purgeableStudies(cutoff)) {
    const { instances, outputs } = await store.markStudyPurged(study, cutoff, now, { outputs: opts.purgeOutputs });
    if (!instances.length) continue;
    for (const f of instances) deleteFile(f.path, log);
    const seriesFolders = new Set(instances.map((f) => dirname(f.path)));
    removeEmptyFolders([...seriesFolders, ...new Set([...seriesFolders].map((d) => dirname(d)))]);
    let outputBytes = 0;
    for (const path of outputs) outputBytes += deleteFile(path, log);
    removeEmptyFolders(new Set(outputs.map((p) => dirname(p)))); // the job's folder, never data/outputs itself
    const bytes = instances.reduce((a, f) => a + f.size, 0);
    summary.studies++;
    summary.files += instances.length;
    summary.bytes += bytes;
    summary.outputs += outputs.length;
    summary.outputBytes += outputBytes;
    log.info('study purged', { study, instances: instances.length, bytes, outputs: outputs.length, outputBytes });
  }
  return summary;
}
