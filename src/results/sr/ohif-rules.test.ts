/**
 * The rules OHIF applies before it displays or hydrates a measurement report, checked on radnode's SR as OHIF reads
 * it (a dcmjs-naturalized dataset). Each rule cites the OHIF / cornerstone file it comes from (OHIF/Viewers
 * extensions/cornerstone-dicom-sr/src/, cornerstonejs/cornerstone3D packages/adapters/src/adapters/Cornerstone3D/),
 * read in the stored source versions listed in ../shared/notes/peers.md §3.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sharedFile, unpackedFile } from '../../../test/helpers/paths.ts';
import { num, nums, readPart10, seq, str, type DicomDataset } from '../dicom-io.ts';
import type { DetectorResult, Finding } from '../findings.ts';
import { CODES, ctxFor, emptyResult, finding, headerOf, place2D, sourceOf } from '../test-support/fixtures.ts';
import { dciodvfyErrors, dsrdump } from '../test-support/tools.ts';
import { writeResultObjects } from '../write.ts';
import { readFindings } from './read.ts';

const cv = (item: DicomDataset | undefined) => str(seq(item, 'ConceptNameCodeSequence')[0], 'CodeValue');
const meaning = (item: DicomDataset | undefined) => str(seq(item, 'ConceptNameCodeSequence')[0], 'CodeMeaning');

/** getSopClassHandlerModule.ts: the SOP classes the SR handler takes. */
const OHIF_SR_CLASSES = ['1.2.840.10008.5.1.4.1.1.88.11', '1.2.840.10008.5.1.4.1.1.88.22', '1.2.840.10008.5.1.4.1.1.88.33', '1.2.840.10008.5.1.4.1.1.88.34'];
/** constants/scoordTypes.js + utils/getRenderableData.ts: the graphic types drawn. */
const OHIF_GRAPHIC_TYPES = ['POINT', 'MULTIPOINT', 'POLYLINE', 'CIRCLE', 'ELLIPSE'];

type OhifMeasurement = { TrackingUniqueIdentifier: string; TrackingIdentifier: string; graphic?: DicomDataset; nums: DicomDataset[] };

/** What OHIF's `_load` derives from the dataset, failing the way OHIF fails. */
function ohifLoad(ds: DicomDataset): { referencedImages: { cls: string; sop: string }[]; measurements: OhifMeasurement[] } {
  // getSopClassHandlerModule.ts `_getDisplaySetsFromSeries`: root must be 126000, else "OHIF only supports TID1500".
  expect(cv(ds)).toBe('126000');
  const content = seq(ds, 'ContentSequence');
  // `_getReferencedImagesList`: Image Library (111028) → first Image Library Group (126200) → ReferencedSOPSequence.
  const library = content.find((i) => cv(i) === '111028');
  const group = seq(library, 'ContentSequence').find((i) => cv(i) === '126200');
  const referencedImages = seq(group, 'ContentSequence').flatMap((i) =>
    seq(i, 'ReferencedSOPSequence').map((r) => ({ cls: str(r, 'ReferencedSOPClassUID') ?? '', sop: str(r, 'ReferencedSOPInstanceUID') ?? '' })),
  );
  // `_getMeasurements`: Imaging Measurements (126010) → Measurement Groups (125007), merged by Tracking UID (112040).
  const measurementsContainer = content.find((i) => cv(i) === '126010');
  const groups = seq(measurementsContainer, 'ContentSequence').filter((i) => cv(i) === '125007');
  const measurements = groups.map((g) => {
    const items = seq(g, 'ContentSequence');
    const uid = items.find((i) => cv(i) === '112040');
    const tid = items.find((i) => cv(i) === '112039');
    // OHIF reads `.UID` and `.TextValue` of these without a guard: both must exist.
    expect(str(uid, 'UID')).toBeTruthy();
    expect(str(tid, 'TextValue')).toBeTruthy();
    // `_processMeasurement` → `_processTID1410Measurement`: the first SCOORD/SCOORD3D is the geometry.
    const graphic = items.find((i) => i.ValueType === 'SCOORD' || i.ValueType === 'SCOORD3D');
    // Without one, `_processNonGeometricallyDefinedMeasurement` collects coords only from NUMs INFERRED FROM a SCOORD;
    // `_checkIfCanAddMeasurementsToDisplaySet` then reads `measurement.coords[0].ReferencedSOPSequence` unguarded, so
    // an empty coords list fails the whole viewer route in 3.13.2 ("Something went wrong").
    const coords = graphic ? [graphic] : items.filter((i) => i.ValueType === 'NUM').flatMap((n) => seq(n, 'ContentSequence').filter((c) => c.ValueType === 'SCOORD' || c.ValueType === 'SCOORD3D'));
    expect(coords.length, `${str(tid, 'TextValue')}: a measurement group without an image region crashes OHIF 3.13.2`).toBeGreaterThan(0);
    return { TrackingUniqueIdentifier: str(uid, 'UID') ?? '', TrackingIdentifier: str(tid, 'TextValue') ?? '', graphic, nums: items.filter((i) => i.ValueType === 'NUM') };
  });
  return { referencedImages, measurements };
}

/** cornerstone adapters MeasurementReport.getSetupMeasurementData: the first NUM, a SCOORD inferred from it, its image. */
function hydrationSetup(group: OhifMeasurement): { sop: string; graphicType: string } {
  const first = group.nums[0];
  const scoord = seq(first, 'ContentSequence').find((i) => i.ValueType === 'SCOORD');
  expect(scoord, `${group.TrackingIdentifier}: first NUM has no SCOORD`).toBeDefined();
  const ref = seq(seq(scoord, 'ContentSequence')[0], 'ReferencedSOPSequence')[0];
  return { sop: str(ref, 'ReferencedSOPInstanceUID') ?? '', graphicType: str(scoord, 'GraphicType') ?? '' };
}

const CR = sharedFile('cxr/dicom/other/CR-MONO1-10-chest.part10.dcm');
const cr = sourceOf(CR);
const crStudy = str(headerOf(CR), 'StudyInstanceUID') ?? '';

describe('OHIF display and hydration rules on radnode SRs', () => {
  const findings: Finding[] = [
    finding(1, place2D(cr.sopInstanceUID, 'point', [[120, 200]])),
    finding(2, place2D(cr.sopInstanceUID, 'box', [[100, 150], [180, 260]])),
    finding(3, place2D(cr.sopInstanceUID, 'polyline', [[10, 10], [40, 12], [44, 60]])),
    finding(4, place2D(cr.sopInstanceUID, 'ellipse', [[50, 100], [90, 100], [70, 90], [70, 110]])),
  ];

  for (const style of ['detector', 'cornerstone3D'] as const) {
    it(`${style} style: root, library, tracking rows, graphic types and resolvable image references`, async () => {
      const [sr] = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID], { findings }), [cr], ctxFor(`ohif-${style}`, { srOptions: { trackingIdentifierStyle: style } }));
      const ds = readPart10(sr.bytes).dataset;
      expect(OHIF_SR_CLASSES).toContain(ds.SOPClassUID);
      // cornerstone adapters MeasurementReport.generateToolState: TemplateIdentifier must be "1500".
      expect(str(seq(ds, 'ContentTemplateSequence')[0], 'TemplateIdentifier')).toBe('1500');
      const { referencedImages, measurements } = ohifLoad(ds);
      expect(referencedImages).toEqual([{ cls: cr.sopClassUID, sop: cr.sopInstanceUID }]);
      expect(new Set(measurements.map((m) => m.TrackingUniqueIdentifier)).size).toBe(measurements.length); // no accidental merge
      for (const m of measurements.filter((x) => x.graphic)) {
        expect(m.graphic?.ValueType).toBe('SCOORD');
        expect(OHIF_GRAPHIC_TYPES).toContain(m.graphic?.GraphicType);
        const ref = seq(seq(m.graphic, 'ContentSequence')[0], 'ReferencedSOPSequence')[0];
        // getSopClassHandlerModule.ts: a measurement attaches only to a loaded image of the same SOP class.
        expect({ cls: ref.ReferencedSOPClassUID, sop: ref.ReferencedSOPInstanceUID }).toEqual({ cls: cr.sopClassUID, sop: cr.sopInstanceUID });
      }
      if (style === 'cornerstone3D') {
        // isRehydratable.ts + cornerstone3DTag.js: hydration only for `Cornerstone3DTools@^0.1.0:<Tool>` identifiers.
        const tools = measurements.filter((m) => m.graphic).map((m) => m.TrackingIdentifier);
        expect(tools).toEqual(['Probe', 'RectangleROI', 'PlanarFreehandROI', 'EllipticalROI'].map((t) => `Cornerstone3DTools@^0.1.0:${t}`));
        for (const m of measurements.filter((x) => x.graphic)) expect(hydrationSetup(m)).toEqual({ sop: cr.sopInstanceUID, graphicType: m.graphic?.GraphicType });
      }
    });
  }

  it('content without an image region (score, priority, skipped series, a placeless finding) never becomes a measurement group', async () => {
    const skipped = [{ seriesInstanceUID: '1.2.3.4.5.6', reason: { scheme: '99RADNODE' as const, value: 'lateral-view', meaning: 'Lateral view not supported' }, detail: '' }];
    const cases: { findings: Finding[]; skipped?: typeof skipped }[] = [{ findings: [] }, { findings: [finding(5, undefined)], skipped }, { findings: [finding(5, undefined), findings[1]] }];
    for (const over of cases) {
      for (const style of ['detector', 'cornerstone3D'] as const) {
        const [sr] = await writeResultObjects(emptyResult(crStudy, [cr.seriesInstanceUID], over), [cr], ctxFor(`ohif-nogeo-${style}`, { srOptions: { trackingIdentifierStyle: style } }));
        const { measurements } = ohifLoad(readPart10(sr.bytes).dataset);
        // Only the placed finding is an OHIF measurement; OHIF does not read Qualitative Evaluations at all.
        expect(measurements.length).toBe(over.findings.filter((f) => f.place).length);
      }
    }
  });

  it('a CT nodule as cornerstone3D Bidirectional: long and short axis in mm equal what OHIF recomputes from the end points', async () => {
    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
    const files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().slice(0, 10).map((f) => join(dir, f));
    const sources = files.map(sourceOf);
    const key = headerOf(files[4]);
    const [rowMm, colMm] = nums(key, 'PixelSpacing');
    const long: [number, number][] = [[280, 250], [316, 262]];
    const short: [number, number][] = [[296, 266], [300, 254]];
    const nodule = finding(1, { frameOfReferenceUID: str(key, 'FrameOfReferenceUID') ?? '', point: [-80.25, -120.5, -142.5], keyImage: place2D(sources[4].sopInstanceUID, 'bidirectional', [...long, ...short]) }, {
      concept: CODES.nodule,
      measurements: [{ concept: CODES.volume, value: 6712.5, unit: 'mm3' }],
    });
    const result: DetectorResult = emptyResult(str(key, 'StudyInstanceUID') ?? '', [sources[0].seriesInstanceUID], { findings: [nodule] });
    const [sr] = await writeResultObjects(result, sources, ctxFor('ohif-bidi', { srOptions: { trackingIdentifierStyle: 'cornerstone3D' } }));
    expect(dciodvfyErrors(sr.bytes).errors).toEqual([]);
    expect(readFindings(sr.bytes).findings).toEqual([nodule]);
    const { measurements } = ohifLoad(readPart10(sr.bytes).dataset);
    const m = measurements[0];
    expect(m.TrackingIdentifier).toBe('Cornerstone3DTools@^0.1.0:Bidirectional');
    // The 2D key-image SCOORD is the first graphic item; the SCOORD3D comes second (OHIF issue 5081).
    expect(m.graphic?.ValueType).toBe('SCOORD');
    expect(hydrationSetup(m)).toEqual({ sop: sources[4].sopInstanceUID, graphicType: 'POLYLINE' });
    // Bidirectional.ts finds the axes by CodeMeaning and recomputes lengths from their end points and PixelSpacing.
    for (const [name, [a, b]] of [['Long Axis', long], ['Short Axis', short]] as const) {
      const n = m.nums.find((x) => meaning(x) === name);
      const scoord = seq(n, 'ContentSequence').find((i) => i.ValueType === 'SCOORD');
      expect(nums(scoord, 'GraphicData')).toEqual([...a, ...b]);
      const ohifLength = Math.hypot((b[0] - a[0]) * colMm, (b[1] - a[1]) * rowMm);
      expect(num(seq(n, 'MeasuredValueSequence')[0], 'FloatingPointValue')).toBeCloseTo(ohifLength, 10);
    }
    expect(dsrdump(sr.bytes)).toMatch(/<contains NUM:\(103339001,SCT,"Long Axis"\)="[\d.]+" \(mm,UCUM,"millimeter"\)>\n\s+<inferred from SCOORD:\(111030,DCM,"Image Region"\)=\(POLYLINE,280\/250,316\/262\)>/);
  });
});
