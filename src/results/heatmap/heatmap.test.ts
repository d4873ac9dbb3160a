import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sharedFile, unpackedFile } from '../../../test/helpers/paths.ts';
import { num, readPart10, seq, str, strs, type DicomDataset } from '../dicom-io.ts';
import type { ResultObject } from '../objects.ts';
import { blob, CODES, ctxFor, emptyResult, finding, headerOf, NODE, place2D, sourceOf } from '../test-support/fixtures.ts';
import { dciodvfyErrors } from '../test-support/tools.ts';
import { validateResultObject } from '../validate.ts';
import { writeResultObjects } from '../write.ts';
import { glyphRows, textWidth } from './font.ts';
import { HEATMAP_MAX_ALPHA, jet, LABEL_BACKGROUND, LABEL_TEXT, OUTLINE } from './render.ts';

const CR = sharedFile('cxr/dicom/other/CR-MONO1-10-chest.part10.dcm');
const cr = sourceOf(CR);
const crStudy = str(headerOf(CR), 'StudyInstanceUID') ?? '';

function pixelsOf(o: ResultObject): { ds: DicomDataset; w: number; h: number; px: Uint8Array } {
  const ds = readPart10(o.bytes).dataset;
  const pd = ds.PixelData;
  const buf = Array.isArray(pd) && pd[0] instanceof ArrayBuffer ? pd[0] : new ArrayBuffer(0);
  return { ds, w: num(ds, 'Columns') ?? 0, h: num(ds, 'Rows') ?? 0, px: new Uint8Array(buf) };
}
const rgbAt = (p: { w: number; px: Uint8Array }, x: number, y: number, frame = 0, h = 0) => {
  const i = 3 * (frame * p.w * h + y * p.w + x);
  return [p.px[i], p.px[i + 1], p.px[i + 2]];
};

describe('heatmap secondary capture', () => {
  it('CR radiograph: one single-frame true-colour SC that dciodvfy and our validator accept', async () => {
    const findings = [finding(1, place2D(cr.sopInstanceUID, 'box', [[100, 150], [180, 260]]))];
    const heatmaps = [{ sopInstanceUID: cr.sopInstanceUID, width: 64, height: 64, values: blob(64, 64, 20, 30, 5) }];
    const objects = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID], { findings, heatmaps }), [cr], ctxFor('sc-cr'));
    expect(objects.map((o) => o.kind)).toEqual(['sr', 'heatmap-sc']);
    const sc = objects[1];
    expect(dciodvfyErrors(sc.bytes).errors).toEqual([]);
    expect((await validateResultObject(sc.bytes)).errors).toEqual([]);
    const { ds, w, h } = pixelsOf(sc);
    expect([w, h]).toEqual([440, 440]);
    expect(ds.Modality).toBe('OT');
    expect(strs(ds, 'ImageType')).toEqual(['DERIVED', 'SECONDARY']);
    expect(ds.BurnedInAnnotation).toBe('YES');
    expect(ds.LossyImageCompression).toBe('00'); // an uncompressed source
    expect(ds.NumberOfFrames).toBe(1);
    expect(ds.FrameOfReferenceUID).toBeUndefined();
    expect(ds.Manufacturer).toBe(NODE.manufacturer);
    expect(ds.SeriesDescription).toBe('radnode cxr-demo AI heatmap \u2014 not for diagnosis');
    expect(ds.PatientName).toEqual(headerOf(CR).PatientName);
    expect(seq(ds, 'SourceImageSequence')[0]).toMatchObject({ ReferencedSOPInstanceUID: cr.sopInstanceUID, ReferencedSOPClassUID: cr.sopClassUID });
    expect(str(seq(ds, 'ContributingEquipmentSequence')[0], 'DeviceUID')).toMatch(new RegExp(`^${NODE.uidRoot.replace(/\./g, '\\.')}\\.4\\.`));
  });

  it('draws what it promises: the label, the box outline and the heatmap blend at the expected pixels', async () => {
    const findings = [finding(1, place2D(cr.sopInstanceUID, 'box', [[100, 150], [180, 260]]))];
    // heatmap 44×44 over 440×440: each heatmap cell is 10×10 pixels; peak value 1 at cell (30, 30) → pixel ~(305, 305)
    const values = new Float32Array(44 * 44);
    for (let y = 28; y <= 32; y++) for (let x = 28; x <= 32; x++) values[y * 44 + x] = 1;
    const objects = await writeResultObjects(
      emptyResult(crStudy, [cr.seriesInstanceUID], { findings, heatmaps: [{ sopInstanceUID: cr.sopInstanceUID, width: 44, height: 44, values }] }),
      [cr],
      ctxFor('sc-pixels'),
    );
    const p = pixelsOf(objects[1]);
    // Box corners: SCOORD (100,150)–(180,260) covers pixels 100..179 × 150..259; the outline runs along its edges.
    expect(rgbAt(p, 100, 150)).toEqual([...OUTLINE]);
    expect(rgbAt(p, 180, 260)).toEqual([...OUTLINE]);
    expect(rgbAt(p, 140, 150)).toEqual([...OUTLINE]);
    // Heatmap centre: full value → gray·(1−α) + jet(1)·α with α = HEATMAP_MAX_ALPHA; jet(1) is dark red.
    const [r, g, b] = rgbAt(p, 305, 305);
    expect(jet(1)).toEqual([128, 0, 0]);
    expect(r).toBeGreaterThan(g);
    expect(g).toBe(b);
    const gray = g / (1 - HEATMAP_MAX_ALPHA);
    expect(r).toBe(Math.round(gray * (1 - HEATMAP_MAX_ALPHA) + 128 * HEATMAP_MAX_ALPHA));
    // Label: scale 2 at 440 px; the 'A' of "AI" starts at (4,4): its top row is .###. → pixel (4,4) background, (6,4) text.
    expect(glyphRows('A')[0]).toBe(0b01110);
    expect(rgbAt(p, 4, 4)).toEqual([...LABEL_BACKGROUND]);
    expect(rgbAt(p, 6, 4)).toEqual([...LABEL_TEXT]);
    const labelRight = textWidth('AI result \u2014 not for diagnosis', 2) + 8;
    expect(rgbAt(p, labelRight - 1, 10)).toEqual([...LABEL_BACKGROUND]);
  });

  it('mammogram (fo-dicom GH133, 3062×2394): long side capped at 2048, laterality kept, dciodvfy clean', async () => {
    // JPEG Lossless (.70): decoded through src/dicom's decoders.
    const mgPath = sharedFile('dicom/fo-dicom/GH133.dcm');
    const mg = sourceOf(mgPath);
    const study = str(headerOf(mgPath), 'StudyInstanceUID') ?? '';
    const findings = [finding(1, place2D(mg.sopInstanceUID, 'ellipse', [[800, 1500], [1200, 1500], [1000, 1350], [1000, 1650]]), { concept: CODES.mass, site: CODES.leftBreast })];
    const objects = await writeResultObjects(
      emptyResult(study, [mg.seriesInstanceUID], { findings, detector: { id: 'mg-demo', version: '2.1.0', modelSha256: 'ef'.repeat(32) } }),
      [mg],
      ctxFor('sc-mg'),
    );
    const [sr, sc] = objects;
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
    expect(dciodvfyErrors(sc.bytes).errors).toEqual([]);
    const { ds, w, h } = pixelsOf(sc);
    expect(Math.max(w, h)).toBe(2048);
    expect([w, h]).toEqual([Math.round(2394 * (2048 / 3062)), 2048]);
    expect(ds.ImageLaterality).toBe(headerOf(mgPath).ImageLaterality);
  }, 60_000);

  it('CT (LIDC-IDRI-0001): one multi-frame SC of the key slices in Instance Number order; the middle slice when nothing was found', async () => {
    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
    const files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().map((f) => join(dir, f));
    const sources = files.map(sourceOf);
    const headers = files.map(headerOf);
    const study = str(headers[0], 'StudyInstanceUID') ?? '';
    const forUid = str(headers[0], 'FrameOfReferenceUID') ?? '';
    const a = 90;
    const b = 12;
    const findings = [
      finding(1, { frameOfReferenceUID: forUid, point: [1, 2, 3], keyImage: place2D(sources[a].sopInstanceUID, 'point', [[300, 256]]) }, { concept: CODES.nodule }),
      finding(2, { frameOfReferenceUID: forUid, point: [4, 5, 6], keyImage: place2D(sources[b].sopInstanceUID, 'polyline', [[100, 100], [140, 120]]) }, { concept: CODES.nodule }),
    ];
    const objects = await writeResultObjects(emptyResult(study, [sources[0].seriesInstanceUID], { findings }), sources, ctxFor('sc-ct'));
    expect(objects).toHaveLength(2);
    const sc = objects[1];
    expect(dciodvfyErrors(sc.bytes).errors).toEqual([]);
    const { ds } = pixelsOf(sc);
    expect(ds.NumberOfFrames).toBe(2);
    const order = [a, b].sort((x, y) => Number(headers[x].InstanceNumber) - Number(headers[y].InstanceNumber));
    expect(seq(ds, 'SourceImageSequence').map((i) => i.ReferencedSOPInstanceUID)).toEqual(order.map((i) => sources[i].sopInstanceUID));

    const none = await writeResultObjects(emptyResult(study, [sources[0].seriesInstanceUID]), sources, ctxFor('sc-ct-none'));
    const mid = pixelsOf(none[1]).ds;
    const byNumber = [...headers.keys()].sort((x, y) => Number(headers[x].InstanceNumber) - Number(headers[y].InstanceNumber));
    expect(mid.NumberOfFrames).toBe(1);
    expect(seq(mid, 'SourceImageSequence')[0].ReferencedSOPInstanceUID).toBe(sources[byNumber[Math.floor(byNumber.length / 2)]].sopInstanceUID);
  }, 60_000);

  it('RSNA pneumonia CR (JPEG baseline source) with its two labelled boxes: SR and SC both dciodvfy clean', async () => {
    // stage_2_train_labels: 00436515-… has boxes (x, y, width, height) (264,152,213,379) and (562,152,256,453).
    const path = sharedFile('cxr/dicom/rsna/00436515-870c-4b36-a041-de91049b9ab4.dcm');
    const src = sourceOf(path);
    const study = str(headerOf(path), 'StudyInstanceUID') ?? '';
    const box = (x: number, y: number, w: number, h: number) => place2D(src.sopInstanceUID, 'box', [[x, y], [x + w, y + h]]);
    const findings = [finding(1, box(264, 152, 213, 379), { site: CODES.rightLung }), finding(2, box(562, 152, 256, 453))];
    const heatmaps = [{ sopInstanceUID: src.sopInstanceUID, width: 32, height: 32, values: blob(32, 32, 11, 11, 4) }];
    const [sr, sc] = await writeResultObjects(emptyResult(study, [src.seriesInstanceUID], { findings, heatmaps, studyScore: 0.83, priority: 'positive' }), [src], ctxFor('sc-rsna'));
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
    expect(dciodvfyErrors(sc.bytes).errors).toEqual([]);
    const p = pixelsOf(sc);
    // The source is JPEG Baseline with (0028,2110) 01: what derives from it stays "lossy" (PS3.3 C.7.6.1.1.5).
    expect(p.ds.LossyImageCompression).toBe('01');
    expect([p.w, p.h]).toEqual([1024, 1024]);
    expect(rgbAt(p, 264, 152)).toEqual([...OUTLINE]);
    expect(rgbAt(p, 562 + 256, 152 + 453)).toEqual([...OUTLINE]);
  });

  it('is deterministic: the same input gives byte-identical SCs', async () => {
    const r = emptyResult(crStudy, [cr.seriesInstanceUID], { heatmaps: [{ sopInstanceUID: cr.sopInstanceUID, width: 32, height: 32, values: blob(32, 32, 10, 10, 4) }] });
    const [, a] = await writeResultObjects(r, [cr], ctxFor('det'));
    const [, b] = await writeResultObjects(r, [cr], ctxFor('det'));
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
  });
});
