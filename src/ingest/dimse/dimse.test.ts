import { describe, expect, it } from 'vitest';
import dcmjs from 'dcmjs';
import { parsePeer } from '../../delivery/dimse.ts';
import { fileMetaHeader, IMPLEMENTATION_CLASS_UID } from './p10.ts';
import { findCaller, pickTransferSyntax } from './scp.ts';
import { silentLogger } from '../../log.ts';
import { SqliteStore } from '../../store/store.ts';
import { CallerPolicy } from './callers.ts';
import { isStorageSopClass, TS } from './sop.ts';

describe('DIMSE gateway pieces', () => {
  it('matches callers by AE title and, when configured, by address', () => {
    const callers = [{ aeTitle: 'PACS1', host: '10.0.0.5' }, { aeTitle: 'CT01' }, { aeTitle: 'LOCAL', host: 'localhost' }];
    expect(findCaller(callers, 'PACS1 ', '::ffff:10.0.0.5')).toBe(callers[0]);
    expect(findCaller(callers, 'PACS1', '10.0.0.6')).toBeUndefined();
    expect(findCaller(callers, 'pacs1', '10.0.0.5')).toBeUndefined();
    expect(findCaller(callers, 'CT01', '192.168.1.1')).toBe(callers[1]);
    expect(findCaller(callers, 'LOCAL', '127.0.0.1')).toBe(callers[2]);
    expect(findCaller(callers, 'NOBODY', '127.0.0.1')).toBeUndefined();
  });

  it('keeps the proposed compressed syntax and prefers explicit LE among uncompressed ones', () => {
    expect(pickTransferSyntax([TS.jpegLsLossless, TS.explicitLE])).toBe(TS.jpegLsLossless);
    expect(pickTransferSyntax([TS.implicitLE, TS.explicitLE])).toBe(TS.explicitLE);
    expect(pickTransferSyntax([TS.implicitLE])).toBe(TS.implicitLE);
    expect(pickTransferSyntax(['1.2.840.10008.1.2.4.100'])).toBeUndefined();
  });

  it('writes a file meta header that dcmjs reads back', () => {
    const meta = fileMetaHeader({ sopClassUID: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUID: '1.2.3.4.5', transferSyntaxUID: TS.j2kLossless, sourceAeTitle: 'PACS1' });
    // A minimal data set in J2K's explicit VR LE encoding: (0008,0018) UI "1.2.3.4.5\0".
    const ds = Buffer.concat([Buffer.from([0x08, 0x00, 0x18, 0x00]), Buffer.from('UI'), Buffer.from([10, 0]), Buffer.from('1.2.3.4.5\0', 'latin1')]);
    const bytes = Buffer.concat([meta, ds]);
    const msg = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    expect(msg.meta['00020010'].Value[0]).toBe(TS.j2kLossless);
    expect(msg.meta['00020012'].Value[0]).toBe(IMPLEMENTATION_CLASS_UID);
    expect(msg.meta['00020016'].Value[0]).toBe('PACS1');
    expect(msg.dict['00080018'].Value[0]).toBe('1.2.3.4.5');
  });

  it('accepts every storage SOP class a study may hold (dose reports, KOs, private ones), not the other services', () => {
    for (const uid of ['1.2.840.10008.5.1.4.1.1.88.67', '1.2.840.10008.5.1.4.1.1.88.59', '1.2.840.10008.5.1.4.1.1.4', '1.2.840.10008.5.1.4.1.1.104.1', '1.3.12.2.1107.5.9.1'])
      expect([uid, isStorageSopClass(uid)]).toEqual([uid, true]);
    for (const uid of ['1.2.840.10008.5.1.4.1.2.2.1', '1.2.840.10008.5.1.4.31', '1.2.840.10008.1.20.1']) expect([uid, isStorageSopClass(uid)]).toEqual([uid, false]);
  });

  it('parses AE@host:port', () => {
    expect(parsePeer('ORTHANC@127.0.0.1:4242')).toEqual({ aeTitle: 'ORTHANC', host: '127.0.0.1', port: 4242 });
    expect(parsePeer('TOO_LONG_AE_TITLE_X@h:1')).toBeUndefined();
    expect(parsePeer('A@h:0')).toBeUndefined();
    expect(parsePeer('A@h')).toBeUndefined();
  });
});

describe('a DIMSE caller with its own quiet period', () => {
  it('holds the study only while its timer runs: re-opened later, the global quiet period completes it', async () => {
    const completed: string[] = [];
    const store = SqliteStore.open(':memory:');
    const policy = new CallerPolicy({ store, log: silentLogger, completeNow: async (s) => void completed.push(s) });
    policy.stored('1.2.3', { aeTitle: 'MODA', quietSeconds: 0.05, detectors: ['cxr'] });
    expect(policy.holds('1.2.3')).toBe(true);
    await new Promise((r) => setTimeout(r, 150));
    expect(completed).toEqual(['1.2.3']);
    expect(policy.holds('1.2.3')).toBe(false);
    expect(policy.allowedDetectors('1.2.3')).toEqual(['cxr']);
    policy.stop();
    store.close();
  });
});
