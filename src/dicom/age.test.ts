import { describe, expect, it } from 'vitest';
import { writePart10 } from '../results/dicom-io.ts';
import { patientAgeYears, readInstance } from './index.ts';

const header = (tags: Record<string, string>) =>
  readInstance(writePart10({ SOPClassUID: '1.2.840.10008.5.1.4.1.1.1', SOPInstanceUID: '2.25.1', ...tags }, '1.2.826.0.1.3680043.10.1011.6')).header;

describe("patient's age in completed years", () => {
  it("reads Patient's Age in days, weeks, months and years (PS3.5 AS)", () => {
    expect(patientAgeYears(header({ PatientAge: '051Y' }))).toBe(51);
    expect(patientAgeYears(header({ PatientAge: '011M' }))).toBe(0);
    expect(patientAgeYears(header({ PatientAge: '012M' }))).toBe(1);
    expect(patientAgeYears(header({ PatientAge: '053W' }))).toBe(1);
    expect(patientAgeYears(header({ PatientAge: '200D' }))).toBe(0);
  });

  it('falls back to Birth Date and Study Date, counting a year only once the birthday is reached', () => {
    expect(patientAgeYears(header({ PatientBirthDate: '20200615', StudyDate: '20250614' }))).toBe(4);
    expect(patientAgeYears(header({ PatientBirthDate: '20200615', StudyDate: '20250615' }))).toBe(5);
    expect(patientAgeYears(header({ PatientAge: '007Y', PatientBirthDate: '19700101', StudyDate: '20261125' }))).toBe(7);
  });

  it('does not guess: a unit-less age, a study before the birth or no dates give undefined', () => {
    expect(patientAgeYears(header({ PatientAge: '51' }))).toBeUndefined();
    expect(patientAgeYears(header({ PatientBirthDate: '20250101', StudyDate: '20240101' }))).toBeUndefined();
    expect(patientAgeYears(header({ PatientBirthDate: '20200615' }))).toBeUndefined();
    expect(patientAgeYears(header({}))).toBeUndefined();
  });
});
