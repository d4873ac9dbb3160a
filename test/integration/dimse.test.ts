/**
 * The DIMSE gateway (issue 11) against real peers on 127.0.0.1: dcmtk's echoscu/storescu/findscu and Orthanc with a
 * DICOM modality entry for radnode.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeInstance, newUid, startOrthanc, waitFor } from '../helpers/orthanc.ts';
import { jobsOf, startRadnode, TEST_DETECTOR_MODULE, type RadnodeHandle } from '../helpers/radnode.ts';
import { sharedFile, unpackedFile } from '../helpers/paths.ts';

const CALLER = 'TESTSCU';

/** The data set of a Part 10 file: everything after the file meta group (whose length is in (0002,0000)). */
export function datasetBytes(file: Uint8Array): Buffer {
  const b = Buffer.from(file);
  if (b.toString('latin1', 128, 132) !== 'DICM') throw new Error('not Part 10');
  const groupLength = b.readUInt32LE(128 + 4 + 8);
  return b.subarray(128 + 4 + 12 + groupLength);
}

function dump(path: string, tag: string): string {
  const r = spawnSync('dcmdump', ['-q', '-s', '+P', tag, path], { encoding: 'utf8' });
  return /\[([^\]]*)\]/.exec(r.stdout)?.[1] ?? '';
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]));
}

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });

describe('DIMSE gateway', () => {
  let rn: RadnodeHandle;
  let port: number;
  const instancesDir = () => join(rn.dir, 'data', 'instances');

  beforeAll(async () => {
    port = await freePort();
    rn = await startRadnode({
      dimse: { enabled: true, port, aeTitle: 'RADNODE', knownCallers: [{ aeTitle: CALLER, host: '127.0.0.1' }, { aeTitle: 'BURST' }] },
      detectors: { modules: [TEST_DETECTOR_MODULE] },
      delivery: { mode: 'shadow' },
      workflow: { quietSeconds: 3600 },
    });
  }, 60_000);
  afterAll(async () => {
    await rn?.stop();
  });

  it('answers C-ECHO from a known caller and rejects an unknown one at association', () => {
    const ok = run('echoscu', ['-aet', CALLER, '-aec', 'RADNODE', '127.0.0.1', String(port)]);
    expect(ok.status, ok.stderr).toBe(0);
    const bad = run('echoscu', ['-v', '-aet', 'INTRUDER', '-aec', 'RADNODE', '127.0.0.1', String(port)]);
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/Calling AE Title Not Recognized/i);
    const wrongCalled = run('echoscu', ['-v', '-aet', CALLER, '-aec', 'NOTRADNODE', '127.0.0.1', String(port)]);
    expect(wrongCalled.stdout + wrongCalled.stderr).toMatch(/Called AE Title Not Recognized/i);
    expect(rn.log()).toMatch(/DIMSE association rejected.*INTRUDER|INTRUDER.*association rejected/s);
  });

  it('stores compressed pushes byte-identical (JPEG lossless, JPEG-LS, JPEG 2000, RLE)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'radnode-dimse-'));
    // storescu proposes a compressed syntax only when told to: one option per syntax (dcmtk 3.6.7 has none for 4.57).
    const cases: [string, string][] = [
      ['-xs', 'CTImage.dcm_JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70.dcm'],
      ['-xt', 'CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm'],
      ['-xu', 'CTImage.dcm_JPEGLSLossyTransferSyntax_1.2.840.10008.1.2.4.81.dcm'],
      ['-xv', 'CTImage.dcm_JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm'],
      ['-xw', 'CTImage.dcm_JPEG2000TransferSyntax_1.2.840.10008.1.2.4.91.dcm'],
      ['-xr', 'CTImage.dcm_RLELosslessTransferSyntax_1.2.840.10008.1.2.5.dcm'],
    ];
    const files = cases.map(([option, n], i) => {
      // The corpus files share one SOP Instance UID: each copy gets its own so all are stored, not deduplicated.
      const p = join(tmp, `${i}.dcm`);
      copyFileSync(sharedFile(`dicom/cs-wadoimageloader/${n}`), p);
      const m = run('dcmodify', ['-nb', '-gin', '-gse', p]);
      expect(m.status, m.stderr).toBe(0);
      const r = run('storescu', [option, '-aet', CALLER, '-aec', 'RADNODE', '127.0.0.1', String(port), p]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      return p;
    });
    for (const f of files) {
      const sop = dump(f, '0008,0018');
      const stored = listFiles(instancesDir()).find((p) => p.endsWith(`/${sop}.dcm`));
      expect(stored, `${f} stored`).toBeDefined();
      expect(dump(stored!, '0002,0010')).toBe(dump(f, '0002,0010'));
      expect(datasetBytes(readFileSync(stored!)).equals(datasetBytes(readFileSync(f)))).toBe(true);
      expect(dump(stored!, '0002,0016')).toBe(CALLER);
    }
  }, 120_000);

  it('an association broken mid-study leaves every acknowledged instance stored and nothing half-written', async () => {
    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0002/dicom');
    const files = readdirSync(dir).sort().map((f) => join(dir, f));
    const child = spawn('storescu', ['-v', '-aet', CALLER, '-aec', 'RADNODE', '127.0.0.1', String(port), ...files]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('some instances acknowledged', async () => (out.match(/Received Store Response \(Success\)/g)?.length ?? 0) >= 20, 60_000, 20);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const acked = ackedFiles(out);
    expect(acked.length).toBeGreaterThanOrEqual(20);
    expect(acked.length).toBeLessThan(files.length);
    await checkStored(acked, instancesDir());
    // The .part of the instance in flight is removed when the socket closes.
    await waitFor('no temp files', async () => listFiles(join(rn.dir, 'data', 'tmp')).filter((f) => f.includes('dimse-')).length === 0, 10_000);
  }, 120_000);
});

describe('DIMSE gateway with Orthanc as the PACS', () => {
  it('Orthanc C-STOREs a study, radnode analyses it and C-STOREs the results back; Orthanc\'s C-FIND finds them', async () => {
    const [oDicom, rnDimse] = [await freePort(), await freePort()];
    const orthanc = await startOrthanc({ dicom: { aeTitle: 'ORTHANC', port: oDicom, modalities: { radnode: ['RADNODE', '127.0.0.1', rnDimse] } } });
    const rn = await startRadnode({
      // The global quiet period is an hour: only the caller's own 2 s can complete the study in time.
      workflow: { quietSeconds: 3600, tickMs: 200, backoffBaseMs: 200, backoffMaxMs: 1000 },
      routing: { rules: [{ detector: 'test-echo', match: { modality: ['CR', 'DX'] } }] },
      detectors: { modules: [TEST_DETECTOR_MODULE] },
      delivery: { mode: 'dimse', confirmTimeoutMs: 10_000 },
      dimse: {
        enabled: true, port: rnDimse, aeTitle: 'RADNODE',
        knownCallers: [{ aeTitle: 'ORTHANC', host: '127.0.0.1', quietSeconds: 2, detectors: ['test-echo'] }],
        destination: { aeTitle: 'ORTHANC', host: '127.0.0.1', port: oDicom },
      },
    });
    try {
      const studyUID = newUid();
      const tmp = mkdtempSync(join(tmpdir(), 'rn-dimse-study-'));
      const ids: string[] = [];
      for (const [i, f] of ['cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm', 'cxr/dicom/rsna/00322d4d-1c29-4943-afc9-b6754be640eb.dcm'].entries()) {
        const inst = await makeInstance(sharedFile(f), tmp, { studyUID, patientId: 'RN-DIMSE-1', instanceNumber: i + 1 });
        ids.push(await orthanc.upload(inst.path));
      }
      const orthancStudy = (await orthanc.lookup(studyUID))!;
      const r = await fetch(`${orthanc.url}/modalities/radnode/store`, { method: 'POST', body: JSON.stringify({ Resources: [orthancStudy], Synchronous: true }) });
      expect(r.status, await r.text()).toBe(200);
      const job = await waitFor('job delivered', async () => (await jobsOf(rn, studyUID)).find((j) => j.state === 'delivered'), 60_000, 250);
      const detail = await rn.api<{ outputs: { sopInstanceUID: string }[]; deliveries: { outcome: string; detail_json: string }[] }>(`/api/jobs/${job.id}`);
      expect(detail.outputs.length).toBeGreaterThan(0);
      // Orthanc offers storage commitment: its N-EVENT-REPORT reached radnode's SCP and named every sent object.
      const delivered = detail.deliveries.find((d) => d.outcome === 'delivered')!;
      expect(JSON.parse(delivered.detail_json)).toMatchObject({ mode: 'dimse', commitment: 'confirmed' });
      // Orthanc's own C-FIND (findscu at IMAGE level against Orthanc) lists every result object in the study.
      const f = run('findscu', ['-S', '-aet', 'RADNODE', '-aec', 'ORTHANC', '-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${studyUID}`, '-k', 'SeriesInstanceUID', '-k', 'SOPInstanceUID', '127.0.0.1', String(oDicom)]);
      expect(f.status, f.stderr).toBe(0);
      for (const o of detail.outputs) expect(f.stdout + f.stderr).toContain(o.sopInstanceUID);
      // Delivered at all proves the caller's quiet period completed the study (the global one is an hour).
    } finally {
      await rn.stop();
      await orthanc.stop();
    }
  }, 120_000);
});

describe('DIMSE per-caller settings', () => {
  it('a caller\'s quiet period completes its study and its detector list limits planning', async () => {
    const port = await freePort();
    const rn = await startRadnode({
      workflow: { quietSeconds: 3600, tickMs: 200 },
      routing: { rules: [{ detector: 'test-echo', match: { modality: ['CR', 'DX'] } }] },
      detectors: { modules: [TEST_DETECTOR_MODULE] },
      delivery: { mode: 'shadow' },
      dimse: { enabled: true, port, aeTitle: 'RADNODE', knownCallers: [{ aeTitle: 'NODET', quietSeconds: 1, detectors: [] }, { aeTitle: 'ALLDET', quietSeconds: 1 }] },
    });
    try {
      const tmp = mkdtempSync(join(tmpdir(), 'rn-dimse-caller-'));
      const studies: Record<string, string> = {};
      for (const caller of ['NODET', 'ALLDET']) {
        studies[caller] = newUid();
        const inst = await makeInstance(sharedFile('cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm'), tmp, { studyUID: studies[caller]!, patientId: `RN-${caller}` });
        const r = run('storescu', ['-xy', '-aet', caller, '-aec', 'RADNODE', '127.0.0.1', String(port), inst.path]);
        expect(r.status, r.stderr).toBe(0);
      }
      type S = { studies: { study: string; state: string; jobs: unknown[] }[] };
      const done = await waitFor('both studies planned', async () => {
        const st = (await rn.api<S>('/api/studies')).studies;
        const a = st.find((x) => x.study === studies.NODET);
        const b = st.find((x) => x.study === studies.ALLDET);
        return a?.state !== 'receiving' && b && b.jobs.length > 0 ? { a: a!, b } : null;
      }, 30_000, 200);
      expect(done.a.jobs).toHaveLength(0);
      expect(done.b.jobs).toHaveLength(1);
    } finally {
      await rn.stop();
    }
  }, 60_000);
});

describe('DIMSE poller', () => {
  it('finds a study at a PACS without DICOMweb by C-FIND and retrieves it by C-MOVE to its own SCP', async () => {
    const [oDicom, rnDimse] = [await freePort(), await freePort()];
    const orthanc = await startOrthanc({ dicom: { aeTitle: 'ORTHANC', port: oDicom, modalities: { radnode: ['RADNODE', '127.0.0.1', rnDimse] } } });
    const studyUID = newUid();
    const tmp = mkdtempSync(join(tmpdir(), 'rn-dimse-poll-'));
    const today = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    for (const [i, f] of ['cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm', 'cxr/dicom/rsna/00322d4d-1c29-4943-afc9-b6754be640eb.dcm'].entries())
      await orthanc.upload((await makeInstance(sharedFile(f), tmp, { studyUID, patientId: 'RN-DIMSE-2', studyDate: today, instanceNumber: i + 1 })).path);
    const rn = await startRadnode({
      workflow: { quietSeconds: 3600 },
      routing: { rules: [{ detector: 'test-echo', match: { modality: ['CR', 'DX'] } }] },
      detectors: { modules: [TEST_DETECTOR_MODULE] },
      delivery: { mode: 'shadow' },
      poll: { enabled: true, source: 'dimse', schedule: '*/2 * * * * *' },
      dimse: { enabled: true, port: rnDimse, aeTitle: 'RADNODE', knownCallers: [{ aeTitle: 'ORTHANC', host: '127.0.0.1' }], destination: { aeTitle: 'ORTHANC', host: '127.0.0.1', port: oDicom } },
    });
    try {
      await waitFor('study pulled', async () => {
        const st = await rn.api<{ studies: { study: string; series: { instances: number }[] }[] }>('/api/studies');
        return st.studies.find((x) => x.study === studyUID)?.series.reduce((n, x) => n + x.instances, 0) === 2;
      }, 30_000, 250);
      const stored = listFiles(join(rn.dir, 'data', 'instances')).filter((p) => p.includes(studyUID));
      expect(stored).toHaveLength(2);
      for (const p of stored) expect(dump(p, '0002,0016')).toBe('ORTHANC');
    } finally {
      await rn.stop();
      await orthanc.stop();
    }
  }, 90_000);
});

describe('the same object from two AEs', () => {
  it('is a duplicate, not a conflict: the File Meta naming the calling AE is not the object', async () => {
    const port = await freePort();
    const rn = await startRadnode({ dimse: { enabled: true, port, aeTitle: 'RADNODE', knownCallers: [{ aeTitle: 'MODA' }, { aeTitle: 'MODB' }] }, delivery: { mode: 'shadow' }, workflow: { quietSeconds: 3600 } });
    try {
      const file = sharedFile('dicom/pydicom/MR_small.dcm');
      for (const ae of ['MODA', 'MODB']) {
        const r = run('storescu', ['-v', '-aet', ae, '-aec', 'RADNODE', '127.0.0.1', String(port), file]);
        expect([ae, /Received Store Response \(Success\)/.test(r.stdout + r.stderr)]).toEqual([ae, true]);
      }
      expect((await rn.api<{ conflicts: number }>('/api/metrics')).conflicts).toBe(0);
    } finally {
      await rn.stop();
    }
  }, 60_000);
});

describe('DIMSE gateway under kill -9', () => {
  it('a kill -9 of radnode during a C-STORE burst loses no acknowledged instance', async () => {
    const port = await freePort();
    const rn = await startRadnode({ dimse: { enabled: true, port, aeTitle: 'RADNODE', knownCallers: [{ aeTitle: CALLER }] }, delivery: { mode: 'shadow' }, workflow: { quietSeconds: 3600 } });
    try {
      const dir = unpackedFile('ct/lidc/LIDC-IDRI-0002/dicom');
      const files = readdirSync(dir).sort().map((f) => join(dir, f));
      const child = spawn('storescu', ['-v', '-aet', CALLER, '-aec', 'RADNODE', '127.0.0.1', String(port), ...files]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor('a burst under way', async () => (out.match(/Received Store Response \(Success\)/g)?.length ?? 0) >= 30, 60_000, 10);
      await rn.kill9();
      await new Promise((r) => child.once('exit', r));
      const acked = ackedFiles(out);
      expect(acked.length).toBeLessThan(files.length);
      await rn.start();
      const instancesDir = join(rn.dir, 'data', 'instances');
      await checkStored(acked, instancesDir);
      const studies = await rn.api<{ studies: { study: string; series: { instances: number }[] }[] }>('/api/studies');
      const recorded = studies.studies.reduce((n, s) => n + s.series.reduce((m, x) => m + x.instances, 0), 0);
      expect(recorded).toBeGreaterThanOrEqual(acked.length);
    } finally {
      await rn.stop();
    }
  }, 180_000);
});

/** storescu -v: "Sending file: X" ... "Received Store Response (Success)" pairs name the acknowledged files. */
export function ackedFiles(log: string): string[] {
  const acked: string[] = [];
  let current: string | undefined;
  for (const line of log.split('\n')) {
    const s = /Sending file: (.*)$/.exec(line);
    if (s) current = s[1]!.trim();
    else if (/Received Store Response \(Success\)/.test(line) && current) acked.push(current);
  }
  return acked;
}

/** Every stored file is a whole instance: its data set is the source's, byte for byte. */
export async function checkStored(acked: string[], instancesDir: string): Promise<void> {
  const stored = new Map(listFiles(instancesDir).map((p) => [p.split('/').pop()!.replace(/\.dcm$/, ''), p]));
  for (const f of acked) {
    const sop = dump(f, '0008,0018');
    const p = stored.get(sop);
    expect(p, `acknowledged ${f} is stored`).toBeDefined();
    expect(datasetBytes(readFileSync(p!)).equals(datasetBytes(readFileSync(f)))).toBe(true);
  }
  for (const p of stored.values()) expect(readFileSync(p).toString('latin1', 128, 132)).toBe('DICM');
}
