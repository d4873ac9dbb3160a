/**
 * Poll a PACS that has no DICOMweb (issue 11): C-FIND at STUDY level for the studies whose Study Date lies in the
 * reconciliation window (the same window as the QIDO poller, poll.lookbackDays), compare each study's Number of Study
 * Related Instances with what radnode holds, and C-MOVE every study with missing instances to radnode's own AE title.
 * The moved instances arrive on radnode's Storage SCP as C-STOREs from the PACS, so they go through the same durable
 * ingest, caller check and per-caller settings as a push; the PACS must therefore be in dimse.knownCallers and know
 * radnode's AE as a move destination.
 */
import type { DimsePeer } from '../../config/types.ts';
import { find, moveStudy, type DimseLink } from '../../delivery/dimse.ts';
import { asRadnodeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { dicomDate } from './qido.ts';
import type { PollSink } from './sink.ts';

const text = (v: unknown): string => (Array.isArray(v) ? String(v[0] ?? '') : v === undefined || v === null ? '' : String(v)).trim();

export type DimsePollResult = { studies: number; moved: string[]; failed: string[] };

export async function pollDimse(
  peer: DimsePeer,
  own: { aeTitle: string; timeoutMs: number },
  sink: PollSink,
  opts: { lookbackDays: number; modalities?: string[]; log: Logger; now?: Date },
): Promise<DimsePollResult> {
  const link: DimseLink = { peer, callingAeTitle: own.aeTitle, timeoutMs: own.timeoutMs };
  const now = opts.now ?? new Date();
  // Study Date is the site's local calendar day, as in the QIDO poller (UTC dates missed a day's studies west of
  // Greenwich in the evening). Up to tomorrow: a modality clock a little ahead of ours must not hide today's studies.
  const from = new Date(now.getTime() - opts.lookbackDays * 86_400_000);
  const to = new Date(now.getTime() + 86_400_000);
  const rows = await find(link, 'STUDY', { StudyInstanceUID: '', StudyDate: `${dicomDate(from)}-${dicomDate(to)}`, ModalitiesInStudy: '', NumberOfStudyRelatedInstances: '' }, 'RN_POLL_FAILED');
  const result: DimsePollResult = { studies: rows.length, moved: [], failed: [] };
  for (const r of rows) {
    const study = text(r.StudyInstanceUID);
    if (!study) continue;
    const modalities = (Array.isArray(r.ModalitiesInStudy) ? r.ModalitiesInStudy : text(r.ModalitiesInStudy).split('\\')).map((m) => String(m).trim());
    // Filtered here, not in the query: matching on a multi-valued ModalitiesInStudy is optional for an SCP (PS3.4 C.6.1.1.4).
    if (opts.modalities && !modalities.some((m) => opts.modalities!.includes(m))) continue;
    const theirs = Number(text(r.NumberOfStudyRelatedInstances));
    // The PACS counts radnode's delivered SR and heatmaps too: without them a processed study never matched, and was
    // moved again on every poll for as long as it stayed in the window.
    const ours = (await sink.knownInstanceCount(study)) + ((await sink.deliveredOwnCount?.(study)) ?? 0);
    if (Number.isFinite(theirs) && theirs > 0 && ours >= theirs) continue;
    try {
      const m = await moveStudy(link, study, own.aeTitle);
      result.moved.push(study);
      opts.log.info('poll: study retrieved by C-MOVE', { studyInstanceUID: study, completed: m.completed, failed: m.failed });
      await sink.studyRetrieved?.(study);
    } catch (err) {
      // One study's failure must not stop the others; the next run tries it again.
      result.failed.push(study);
      opts.log.warn('poll: C-MOVE failed', { studyInstanceUID: study, err: asRadnodeError(err) });
    }
  }
  return result;
}
