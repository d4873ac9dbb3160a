import type { PacsConfig, RadnodeConfig } from '../config/types.ts';
import type { Logger } from '../log.ts';
import { pollOrthancChanges, pollQido, type PollSink } from './poll/index.ts';

/** One scheduled poll run for the configured source. */
export function pollSources(
  source: Exclude<RadnodeConfig['poll']['source'], 'dimse'>,
  pacs: PacsConfig,
  sink: PollSink,
  opts: { lookbackDays: number; modalities?: string[]; log: Logger },
): () => Promise<unknown> {
  if (source === 'orthanc-changes') {
    return async () => {
      // On first start, follow the feed from its end: the QIDO pass below covers the look-back window, and replaying
      // an Orthanc's whole history would pull every study it ever held.
      let changes: unknown;
      let feedError: unknown;
      try {
        changes = await pollOrthancChanges(pacs, sink, { log: opts.log, modalities: opts.modalities, firstRun: 'now' });
      } catch (err) {
        feedError = err; // the reconciliation pass still runs: a feed stuck on one study must not hide the others
      }
      // StableStudy is lost when Orthanc stops within StableAge of an upload (orthanc.md): the QIDO reconciliation
      // pass beside the change feed finds such studies by their instance counts. What it finds waits for the quiet
      // period: only StableStudy says Orthanc has the whole study (a QIDO count may be of a study still arriving).
      const reconcile = await pollQido(pacs, { ...sink, studyRetrieved: undefined }, opts);
      if (feedError !== undefined) throw feedError;
      return { changes, reconcile };
    };
  }
  return () => pollQido(pacs, sink, opts);
}
