import type { IngestHeader } from '../ingest/header.ts';
import { isUnderRoot } from '../results/uids.ts';

/**
 * An instance radnode made must never start a job (DESIGN §3 loop guard). It takes two of three signals, because
 * none alone is proof: a site may share the UID root, and public chest films are themselves Secondary Captures.
 */
export function isOwnInstance(h: Pick<IngestHeader, 'sopInstanceUID' | 'contributingDeviceUIDs' | 'manufacturer' | 'imageType'>, node: { uidRoot: string; manufacturer: string }): boolean {
  const signals = [
    isUnderRoot(h.sopInstanceUID, node.uidRoot),
    h.contributingDeviceUIDs.some((uid) => isUnderRoot(uid, node.uidRoot)),
    // An SR has no Image Type: there the Manufacturer alone is the third signal.
    h.manufacturer === node.manufacturer && (h.imageType?.[0] === 'DERIVED' || h.imageType === undefined),
  ];
  return signals.filter(Boolean).length >= 2;
}
