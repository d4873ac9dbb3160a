/**
 * Per-caller workflow settings for studies that arrive by C-STORE (issue 11): a caller's own quiet period and the
 * detectors it may run. Kept small on purpose: the engine asks two questions (is this study held by a caller's own
 * quiet period? which detectors may plan it?) and this class answers from what the SCP saw.
 *
 * The map lives in memory; the durable trace is one audit row per (study, caller). After a restart a study that was
 * half-received falls back to workflow.quietSeconds and every enabled detector, which is the behaviour of any other
 * source, never a lost study.
 */
import type { DimseCaller } from '../../config/types.ts';
import type { Logger } from '../../log.ts';
import type { SqliteStore } from '../../store/store.ts';

export type CallerPolicyDeps = {
  store: SqliteStore;
  log: Logger;
  completeNow: (studyUID: string, reason: string) => Promise<void>;
};

const MAX_REMEMBERED = 20_000;

export class CallerPolicy {
  private readonly studies = new Map<string, DimseCaller>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  constructor(private readonly deps: CallerPolicyDeps) {}

  /** An instance of `studyUID` from `caller` is durable: remember the caller and restart its quiet timer. */
  stored(studyUID: string, caller: DimseCaller): void {
    if (this.studies.get(studyUID) !== caller) {
      this.studies.delete(studyUID);
      this.studies.set(studyUID, caller);
      // The newest studies are the ones still being planned: the oldest entries go first.
      if (this.studies.size > MAX_REMEMBERED) this.studies.delete(this.studies.keys().next().value!);
      void this.deps.store.audit('dimse', 'study.caller', 'study', studyUID, { callingAeTitle: caller.aeTitle, quietSeconds: caller.quietSeconds, detectors: caller.detectors }).catch(() => undefined);
    }
    if (caller.quietSeconds === undefined) return;
    clearTimeout(this.timers.get(studyUID));
    const t = setTimeout(() => {
      this.timers.delete(studyUID);
      void this.deps.completeNow(studyUID, `quiet period of DIMSE caller ${caller.aeTitle}`).catch((err: unknown) => this.deps.log.error('completing study failed', { studyUID, err: String(err) }));
    }, caller.quietSeconds * 1000);
    t.unref();
    this.timers.set(studyUID, t);
  }

  /**
   * True while a caller's own quiet period is running for the study: the engine's global quiet period must not
   * complete it then. Once that timer has fired, a study re-opened by an instance from elsewhere (a poll, a STOW, a
   * C-MOVE by another AE) is completed by the global quiet period like any other.
   */
  holds(studyUID: string): boolean {
    return this.timers.has(studyUID);
  }

  /** Detector ids the study's caller allows; undefined: no restriction. */
  allowedDetectors(studyUID: string): readonly string[] | undefined {
    return this.studies.get(studyUID)?.detectors;
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
