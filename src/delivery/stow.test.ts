/**
 * How a STOW-RS 409 is judged (PS3.18 10.5.3): none stored, and whether a later attempt may succeed depends on the
 * Failure Reasons the PACS gives. The PACS here is a local HTTP stand-in answering a fixed 409 body; the real
 * Orthanc 409 (another study's instance) is in test/integration/delivery.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RadnodeError } from '../errors.ts';
import { isPassingFailure, stowInstances } from './stow.ts';

let server: Server | undefined;
afterEach(() => server?.close());

async function pacsAnswering409(reason: number): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(409, { 'content-type': 'application/dicom+json' });
      res.end(JSON.stringify({ '00081198': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: ['1.2.3.4'] }, '00081197': { vr: 'US', Value: [reason] } }] } }));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/dicom-web`;
}

describe('STOW-RS 409', () => {
  it.each([
    [0xa700, true, 'out of resources'],
    [0x0110, false, 'processing failure: what Orthanc answers for an instance of another study'],
    [0x0111, true, 'duplicate SOP instance: an earlier attempt stored it; the next attempt confirms by QIDO'],
    [0x0122, false, 'SOP class not supported'],
    [0xa900, false, 'data set does not match the SOP class'],
    [0xc000, false, 'cannot understand'],
  ])('failure reason %s: retryable %s (%s)', async (reason, retryable) => {
    const url = await pacsAnswering409(reason);
    const err = await stowInstances({ kind: 'dicomweb', url, auth: { type: 'none' }, timeoutMs: 5000 }, [{ sopInstanceUID: '1.2.3.4', bytes: new Uint8Array(200) }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RadnodeError);
    expect(err).toMatchObject({ code: 'RN_DELIVERY_STOW_REJECTED', retryable });
    expect(isPassingFailure(reason)).toBe(retryable);
  });
});
