/**
 * Retention (DESIGN §3): instance files of a study are deleted `data.purgeAfterHours` after its last job settled.
 * The rows stay (marked purged), so a re-sent copy is recognised and restores the file, the pollers fetch the files
 * back only with a late series (ingest/poll/pull.ts), and the audit says what went when. Result objects (data/outputs) are kept: a resend
 * must send the same bytes.
 */
import { rmdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../log.ts';
import type { SqliteStore } from '../store/store.ts';

export type PurgeSummary = { studies: number; files: number; bytes: number };

export async function purgeDueStudies(store: SqliteStore, purgeAfterHours: number, log: Logger, now = Date.now()): Promise<PurgeSummary> {
  const summary: PurgeSummary = { studies: 0, files: 0, bytes: 0 };
  if (!(purgeAfterHours > 0)) return summary;
  const cutoff = now - purgeAfterHours * 3_600_000;
  for (const study of await store.purgeableStudies(cutoff)) {
    const files = await store.markStudyPurged(study, cutoff, now);
    if (!files.length) continue;
    const folders = new Set<string>();
    for (const f of files) {
      // A file that is already gone is what we wanted; any other failure leaves a stray file, never a live row without one.
      try {
        rmSync(f.path, { force: true });
      } catch (err) {
        log.warn('could not delete a purged instance file', { path: f.path, err: String(err) });
      }
      folders.add(dirname(f.path));
    }
    // Series folders, then the study folder, once empty (a file arriving meanwhile keeps its folder).
    for (const dir of [...folders, ...new Set([...folders].map((d) => dirname(d)))]) {
      try {
        rmdirSync(dir);
      } catch {
        /* not empty, or gone */
      }
    }
    summary.studies++;
    summary.files += files.length;
    summary.bytes += files.reduce((a, f) => a + f.size, 0);
    log.info('study purged', { study, instances: files.length, bytes: files.reduce((a, f) => a + f.size, 0) });
  }
  return summary;
}
