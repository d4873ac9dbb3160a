/** Pollers: QIDO-RS (any DICOMweb PACS, and the reconciliation poll) and Orthanc's /changes feed. */
export type { PollSink, PollSource } from './sink.ts';
export { pollQido, qidoCheckpointName, type QidoPollOptions, type QidoPollResult } from './qido.ts';
export { pollOrthancChanges, orthancCheckpointName, type OrthancChangesOptions, type OrthancChangesResult } from './orthanc-changes.ts';
export { schedulePoller } from './schedule.ts';
export { NEVER_PULLED_MODALITIES, isWantedModality, pullStudy } from './pull.ts';
