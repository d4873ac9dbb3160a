import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedFile, unpackedFile } from '../../test/helpers/paths.ts';
import { num, readPart10, seq, str } from './dicom-io.ts';
import { IS_MAX, seriesNumbers } from './modules.ts';
import { ctxFor, DETECTOR, emptyResult, headerOf, NODE, sourceOf } from './test-support/fixtures.ts';
import { dciodvfyErrors, dsrdump } from './test-support/tools.ts';
import { sourcesRead, writeResultObjects } from './write.ts';
import { isUnderRoot } from './uids.ts';

const CR = sharedFile('cxr/dicom/other/CR-MONO1-10-chest.part10.dcm');
const cr = sourceOf(CR);
const crStudy = str(headerOf(CR), 'StudyInstanceUID') ?? '';

describe('writeResultObjects: SR for a study-level score only / no findings', () => {
  it('writes a TID 1500 Comprehensive 3D SR that dciodvfy accepts with zero errors', async () => {
    const [sr] = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID]), [cr], ctxFor('input-a'));
    expect(sr.kind).toBe('sr');
    expect(sr.sopClassUID).toBe('1.2.840.10008.5.1.4.1.1.88.34');
    const { errors, output } = dciodvfyErrors(sr.bytes);
    expect(errors, output).toEqual([]);
    expect(output).toContain('Comprehensive3DSR');
  });

  it('dsrdump shows the template tree with the study-level score and the priority', async () => {
    const [sr] = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID], { studyScore: 0.875, priority: 'urgent' }), [cr], ctxFor('input-b'));
    const tree = dsrdump(sr.bytes);
    expect(tree).toContain('<CONTAINER:(126000,DCM,"Imaging Measurement Report")=SEPARATE>');
    expect(tree).toContain('(121058,DCM,"Procedure reported")');
    expect(tree).toContain('<contains CONTAINER:(111028,DCM,"Image Library")=SEPARATE>');
    // No finding, so no measurement group: Imaging Measurements (row 6) is needed only without row 12, and row 7 is 1-n.
    expect(tree).not.toContain('(126010,DCM,"Imaging Measurements")');
    expect(tree).toContain('<contains CONTAINER:(C0034375,UMLS,"Qualitative Evaluations")=SEPARATE>');
    expect(tree).toContain('<contains CODE:(priority,99RADNODE,"AI triage priority")=(urgent,99RADNODE,"Urgent")>');
    // TID 1500 rows 13–14 allow CODE and TEXT only: the score is a TEXT with its algorithm (TID 4019) as modifiers.
    expect(tree).toMatch(/<contains TEXT:\(study-score,99RADNODE,"AI study-level score"\)="0.875">\n\s+<has concept mod TEXT:\(111001,DCM,"Algorithm Name"\)="cxr-demo">/);
  });

  it('copies patient and study from the source and names radnode as equipment and contributor (IHE AIR)', async () => {
    const [sr] = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID]), [cr], ctxFor('input-c'));
    const ds = readPart10(sr.bytes).dataset;
    const src = headerOf(CR);
    expect(ds.PatientName).toEqual(src.PatientName);
    expect(ds.StudyInstanceUID).toBe(crStudy);
    expect(ds.Manufacturer).toBe(NODE.manufacturer);
    expect(ds.SeriesDescription).toBe('radnode cxr-demo AI report');
    expect(ds.VerificationFlag).toBe('UNVERIFIED');
    const ce = seq(ds, 'ContributingEquipmentSequence')[0];
    expect(seq(ce, 'PurposeOfReferenceCodeSequence')[0]).toMatchObject({ CodeValue: 'Newcode1', CodingSchemeDesignator: '99IHE', CodeMeaning: 'Processing Algorithm' });
    expect(ce.ManufacturerModelName).toBe('cxr-demo');
    expect(ce.SoftwareVersions).toBe('1.0.0');
    expect(isUnderRoot(str(ce, 'DeviceUID'), NODE.uidRoot)).toBe(true);
    expect(isUnderRoot(sr.sopInstanceUID, NODE.uidRoot)).toBe(true);
  });

  it("takes the source's time zone: its Timezone Offset From UTC is copied and radnode's own times are written in it", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-tz-'));
    const tokyo = join(dir, 'tokyo.dcm');
    copyFileSync(CR, tokyo);
    expect(spawnSync('dcmodify', ['-nb', '-i', '(0008,0201)=+0900', tokyo]).status).toBe(0);
    const [sr, sc] = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID], { heatmaps: [{ sopInstanceUID: cr.sopInstanceUID, width: 8, height: 8, values: new Float32Array(64) }] }), [{ ...cr, path: tokyo }], ctxFor('tz-tokyo'));
    for (const o of [sr, sc]) {
      const ds = readPart10(o.bytes).dataset;
      // ctxFor's instant is 2026-11-24 10:30:15 UTC: 19:30:15 in Tokyo.
      expect([ds.TimezoneOffsetFromUTC, ds.ContentDate, ds.ContentTime, ds.InstanceCreationTime]).toEqual(['+0900', '20261124', '193015', '193015']);
      expect(str(seq(ds, 'ContributingEquipmentSequence')[0], 'ContributionDateTime')?.trim()).toBe('20261124193015+0900');
    }
    // A source that declares no offset is in an undefined local time: radnode declares none either.
    const [plain] = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID]), [cr], ctxFor('tz-none'));
    const ds = readPart10(plain.bytes).dataset;
    expect(ds.TimezoneOffsetFromUTC).toBeUndefined();
    expect(str(seq(ds, 'ContributingEquipmentSequence')[0], 'ContributionDateTime')?.trim()).toMatch(/^\d{14}[+-]\d{4}$/);
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
  });

  it('a Japanese patient name in ISO 2022 code extensions (\\ISO 2022 IR 87) is copied whole, in UTF-8 (PS3.5 H.3.1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-jis-'));
    const jp = join(dir, 'jis.dcm');
    copyFileSync(CR, jp);
    const j = (s: string) => `\x1b$B${s}\x1b(B`;
    const pn = `Yamada^Tarou=${j(';3ED')}^${j('B@O:')}=${j('$d$^$@')}^${j('$?$m$&')}`;
    expect(spawnSync('dcmodify', ['-nb', '-i', '(0008,0005)=\\ISO 2022 IR 87', '-i', `(0010,0010)=${pn}`, jp]).status).toBe(0);
    const [sr] = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID]), [{ ...cr, path: jp }], ctxFor('jis'));
    const ds = readPart10(sr.bytes).dataset;
    expect(ds.SpecificCharacterSet).toBe('ISO_IR 192');
    expect(ds.PatientName).toEqual([{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }]);
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
  });

  it('re-running the same input yields byte-identical output (DESIGN §3 exactly-once)', async () => {
    const r = emptyResult(crStudy, [cr.seriesInstanceUID]);
    const [a] = await writeResultObjects(r, [cr], ctxFor('same-input'));
    const [b] = await writeResultObjects(r, [cr], ctxFor('same-input'));
    expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(true);
    expect(a.fingerprint).toBe('20261124 103015');
    expect(str(readPart10(a.bytes).dataset, 'ContentTime')).toBe('103015');
  });

  it('a superseding SR lands in the same series with a higher Instance Number and names its predecessor', async () => {
    const r = emptyResult(crStudy, [cr.seriesInstanceUID]);
    const [first] = await writeResultObjects(r, [cr], ctxFor('input-1'));
    const predecessor = { studyInstanceUID: first.studyInstanceUID, seriesInstanceUID: first.seriesInstanceUID, sopInstanceUID: first.sopInstanceUID, sopClassUID: first.sopClassUID };
    const [second] = await writeResultObjects(r, [cr], ctxFor('input-2', { srInstanceNumber: 2, predecessor, contentDateTime: new Date(Date.UTC(2026, 10, 25, 8, 0, 0)) }));
    expect(second.seriesInstanceUID).toBe(first.seriesInstanceUID);
    expect(second.sopInstanceUID).not.toBe(first.sopInstanceUID);
    expect(second.instanceNumber).toBe(2);
    const ds = readPart10(second.bytes).dataset;
    expect(ds.InstanceNumber).toBe(2);
    const pred = seq(ds, 'PredecessorDocumentsSequence')[0];
    const ref = seq(seq(pred, 'ReferencedSeriesSequence')[0], 'ReferencedSOPSequence')[0];
    expect(ref.ReferencedSOPInstanceUID).toBe(first.sopInstanceUID);
    expect(dciodvfyErrors(second.bytes).errors).toEqual([]);
  });

  it('refuses sources from another study with RN_RESULT_INVALID', async () => {
    await expect(writeResultObjects(emptyResult('1.2.3.4', [cr.seriesInstanceUID]), [cr], ctxFor('x'))).rejects.toMatchObject({ code: 'RN_RESULT_INVALID' });
  });
});

describe('radnode recognises its own objects (DESIGN §3 loop guard)', () => {
  it('the SR and the heatmap SC each carry at least two of the three signals; the source carries none', async () => {
    const { readIngestHeader } = await import('../ingest/header.ts');
    const { isOwnInstance } = await import('../workflow/loop-guard.ts');
    const { readFileSync } = await import('node:fs');
    const objects = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID]), [cr], ctxFor('loop-guard'));
    expect(objects.map((o) => o.kind)).toEqual(['sr', 'heatmap-sc']);
    for (const o of objects) {
      const h = readIngestHeader(o.bytes);
      expect(isUnderRoot(h.sopInstanceUID, NODE.uidRoot)).toBe(true);
      expect(h.contributingDeviceUIDs.some((u) => isUnderRoot(u, NODE.uidRoot))).toBe(true);
      expect(h.manufacturer).toBe(NODE.manufacturer);
      expect(isOwnInstance(h, NODE)).toBe(true);
    }
    expect(readIngestHeader(objects[1].bytes).imageType?.[0]).toBe('DERIVED');
    expect(isOwnInstance(readIngestHeader(readFileSync(CR)), NODE)).toBe(false);
  });
});

describe('Series Numbers sort after the source series (OHIF sorts display sets by SeriesNumber, sortStudy.ts)', () => {
  it('deterministic, in the 1000-block above the highest source number, never below 99xx, bounded to IS', () => {
    const plain = seriesNumbers('cxr-demo');
    expect(seriesNumbers('cxr-demo', [1, 2, 5])).toEqual(plain);
    expect(plain.sr % 2).toBe(0);
    expect(plain.heatmap).toBe(plain.sr + 1);
    expect(plain.sr).toBeGreaterThanOrEqual(9900);
    expect(plain.heatmap).toBeLessThanOrEqual(9999);
    const lidc = seriesNumbers('cxr-demo', [3000566]);
    expect(lidc.sr).toBeGreaterThan(3000566);
    expect(lidc).toEqual({ sr: 3001000 + (plain.sr - 9000), heatmap: 3001000 + (plain.heatmap - 9000) });
    // Another series in the same block does not move them (a superseding SR keeps its series' number).
    expect(seriesNumbers('cxr-demo', [3000566, 3000999, 4])).toEqual(lidc);
    expect(seriesNumbers('cxr-demo', [9950]).sr).toBeGreaterThan(9950);
    const top = seriesNumbers('cxr-demo', [IS_MAX]);
    expect(top.heatmap).toBeLessThanOrEqual(IS_MAX);
    expect(top.sr).toBeGreaterThan(IS_MAX - 1000);
  });

  it('LIDC-IDRI-0001 (Series Number 3000566): the SR and the heatmap SC are numbered after the CT', async () => {
    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
    const files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().slice(0, 3).map((f) => join(dir, f));
    const sources = files.map(sourceOf);
    const head = headerOf(files[0]);
    const ctNumber = num(head, 'SeriesNumber') ?? 0;
    expect(ctNumber).toBe(3000566);
    const objects = await writeResultObjects(emptyResult(str(head, 'StudyInstanceUID') ?? '', [sources[0].seriesInstanceUID]), sources, ctxFor('series-numbers'));
    const numbers = objects.map((o) => num(readPart10(o.bytes, { untilPixelData: true }).dataset, 'SeriesNumber') ?? 0);
    expect(numbers).toEqual([seriesNumbers(DETECTOR.id, [ctNumber]).sr, seriesNumbers(DETECTOR.id, [ctNumber]).heatmap]);
    for (const n of numbers) expect(n).toBeGreaterThan(ctNumber);
    for (const o of objects) expect(dciodvfyErrors(o.bytes).errors).toEqual([]);
  });
});

describe('the objects cover only the series the detector read', () => {
  const src = (series: string, n: number) => ({ path: `/x/${series}/${n}.dcm`, sopInstanceUID: `${series}.${n}`, sopClassUID: '1.2.840.10008.5.1.4.1.1.2', seriesInstanceUID: series });
  const sources = [src('1.2.3.1', 1), src('1.2.3.1', 2), src('1.2.3.2', 1)];
  it('a CT study with two qualifying series, one chosen: only the chosen series is evidence and gets key slices', () => {
    expect(sourcesRead(emptyResult('1.2.3', ['1.2.3.2']), sources).map((s) => s.sopInstanceUID)).toEqual(['1.2.3.2.1']);
  });
  it('a result that read nothing (or names no source) keeps every source for its not-processed report', () => {
    expect(sourcesRead(emptyResult('1.2.3', []), sources)).toHaveLength(3);
    expect(sourcesRead(emptyResult('1.2.3', ['9.9']), sources)).toHaveLength(3);
  });
});
