import { describe, expect, it } from 'vitest';
import { buildStowResponse, FailureReason, failureReasonFor, type StowInstanceOutcome } from './response.ts';

const stored = (sop: string, study = '1.2.3'): StowInstanceOutcome => ({
  kind: 'stored',
  sopClassUID: '1.2.840.10008.5.1.4.1.1.2',
  sopInstanceUID: sop,
  studyInstanceUID: study,
  seriesInstanceUID: '1.2.3.4',
  duplicate: false,
});
const failed: StowInstanceOutcome = { kind: 'failed', reason: FailureReason.CannotUnderstand, code: 'RN_DICOM_MALFORMED', message: 'x' };

describe('buildStowResponse (PS3.18 §10.5.3, Annex I)', () => {
  it('answers 200 with one ReferencedSOPSequence item per instance and the study RetrieveURL', () => {
    const r = buildStowResponse([stored('1.1'), stored('1.2')], { baseUrl: 'http://h:1/dicom-web/' });
    expect(r.status).toBe(200);
    expect(r.body['00081190']).toEqual({ vr: 'UR', Value: ['http://h:1/dicom-web/studies/1.2.3'] });
    expect(r.body['00081199']).toEqual({
      vr: 'SQ',
      Value: ['1.1', '1.2'].map((sop) => ({
        '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
        '00081155': { vr: 'UI', Value: [sop] },
        '00081190': { vr: 'UR', Value: [`http://h:1/dicom-web/studies/1.2.3/series/1.2.3.4/instances/${sop}`] },
      })),
    });
    expect(r.body['00081198']).toBeUndefined();
  });

  it('answers 202 when some failed and 409 when none was stored, with FailureReason as US', () => {
    expect(buildStowResponse([stored('1.1'), failed], { baseUrl: 'http://h' }).status).toBe(202);
    const none = buildStowResponse([failed], { baseUrl: 'http://h', studyInstanceUID: '9.9' });
    expect(none.status).toBe(409);
    expect(none.body['00081190']).toEqual({ vr: 'UR', Value: ['http://h/studies/9.9'] });
    expect(none.body['00081198']).toEqual({
      vr: 'SQ',
      Value: [{ '00081150': { vr: 'UI' }, '00081155': { vr: 'UI' }, '00081197': { vr: 'US', Value: [0xc000] } }],
    });
  });

  it('leaves the study RetrieveURL empty when the instances span several studies', () => {
    expect(buildStowResponse([stored('1.1', 'A'), stored('1.2', 'B')], { baseUrl: 'http://h' }).body['00081190']).toEqual({ vr: 'UR' });
  });

  it('maps error codes to Table I.2-2 failure reasons', () => {
    expect(failureReasonFor('RN_INGEST_DISK_FULL')).toBe(0xa700);
    expect(failureReasonFor('RN_INGEST_STUDY_MISMATCH')).toBe(0xc409);
    expect(failureReasonFor('RN_DICOM_UNSUPPORTED_TRANSFER_SYNTAX')).toBe(0xc122);
    expect(failureReasonFor('RN_DICOM_MALFORMED')).toBe(0xc000);
    expect(failureReasonFor('RN_INGEST_CONFLICT')).toBe(0x0111);
    expect(failureReasonFor('RN_INTERNAL')).toBe(0x0110);
  });
});
