/**
 * QIDO-RS poller for any DICOMweb PACS. It is also the reconciliation poll of DESIGN §3: push from Orthanc can lose a
 * study (its STOW jobs are not retried and do not survive a restart), so every study in the Study Date window is
 * compared with what radnode holds by Number of Study Related Instances, and whatever is missing is pulled.
 */
import { asRadnodeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { PacsConfig } from '../../config/types.ts';
import { POLL_CODES, allStrings, firstNumber, firstString, qidoAll } from '../../delivery/dicomweb.ts';
import { NEVER_PULLED_MODALITIES, pullStudy } from './pull.ts';
import type { PollSink } from './sink.ts';

export type QidoPollOptions = { lookbackDays: number; modalities?: string[]; log: Logger; now?: Date };
export type QidoPollResult = { studiesSeen: number; studiesPulled: number; instancesPulled: number; studiesFailed: number };

const DAY_MS = 86_400_000;

/**
 * Number of Study Related Instances of each study at its last reconciliation, per PACS. The count radnode keeps
 * leaves out its own results and the SR/KO/PR a reader adds, so a processed study never matches the PACS's count;
 * without this, every poll would walk every such study's series again. A study whose count is unchanged since it was
 * last walked is skipped for up to an hour (an instance deleted and another added leave the count alone, so it is
 * still walked now and then); after a restart each study is walked once more.
 */
const reconciledCounts = new Map<string, Map<string, { count: number; at: number }>>();
const REWALK_MS = 3_600_000;

/** DA in local time: Study Date is the modality's local calendar date (PS3.3 C.7.2.1), not UTC. */
export function dicomDate(d: Date): string {
  return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
}

export function qidoCheckpointName(pacs: PacsConfig): string {
  return `poll-qido:${pacs.url}`;
}

export async function pollQido(pacs: PacsConfig, sink: PollSink, opts: QidoPollOptions): Promise<QidoPollResult> {
  const now = opts.now ?? new Date();
  const log = opts.log.child({ poller: 'qido', pacs: pacs.url });
  const cpName = qidoCheckpointName(pacs);
  const last = await sink.getCheckpoint(cpName);
  const lastMs = last === null ? NaN : Date.parse(last);

  // The window is the lookback; after a longer outage it reaches back to the day before the last poll, so studies
  // that arrived while radnode was down are still compared.
  let fromMs = now.getTime() - opts.lookbackDays * DAY_MS;
  if (Number.isFinite(lastMs) && lastMs - DAY_MS < fromMs) fromMs = lastMs - DAY_MS;
  // One day ahead covers a modality clock or time zone a little ahead of ours.
  const range = `${dicomDate(new Date(fromMs))}-${dicomDate(new Date(now.getTime() + DAY_MS))}`;

  const entries = await qidoAll(pacs, `studies?StudyDate=${range}&includefield=00201208&includefield=00080061`, POLL_CODES);
  // Orthanc keys a study by Patient ID + Study Instance UID, so one UID can be listed twice: merge by UID.
  const studies = new Map<string, { count: number | undefined; modalities: Set<string> }>();
  for (const e of entries) {
    const uid = firstString(e, '0020000D');
    if (uid === undefined) continue;
    const count = firstNumber(e, '00201208');
    const prev = studies.get(uid);
    const mods = allStrings(e, '00080061').map((m) => m.toUpperCase());
    if (prev === undefined) studies.set(uid, { count, modalities: new Set(mods) });
    else {
      prev.count = prev.count === undefined || count === undefined ? undefined : prev.count + count;
      for (const m of mods) prev.modalities.add(m);
    }
  }
  const result: QidoPollResult = { studiesSeen: studies.size, studiesPulled: 0, instancesPulled: 0, studiesFailed: 0 };
  // Per PACS and modality filter: a study walked for MR only has not been walked for CR.
  const key = `${pacs.url}|${(opts.modalities ?? []).map((m) => m.toUpperCase()).sort().join(',')}`;
  const reconciled = reconciledCounts.get(key) ?? new Map<string, { count: number; at: number }>();
  reconciledCounts.set(key, reconciled);
  // Studies that left the window are forgotten, so the map stays the size of one window.
  for (const uid of reconciled.keys()) if (!studies.has(uid)) reconciled.delete(uid);

  for (const [studyUID, study] of studies) {
    // Filtering by ModalitiesInStudy here rather than in the query: QIDO matching of a multi-valued attribute against
    // a list differs between PACS, and a PACS that omits the attribute must not hide a study.
    const inStudy = [...study.modalities];
    if (inStudy.length > 0) {
      if (inStudy.every((m) => NEVER_PULLED_MODALITIES.has(m))) continue;
      if (opts.modalities?.length && !opts.modalities.some((m) => inStudy.includes(m.toUpperCase()))) continue;
    }
    if (study.count !== undefined && study.count <= (await sink.knownInstanceCount(studyUID))) continue;
    const last = reconciled.get(studyUID);
    if (study.count !== undefined && last?.count === study.count && now.getTime() - last.at < REWALK_MS) continue;

    try {
      const pulled = await pullStudy(pacs, sink, studyUID, 'poll-qido', { modalities: opts.modalities, log });
      if (study.count !== undefined && pulled.failedInstances === 0) reconciled.set(studyUID, { count: study.count, at: now.getTime() });
      if (pulled.pulled > 0) {
        result.studiesPulled++;
        result.instancesPulled += pulled.pulled;
        await sink.studyRetrieved?.(studyUID);
      }
    } catch (err) {
      const e = asRadnodeError(err, 'RN_POLL_FAILED');
      // A transient failure (PACS down, disk full) ends this poll: the next one repeats the whole window anyway.
      if (e.retryable) throw e;
      result.studiesFailed++;
      log.warn('poll: study skipped', { studyInstanceUID: studyUID, code: e.code, error: e.message });
    }
  }

  // The window is recomputed from `now` each time, so the checkpoint only has to say when the last full poll ran.
  await sink.setCheckpoint(cpName, now.toISOString());
  log.info('poll: QIDO done', { ...result });
  return result;
}
