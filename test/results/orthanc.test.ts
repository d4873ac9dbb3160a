/**
 * radnode's result objects in a real PACS: Orthanc 1.10.1 + DICOMweb 1.7 (test/helpers/orthanc.ts) accepts the SR
 * and the heatmap SCs by STOW-RS, QIDO-RS finds them in the source study, WADO metadata carries the fingerprint
 * (Content Date/Time) that delivery confirms, Orthanc's /preview renders the heatmap SC exactly as drawn, and a
 * re-sent copy does not double anything (DESIGN §3).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { startOrthanc, type OrthancHandle } from '../helpers/orthanc.ts';
import { sharedFile, unpackedFile } from '../helpers/paths.ts';
import { num, readPart10, str } from '../../src/results/dicom-io.ts';
import type { ResultObject, SourceInstance } from '../../src/results/objects.ts';
import { readFindings } from '../../src/results/sr/read.ts';
import { blob, CODES, ctxFor, emptyResult, finding, headerOf, place2D, sourceOf } from '../../src/results/test-support/fixtures.ts';
import { writeResultObjects } from '../../src/results/write.ts';

let orthanc: OrthancHandle;

beforeAll(async () => {
  orthanc = await startOrthanc();
});
afterAll(async () => {
  await orthanc?.stop();
});

async function stow(objects: ResultObject[]): Promise<{ status: number; body: Record<string, { Value?: unknown[] }> }> {
  const boundary = 'radnode-results-test-boundary';
  const parts: Buffer[] = [];
  for (const o of objects) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${o.bytes.byteLength}\r\n\r\n`), Buffer.from(o.bytes), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--`));
  const res = await fetch(`${orthanc.dicomWebUrl}/studies`, {
    method: 'POST',
    headers: { 'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`, Accept: 'application/dicom+json' },
    body: Buffer.concat(parts),
  });
  return { status: res.status, body: (await res.json()) as Record<string, { Value?: unknown[] }> };
}

type QidoRow = Record<string, { Value?: (string | number)[] }>;
async function qido(path: string): Promise<QidoRow[]> {
  const res = await fetch(`${orthanc.dicomWebUrl}${path}`, { headers: { Accept: 'application/dicom+json' } });
  expect(res.status).toBe(200);
  return (await res.json()) as QidoRow[];
}
const v = (row: QidoRow, tag: string) => row[tag]?.Value?.[0];

async function storeAndCheck(study: string, sources: SourceInstance[], objects: ResultObject[]): Promise<void> {
  for (const s of sources) await orthanc.upload(s.path);
  const before = (await orthanc.instancesOfStudy(study)).length;
  const r = await stow(objects);
  expect(r.status).toBe(200);
  expect(r.body['00081199']?.Value).toHaveLength(objects.length);
  expect(r.body['00081198']?.Value ?? []).toEqual([]);
  // QIDO finds every object in the source study, with its modality and series description.
  const rows = await qido(`/studies/${study}/instances?includefield=00080060&includefield=0008103E&includefield=00080023&includefield=00080033`);
  for (const o of objects) {
    const row = rows.find((x) => v(x, '00080018') === o.sopInstanceUID);
    expect(row, o.kind).toBeDefined();
    if (!row) continue;
    expect(v(row, '00080060')).toBe(o.kind === 'sr' ? 'SR' : 'OT');
    expect(String(v(row, '0008103E'))).toContain('radnode');
    // The delivery fingerprint is what the PACS reports back.
    expect(`${v(row, '00080023')} ${v(row, '00080033')}`).toBe(o.fingerprint);
  }
  expect(rows.length).toBe(before + objects.length);
  // Re-sending the same bytes (a resumed job) leaves exactly one copy of each.
  expect((await stow(objects)).status).toBe(200);
  expect((await orthanc.instancesOfStudy(study)).length).toBe(before + objects.length);
}

/** Orthanc's /preview of the heatmap SC equals the pixels radnode drew (PNG is lossless). */
async function expectPreviewEqualsDrawn(sc: ResultObject): Promise<void> {
  const id = await orthanc.lookup(sc.sopInstanceUID);
  expect(id).not.toBeNull();
  const res = await fetch(`${orthanc.url}/instances/${id}/preview`);
  expect(res.status).toBe(200);
  const png = decode(new Uint8Array(await res.arrayBuffer()));
  const ds = readPart10(sc.bytes).dataset;
  const w = num(ds, 'Columns') ?? 0;
  const h = num(ds, 'Rows') ?? 0;
  expect([png.width, png.height]).toEqual([w, h]);
  const pd = ds.PixelData;
  const drawn = new Uint8Array(Array.isArray(pd) && pd[0] instanceof ArrayBuffer ? pd[0] : new ArrayBuffer(0), 0, w * h * 3);
  const channels = png.channels;
  let differing = 0;
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) if (png.data[i * channels + c] !== drawn[i * 3 + c]) differing++;
  expect(differing).toBe(0);
}

describe('result objects in a real Orthanc', () => {
  it('CR chest radiograph: SR and heatmap SC accepted, found by QIDO, preview renders the drawn overlay', async () => {
    const path = sharedFile('cxr/dicom/other/CR-MONO1-10-chest.part10.dcm');
    const cr = sourceOf(path);
    const study = str(headerOf(path), 'StudyInstanceUID') ?? '';
    const findings = [
      finding(1, place2D(cr.sopInstanceUID, 'point', [[120.5, 200]])),
      finding(2, place2D(cr.sopInstanceUID, 'box', [[100, 150], [180, 260]])),
      finding(3, place2D(cr.sopInstanceUID, 'polyline', [[250, 300], [300, 320], [330, 280]])),
    ];
    const heatmaps = [{ sopInstanceUID: cr.sopInstanceUID, width: 64, height: 64, values: blob(64, 64, 20, 30, 5) }];
    const result = emptyResult(study, [cr.seriesInstanceUID], { findings, heatmaps, studyScore: 0.91, priority: 'urgent' });
    const objects = await writeResultObjects(result, [cr], ctxFor('orthanc-cr'));
    await storeAndCheck(study, [cr], objects);
    await expectPreviewEqualsDrawn(objects[1]);
    // What the PACS serves back reads back to the findings written.
    const wado = await fetch(`${orthanc.url}/instances/${await orthanc.lookup(objects[0].sopInstanceUID)}/file`);
    expect(readFindings(new Uint8Array(await wado.arrayBuffer())).findings).toEqual(findings);
  });

  it('mammogram (JPEG lossless source) and LIDC CT key slices: accepted and found', async () => {
    const mgPath = sharedFile('dicom/fo-dicom/GH133.dcm');
    const mg = sourceOf(mgPath);
    const mgStudy = str(headerOf(mgPath), 'StudyInstanceUID') ?? '';
    const mgObjects = await writeResultObjects(
      emptyResult(mgStudy, [mg.seriesInstanceUID], { findings: [finding(1, place2D(mg.sopInstanceUID, 'ellipse', [[800, 1500], [1200, 1500], [1000, 1350], [1000, 1650]]), { concept: CODES.mass })] }),
      [mg],
      ctxFor('orthanc-mg'),
    );
    await storeAndCheck(mgStudy, [mg], mgObjects);
    await expectPreviewEqualsDrawn(mgObjects[1]);

    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
    const files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().slice(0, 20).map((f) => join(dir, f));
    const sources = files.map(sourceOf);
    const key = headerOf(files[7]);
    const study = str(key, 'StudyInstanceUID') ?? '';
    const nodule = finding(1, { frameOfReferenceUID: str(key, 'FrameOfReferenceUID') ?? '', point: [-80.25, -120.5, -142.5], keyImage: place2D(sources[7].sopInstanceUID, 'point', [[300, 256]]) }, {
      concept: CODES.nodule,
      measurements: [{ concept: CODES.diameter, value: 23.4, unit: 'mm' }, { concept: CODES.volume, value: 6712.5, unit: 'mm3' }],
    });
    const objects = await writeResultObjects(emptyResult(study, [sources[0].seriesInstanceUID], { findings: [nodule] }), sources, ctxFor('orthanc-ct'));
    await storeAndCheck(study, sources, objects);
    await expectPreviewEqualsDrawn(objects[1]);
  }, 120_000);

  it('a superseding SR lands in the same series; QIDO lists both, newest with the higher Instance Number', async () => {
    const path = sharedFile('cxr/dicom/other/nih-chestxray14-dx-sc-nofinding.dcm');
    const src = sourceOf(path);
    const study = str(headerOf(path), 'StudyInstanceUID') ?? '';
    await orthanc.upload(path);
    const result = emptyResult(study, [src.seriesInstanceUID]);
    const [first] = await writeResultObjects(result, [src], ctxFor('super-1'));
    const predecessor = { studyInstanceUID: study, seriesInstanceUID: first.seriesInstanceUID, sopInstanceUID: first.sopInstanceUID, sopClassUID: first.sopClassUID };
    const [second] = await writeResultObjects({ ...result, studyScore: 0.5 }, [src], ctxFor('super-2', { srInstanceNumber: 2, predecessor }));
    expect((await stow([first])).status).toBe(200);
    expect((await stow([second])).status).toBe(200);
    const rows = await qido(`/studies/${study}/series/${first.seriesInstanceUID}/instances?includefield=00200013`);
    expect(rows.map((r) => [v(r, '00080018'), Number(v(r, '00200013'))]).sort((a, b) => Number(a[1]) - Number(b[1]))).toEqual([
      [first.sopInstanceUID, 1],
      [second.sopInstanceUID, 2],
    ]);
  });
});
