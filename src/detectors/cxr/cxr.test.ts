/**
 * The chest radiograph detector's routing and per-image checks, and `radnode analyze` with the shipped model on
 * copies of a real RSNA film written as CR: stored mirrored or transposed (Patient Orientation says so), a lateral in
 * the same series as the PA, and a DX "for processing" object. The pixels are the real film's; only their layout and
 * the tags change.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AnalyzeSummary } from '../../analyze.ts';
import { main } from '../../cli/main.ts';
import { inverseTurn, radiographTurn, reorient, turnedPointToStored, type Turn } from '../../dicom/index.ts';
import { writePart10 } from '../../results/dicom-io.ts';
import type { Place2D } from '../../results/findings.ts';
import { REPO_ROOT, sharedFile } from '../../../test/helpers/paths.ts';
import { fromDicom, mirror, transpose, uid, type Gray } from '../mammo/test-support.ts';
import { refuseRadiograph, selectChestRadiograph } from './index.ts';

const MANIFEST = join(REPO_ROOT, 'models/cxr/manifest.json');
const FILM = sharedFile('cxr/dicom/rsna/00704310-78a8-4b38-8475-49f4573b2dbb.dcm');
const CR = '1.2.840.10008.5.1.4.1.1.1';
const DX_FOR_PROCESSING = '1.2.840.10008.5.1.4.1.1.1.1.1';

const series = (over: Partial<Parameters<typeof selectChestRadiograph>[0]>) => ({ studyInstanceUID: '1.2', seriesInstanceUID: '1.2.3', modality: 'CR', instanceCount: 1, isOwn: false, ...over });
const reasonOf = (s: ReturnType<typeof series>) => {
  const r = selectChestRadiograph(s);
  return r.accepted ? null : r.reason.value;
};

describe('chest radiograph routing and per-image checks', () => {
  it('refuses DX for processing, and a one-image series by its view; a series of several is judged image by image', () => {
    expect(reasonOf(series({ viewPosition: 'PA' }))).toBeNull();
    expect(reasonOf(series({ modality: 'DX', sopClassUID: DX_FOR_PROCESSING }))).toBe('RN-NP-FORPROC');
    expect(reasonOf(series({ viewPosition: 'LL' }))).toBe('RN-NP-LATERAL');
    expect(reasonOf(series({ viewPosition: 'LL', instanceCount: 2 }))).toBeNull();
    expect(reasonOf(series({ viewPosition: 'OBLIQUE' }))).toBe('RN-NP-DECLINED');
    // Without a View Position: a description naming the lateral alone says lateral; "PA/LAT" names the exam's views.
    expect(reasonOf(series({ seriesDescription: 'view: LL' }))).toBe('RN-NP-LATERAL');
    expect(reasonOf(series({ seriesDescription: 'CHEST LAT' }))).toBe('RN-NP-LATERAL');
    expect(reasonOf(series({ seriesDescription: 'XR CHEST PA/LAT' }))).toBeNull();
    expect(reasonOf(series({ seriesDescription: 'Thorax pa + lat' }))).toBeNull();
    // Not a chest: by Body Part, or, when that is empty, by a description naming another part.
    expect(reasonOf(series({ bodyPartExamined: 'KNEE' }))).toBe('RN-NP-NOTCHEST');
    expect(reasonOf(series({ seriesDescription: 'ABDOMEN AP', viewPosition: 'AP' }))).toBe('RN-NP-NOTCHEST');
    expect(reasonOf(series({ seriesDescription: 'KNEE LAT' }))).toBe('RN-NP-NOTCHEST');
    expect(reasonOf(series({ seriesDescription: 'CHEST AP PORTABLE', viewPosition: 'AP' }))).toBeNull();
  });

  it('refuses an image by Presentation Intent and by its own view', () => {
    const base = { viewPosition: 'PA', viewCode: '', presentationIntent: '' } as Parameters<typeof refuseRadiograph>[0];
    const reason = (over: Partial<typeof base>) => refuseRadiograph({ ...base, ...over })?.reason.value ?? null;
    expect(reason({})).toBeNull();
    expect(reason({ viewPosition: '' })).toBeNull();
    expect(reason({ viewPosition: 'LL' })).toBe('RN-NP-LATERAL');
    expect(reason({ viewPosition: '', viewCode: '399173006 left lateral' })).toBe('RN-NP-LATERAL');
    expect(reason({ presentationIntent: 'FOR PROCESSING' })).toBe('RN-NP-FORPROC');
  });

  it('turns a film to the standard display from Patient Orientation, and back', () => {
    expect(radiographTurn(['L', 'F'])).toEqual({ transpose: false, flipHorizontal: false, flipVertical: false });
    expect(radiographTurn(['R', 'F'])).toEqual({ transpose: false, flipHorizontal: true, flipVertical: false });
    expect(radiographTurn(['F', 'L'])).toEqual({ transpose: true, flipHorizontal: false, flipVertical: false });
    expect(radiographTurn(['H', 'R'])).toEqual({ transpose: true, flipHorizontal: true, flipVertical: true });
    expect(radiographTurn(['A', 'F'])).toBeUndefined(); // a lateral
    expect(radiographTurn([])).toBeUndefined();
    const a = Float32Array.from({ length: 3 * 5 }, (_, i) => i);
    for (const t of [false, true].flatMap((transpose) => [false, true].flatMap((flipHorizontal) => [false, true].map((flipVertical): Turn => ({ transpose, flipHorizontal, flipVertical }))))) {
      const turned = reorient(a, 3, 5, t);
      expect(Array.from(reorient(turned.data, turned.rows, turned.columns, inverseTurn(t)).data), JSON.stringify(t)).toEqual(Array.from(a));
      // Each turned pixel's centre maps back onto the stored pixel it came from.
      for (let y = 0; y < turned.rows; y++) {
        for (let x = 0; x < turned.columns; x++) {
          const [sx, sy] = turnedPointToStored(t, turned.rows, turned.columns, x + 0.5, y + 0.5);
          expect(a[Math.floor(sy) * 5 + Math.floor(sx)]).toBe(turned.data[y * turned.columns + x]);
        }
      }
    }
  });
});

/** A CR object from a film's pixels (8-bit here), with the tags a test sets. */
function writeCr(dir: string, g: Gray, t: { studyUID: string; seriesUID?: string; orientation?: [string, string]; view?: string; sopClassUID?: string; modality?: string; extra?: Record<string, string> }): string {
  const sop = uid();
  const path = join(dir, `${sop}.dcm`);
  const pixels = new Uint16Array(g.data);
  writeFileSync(path, writePart10({
    SOPClassUID: t.sopClassUID ?? CR, SOPInstanceUID: sop, StudyInstanceUID: t.studyUID, SeriesInstanceUID: t.seriesUID ?? uid(),
    Modality: t.modality ?? 'CR', PatientName: [{ Alphabetic: 'CXR^TEST' }], PatientID: 'RN-CXR-1', PatientBirthDate: '', PatientSex: '',
    StudyDate: '20261125', StudyTime: '120000', AccessionNumber: '', ReferringPhysicianName: [{ Alphabetic: '' }], StudyID: '1',
    SeriesNumber: 1, InstanceNumber: 1, BodyPartExamined: 'CHEST', ...(t.view ? { ViewPosition: t.view } : {}),
    ...(t.orientation ? { PatientOrientation: t.orientation } : {}),
    ...(t.sopClassUID === DX_FOR_PROCESSING ? { PresentationIntentType: 'FOR PROCESSING', ImageType: ['ORIGINAL', 'PRIMARY'] } : {}),
    SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', Rows: g.rows, Columns: g.columns,
    BitsAllocated: 16, BitsStored: g.bitsStored, HighBit: g.bitsStored - 1, PixelRepresentation: 0,
    ...t.extra,
    PixelData: [pixels.buffer as ArrayBuffer], _vrMap: { PixelData: 'OW' },
  }, '1.2.826.0.1.3680043.10.1011.6'));
  return path;
}

describe.skipIf(!existsSync(MANIFEST))('radnode analyze with the shipped chest model: orientation and views', () => {
  const studies: Record<string, string> = {};
  let summary: AnalyzeSummary;
  const resultOf = (k: string) => summary.results.find((r) => r.studyInstanceUID === studies[k])!;
  const boxOf = (k: string) => (resultOf(k).findings.find((f) => f.place)?.place as Place2D | undefined)?.points;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-cxr-'));
    const film = await fromDicom(FILM);
    const paths: string[] = [];
    const add = (key: string, g: Gray, t: Omit<Parameters<typeof writeCr>[2], 'studyUID'>) => {
      studies[key] ??= uid();
      paths.push(writeCr(dir, g, { ...t, studyUID: studies[key] }));
    };
    add('standard', film, { orientation: ['L', 'F'], view: 'PA' });
    add('mirrored', mirror(film), { orientation: ['R', 'F'], view: 'PA' });
    add('transposed', transpose(film), { orientation: ['F', 'L'], view: 'PA' });
    // A PA and a lateral in one series (as many DX rooms store an exam): the lateral is refused, the PA read.
    const pair = uid();
    add('pa-lat', film, { seriesUID: pair, orientation: ['L', 'F'], view: 'PA' });
    add('pa-lat', film, { seriesUID: pair, orientation: ['A', 'F'], view: 'LL' });
    add('for-processing', film, { modality: 'DX', sopClassUID: DX_FOR_PROCESSING, view: 'PA' });
    // The model's population is 1-5 years (manifest): an adult by Patient's Age or by birth date is not read; a child
    // is, and so is a film whose age is malformed (anonymised exports write "51" without its unit).
    add('adult', film, { orientation: ['L', 'F'], view: 'PA', extra: { PatientAge: '051Y' } });
    add('adult-by-birth-date', film, { orientation: ['L', 'F'], view: 'PA', extra: { PatientBirthDate: '19700101' } });
    add('child', film, { orientation: ['L', 'F'], view: 'PA', extra: { PatientAge: '003Y' } });
    add('age-malformed', film, { orientation: ['L', 'F'], view: 'PA', extra: { PatientAge: '51' } });
    const out = mkdtempSync(join(tmpdir(), 'rn-cxr-out-'));
    await main(['analyze', ...paths, '--out', out], { out: () => undefined, err: () => undefined });
    summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as AnalyzeSummary;
  }, 120_000);

  it('a film stored mirrored or transposed gives the standard film\'s score, its finding at the corresponding place and the same lung', () => {
    const std = resultOf('standard');
    expect(std.findings.length).toBeGreaterThan(0); // this film is above the positive point
    const [[x0, y0], [x1, y1]] = boxOf('standard')!; // a box: top-left and bottom-right corners
    const columns = 1024;
    for (const k of ['mirrored', 'transposed']) {
      const r = resultOf(k);
      expect(Math.abs(r.studyScore! - std.studyScore!), k).toBeLessThanOrEqual(1e-4);
      expect(r.findings.map((f) => f.site?.meaning), k).toEqual(std.findings.map((f) => f.site?.meaning));
    }
    expect(std.findings[0].site?.meaning).toMatch(/lung/);
    const xs = (pts: [number, number][]) => pts.map((p) => p[0]);
    const ys = (pts: [number, number][]) => pts.map((p) => p[1]);
    // Corners are written to 0.1 px.
    const near = (got: number[], want: number[]) => got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(0.1 + 1e-9));
    const m = boxOf('mirrored')!;
    near([Math.min(...xs(m)), Math.max(...xs(m))], [columns - x1, columns - x0]);
    near([Math.min(...ys(m)), Math.max(...ys(m))], [y0, y1]);
    const t = boxOf('transposed')!;
    near([Math.min(...xs(t)), Math.max(...xs(t))], [y0, y1]);
    near([Math.min(...ys(t)), Math.max(...ys(t))], [x0, x1]);
  });

  it('a lateral in the PA\'s series is refused per image; the PA is read alone', () => {
    const r = resultOf('pa-lat');
    expect(r.skipped.map((s) => s.reason.value)).toEqual(['RN-NP-LATERAL']);
    expect(r.studyScore).toBe(resultOf('standard').studyScore);
    expect(r.findings).toHaveLength(1);
    expect(r.outputs).toHaveLength(2); // the SR and the PA's heatmap: none for the refused lateral
  });

  it('DX for processing is refused at routing with its coded reason', () => {
    const np = summary.notProcessed.find((n) => n.studyInstanceUID === studies['for-processing']);
    expect(np?.reason.value).toBe('RN-NP-FORPROC');
  });

  it("a film whose patient's age is known and outside the model's 1-5 years is not read (RN-NP-AGE); a child's is, and an unusable age is read", () => {
    for (const k of ['adult', 'adult-by-birth-date']) {
      const r = resultOf(k);
      expect(r.skipped.map((s) => s.reason.value), k).toEqual(['RN-NP-AGE']);
      expect(r.priority, k).toBe('unprocessed');
      expect(r.findings, k).toEqual([]);
    }
    expect(resultOf('adult').skipped[0].detail).toMatch(/aged 51 years; the model was trained on 1-5 years/);
    for (const k of ['child', 'age-malformed']) expect(resultOf(k).studyScore, k).toBe(resultOf('standard').studyScore);
  });
});
