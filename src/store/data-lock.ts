/**
 * One daemon per data folder. Start-up recovery clears the temp folder and releases every job lease, which is right
 * only when no other radnode uses the folder: a second `radnode serve` beside a running one (an operator's
 * `npm start` next to the service) would delete the first one's STOW parts in flight and run its jobs twice.
 *
 * The lock is an exclusive SQLite transaction held open on `radnode.lock` for the daemon's life: SQLite's file
 * locks are dropped by the operating system when the process dies (kill -9, a crash), so a restart never finds a
 * stale lock, and a second process (or a second start in the same process) is refused at once.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { RadnodeError } from '../errors.ts';

export type DataLock = { release(): void };

export function lockDataDir(dir: string): DataLock {
  const path = join(dir, 'radnode.lock');
  const db = new Database(path, { timeout: 0 });
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (cause) {
    db.close();
    throw new RadnodeError('RN_DATA_DIR_IN_USE', `another radnode is running on the data folder ${dir} (its lock ${path} is held); stop it first, or give this one its own data.dir`, { cause, details: { dir } });
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}
