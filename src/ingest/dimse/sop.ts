import dimse from 'dcmjs-dimse';

/** What the Storage SCP negotiates (issue 11): the SOP classes it stores, and the transfer syntaxes its imaging core decodes. */

/**
 * The Storage SCP stores whatever a study holds: a sender (or a PACS answering a C-MOVE) fails the whole transfer when
 * one object has no accepted presentation context, so refusing the dose report of a CT study lost its images too.
 * Objects no detector reads get a coded reason at routing. Accepted: every standard storage SOP class (the PS3.4
 * Annex B root, and the library's list of the others) and private SOP classes (vendor non-image objects such as
 * Siemens CSA); not the query, retrieve or worklist services, which this SCP does not offer.
 */
const LIBRARY_STORAGE_CLASSES = new Set<string>(Object.values(dimse.constants.StorageClass as Record<string, string>));
export function isStorageSopClass(uid: string): boolean {
  return uid.startsWith('1.2.840.10008.5.1.4.1.1.') || LIBRARY_STORAGE_CLASSES.has(uid) || !uid.startsWith('1.2.840.10008.');
}

export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  rle: '1.2.840.10008.1.2.5',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLossless: '1.2.840.10008.1.2.4.57',
  jpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpegLsNearLossless: '1.2.840.10008.1.2.4.81',
  j2kLossless: '1.2.840.10008.1.2.4.90',
  j2k: '1.2.840.10008.1.2.4.91',
  htj2kLossless: '1.2.840.10008.1.2.4.201',
  htj2kLosslessRpcl: '1.2.840.10008.1.2.4.202',
  htj2k: '1.2.840.10008.1.2.4.203',
} as const;

/**
 * Our order of preference when a caller proposes several transfer syntaxes in one presentation context: explicit LE
 * first (no decoding, every tool reads it), then the lossless compressed ones, then lossy. Whatever is accepted is
 * stored byte for byte as it arrives, never transcoded; a lossy syntax is accepted only when the caller offers it,
 * i.e. when the images already are lossy. Every entry is one the imaging core (src/dicom) decodes.
 */
export const ACCEPTED_TRANSFER_SYNTAXES: readonly string[] = [
  TS.explicitLE, TS.implicitLE,
  TS.jpegLosslessSV1, TS.jpegLossless, TS.jpegLsLossless, TS.j2kLossless, TS.htj2kLossless, TS.htj2kLosslessRpcl, TS.rle,
  TS.jpegLsNearLossless, TS.j2k, TS.htj2k, TS.jpegBaseline, TS.jpegExtended,
];
