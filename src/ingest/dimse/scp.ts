/**
 * The Storage SCP (issue 11): C-ECHO and C-STORE from known calling AEs into the same durable ingest as STOW-RS.
 *
 * Library choice: dcmjs-dimse (0.3.3, maintained: releases through 2026-05). Two of its hooks make the STOW
 * durability contract (DESIGN §3) possible in-process: `createStoreWritableStream` receives each C-STORE data set
 * PDV by PDV, so radnode writes the bytes straight to a temp file exactly as they came off the wire (never parsed
 * and re-encoded, so a JPEG-LS or J2K push stays byte-identical), and `cStoreRequest` answers through a callback,
 * so the response is sent only after fsync(file) + rename + fsync(dir) + the store record. dcmtk's storescp was the
 * alternative: it acks right after write() with no fsync (it has no such option), cannot reject a caller by a
 * list with the "calling AE not recognized" reason, and -xcr --exec-sync would cost one process per instance.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { DimseCaller, RadnodeConfig } from '../../config/types.ts';
import { asRadnodeError, isImageDataError, RadnodeError, type ErrorCode } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { SqliteStore } from '../../store/store.ts';
import { commitmentReportReceived, STORAGE_COMMITMENT_SOP_CLASS } from '../../delivery/commitment.ts';
import { ingestFile, type IngestOutcome } from '../ingest-instance.ts';
import { fileMetaHeader, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION } from './p10.ts';
import { ACCEPTED_TRANSFER_SYNTAXES, isStorageSopClass, TS, VERIFICATION_SOP_CLASS } from './sop.ts';

const { Scp, Dataset, constants, responses } = dimse;
dimse.log.setLevel('silent'); // see quietDimseLibrary in src/delivery/dimse.ts: radnode logs DIMSE events itself
dimse.Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
dimse.Implementation.setImplementationVersion(IMPLEMENTATION_VERSION);
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason } = constants;

/** C-STORE failure statuses (PS3.4 B.2.3, PS3.7 C) for ingest refusals that have a closer code than Processing Failure. */
const DIMSE_STATUS: Partial<Record<ErrorCode, number>> = {
  RN_INGEST_DISK_FULL: 0xa700, // Refused: Out of Resources
  RN_INGEST_CONFLICT: 0x0111, // Duplicate SOP Instance (other content under a stored UID)
  RN_INGEST_SERIES_IN_OTHER_STUDY: 0xc000, // Cannot understand: the UIDs contradict what is stored
};
type Association = InstanceType<typeof dimse.association.Association>;
type PresentationContext = InstanceType<typeof dimse.association.PresentationContext>;
type CStoreRequest = InstanceType<typeof dimse.requests.CStoreRequest>;
type CEchoRequest = InstanceType<typeof dimse.requests.CEchoRequest>;
type CStoreResponse = InstanceType<typeof dimse.responses.CStoreResponse>;
type CEchoResponse = InstanceType<typeof dimse.responses.CEchoResponse>;
type DimseDataset = InstanceType<typeof Dataset>;
type NEventReportRequest = InstanceType<typeof dimse.requests.NEventReportRequest>;
type NEventReportResponse = InstanceType<typeof dimse.responses.NEventReportResponse>;

export type StoredByDimse = { caller: DimseCaller; callingAeTitle: string; outcome: IngestOutcome };

export type ScpDeps = {
  config: RadnodeConfig;
  store: SqliteStore;
  log: Logger;
  /** Called after an instance is durable and acknowledged (per-caller workflow settings hang off it). */
  onStored?: (s: StoredByDimse) => void;
};

export type RunningScp = { port: number; stop(): Promise<void> };

/** PS3.8 §9.3.4 A-ASSOCIATE-RJ reasons radnode uses; exported for the audit record and tests. */
export type RejectWhy = 'calling-ae-not-recognized' | 'called-ae-not-recognized';

/** A caller matches by AE title (case-sensitive, trailing spaces ignored) and, when configured, by address. */
export function findCaller(callers: readonly DimseCaller[], aeTitle: string, address: string | undefined): DimseCaller | undefined {
  const host = (address ?? '').replace(/^::ffff:/, '');
  return callers.find((c) => c.aeTitle === aeTitle.trim() && (c.host === undefined || c.host === host || (c.host === 'localhost' && (host === '127.0.0.1' || host === '::1'))));
}

/**
 * The transfer syntax radnode accepts from what one presentation context proposes: the caller's own order (it lists
 * the syntax its file already has first, so nothing gets transcoded), except that among uncompressed syntaxes explicit
 * VR little endian wins; undefined when none is decodable.
 */
export function pickTransferSyntax(proposed: readonly string[]): string | undefined {
  const usable = proposed.filter((ts) => ACCEPTED_TRANSFER_SYNTAXES.includes(ts));
  const first = usable[0];
  if (first === undefined) return undefined;
  const uncompressed: readonly string[] = [TS.implicitLE, '1.2.840.10008.1.2.2'];
  return uncompressed.includes(first) && usable.includes(TS.explicitLE) ? TS.explicitLE : first;
}

/** `writeError`: a write that failed (a full disk); the C-STORE is then refused with A700, never thrown. */
const MAX_ASSOCIATIONS = 64;

type OpenFile = { fd: number; path: string; writeError?: Error };

function makeScpClass(deps: ScpDeps) {
  const { config, store, log } = deps;
  const tmp = join(config.data.dir, 'tmp');
  const ingestDeps = { store, dataDir: config.data.dir, minFreeMb: config.data.minFreeMb, node: config.node, log };

  return class RadnodeScp extends Scp {
    private readonly remote: string | undefined;
    private caller: DimseCaller | undefined;
    private callingAe = '';
    /** Files of data sets being received or awaiting their response; removed if the association dies first. */
    private readonly open = new Set<OpenFile>();
    private readonly files = new WeakMap<object, OpenFile>();

    constructor(socket: Socket, opts: ConstructorParameters<typeof Scp>[1]) {
      super(socket, opts);
      this.remote = socket.remoteAddress;
      // An association that breaks mid-instance leaves a .part file: it was never acknowledged, so it goes.
      socket.once('close', () => this.dropOpen());
    }

    private dropOpen(): void {
      for (const f of this.open) {
        try {
          closeSync(f.fd);
        } catch {
          // already closed by cStoreRequest
        }
        rmSync(f.path, { force: true });
      }
      this.open.clear();
    }

    override associationRequested(association: Association): void {
      this.callingAe = association.getCallingAeTitle().trim();
      const called = association.getCalledAeTitle().trim();
      let why: RejectWhy | undefined;
      if (called !== config.dimse.aeTitle) why = 'called-ae-not-recognized';
      else if (!(this.caller = findCaller(config.dimse.knownCallers, this.callingAe, this.remote))) why = 'calling-ae-not-recognized';
      if (why) {
        // Permanent + service user: the caller must not retry unchanged; the reason names which AE title was wrong.
        log.warn('DIMSE association rejected', { callingAeTitle: this.callingAe, calledAeTitle: called, host: this.remote, reason: why });
        void store.audit('dimse', 'association.rejected', 'ae', this.callingAe, { calledAeTitle: called, host: this.remote, reason: why }).catch(() => undefined);
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, why === 'called-ae-not-recognized' ? RejectReason.CalledAeNotRecognized : RejectReason.CallingAeNotRecognized);
        return;
      }
      for (const { context } of association.getPresentationContexts()) {
        const sop = context.getAbstractSyntaxUid();
        // Storage commitment: only to receive the PACS's N-EVENT-REPORT for results radnode delivered.
        if (sop !== VERIFICATION_SOP_CLASS && sop !== STORAGE_COMMITMENT_SOP_CLASS && !isStorageSopClass(sop)) {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          continue;
        }
        const ts = pickTransferSyntax(context.getTransferSyntaxUids());
        if (ts) context.setResult(PresentationContextResult.Accept, ts);
        else context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
      log.debug('DIMSE association accepted', { callingAeTitle: this.callingAe, host: this.remote });
      this.sendAssociationAccept();
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
    }

    override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponse) => void): void {
      const response = responses.CEchoResponse.fromRequest(request);
      response.setStatus(Status.Success);
      callback(response);
    }

    /** The data set goes to disk PDV by PDV behind our own Part 10 header: nothing in memory, nothing re-encoded. */
    override createStoreWritableStream(context: PresentationContext, request: CStoreRequest): Writable {
      mkdirSync(tmp, { recursive: true });
      const path = join(tmp, `dimse-${randomUUID()}.part`);
      const fd = openSync(path, 'w');
      const file: OpenFile = { fd, path };
      this.open.add(file);
      writeSync(fd, fileMetaHeader({
        sopClassUID: request.getAffectedSopClassUid(), sopInstanceUID: request.getAffectedSopInstanceUid(),
        transferSyntaxUID: context.getAcceptedTransferSyntaxUid() ?? TS.implicitLE, sourceAeTitle: this.callingAe,
      }));
      // Synchronous writes: each PDV is on the file (in the page cache) before the next is read, so there is no
      // buffer to drain and nothing pending when the last fragment arrives.
      // A failed write is remembered, not emitted: nothing listens for a Writable's 'error' inside dcmjs-dimse, and an
      // unhandled one ends the process (a full disk during a C-STORE took everything down with it).
      const writable = new Writable({
        write(chunk: Buffer, _enc, cb) {
          if (!file.writeError) {
            try {
              writeSync(fd, chunk);
            } catch (err) {
              file.writeError = err as Error;
            }
          }
          cb();
        },
      });
      writable.on('error', (err) => (file.writeError ??= err));
      this.files.set(writable, file);
      return writable;
    }

    override createDatasetFromStoreWritableStream(writable: Writable, context: PresentationContext, callback: (dataset: DimseDataset) => void): void {
      // cStoreRequest only needs to find the file again: an empty data set carries it, nothing is parsed here.
      const dataset = new Dataset({}, context.getAcceptedTransferSyntaxUid());
      const file = this.files.get(writable);
      if (file) this.files.set(dataset, file);
      callback(dataset);
    }

    override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponse) => void): void {
      const dataset = request.getDataset();
      const file = dataset ? this.files.get(dataset) : undefined;
      const respond = (status: number, comment?: string) => {
        const response = responses.CStoreResponse.fromRequest(request);
        response.setStatus(status);
        if (comment) response.setErrorComment?.(comment.slice(0, 64));
        callback(response);
      };
      if (!file) return respond(Status.ProcessingFailure, 'no data set received');
      void (async () => {
        let closed = false;
        try {
          if (file.writeError) throw new RadnodeError('RN_INGEST_DISK_FULL', `the instance could not be written: ${file.writeError.message}`, { cause: file.writeError });
          fsyncSync(file.fd);
          closeSync(file.fd);
          closed = true;
          this.open.delete(file);
          // ingestFile renames, fsyncs the folder and records; only then is the success response sent.
          const outcome = await ingestFile(ingestDeps, { tempPath: file.path }, { source: 'dimse' });
          if (outcome.sopInstanceUID !== request.getAffectedSopInstanceUid().trim())
            log.warn('C-STORE command and data set name different SOP instances; the data set wins', { command: request.getAffectedSopInstanceUid(), dataset: outcome.sopInstanceUID });
          respond(Status.Success);
          if (this.caller) deps.onStored?.({ caller: this.caller, callingAeTitle: this.callingAe, outcome });
        } catch (err) {
          // An fsync that failed (a full or failing disk) left the descriptor open: close it, or each refusal leaks one.
          if (!closed) {
            try {
              closeSync(file.fd);
            } catch {
              /* already closed */
            }
          }
          this.open.delete(file);
          rmSync(file.path, { force: true });
          const e = asRadnodeError(err);
          log.warn('C-STORE refused', { callingAeTitle: this.callingAe, code: e.code, message: e.message });
          // PS3.4 Annex B.2.3: A7xx out of resources (the sender may retry later), Cxxx cannot understand.
          respond(DIMSE_STATUS[e.code] ?? (isImageDataError(e) ? 0xc000 : Status.ProcessingFailure), `${e.code}: ${e.message}`);
        }
      })();
    }

    override nEventReportRequest(request: NEventReportRequest, callback: (response: NEventReportResponse) => void): void {
      const response = responses.NEventReportResponse.fromRequest(request);
      const ds = request.getDataset();
      const known = request.getAffectedSopClassUid() === STORAGE_COMMITMENT_SOP_CLASS && ds !== undefined && commitmentReportReceived(ds.getElements());
      if (!known) log.warn('N-EVENT-REPORT that no delivery waits for', { callingAeTitle: this.callingAe });
      // Acknowledged either way: a late report for a delivery that already timed out must not make the PACS retry forever.
      response.setStatus(Status.Success);
      callback(response);
    }

    override abort(): void {
      this.dropOpen();
    }
  };
}

/** Starts the Storage SCP on dimse.host:dimse.port (0: any free port, for tests). */
export async function startScp(deps: ScpDeps): Promise<RunningScp> {
  const { config, log } = deps;
  const ScpClass = makeScpClass(deps);
  const timeout = config.dimse.timeoutMs;
  const opts = { connectTimeout: timeout, associationTimeout: timeout, pduTimeout: timeout };
  const sockets = new Set<Socket>();
  // Our own net.Server rather than dcmjs-dimse's Server: that one listens on every interface, with no address option.
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const scp = new ScpClass(socket, opts);
    // dcmjs-dimse arms its association and PDU timeouts only for sockets it connected or accepted itself: mark this
    // accepted socket as connected, or a peer that opens and then trickles or stalls is never timed out.
    Object.assign(scp, { connected: true, connectedTime: Date.now() });
    scp.on('networkError', (err: unknown) => {
      log.debug('DIMSE network error', { err: asRadnodeError(err) });
      socket.destroy();
    });
  });
  // Modalities and a PACS open a few associations at once; hundreds would be a misbehaving or hostile peer.
  server.maxConnections = MAX_ASSOCIATIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.dimse.port, config.dimse.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.dimse.port;
  log.info('DICOM Storage SCP listening', { aeTitle: config.dimse.aeTitle, host: config.dimse.host, port });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
