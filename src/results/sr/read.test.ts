import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sharedFile, unpackedFile } from '../../../test/helpers/paths.ts';
import { str } from '../dicom-io.ts';
import type { DetectorResult, Finding } from '../findings.ts';
import { CODES, ctxFor, emptyResult, finding, headerOf, place2D, sourceOf } from '../test-support/fixtures.ts';
import { dciodvfyErrors, dsrdump } from '../test-support/tools.ts';
import { writeResultObjects } from '../write.ts';
import { readFindings } from './read.ts';

const CR = sharedFile('cxr/dicom/other/CR-MONO1-10-chest.part10.dcm');
const cr = sourceOf(CR);
const crStudy = str(headerOf(CR), 'StudyInstanceUID') ?? '';

async function roundTrip(result: DetectorResult, sources = [cr], style?: 'cornerstone3D') {
  const objects = await writeResultObjects(result, sources, ctxFor(`rt-${result.findings.length}-${style ?? 'd'}`, style ? { srOptions: { trackingIdentifierStyle: style } } : {}));
  const sr = objects.find((o) => o.kind === 'sr');
  if (!sr) throw new Error('no SR written');
  return { sr, read: readFindings(sr.bytes) };
}


describe('readFindings reads back exactly what the writer wrote', () => {
  const twoD: Finding[] = [
    finding(1, place2D(cr.sopInstanceUID, 'point', [[120.5, 200]]), { site: CODES.rightLung }),
    finding(2, place2D(cr.sopInstanceUID, 'box', [[100, 150], [180.25, 260]])),
    finding(3, place2D(cr.sopInstanceUID, 'polyline', [[10, 10], [40, 12], [44, 60], [10, 10]]), {
      measurements: [{ concept: CODES.longAxis, value: 12.3456789012345678, unit: 'mm' }],
    }),
    finding(4, place2D(cr.sopInstanceUID, 'ellipse', [[50, 100], [90, 100], [70, 90], [70, 110]]), { concept: CODES.mass }),
  ];

  it('2D point, box, polyline and ellipse with probability on a CR chest radiograph', async () => {
    const result = emptyResult(crStudy, [cr.seriesInstanceUID], { findings: twoD, studyScore: 0.9371, priority: 'positive' });
    const { sr, read } = await roundTrip(result);
    expect(read).toEqual({ detector: result.detector, studyInstanceUID: crStudy, studyScore: 0.9371, priority: 'positive', findings: twoD, skipped: [] });
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
    const tree = dsrdump(sr.bytes);
    expect(tree).toContain('<contains SCOORD:(111030,DCM,"Image Region")=(POINT,120.5/200)>');
    expect(tree).toContain('<contains SCOORD:(111030,DCM,"Image Region")=(POLYLINE,100/150,180.25/150,180.25/260,100/260,100/150)>');
    expect(tree).toContain('<contains SCOORD:(111030,DCM,"Image Region")=(ELLIPSE,');
    expect(tree).toContain('<contains NUM:(111012,DCM,"Certainty of Finding")="0.796875" ({probability},UCUM,"probability")>');
    expect(tree).toContain('<has concept mod CODE:(363698007,SCT,"Finding Site")=(3341006,SCT,"Right lung")>');
  });

  it('only a study-level score, and no finding at all', async () => {
    const result = emptyResult(crStudy, [cr.seriesInstanceUID], { studyScore: 0.03125, priority: 'negative' });
    const { read } = await roundTrip(result);
    expect(read.findings).toEqual([]);
    expect(read.studyScore).toBe(0.03125);
    expect(read.priority).toBe('negative');
  });

  it('skipped series with their coded reasons read back', async () => {
    const skipped = [
      { seriesInstanceUID: '1.2.3.4.5.6', reason: { scheme: '99RADNODE' as const, value: 'lateral-view', meaning: 'Lateral view not supported' }, detail: 'ViewPosition LL' },
      { seriesInstanceUID: '1.2.3.4.5.7', reason: { scheme: '99RADNODE' as const, value: 'not-chest', meaning: 'Body part is not chest' }, detail: '' },
    ];
    const { sr, read } = await roundTrip(emptyResult(crStudy, [cr.seriesInstanceUID], { skipped, priority: 'unprocessed' }));
    expect(read.skipped).toEqual(skipped);
    expect(read.priority).toBe('unprocessed');
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
    expect(dsrdump(sr.bytes)).toContain('<contains CODE:(not-processed,99RADNODE,"Series not processed")=(lateral-view,99RADNODE,"Lateral view not supported")>');
  });

  it('why the analysed series was chosen is a TEXT naming that series, reads back and validates', async () => {
    const why = 'thinnest slices, then lung kernel, among 2 qualifying series: series 3 "Lung 1.25" 1.25 mm, kernel LUNG (a lung kernel)';
    const skipped = [{ seriesInstanceUID: '1.2.3.4.5.7', reason: { scheme: '99RADNODE' as const, value: 'RN-NP-PREFERRED', meaning: 'Another series of the study was preferred' }, detail: 'another series was preferred' }];
    const { sr, read } = await roundTrip(emptyResult(crStudy, [cr.seriesInstanceUID], { skipped, seriesChoice: why }));
    expect(read.seriesChoice).toBe(why);
    expect(read.skipped).toEqual(skipped);
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
    expect(dsrdump(sr.bytes)).toContain('<contains TEXT:(series-choice,99RADNODE,"Why this series was analysed")="thinnest slices');
    expect(dsrdump(sr.bytes)).toContain(`<has properties UIDREF:(112002,DCM,"Series Instance UID")="${cr.seriesInstanceUID}">`);
    // Without a choice there is no such item (the radiograph and mammography detectors).
    expect((await roundTrip(emptyResult(crStudy, [cr.seriesInstanceUID]))).read).not.toHaveProperty('seriesChoice');
  });

  it('a finding without a place is a Qualitative Evaluations CODE (no measurement group: OHIF 3.13.2 fails on one) and reads back', async () => {
    const f = finding(7, undefined, {
      site: CODES.rightLung,
      measurements: [{ concept: CODES.diameter, value: 12.25, unit: 'mm' }],
      evaluations: [{ concept: CODES.lungRads, value: CODES.lungRads4A }],
    });
    const { sr, read } = await roundTrip(emptyResult(crStudy, [cr.seriesInstanceUID], { findings: [f] }));
    expect(read.findings).toEqual([f]);
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
    const tree = dsrdump(sr.bytes);
    expect(tree).not.toContain('"Imaging Measurements"');
    expect(tree).not.toContain('"Measurement Group"');
    expect(tree).toMatch(/<contains CONTAINER:\(C0034375,UMLS,"Qualitative Evaluations"\)=SEPARATE>\n(.*\n)*\s+<contains CODE:\(121071,DCM,"Finding"\)=\(263716002,SCT,"Lung opacity"\)>\n\s+<has obs context TEXT:\(112039,DCM,"Tracking Identifier"\)="finding-7">/);
    expect(tree).toContain('<has properties NUM:(111012,DCM,"Certainty of Finding")=');
    expect(tree).toContain('<has concept mod CODE:(363698007,SCT,"Finding Site")=(3341006,SCT,"Right lung")>');
  });

  it('findings with and without a place together: the placed ones (groups) first, then the placeless ones, each in order', async () => {
    const placed = twoD.slice(0, 2);
    const placeless = [finding(8, undefined), finding(9, undefined, { concept: CODES.mass })];
    const { sr, read } = await roundTrip(emptyResult(crStudy, [cr.seriesInstanceUID], { findings: [placeless[0], placed[0], placeless[1], placed[1]] }));
    expect(read.findings).toEqual([...placed, ...placeless]);
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
  });

  it('the study-level score is a TEXT that reads back as the same double, whatever its digits', async () => {
    for (const studyScore of [0.1 + 0.2, 1 / 3, 1e-9, 0, 1, 0.9999999999999999]) {
      const { sr, read } = await roundTrip(emptyResult(crStudy, [cr.seriesInstanceUID], { studyScore, priority: 'positive' }));
      expect(read.studyScore).toBe(studyScore);
      expect(read.priority).toBe('positive');
      expect(dsrdump(sr.bytes)).toContain(`<contains TEXT:(study-score,99RADNODE,"AI study-level score")="${String(studyScore)}">`);
    }
  });

  it('cornerstone3D style: Tracking Identifier names an OHIF tool, the detector id still reads back', async () => {
    const result = emptyResult(crStudy, [cr.seriesInstanceUID], { findings: twoD });
    const { sr, read } = await roundTrip(result, [cr], 'cornerstone3D');
    expect(read.findings).toEqual(twoD);
    const tree = dsrdump(sr.bytes);
    expect(tree).toContain('="Cornerstone3DTools@^0.1.0:Probe"');
    expect(tree).toContain('="Cornerstone3DTools@^0.1.0:RectangleROI"');
    expect(tree).toContain('="Cornerstone3DTools@^0.1.0:PlanarFreehandROI"');
    expect(tree).toContain('="Cornerstone3DTools@^0.1.0:EllipticalROI"');
  });

  it('a 3D point with diameter and volume on LIDC-IDRI-0001: key-image SCOORD first, SCOORD3D second', async () => {
    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
    const files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().slice(0, 12).map((f) => join(dir, f));
    const sources = files.map(sourceOf);
    const key = headerOf(files[5]);
    const study = str(key, 'StudyInstanceUID') ?? '';
    const nodule = finding(5, {
      frameOfReferenceUID: str(key, 'FrameOfReferenceUID') ?? '',
      point: [Math.fround(-80.25), Math.fround(-120.5), Math.fround(-142.5)],
      keyImage: place2D(sources[5].sopInstanceUID, 'point', [[300, 256]]),
    }, {
      concept: CODES.nodule,
      measurements: [
        { concept: CODES.diameter, value: 23.4, unit: 'mm' },
        { concept: CODES.volume, value: 6712.5, unit: 'mm3' },
      ],
      evaluations: [{ concept: CODES.lungRads, value: CODES.lungRads4A }],
    });
    const result = emptyResult(study, [sources[0].seriesInstanceUID], { findings: [nodule], detector: { id: 'ct-nodule', version: '0.3.0', modelSha256: 'cd'.repeat(32) } });
    const { sr, read } = await roundTrip(result, sources);
    expect(read.findings).toEqual([nodule]);
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
    const tree = dsrdump(sr.bytes);
    const s2 = tree.indexOf('<contains SCOORD:(111030,DCM,"Image Region")=(POINT,300/256)>');
    const s3 = tree.indexOf('<contains SCOORD3D:(111010,DCM,"Center")=(POINT,');
    expect(s2).toBeGreaterThan(0);
    expect(s3).toBeGreaterThan(s2);
    expect(tree).toContain('(mm3,UCUM,"cubic millimeter")');
    expect(tree).toContain('(25045-6,LN,"CT unspecified body region")');
  });

  it('refuses a finding on an image that is not among the sources', async () => {
    const bad = finding(9, place2D('1.2.3.4.5', 'point', [[1, 1]]));
    await expect(writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID], { findings: [bad] }), [cr], ctxFor('bad'))).rejects.toMatchObject({ code: 'RN_RESULT_INVALID' });
  });
});
