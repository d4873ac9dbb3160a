/**
 * Named crash points for the kill tests (issue-corrections, Backbone): with RADNODE_CRASH_AT=<name>[:<n>] the
 * process kills itself with SIGKILL the n-th time (default first) it passes that point, exactly as kill -9 would.
 * Unset in production, this is one string comparison.
 */
export type CrashPointName =
  | 'after-fsync' | 'after-record' | 'before-run' | 'after-run' | 'after-write' | 'before-send' | 'after-send' | 'after-confirm';

const spec = process.env.RADNODE_CRASH_AT;
const [target, nth] = spec ? spec.split(':') : [undefined, undefined];
let hits = 0;

export function crashPoint(name: CrashPointName): void {
  if (target !== name) return;
  hits += 1;
  if (hits >= Number(nth ?? 1)) {
    process.stderr.write(`radnode: crash point ${name} reached, killing self (RADNODE_CRASH_AT)\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
