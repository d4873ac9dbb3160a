import { createHash } from 'node:crypto';

/**
 * Deterministic UIDs (DESIGN §3): `<root>.<arc>.<decimal of a 96-bit hash>`, so a retried or resumed job produces
 * exactly the same UIDs and the PACS never holds two copies of an output. PS3.5 §9.1: at most 64 characters,
 * components without leading zeros.
 */
export const UID_ARC = { instance: 1, series: 2, trackingUid: 3, device: 4, study: 5, implementation: 6 } as const;
export type UidArc = keyof typeof UID_ARC;

const UID_ROOT_PATTERN = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

export function isValidUidRoot(root: string): boolean {
  // 64 - ".n." - 29 digits of a 96-bit number leaves 32 characters for the root.
  return UID_ROOT_PATTERN.test(root) && root.length <= 32;
}

export function hashParts(parts: readonly string[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(String(Buffer.byteLength(p)));
    h.update(':');
    h.update(p);
  }
  return h.digest();
}

export function deriveUid(root: string, arc: UidArc, parts: readonly string[]): string {
  const digest = hashParts(parts).subarray(0, 12);
  const n = BigInt('0x' + digest.toString('hex'));
  const uid = `${root}.${UID_ARC[arc]}.${n.toString(10)}`;
  if (uid.length > 64) throw new RangeError(`derived UID longer than 64 characters: root ${root} is too long`);
  return uid;
}

export function isUnderRoot(uid: string | undefined, root: string): boolean {
  return typeof uid === 'string' && uid.startsWith(root + '.');
}
