/**
 * Studies a STOW-RS request is still streaming (DESIGN §3, completeness). Instances are recorded only once the whole
 * body is on disk, so a second request of a study that streams longer than the quiet period (a slow link, a sender
 * that does not chunk) would see the study completed, analysed and delivered on its first part, then re-opened and
 * delivered again. The workflow engine does not complete a study while a request names it here.
 */
export class StowInFlight {
  private readonly byRequest = new Map<string, Set<string>>();
  private readonly counts = new Map<string, number>();

  add(requestId: string, studyUID: string): void {
    const mine = this.byRequest.get(requestId) ?? new Set<string>();
    this.byRequest.set(requestId, mine);
    if (mine.has(studyUID)) return;
    mine.add(studyUID);
    this.counts.set(studyUID, (this.counts.get(studyUID) ?? 0) + 1);
  }

  /** The request ended (answered, refused or aborted): its studies follow the quiet period again. */
  release(requestId: string): void {
    for (const study of this.byRequest.get(requestId) ?? []) {
      const n = (this.counts.get(study) ?? 1) - 1;
      if (n > 0) this.counts.set(study, n);
      else this.counts.delete(study);
    }
    this.byRequest.delete(requestId);
  }

  has(studyUID: string): boolean {
    return this.counts.has(studyUID);
  }
}
