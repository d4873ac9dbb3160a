/**
 * Orthanc's /changes feed as a notify-and-pull source: each StableStudy names a study that is complete by Orthanc's
 * StableAge; its wanted series are then pulled by DICOMweb (the same QIDO/WADO code that serves a vendor PACS, and
 * only the series routing wants, which moves far less data than Orthanc pushing the whole study).
 */
import { RadnodeError, asRadnodeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { PacsConfig } from '../../config/types.ts';
import { POLL_CODES, joinUrl, orthancRoot, pacsFetch } from '../../delivery/dicomweb.ts';
import { pullStudy } from './pull.ts';
import type { PollSink } from './sink.ts';

export type OrthancChangesOptions = {
  log: Logger;
  limit?: number;
  modalities?: string[];
  /**
   * With no checkpoint yet: 'all' (default) replays the whole feed, every stable study Orthanc ever logged; 'now'
   * starts at the current end of the feed, for a node attached to a PACS full of history (the QIDO reconciliation
   * window then covers the recent studies).
   */
  firstRun?: 'all' | 'now';
};
export type OrthancChangesResult = { stableStudies: number; instancesPulled: number };

/**
 * The checkpoint: the last Seq fully handled, plus the Orthanc ids of studies that had a NewStudy and no StableStudy
 * yet. Orthanc loses a pending StableStudy when it stops before StableAge expires (orthanc.md), so these are watched
 * until they turn up stable by other means.
 */
type ChangesCheckpoint = { seq: number; pending: string[] };

type Change = { ChangeType: string; ID: string; ResourceType: string; Seq: number };
type ChangesPage = { Changes: Change[]; Done: boolean; Last: number };

export function orthancCheckpointName(pacs: PacsConfig): string {
  return `poll-orthanc-changes:${orthancRoot(pacs)}`;
}

function parseCheckpoint(value: string | null): ChangesCheckpoint {
  if (value === null) return { seq: 0, pending: [] };
  if (/^\d+$/.test(value)) return { seq: Number(value), pending: [] };
  try {
    const v: unknown = JSON.parse(value);
    if (typeof v === 'object' && v !== null) {
      const { seq, pending } = v as { seq?: unknown; pending?: unknown };
      if (typeof seq === 'number' && Number.isInteger(seq) && seq >= 0) {
        return { seq, pending: Array.isArray(pending) ? pending.filter((p): p is string => typeof p === 'string') : [] };
      }
    }
  } catch {
    // fall through
  }
  throw new RadnodeError('RN_POLL_FAILED', 'the Orthanc /changes checkpoint is unreadable', { retryable: false, details: { value: value.slice(0, 200) } });
}

function isChangesPage(v: unknown): v is ChangesPage {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return Array.isArray(p.Changes) && typeof p.Done === 'boolean' && typeof p.Last === 'number';
}

export async function pollOrthancChanges(pacs: PacsConfig, sink: PollSink, opts: OrthancChangesOptions): Promise<OrthancChangesResult> {
  const root = orthancRoot(pacs);
  const log = opts.log.child({ poller: 'orthanc-changes', pacs: root });
  const limit = opts.limit ?? 100;
  const cpName = orthancCheckpointName(pacs);
  const stored = await sink.getCheckpoint(cpName);
  const cp = parseCheckpoint(stored);
  const pending = new Set(cp.pending);
  let seq = cp.seq;
  const result: OrthancChangesResult = { stableStudies: 0, instancesPulled: 0 };
  const save = (): Promise<void> => sink.setCheckpoint(cpName, JSON.stringify({ seq, pending: [...pending] } satisfies ChangesCheckpoint));

  const getJson = async (path: string, what: string, passStatuses?: number[]): Promise<{ status: number; body: unknown }> => {
    const res = await pacsFetch(pacs, joinUrl(root, path), { what, passStatuses }, POLL_CODES);
    const text = await res.text();
    if (!res.ok) return { status: res.status, body: null };
    try {
      return { status: res.status, body: JSON.parse(text) as unknown };
    } catch (err) {
      throw new RadnodeError('RN_POLL_FAILED', `Orthanc answer is not JSON (${what})`, { cause: err });
    }
  };

  /** Pulls one study by Orthanc id; false when Orthanc no longer has it. */
  const processStudy = async (orthancId: string): Promise<boolean> => {
    const { status, body } = await getJson(`studies/${encodeURIComponent(orthancId)}`, 'Orthanc study', [404]);
    if (status === 404) return false;
    const studyUID = (body as { MainDicomTags?: { StudyInstanceUID?: unknown } } | null)?.MainDicomTags?.StudyInstanceUID;
    if (typeof studyUID !== 'string') throw new RadnodeError('RN_POLL_FAILED', 'Orthanc study has no StudyInstanceUID', { details: { orthancId } });
    const pulled = await pullStudy(pacs, sink, studyUID, 'poll-orthanc', { modalities: opts.modalities, log });
    result.stableStudies++;
    result.instancesPulled += pulled.pulled;
    // A stable study is a completeness signal even when push already delivered every instance; not while an instance
    // it lists could not be fetched (the reconciliation pass fetches it later, and the quiet period completes it).
    if (pulled.wantedInstances > 0 && pulled.failedInstances === 0) await sink.studyRetrieved?.(studyUID);
    return true;
  };

  if (stored === null && opts.firstRun === 'now') {
    const { body } = await getJson('changes?last', 'Orthanc /changes?last');
    if (!isChangesPage(body)) throw new RadnodeError('RN_POLL_FAILED', 'Orthanc /changes answer has an unexpected shape');
    seq = body.Last;
    await save();
    log.info('poll: first run starts at the end of the Orthanc change feed', { seq });
  }

  let wipeHandled = false;
  for (;;) {
    const { body } = await getJson(`changes?since=${seq}&limit=${limit}`, 'Orthanc /changes');
    if (!isChangesPage(body)) throw new RadnodeError('RN_POLL_FAILED', 'Orthanc /changes answer has an unexpected shape');
    if (body.Changes.length === 0 && body.Last < seq && !wipeHandled) {
      // A `since` beyond Last means the Orthanc database was replaced or wiped (orthanc.md): its Seq restarted, so
      // start over from its beginning rather than wait for Seq to climb past the old checkpoint.
      log.warn('poll: Orthanc /changes restarted below the checkpoint (database wiped?), reading from the start', { checkpoint: seq, last: body.Last });
      seq = 0;
      pending.clear();
      wipeHandled = true;
      await save();
      continue;
    }
    for (const change of body.Changes) {
      if (change.ResourceType === 'Study') {
        if (change.ChangeType === 'NewStudy') pending.add(change.ID);
        else if (change.ChangeType === 'Deleted') pending.delete(change.ID);
        else if (change.ChangeType === 'StableStudy') {
          pending.delete(change.ID);
          try {
            await processStudy(change.ID);
          } catch (err) {
            // The checkpoint stays before this change: the study is pulled again on the next poll (no loss on crash).
            throw asRadnodeError(err, 'RN_POLL_FAILED');
          }
          seq = change.Seq;
          await save();
          continue;
        }
      }
      seq = change.Seq;
    }
    await save();
    if (body.Done || body.Changes.length === 0) break;
  }

  // Fallback for a StableStudy lost in an Orthanc restart: after a restart Orthanc reports every study as stable
  // (IsStable is in-memory state), so a study that had NewStudy, never StableStudy, and now says IsStable is treated
  // as stable. In the rare race where the real StableStudy follows, the study is pulled twice and the store drops
  // the duplicates. The QIDO reconciliation poll is the second safety net for anything else this misses.
  for (const id of [...pending]) {
    const { status, body } = await getJson(`studies/${encodeURIComponent(id)}`, 'Orthanc study', [404]);
    if (status === 404) {
      pending.delete(id);
      await save();
      continue;
    }
    if ((body as { IsStable?: unknown } | null)?.IsStable !== true) continue;
    log.info('poll: study is stable but its StableStudy event is missing; pulling it', { orthancId: id });
    await processStudy(id);
    pending.delete(id);
    await save();
  }
  return result;
}
