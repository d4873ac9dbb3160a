/**
 * The retrieve-path transcode fallback against a small DICOMweb server on 127.0.0.1 that answers WADO-RS by the
 * Accept header's transfer-syntax, as a transcoding PACS does. (Orthanc 1.10 cannot transcode JPEG XL either, and no
 * JPEG XL sample exists in ../shared/data: the "stored" object is pydicom's MR_small_RLE relabelled as JPEG XL.)
 */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedFile } from '../../../test/helpers/paths.ts';
import type { PacsConfig } from '../../config/types.ts';
import { TS, decodeFrames, readHeader, readInstance } from '../../dicom/index.ts';
import { silentLogger } from '../../log.ts';
import { decodableCopy } from './pull.ts';

const NATIVE = new Uint8Array(readFileSync(sharedFile('dicom/pydicom/MR_small.dcm')));
const RLE = new Uint8Array(readFileSync(sharedFile('dicom/pydicom/MR_small_RLE.dcm')));

/** Rewrites the File Meta Transfer Syntax UID (and the group length) of a Part 10 file. */
function relabel(bytes: Uint8Array, uid: string): Uint8Array {
  const buf = Buffer.from(bytes);
  const tag = Buffer.from([0x02, 0x00, 0x10, 0x00, 0x55, 0x49]); // (0002,0010) UI
  const at = buf.indexOf(tag, 132);
  const oldLen = buf.readUInt16LE(at + 6);
  const value = Buffer.from(uid.length % 2 ? uid + '\0' : uid, 'latin1');
  const head = Buffer.from(buf.subarray(0, at + 8));
  head.writeUInt16LE(value.length, at + 6);
  // (0002,0000) UL group length is the first meta element: its value sits at 132 + 8.
  head.writeUInt32LE(head.readUInt32LE(140) + value.length - oldLen, 140);
  return new Uint8Array(Buffer.concat([head, value, buf.subarray(at + 8 + oldLen)]));
}

const JPEG_XL = relabel(RLE, TS.JPEGXLLossless);
const SOP = readHeader(NATIVE).SOPInstanceUID ?? '';

function multipart(part: Uint8Array): { body: Buffer; type: string } {
  const b = 'radnode-test-boundary';
  const body = Buffer.concat([Buffer.from(`--${b}\r\nContent-Type: application/dicom\r\n\r\n`), Buffer.from(part), Buffer.from(`\r\n--${b}--\r\n`)]);
  return { body, type: `multipart/related; type="application/dicom"; boundary=${b}` };
}

describe('retrieve path: an instance radnode cannot decode is asked for again, transcoded', () => {
  let server: Server;
  let pacs: PacsConfig;
  const asked: string[] = [];
  /** What the PACS does when asked to transcode: serve Explicit VR Little Endian, refuse, or serve the stored copy. */
  let transcode: 'serve' | 'refuse' | 'stored' = 'serve';

  beforeAll(async () => {
    server = createServer((req, res) => {
      const ts = /transfer-syntax=([^;,\s]+)/.exec(req.headers.accept ?? '')?.[1] ?? '*';
      asked.push(ts);
      if (ts !== '*' && transcode === 'refuse') {
        res.writeHead(406).end();
        return;
      }
      const m = multipart(ts === '*' || transcode === 'stored' ? JPEG_XL : NATIVE);
      res.writeHead(200, { 'content-type': m.type }).end(m.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    pacs = { kind: 'dicomweb', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`, auth: { type: 'none' }, timeoutMs: 5000 };
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('the relabelled object really is undecodable here (a typed error naming JPEG XL)', async () => {
    await expect(decodeFrames(readInstance(JPEG_XL))).rejects.toMatchObject({ code: 'RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX', message: expect.stringContaining('JPEG XL') });
  });

  it('a PACS that transcodes gives Explicit VR Little Endian pixels, which decode', async () => {
    transcode = 'serve';
    asked.length = 0;
    const got = await decodableCopy(pacs, '1.2.3', '1.2.3.4', SOP, JPEG_XL, silentLogger);
    expect(asked).toEqual([TS.ExplicitVRLittleEndian]);
    const inst = readInstance(got);
    expect(inst.transferSyntax.uid).toBe(TS.ExplicitVRLittleEndian);
    expect(inst.SOPInstanceUID).toBe(SOP);
    const [frame] = await decodeFrames(inst);
    expect([frame.rows, frame.columns, frame.data.length]).toEqual([64, 64, 64 * 64]);
  });

  it('a PACS that refuses (406) or answers with the same syntax leaves the original, stored as it came', async () => {
    for (const mode of ['refuse', 'stored'] as const) {
      transcode = mode;
      asked.length = 0;
      const got = await decodableCopy(pacs, '1.2.3', '1.2.3.4', SOP, JPEG_XL, silentLogger);
      expect(asked, mode).toEqual([TS.ExplicitVRLittleEndian]);
      expect(Buffer.from(got).equals(Buffer.from(JPEG_XL)), mode).toBe(true);
    }
  });

  it('decodable objects and malformed bytes are never asked for twice', async () => {
    asked.length = 0;
    expect(await decodableCopy(pacs, '1.2.3', '1.2.3.4', SOP, RLE, silentLogger)).toBe(RLE);
    const junk = new Uint8Array([1, 2, 3]);
    expect(await decodableCopy(pacs, '1.2.3', '1.2.3.4', SOP, junk, silentLogger)).toBe(junk);
    expect(asked).toEqual([]);
  });
});
