import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedFile, unpackedFile } from '../../../test/helpers/paths.ts';
import { DEFAULT_CONFIG } from '../../config/defaults.ts';
import { planVolumes } from '../../dicom/volume.ts';
import { readHeader } from '../../dicom/instance.ts';
import { factsOf } from '../../inference/ct.ts';
import { readIngestHeader } from '../../ingest/header.ts';
import { isOwnInstance } from '../../workflow/loop-guard.ts';
import { NOT_PROCESSED } from '../../workflow/reasons.ts';
import { routeSeries } from '../../workflow/route.ts';
import type { Detector, SeriesInfo } from '../detector.ts';
import { chooseCtSeries, geometryRefusal, lungKernelScore, selectCt, type CtSeriesFacts } from './select.ts';

function seriesInfo(file: string, instanceCount: number): SeriesInfo {
  const h = readIngestHeader(readFileSync(file));
  return {
    studyInstanceUID: h.studyInstanceUID, seriesInstanceUID: h.seriesInstanceUID, modality: h.modality, sopClassUID: h.sopClassUID,
    seriesDescription: h.seriesDescription, bodyPartExamined: h.bodyPartExamined, viewPosition: h.viewPosition, imageType: h.imageType,
    sliceThicknessMm: h.sliceThicknessMm, instanceCount, isOwn: isOwnInstance(h, DEFAULT_CONFIG.node),
  };
}

function dicomFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().map((f) => join(dir, f));
}

/** The worker's view of a series: headers only, planned (src/inference/ct.ts). */
function factsOfDir(dir: string): CtSeriesFacts {
  const headers = dicomFiles(dir).map((f) => readHeader(new Uint8Array(readFileSync(f))));
  return factsOf(headers[0].SeriesInstanceUID ?? '', headers, planVolumes(headers));
}

const LIDC1 = () => unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
const LIDC2 = () => unpackedFile('ct/lidc/LIDC-IDRI-0002/dicom');
const GE_HEAD = () => dirname(unpackedFile('ct/edge/ge-head-ct-gantry-tilt/01.dcm'));
const PHILIPS = (f: string) => sharedFile(`ct/edge/philips-ingenuity-exam-summary/${f}`);

describe('selectCt (per series, stored attributes)', () => {
  it('accepts the LIDC chest series (CT Image Storage, AXIAL, CHEST, 2.5 mm and 1.25 mm)', () => {
    expect(selectCt(seriesInfo(dicomFiles(LIDC1())[0], 133))).toEqual({ accepted: true });
    expect(selectCt(seriesInfo(dicomFiles(LIDC2())[0], 261))).toEqual({ accepted: true });
  });

  it('refuses the GE head CT as not a chest (Body Part Examined HEAD), before its 4 mm slices', () => {
    const r = selectCt(seriesInfo(join(GE_HEAD(), '01.dcm'), 28));
    expect(r).toEqual({ accepted: false, reason: NOT_PROCESSED.notChest, detail: 'Body Part Examined HEAD' });
  });

  it('refuses the Philips localizer and every exam-summary screenshot with a coded reason', () => {
    expect(selectCt(seriesInfo(PHILIPS('localizer_S1000_I10.dcm'), 1))).toMatchObject({ accepted: false, reason: NOT_PROCESSED.localizer });
    for (const f of ['sc_dose_info_S4010_I40.dcm', 'sc_patient_info_S4010_I30.dcm', 'sc_ref_surview_S4010_I10.dcm', 'sc_results_S4010_I50.dcm']) {
      const r = selectCt(seriesInfo(PHILIPS(f), 1));
      // Secondary Capture Image Storage with Modality CT: a console screenshot, never pixels to read.
      expect(r, f).toMatchObject({ accepted: false, reason: NOT_PROCESSED.notCtImage });
      expect(r.accepted ? '' : r.detail, f).toContain('1.2.840.10008.5.1.4.1.1.7');
    }
  });

  it('refuses Enhanced and Legacy Converted Enhanced CT with their own reason, not as too few images', () => {
    const lidc = seriesInfo(dicomFiles(LIDC1())[0], 100);
    for (const sopClassUID of ['1.2.840.10008.5.1.4.1.1.2.1', '1.2.840.10008.5.1.4.1.1.2.2']) {
      const r = selectCt({ ...lidc, sopClassUID, instanceCount: 1 });
      expect(r.accepted ? null : r.reason.value).toBe('RN-NP-ENHANCED');
    }
  });

  it('refuses thick slices when Slice Thickness says so, and short series', () => {
    const base = seriesInfo(dicomFiles(LIDC1())[0], 133);
    expect(selectCt({ ...base, sliceThicknessMm: 5 })).toMatchObject({ accepted: false, reason: NOT_PROCESSED.sliceTooThick });
    expect(selectCt({ ...base, instanceCount: 12 })).toMatchObject({ accepted: false, reason: NOT_PROCESSED.tooFewImages });
    expect(selectCt({ ...base, modality: 'MR' })).toMatchObject({ accepted: false, reason: NOT_PROCESSED.declined });
  });
});

describe('routing of the CT edge cases with the default rules and the CT detector', () => {
  const ct: Detector = { manifest: { id: 'ct', version: 't', modelSha256: '0'.repeat(64) }, select: selectCt, run: () => Promise.reject(new Error('not run')) };
  const detectors = new Map([['ct', ct]]);
  it('gives every GE and Philips series a coded reason and LIDC the ct detector', () => {
    const decisions = [
      routeSeries(seriesInfo(join(GE_HEAD(), '01.dcm'), 28), DEFAULT_CONFIG.routing.rules, detectors),
      ...readdirSync(dirname(PHILIPS('localizer_S1000_I10.dcm'))).sort().map((f) => routeSeries(seriesInfo(PHILIPS(f), 1), DEFAULT_CONFIG.routing.rules, detectors)),
    ];
    for (const d of decisions) expect(d.detector).toBeNull();
    const codes = decisions.map((d) => (d.detector === null ? d.reason.value : d.detector));
    // GE: 28 images, under the rule's minInstances (it is also 4 mm thick, a head and tilted: select.ts and
    // chooseCtSeries say so when a site's rule lets it through); Philips: localizer, dose screenshot, derived screenshots.
    expect(codes).toEqual(['RN-NP-FEWIMAGES', 'RN-NP-LOCALIZER', 'RN-NP-DOSE', 'RN-NP-DERIVED', 'RN-NP-DERIVED', 'RN-NP-DERIVED']);
    expect(routeSeries(seriesInfo(dicomFiles(LIDC1())[0], 133), DEFAULT_CONFIG.routing.rules, detectors)).toEqual({ detector: 'ct' });
  });
});

describe('chooseCtSeries (per study, after the headers are read)', () => {
  it('refuses the GE head CT for its 18.5° gantry tilt (sheared volume), even were it routed', () => {
    const f = factsOfDir(GE_HEAD());
    const r = geometryRefusal(f);
    expect(r?.reason).toEqual(NOT_PROCESSED.gantryTilt);
    const angle = Number(/([\d.]+)°/.exec(r!.detail)?.[1]);
    expect(angle).toBeGreaterThan(17.5);
    expect(angle).toBeLessThan(19.5);
    const choice = chooseCtSeries([f]);
    expect(choice.chosen).toBeUndefined();
    expect(choice.skipped).toEqual([{ seriesInstanceUID: f.seriesInstanceUID, ...r }]);
  });

  it('prefers the thinnest series (LIDC-IDRI-0002, 1.25 mm) over 2.5 mm and names it in the other series\' reason', () => {
    const a = factsOfDir(LIDC1());
    const b = factsOfDir(LIDC2());
    expect(a.stacks[0].sliceSpacingMm).toBeCloseTo(2.5, 3);
    expect(b.stacks[0].sliceSpacingMm).toBeCloseTo(1.25, 3);
    expect(a.convolutionKernel).toBe('STANDARD');
    for (const order of [[a, b], [b, a]]) {
      const choice = chooseCtSeries(order);
      expect(choice.chosen?.seriesInstanceUID).toBe(b.seriesInstanceUID);
      expect(choice.why).toContain('1.25 mm');
      expect(choice.skipped).toHaveLength(1);
      expect(choice.skipped[0].seriesInstanceUID).toBe(a.seriesInstanceUID);
      expect(choice.skipped[0].reason).toEqual(NOT_PROCESSED.otherSeriesPreferred);
      expect(choice.skipped[0].detail).toBe(`another series was preferred: ${b.seriesInstanceUID}, 1.25 mm, STANDARD`);
    }
  });

  it('a series covering part of the chest does not win over the whole chest, however thin', () => {
    const whole = factsOfDir(LIDC1());
    const part: CtSeriesFacts = { ...whole, seriesInstanceUID: '1.2.3.5', sliceThicknessMm: 0.75, stacks: [{ ...whole.stacks[0], slices: 60, sliceSpacingMm: 0.75 }], seriesDescription: 'CaSc 0.75' };
    const choice = chooseCtSeries([part, whole]);
    expect(choice.chosen?.seriesInstanceUID).toBe(whole.seriesInstanceUID);
    expect(choice.why).toMatch(/the whole chest, then thinnest slices/);
    expect(choice.skipped.map((x) => x.seriesInstanceUID)).toEqual(['1.2.3.5']);
  });

  it('refuses a series holding two volumes over the same positions, tolerates a slice sent twice', () => {
    const whole = factsOfDir(LIDC1());
    const withDuplicates = (count: number): CtSeriesFacts => ({
      ...whole,
      stacks: [{ ...whole.stacks[0], issues: [...whole.stacks[0].issues, { code: 'DUPLICATE_SLICES', detail: `${count} slice(s) repeat a position`, count }] }],
    });
    expect(geometryRefusal(withDuplicates(2))).toBeUndefined();
    expect(geometryRefusal(withDuplicates(whole.stacks[0].slices))).toMatchObject({ reason: NOT_PROCESSED.irregularSlices, detail: expect.stringMatching(/two reconstructions or scans/) });
  });

  it('at equal thickness prefers the lung kernel (a LUNG reconstruction of the same slices)', () => {
    const std = factsOfDir(LIDC1());
    const lung: CtSeriesFacts = { ...std, seriesInstanceUID: '1.2.3.4', convolutionKernel: 'LUNG', seriesDescription: 'CHEST 2.5 LUNG' };
    const choice = chooseCtSeries([std, lung]);
    expect(choice.chosen?.seriesInstanceUID).toBe('1.2.3.4');
    expect(choice.why).toContain('a lung kernel');
    expect(choice.skipped[0].detail).toContain('LUNG');
  });

  it('turns gaps found in the positions into a coded reason (one slice of LIDC-IDRI-0001 left out)', () => {
    const files = dicomFiles(LIDC1());
    const headers = files.map((f) => readHeader(new Uint8Array(readFileSync(f))));
    // Drop a slice from the middle of the stack (not an end): the positions then show a 5 mm gap.
    const plan = planVolumes(headers);
    const middle = plan.stacks[0].instances[60].SOPInstanceUID;
    const kept = headers.filter((h) => h.SOPInstanceUID !== middle);
    const f = factsOf(kept[0].SeriesInstanceUID ?? '', kept, planVolumes(kept));
    expect(geometryRefusal(f)).toMatchObject({ reason: NOT_PROCESSED.irregularSlices });
  });
});

describe('lungKernelScore', () => {
  it('ranks lung kernels over sharp ones over soft ones, across vendors', () => {
    const cases: [string | undefined, string | undefined, number][] = [
      ['LUNG', undefined, 2], ['B70f', undefined, 1], ['Bl57d', undefined, 2], ['L', undefined, 2], ['YB', undefined, 2], ['FC52', undefined, 2],
      ['BONEPLUS', undefined, 1], ['B60f', undefined, 1], ['Br64d', undefined, 1], ['STANDARD', undefined, 0], ['B30f', undefined, 0],
      ['SOFT', undefined, 0], [undefined, 'Thorax 1.0 Lung', 2], [undefined, undefined, 0],
    ];
    for (const [k, d, want] of cases) expect(lungKernelScore(k, d), `${k} / ${d}`).toBe(want);
  });
});
