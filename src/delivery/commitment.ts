/**
 * Storage commitment (Push Model, PS3.4 Annex J) for DIMSE delivery (issue 11): after the C-STOREs radnode asks the
 * PACS by N-ACTION to commit to keeping the sent instances; the PACS answers later by N-EVENT-REPORT, normally on a
 * new association to radnode's Storage SCP, which hands the report here by its Transaction UID. Used only where the
 * PACS accepts the Storage Commitment presentation context and radnode's SCP runs to receive the answer; otherwise
 * delivery relies on the IMAGE-level C-FIND alone.
 */
import { randomBytes } from 'node:crypto';
import dimse from 'dcmjs-dimse';
import { RadnodeError } from '../errors.ts';
import { associate, type DimseLink } from './dimse.ts';

export const STORAGE_COMMITMENT_SOP_CLASS = '1.2.840.10008.1.20.1';
/** The well-known SOP instance of the Storage Commitment Push Model. */
const STORAGE_COMMITMENT_SOP_INSTANCE = '1.2.840.10008.1.20.1.1';

export type CommitmentResult = { committed: string[]; failed: string[] };
const pending = new Map<string, (r: CommitmentResult) => void>();

const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? (v as Record<string, unknown>[]) : []);
const uidOf = (item: Record<string, unknown>): string => String(item.ReferencedSOPInstanceUID ?? '').trim();

/** Called by the SCP for every N-EVENT-REPORT on the Storage Commitment class; false when no delivery waits for it. */
export function commitmentReportReceived(elements: Record<string, unknown>): boolean {
  const tx = String(elements.TransactionUID ?? '').trim();
  const resolve = pending.get(tx);
  if (!resolve) return false;
  pending.delete(tx);
  resolve({ committed: list(elements.ReferencedSOPSequence).map(uidOf), failed: list(elements.FailedSOPSequence).map(uidOf) });
  return true;
}

/**
 * N-ACTION for `objects`; resolves 'not-offered' when the PACS does not accept the Storage Commitment context, else
 * the report, or throws RN_DIMSE_NOT_CONFIRMED (retried) when no report comes within timeoutMs.
 */
export async function requestCommitment(link: DimseLink, objects: { sopClassUID: string; sopInstanceUID: string }[], timeoutMs: number): Promise<CommitmentResult | 'not-offered'> {
  const tx = `2.25.${BigInt('0x' + randomBytes(16).toString('hex')).toString()}`;
  const req = new dimse.requests.NActionRequest(STORAGE_COMMITMENT_SOP_CLASS, STORAGE_COMMITMENT_SOP_INSTANCE, 1);
  req.setDataset(new dimse.Dataset({ TransactionUID: tx, ReferencedSOPSequence: objects.map((o) => ({ ReferencedSOPClassUID: o.sopClassUID, ReferencedSOPInstanceUID: o.sopInstanceUID })) }, '1.2.840.10008.1.2.1'));
  let timer: NodeJS.Timeout | undefined;
  const report = new Promise<CommitmentResult | null>((resolve) => {
    pending.set(tx, resolve);
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  try {
    const [status] = await associate(link, [req]);
    if (status === undefined) return 'not-offered';
    if (status !== dimse.constants.Status.Success)
      throw new RadnodeError('RN_DIMSE_NOT_CONFIRMED', `${link.peer.aeTitle} refused the storage commitment request (status ${status})`, { details: { status } });
    const r = await report;
    if (!r) throw new RadnodeError('RN_DIMSE_NOT_CONFIRMED', `no storage commitment report from ${link.peer.aeTitle} within ${timeoutMs} ms`, { details: { transactionUID: tx, timeoutMs } });
    return r;
  } finally {
    clearTimeout(timer);
    pending.delete(tx);
  }
}
