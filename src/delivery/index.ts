/** Delivery: result objects into the PACS (STOW-RS + QIDO-RS confirmation) or into a folder; Orthanc retraction. */
export { stowInstances, type StowObject, type StowResult } from './stow.ts';
export { findStudyInstances, getStudyPatientId, sameFingerprint, type PacsInstance } from './query.ts';
export { deliverObjects, type DeliverOptions, type DeliverResult } from './deliver.ts';
export { writeToFolder } from './folder.ts';
export { retractInstance } from './retract.ts';
