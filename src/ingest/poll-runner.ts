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
      const changes = await pollOrthancChanges(pacs, sink, { log: opts.log, modalities: opts.modalities, firstRun: 'now' });
      // StableStudy is lost when Orthanc stops within StableAge of an upload (orthanc.md): the QIDO reconciliation
      // pass beside the change feed finds such studies by their instance counts.
      const reconcile = await pollQido(pacs, sink, opts);
      return { changes, reconcile };
    };
  }
  return () => pollQido(pacs, sink, opts);
}
