/**
 * DIMSE delivery against peers that answer C-FIND the ways PS3.4 allows but Orthanc does not: matches with Pending
 * 0xFF01 (optional keys not supported), and matches without the optional ContentDate/ContentTime. The peer is a real
 * dcmjs-dimse SCP on 127.0.0.1 that stores what it receives.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dimse from 'dcmjs-dimse';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, makeInstance, newUid } from '../../test/helpers/orthanc.ts';
import { sharedFile } from '../../test/helpers/paths.ts';
import { silentLogger } from '../log.ts';
import type { ResultObject } from '../results/objects.ts';
import { deliverObjectsDimse } from './dimse.ts';

// The SCP side of dcmjs-dimse is used untyped: only the test plays a PACS.
const { Server, Scp, Dataset, constants, responses } = dimse as unknown as Record<string, any>;
const { PresentationContextResult, Status, TransferSyntax } = constants;

type PeerMode = { pendingStatus: number; contentKeys: boolean };
const peer = { held: new Map<string, Record<string, unknown>>(), studies: new Map<string, string>(), stores: 0, mode: { pendingStatus: 0xff00, contentKeys: true } as PeerMode };

class TestPacs extends Scp {
  associationRequested(association: any) {
    this.association = association;
    for (const c of association.getPresentationContexts()) {
      const ctx = association.getPresentationContext(c.id);
      const ts = ctx.getTransferSyntaxUids().find((t: string) => t === TransferSyntax.ExplicitVRLittleEndian || t === TransferSyntax.ImplicitVRLittleEndian);
      if (ts) ctx.setResult(PresentationContextResult.Accept, ts);
      else ctx.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
    }
    this.sendAssociationAccept();
  }
  cStoreRequest(request: any, callback: (r: unknown) => void) {
    const e = request.getDataset().getElements();
    peer.stores++;
    peer.held.set(e.SOPInstanceUID, { SOPInstanceUID: e.SOPInstanceUID, SeriesInstanceUID: e.SeriesInstanceUID, StudyInstanceUID: e.StudyInstanceUID, ContentDate: e.ContentDate, ContentTime: e.ContentTime });
    const r = responses.CStoreResponse.fromRequest(request);
    r.setStatus(Status.Success);
    callback(r);
  }
  cFindRequest(request: any, callback: (r: unknown[]) => void) {
    if (request.getDataset().getElements().QueryRetrieveLevel === 'STUDY') {
      const asked = request.getDataset().getElements().StudyInstanceUID;
      const rows = [...peer.studies].filter(([uid]) => uid === asked).map(([uid, pid]) => {
        const r = responses.CFindResponse.fromRequest(request);
        r.setDataset(new Dataset({ StudyInstanceUID: uid, PatientID: pid, QueryRetrieveLevel: 'STUDY' }));
        r.setStatus(Status.Pending);
        return r;
      });
      const done = responses.CFindResponse.fromRequest(request);
      done.setStatus(Status.Success);
      return callback([...rows, done]);
    }
    const matches = [...peer.held.values()].map((h) => {
      const r = responses.CFindResponse.fromRequest(request);
      const keys = peer.mode.contentKeys ? h : { ...h, ContentDate: undefined, ContentTime: undefined };
      r.setDataset(new Dataset({ ...keys, QueryRetrieveLevel: 'IMAGE' }));
      r.setStatus(peer.mode.pendingStatus);
      return r;
    });
    const done = responses.CFindResponse.fromRequest(request);
    done.setStatus(Status.Success);
    callback([...matches, done]);
  }
}

let server: { close(): void } | undefined;
afterEach(() => server?.close());

async function objects(): Promise<ResultObject[]> {
  const dir = mkdtempSync(join(tmpdir(), 'rn-dimse-peer-'));
  const study = newUid();
  const out: ResultObject[] = [];
  for (const n of [1, 2]) {
    const i = await makeInstance(sharedFile('dicom/pydicom/MR_small.dcm'), dir, { studyUID: study, contentDate: '20261125', contentTime: `10000${n}` });
    out.push({ kind: 'heatmap-sc', studyInstanceUID: study, seriesInstanceUID: i.seriesInstanceUID, sopInstanceUID: i.sopInstanceUID, sopClassUID: '1.2.840.10008.5.1.4.1.1.4', bytes: i.bytes, fingerprint: `20261125 10000${n}` } as unknown as ResultObject);
  }
  return out;
}

async function startPeer(mode: PeerMode) {
  peer.held.clear();
  peer.studies.clear();
  peer.stores = 0;
  peer.mode = mode;
  const port = await freePort();
  server = new Server(TestPacs);
  (server as unknown as { listen(p: number): void }).listen(port);
  return { peer: { aeTitle: 'PACS', host: '127.0.0.1', port }, callingAeTitle: 'RADNODE', timeoutMs: 5000 };
}

async function deliverThrice(mode: PeerMode) {
  const link = await startPeer(mode);
  const objs = await objects();
  const results = [];
  for (let attempt = 0; attempt < 3; attempt++) results.push(await deliverObjectsDimse(link, objs, { confirmTimeoutMs: 2000, log: silentLogger }));
  return { results, objs };
}

describe('DIMSE delivery to peers that answer C-FIND differently', () => {
  it('matches answered Pending 0xFF01 (optional keys not supported) count: sent once, then found', async () => {
    const { results, objs } = await deliverThrice({ pendingStatus: 0xff01, contentKeys: true });
    expect(results[0].sent.sort()).toEqual(objs.map((o) => o.sopInstanceUID).sort());
    expect(results.slice(1).map((r) => [r.sent.length, r.alreadyPresent.length])).toEqual([[0, 2], [0, 2]]);
    expect(peer.stores).toBe(2);
  });

  it('a peer that returns no Content Date/Time holds the UID: confirmed, never called a conflict', async () => {
    const { results } = await deliverThrice({ pendingStatus: 0xff00, contentKeys: false });
    expect(results.map((r) => [r.sent.length, r.alreadyPresent.length])).toEqual([[2, 0], [0, 2], [0, 2]]);
    expect(peer.stores).toBe(2);
  });

  it('checks the source study first, as over DICOMweb: absent is retried, another Patient ID is final, nothing sent', async () => {
    const link = await startPeer({ pendingStatus: 0xff00, contentKeys: true });
    const objs = await objects();
    const send = () => deliverObjectsDimse(link, objs, { confirmTimeoutMs: 2000, log: silentLogger, expectedPatientId: 'PID-1' }).catch((e: unknown) => e);
    expect(await send()).toMatchObject({ code: 'RN_SOURCE_STUDY_CHANGED', retryable: true, details: { studyFound: false } });
    peer.studies.set(objs[0].studyInstanceUID, 'PID-2');
    expect(await send()).toMatchObject({ code: 'RN_SOURCE_STUDY_CHANGED', retryable: false, details: { studyFound: true } });
    expect(peer.stores).toBe(0);
    peer.studies.set(objs[0].studyInstanceUID, 'PID-1');
    expect(((await send()) as { sent: string[] }).sent).toHaveLength(2);
  });
});
