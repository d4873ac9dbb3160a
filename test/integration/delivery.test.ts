/**
 * Delivery against a real Orthanc 1.10.1 + DICOMweb 1.7 (issue 2, checks (c) and (e)): STOW-RS of real DICOM files,
 * confirmation by QIDO-RS, exactly-once re-delivery, and the coded failures a job's retry policy reads.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedFile } from '../helpers/paths.ts';
import { makeInstance, newUid, startOrthanc, type OrthancHandle } from '../helpers/orthanc.ts';
import type { PacsConfig, PacsAuth } from '../../src/config/types.ts';
import type { ResultObject } from '../../src/results/objects.ts';
import { RadnodeError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import {
  deliverObjects,
  findStudyInstances,
  getStudyPatientId,
  retractInstance,
  stowInstances,
  writeToFolder,
} from '../../src/delivery/index.ts';

const CR_SOURCE = sharedFile('cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm'); // JPEG baseline CR
const MR_SMALL = sharedFile('dicom/pydicom/MR_small.dcm'); // Explicit VR LE, 10 KB: stands in for a result object
const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

let work: string;
let orthanc: OrthancHandle;

function pacsOf(o: OrthancHandle, auth: PacsAuth = { type: 'none' }, timeoutMs = 10_000): PacsConfig {
  return { kind: 'orthanc', url: o.dicomWebUrl, orthancUrl: o.url, auth, timeoutMs };
}

/** A source study in the PACS: one real CR radiograph under a fresh Study Instance UID. */
async function sourceStudy(o: OrthancHandle, patientId: string): Promise<string> {
  const studyUID = newUid();
  const inst = await makeInstance(CR_SOURCE, join(work, 'src'), { studyUID, patientId });
  await o.upload(inst.path);
  return studyUID;
}

/** Result objects for a study: real DICOM files with a fresh series, Content Date/Time as the fingerprint. */
async function resultObjects(studyUID: string, n: number, patientId: string, contentTime = '101010.123'): Promise<ResultObject[]> {
  const seriesUID = newUid();
  const out: ResultObject[] = [];
  for (let i = 1; i <= n; i++) {
    const m = await makeInstance(MR_SMALL, join(work, 'results'), {
      studyUID,
      seriesUID,
      patientId,
      instanceNumber: i,
      contentDate: '20261124',
      contentTime,
    });
    out.push({
      kind: 'heatmap-sc',
      studyInstanceUID: studyUID,
      seriesInstanceUID: seriesUID,
      sopInstanceUID: m.sopInstanceUID,
      sopClassUID: MR_IMAGE_STORAGE,
      instanceNumber: i,
      bytes: m.bytes,
      fingerprint: `20261124 ${contentTime}`,
    });
  }
  return out;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<RadnodeError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RadnodeError);
    expect((err as RadnodeError).code).toBe(code);
    return err as RadnodeError;
  }
  throw new Error(`expected ${code}, but it resolved`);
}

/** Counts STOW-RS POSTs that leave this process, so "sends nothing" is observed, not inferred. */
function countStows(): { count: () => number; restore: () => void } {
  const real = globalThis.fetch;
  let n = 0;
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (init?.method === 'POST' && /\/dicom-web\/studies(\/[^/]+)?$/.test(url)) n++;
    return real(input, init);
  });
  return { count: () => n, restore: () => spy.mockRestore() };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'radnode-delivery-'));
  orthanc = await startOrthanc();
});

afterAll(async () => {
  await orthanc?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('deliverObjects against Orthanc', () => {
  it('stores result objects in the source study and confirms each by QIDO with its fingerprint', async () => {
    const study = await sourceStudy(orthanc, 'PID-1');
    const objects = await resultObjects(study, 2, 'PID-1');
    const res = await deliverObjects(pacsOf(orthanc), objects, { expectedPatientId: 'PID-1', confirmTimeoutMs: 10_000, log: silentLogger });
    expect(res.sent.sort()).toEqual(objects.map((o) => o.sopInstanceUID).sort());
    expect(res.alreadyPresent).toEqual([]);

    // Orthanc's own REST view, independent of the code under test.
    const held = await orthanc.instancesOfStudy(study);
    for (const o of objects) expect(held.map((h) => h.sopInstanceUID)).toContain(o.sopInstanceUID);
    expect(held).toHaveLength(3);
    const found = await findStudyInstances(pacsOf(orthanc), study);
    expect(found.get(objects[0].sopInstanceUID)).toEqual({ seriesInstanceUID: objects[0].seriesInstanceUID, fingerprint: '20261124 101010.123' });
  });

  it('a second delivery of the same objects sends nothing and reports them already present', async () => {
    const study = await sourceStudy(orthanc, 'PID-2');
    const objects = await resultObjects(study, 2, 'PID-2');
    await deliverObjects(pacsOf(orthanc), objects, { confirmTimeoutMs: 10_000, log: silentLogger });
    const stows = countStows();
    try {
      const again = await deliverObjects(pacsOf(orthanc), objects, { confirmTimeoutMs: 10_000, log: silentLogger });
      expect(again.sent).toEqual([]);
      expect(again.alreadyPresent.sort()).toEqual(objects.map((o) => o.sopInstanceUID).sort());
      expect(stows.count()).toBe(0);
    } finally {
      stows.restore();
    }
    expect(await orthanc.instancesOfStudy(study)).toHaveLength(3);
  });

  it('sends only the missing objects when part of a result is already stored', async () => {
    const study = await sourceStudy(orthanc, 'PID-3');
    const objects = await resultObjects(study, 3, 'PID-3');
    await deliverObjects(pacsOf(orthanc), objects.slice(0, 1), { confirmTimeoutMs: 10_000, log: silentLogger });
    const res = await deliverObjects(pacsOf(orthanc), objects, { confirmTimeoutMs: 10_000, log: silentLogger });
    expect(res.alreadyPresent).toEqual([objects[0].sopInstanceUID]);
    expect(res.sent.sort()).toEqual([objects[1].sopInstanceUID, objects[2].sopInstanceUID].sort());
  });

  it('an object already in the PACS with other content is a non-retryable conflict and is not re-sent', async () => {
    // Orthanc (OverwriteInstances false) answers 200 to such a STOW and drops the new bytes: only the fingerprint
    // check can tell (orthanc.md "Duplicates").
    const study = await sourceStudy(orthanc, 'PID-4');
    const [first] = await resultObjects(study, 1, 'PID-4', '101010.123');
    await deliverObjects(pacsOf(orthanc), [first], { confirmTimeoutMs: 10_000, log: silentLogger });
    const changed = await makeInstance(MR_SMALL, join(work, 'results'), {
      studyUID: study,
      seriesUID: first.seriesInstanceUID,
      sopUID: first.sopInstanceUID,
      contentDate: '20261124',
      contentTime: '121212',
    });
    const stows = countStows();
    try {
      const err = await expectCode(
        deliverObjects(pacsOf(orthanc), [{ ...first, bytes: changed.bytes, fingerprint: '20261124 121212' }], { confirmTimeoutMs: 2000, log: silentLogger }),
        'RN_DELIVERY_NOT_CONFIRMED',
      );
      expect(err.retryable).toBe(false);
      expect(err.details.conflicts).toEqual([
        { sopInstanceUID: first.sopInstanceUID, studyInstanceUID: study, expected: '20261124 121212', found: '20261124 101010.123' },
      ]);
      expect(stows.count()).toBe(0);
    } finally {
      stows.restore();
    }
  });

  it('refuses to deliver when the source study is gone or now has another Patient ID', async () => {
    const study = await sourceStudy(orthanc, 'PID-5');
    const objects = await resultObjects(study, 1, 'PID-5');
    const changed = await expectCode(
      deliverObjects(pacsOf(orthanc), objects, { expectedPatientId: 'SOMEONE-ELSE', confirmTimeoutMs: 2000, log: silentLogger }),
      'RN_SOURCE_STUDY_CHANGED',
    );
    expect(changed.retryable).toBe(false);
    expect(changed.details).toEqual({ studyInstanceUID: study, studyFound: true });
    expect(await orthanc.instancesOfStudy(study)).toHaveLength(1);

    const gone = await resultObjects(newUid(), 1, 'PID-5');
    const err = await expectCode(
      deliverObjects(pacsOf(orthanc), gone, { expectedPatientId: 'PID-5', confirmTimeoutMs: 2000, log: silentLogger }),
      'RN_SOURCE_STUDY_CHANGED',
    );
    expect(err.details.studyFound).toBe(false);
    expect(err.retryable).toBe(true); // not in the PACS yet (fan-out, indexing): retried with backoff, then dead-lettered
    expect(await getStudyPatientId(pacsOf(orthanc), study)).toBe('PID-5');
  });
});

describe('stowInstances', () => {
  it('reads 00081199 and an 00081198 that has no Value as all stored', async () => {
    const study = await sourceStudy(orthanc, 'PID-6');
    const [o] = await resultObjects(study, 1, 'PID-6');
    expect(await stowInstances(pacsOf(orthanc), [o], study)).toEqual({ stored: [o.sopInstanceUID], failed: [] });
  });

  it('an instance of another study sent to /studies/{uid} is refused with the failure reason (409)', async () => {
    const study = await sourceStudy(orthanc, 'PID-7');
    const [other] = await resultObjects(newUid(), 1, 'PID-7');
    const err = await expectCode(stowInstances(pacsOf(orthanc), [other], study), 'RN_DELIVERY_STOW_REJECTED');
    expect(err.retryable).toBe(false);
    expect(err.details.status).toBe(409);
    expect(err.details.failed).toEqual([{ sopInstanceUID: other.sopInstanceUID, reason: expect.stringMatching(/^0x[0-9A-F]{4}/) }]);
  });

  it('a part that is not DICOM fails alone; the good part is reported stored', async () => {
    const study = await sourceStudy(orthanc, 'PID-8');
    const [good] = await resultObjects(study, 1, 'PID-8');
    const res = await stowInstances(pacsOf(orthanc), [good, { sopInstanceUID: '1.2.3.4', bytes: new TextEncoder().encode('not DICOM') }]);
    expect(res.stored).toEqual([good.sopInstanceUID]);
    expect(res.failed.map((f) => f.sopInstanceUID)).toEqual(['1.2.3.4']);
  });
});

describe('delivery failures', () => {
  it('Orthanc stopped: RN_DELIVERY_UNREACHABLE (retryable), then the same objects arrive after a restart', async () => {
    const o = await startOrthanc();
    try {
      const study = await sourceStudy(o, 'PID-9');
      const objects = await resultObjects(study, 2, 'PID-9');
      await o.stop();
      const err = await expectCode(deliverObjects(pacsOf(o), objects, { expectedPatientId: 'PID-9', confirmTimeoutMs: 2000, log: silentLogger }), 'RN_DELIVERY_UNREACHABLE');
      expect(err.retryable).toBe(true);
      await o.restart();
      const res = await deliverObjects(pacsOf(o), objects, { expectedPatientId: 'PID-9', confirmTimeoutMs: 10_000, log: silentLogger });
      expect(res.sent).toHaveLength(2);
      expect(await o.instancesOfStudy(study)).toHaveLength(3);
    } finally {
      await o.stop();
    }
  });

  it('a PACS that accepts the connection and never answers: RN_DELIVERY_UNREACHABLE after timeoutMs', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const addr = silent.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    try {
      const pacs: PacsConfig = { kind: 'dicomweb', url: `http://127.0.0.1:${addr.port}/dicom-web`, auth: { type: 'none' }, timeoutMs: 300 };
      const t0 = Date.now();
      const err = await expectCode(stowInstances(pacs, [{ sopInstanceUID: '1.2.3', bytes: new Uint8Array(10) }]), 'RN_DELIVERY_UNREACHABLE');
      expect(err.retryable).toBe(true);
      expect(err.details.errorName).toBe('TimeoutError');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('wrong credentials: RN_DELIVERY_AUTH_REJECTED (not retryable); the right ones deliver', async () => {
    const o = await startOrthanc({ auth: { username: 'radnode', password: 's3cret' } });
    try {
      const study = await sourceStudy(o, 'PID-10');
      const objects = await resultObjects(study, 1, 'PID-10');
      const err = await expectCode(
        deliverObjects(pacsOf(o, { type: 'basic', username: 'radnode', password: 'wrong' }), objects, { confirmTimeoutMs: 2000, log: silentLogger }),
        'RN_DELIVERY_AUTH_REJECTED',
      );
      expect(err.retryable).toBe(false);
      expect(err.details.status).toBe(401);
      await expectCode(stowInstances(pacsOf(o), objects, study), 'RN_DELIVERY_AUTH_REJECTED');
      const ok = await deliverObjects(pacsOf(o, { type: 'basic', username: 'radnode', password: 's3cret' }), objects, { confirmTimeoutMs: 10_000, log: silentLogger });
      expect(ok.sent).toEqual([objects[0].sopInstanceUID]);
    } finally {
      await o.stop();
    }
  });
});

describe('retractInstance', () => {
  it('deletes a delivered object from Orthanc, and is a no-op for a plain DICOMweb PACS', async () => {
    const study = await sourceStudy(orthanc, 'PID-11');
    const [o] = await resultObjects(study, 1, 'PID-11');
    await deliverObjects(pacsOf(orthanc), [o], { confirmTimeoutMs: 10_000, log: silentLogger });
    expect(await retractInstance({ ...pacsOf(orthanc), kind: 'dicomweb' }, o.sopInstanceUID)).toBe(false);
    expect(await orthanc.lookup(o.sopInstanceUID)).not.toBeNull();
    expect(await retractInstance(pacsOf(orthanc), o.sopInstanceUID)).toBe(true);
    expect(await orthanc.lookup(o.sopInstanceUID)).toBeNull();
    expect(await retractInstance(pacsOf(orthanc), o.sopInstanceUID)).toBe(false);
  });
});

describe('writeToFolder', () => {
  it('writes <study>/<series>/<sop>.dcm atomically and leaves an identical file alone on a re-run', async () => {
    const out = join(work, 'folder');
    const objects = await resultObjects(newUid(), 2, 'PID-12');
    const paths = await writeToFolder(out, objects);
    expect(paths).toEqual(objects.map((o) => join(out, o.studyInstanceUID, o.seriesInstanceUID, `${o.sopInstanceUID}.dcm`)));
    for (const [i, p] of paths.entries()) expect(Buffer.compare(readFileSync(p), Buffer.from(objects[i].bytes))).toBe(0);
    const mtimes = paths.map((p) => statSync(p).mtimeMs);
    expect(await writeToFolder(out, objects)).toEqual(paths);
    expect(paths.map((p) => statSync(p).mtimeMs)).toEqual(mtimes);
    expect(readdirSync(join(out, objects[0].studyInstanceUID, objects[0].seriesInstanceUID)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses a UID that would escape the folder', async () => {
    const [o] = await resultObjects(newUid(), 1, 'PID-13');
    await expectCode(writeToFolder(join(work, 'folder2'), [{ ...o, seriesInstanceUID: '../../etc' }]), 'RN_RESULT_INVALID');
  });
});
