/**
 * The DIMSE poller against an in-process SCP on 127.0.0.1 (a real dcmjs-dimse peer): a study whose PACS count
 * includes radnode's delivered SR and heatmap is not moved again on every poll.
 */
import dimse from 'dcmjs-dimse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/helpers/orthanc.ts';
import { silentLogger } from '../../log.ts';
import { pollDimse } from './dimse.ts';
import type { PollSink } from './sink.ts';

// The SCP side of dcmjs-dimse is used untyped: only the test plays a PACS.
const { Server, Scp, Dataset, constants, responses } = dimse as unknown as Record<string, any>;
const { PresentationContextResult, Status, TransferSyntax } = constants;
let moves = 0;

class Pacs extends Scp {
  associationRequested(association: any) {
    this.association = association;
    for (const c of association.getPresentationContexts()) {
      const ctx = association.getPresentationContext(c.id);
      ctx.setResult(PresentationContextResult.Accept, TransferSyntax.ImplicitVRLittleEndian);
    }
    this.sendAssociationAccept();
  }
  associationReleaseRequested() {
    this.sendAssociationReleaseResponse();
  }
  cFindRequest(request: any, callback: (r: unknown[]) => void) {
    const match = responses.CFindResponse.fromRequest(request);
    // 2 images + radnode's SR and heatmap SC, delivered earlier.
    match.setDataset(new Dataset({ StudyInstanceUID: '1.2.3', ModalitiesInStudy: ['CR', 'SR', 'OT'], NumberOfStudyRelatedInstances: '4', QueryRetrieveLevel: 'STUDY' }));
    match.setStatus(Status.Pending);
    const done = responses.CFindResponse.fromRequest(request);
    done.setStatus(Status.Success);
    callback([match, done]);
  }
  cMoveRequest(request: any, callback: (r: unknown[]) => void) {
    moves++;
    const done = responses.CMoveResponse.fromRequest(request);
    done.setStatus(Status.Success);
    callback([done]);
  }
}

let server: { close(): void; listen(p: number): void };
let port: number;
beforeAll(async () => {
  port = await freePort();
  server = new Server(Pacs);
  server.listen(port);
});
afterAll(() => server.close());

const sink = (own: number): PollSink => ({
  getCheckpoint: async () => null, setCheckpoint: async () => undefined, ingest: async () => undefined,
  knownInstanceCount: async () => 2, deliveredOwnCount: async () => own,
});

describe('DIMSE poll', () => {
  it("counts radnode's delivered objects: a processed study is not moved again; one missing an image is", async () => {
    const poll = (own: number) => pollDimse({ aeTitle: 'PACS', host: '127.0.0.1', port }, { aeTitle: 'RADNODE', timeoutMs: 5000 }, sink(own), { lookbackDays: 2, log: silentLogger });
    moves = 0;
    expect((await poll(2)).moved).toEqual([]);
    expect(moves).toBe(0);
    expect((await poll(1)).moved).toEqual(['1.2.3']);
    expect(moves).toBe(1);
  });
});
