import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedFile, unpackedFile } from '../../test/helpers/paths.ts';
import { DEFAULT_CONFIG } from '../config/defaults.ts';
import type { Detector, SeriesInfo } from '../detectors/detector.ts';
import { selectCt } from '../detectors/ct/select.ts';
import { selectChestRadiograph } from '../detectors/cxr/index.ts';
import { selectMammogram } from '../detectors/mammo/index.ts';
import { readIngestHeader } from '../ingest/header.ts';
import { isOwnInstance } from './loop-guard.ts';
import { checkCode } from '../results/sr/templates/checks.ts';
import { NOT_PROCESSED } from './reasons.ts';
import { routeSeries } from './route.ts';

/** A stand-in detector for routing only (a unit test double): accepts what routing gives it. */
const accepting = (id: string): Detector => ({
  manifest: { id, version: '1', modelSha256: '0'.repeat(64) },
  select: () => ({ accepted: true }),
  run: () => Promise.reject(new Error('not run in routing tests')),
});
const ALL = new Map(['cxr', 'mammo', 'ct'].map((id) => [id, accepting(id)]));
const RULES = DEFAULT_CONFIG.routing.rules;
const NODE = DEFAULT_CONFIG.node;

function seriesOf(file: string, instanceCount = 1): SeriesInfo {
  const h = readIngestHeader(readFileSync(file));
  return {
    studyInstanceUID: h.studyInstanceUID, seriesInstanceUID: h.seriesInstanceUID, modality: h.modality, sopClassUID: h.sopClassUID,
    seriesDescription: h.seriesDescription, bodyPartExamined: h.bodyPartExamined, viewPosition: h.viewPosition, imageType: h.imageType,
    sliceThicknessMm: h.sliceThicknessMm, photometricInterpretation: h.photometricInterpretation, samplesPerPixel: h.samplesPerPixel,
    instanceCount, isOwn: isOwnInstance(h, NODE),
  };
}

describe('routing real series with the default rules', () => {
  const philips = (f: string) => sharedFile(`ct/edge/philips-ingenuity-exam-summary/${f}`);

  it('sends a CR chest film (an RSNA Secondary Capture with Modality CR) to the chest detector', () => {
    expect(routeSeries(seriesOf(sharedFile('cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm')), RULES, ALL)).toEqual({ detector: 'cxr' });
  });

  it('sends the NIH DX secondary capture, which has no Body Part Examined or View Position, to the chest detector', () => {
    // Decision (issue-corrections, chest X-ray): a CR/DX without body part is taken as chest; cxr's own select()
    // may still refuse it once it sees the pixels.
    const s = seriesOf(sharedFile('cxr/dicom/other/nih-chestxray14-dx-sc-nofinding.dcm'));
    expect(s.bodyPartExamined).toBeUndefined();
    expect(routeSeries(s, RULES, ALL)).toEqual({ detector: 'cxr' });
  });

  it('records the Philips localizer as a localizer', () => {
    expect(routeSeries(seriesOf(philips('localizer_S1000_I10.dcm')), RULES, ALL)).toMatchObject({ detector: null, reason: NOT_PROCESSED.localizer });
  });

  it('records the Philips dose screenshot as a dose report, and the other exam-summary captures as derived', () => {
    expect(routeSeries(seriesOf(philips('sc_dose_info_S4010_I40.dcm')), RULES, ALL)).toMatchObject({ detector: null, reason: NOT_PROCESSED.doseReport });
    for (const f of ['sc_patient_info_S4010_I30.dcm', 'sc_ref_surview_S4010_I10.dcm', 'sc_results_S4010_I50.dcm'])
      expect(routeSeries(seriesOf(philips(f)), RULES, ALL)).toMatchObject({ detector: null, reason: NOT_PROCESSED.derived });
  });

  it('sends the thin-slice LIDC CT series to the CT detector, and refuses it when too few slices arrived', () => {
    const dir = unpackedFile('ct/lidc/LIDC-IDRI-0002/dicom');
    const files = readdirSync(dir).filter((f) => f.endsWith('.dcm'));
    const s = seriesOf(join(dir, files[0]), files.length);
    expect(s.sliceThicknessMm).toBeLessThanOrEqual(3);
    expect(routeSeries(s, RULES, ALL)).toEqual({ detector: 'ct' });
    expect(routeSeries({ ...s, instanceCount: 12 }, RULES, ALL)).toMatchObject({ detector: null, reason: NOT_PROCESSED.tooFewImages });
    expect(routeSeries({ ...s, sliceThicknessMm: 5 }, RULES, ALL)).toMatchObject({ detector: null, reason: NOT_PROCESSED.sliceTooThick });
  });

  it('names a missing detector with RN-NP-NODETECTOR rather than dropping the series silently', () => {
    const s = seriesOf(sharedFile('dicom/fo-dicom/GH133.dcm'));
    expect(s.modality).toBe('MG');
    expect(routeSeries(s, RULES, new Map())).toMatchObject({ detector: null, reason: NOT_PROCESSED.notInstalled });
  });

  it('refuses SR, and anything no rule names, with coded reasons', () => {
    const sr = { ...seriesOf(sharedFile('cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm')), modality: 'SR', sopClassUID: '1.2.840.10008.5.1.4.1.1.88.34' };
    expect(routeSeries(sr, RULES, ALL)).toMatchObject({ reason: NOT_PROCESSED.nonImage });
    const us = { ...sr, modality: 'US', sopClassUID: '1.2.840.10008.5.1.4.1.1.6.1' };
    expect(routeSeries(us, RULES, ALL)).toMatchObject({ reason: NOT_PROCESSED.noRule });
  });

  it("keeps a detector's own refusal (select) as the series' reason", () => {
    const picky: Detector = { ...accepting('cxr'), select: () => ({ accepted: false, reason: NOT_PROCESSED.declined, detail: 'lateral view' }) };
    const s = seriesOf(sharedFile('cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm'));
    expect(routeSeries(s, RULES, new Map([['cxr', picky]]))).toEqual({ detector: null, reason: NOT_PROCESSED.declined, detail: 'lateral view' });
  });

  it('refuses a colour series at routing with RN-NP-COLOUR, for each shipped detector, from the header alone', () => {
    // cornerstone3D's RGB test pattern (DERIVED\SECONDARY, so presented as ORIGINAL), as a chest film, a mammogram, a chest CT.
    const rgb = { ...seriesOf(sharedFile('dicom/cornerstone3D/TestPattern_RGB.dcm'), 60), imageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'] };
    expect([rgb.photometricInterpretation, rgb.samplesPerPixel]).toEqual(['RGB', 3]);
    const real = new Map<string, Detector>([
      ['cxr', { ...accepting('cxr'), select: selectChestRadiograph }],
      ['mammo', { ...accepting('mammo'), select: selectMammogram }],
      ['ct', { ...accepting('ct'), select: selectCt }],
    ]);
    const as = [
      { ...rgb, modality: 'CR', bodyPartExamined: 'CHEST', viewPosition: 'PA' },
      { ...rgb, modality: 'MG', sopClassUID: '1.2.840.10008.5.1.4.1.1.1.2' },
      { ...rgb, modality: 'CT', sopClassUID: '1.2.840.10008.5.1.4.1.1.2', bodyPartExamined: 'CHEST', sliceThicknessMm: 1 },
    ];
    for (const s of as) expect(routeSeries(s, RULES, real), s.modality).toMatchObject({ detector: null, reason: NOT_PROCESSED.colourImage, detail: 'Photometric Interpretation RGB, 3 samples per pixel' });
    // The same headers in grayscale are taken.
    for (const s of as) expect(routeSeries({ ...s, photometricInterpretation: 'MONOCHROME2', samplesPerPixel: 1 }, RULES, real).detector, s.modality).not.toBeNull();
  });

  it('refuses a bare data set without Part 10 preamble and File Meta at ingest (the raw CR-MONO1 file), accepts its Part 10 twin', () => {
    expect(() => readIngestHeader(readFileSync(sharedFile('cxr/dicom/other/CR-MONO1-10-chest.dcm')))).toThrow(expect.objectContaining({ code: 'RN_DICOM_MALFORMED' }));
    expect(readIngestHeader(readFileSync(sharedFile('cxr/dicom/other/CR-MONO1-10-chest.part10.dcm'))).modality).toBe('CR');
  });

  it('treats an instance under the node root with radnode as contributing device as its own output', () => {
    const h = readIngestHeader(readFileSync(sharedFile('cxr/dicom/rsna/0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm')));
    expect(isOwnInstance(h, NODE)).toBe(false);
    const own = { ...h, sopInstanceUID: `${NODE.uidRoot}.1.123`, contributingDeviceUIDs: [`${NODE.uidRoot}.4.77`] };
    expect(isOwnInstance(own, NODE)).toBe(true);
    // One signal alone is no proof: a site may share the root.
    expect(isOwnInstance({ ...h, sopInstanceUID: `${NODE.uidRoot}.1.123` }, NODE)).toBe(false);
  });
});

describe('not-processed reasons', () => {
  it('every reason is a code the SR writer accepts (Code Value ≤ 16, Code Meaning ≤ 64 characters)', () => {
    for (const [name, code] of Object.entries(NOT_PROCESSED)) expect(() => checkCode(code, name), name).not.toThrow();
  });
});
