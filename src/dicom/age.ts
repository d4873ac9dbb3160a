/**
 * The patient's age at the study, in completed years, from what the header says: Patient's Age (0010,1010, VR AS,
 * "nnnD|W|M|Y", PS3.5 6.2), else Patient's Birth Date and the Study Date. Undefined when neither is usable: a
 * malformed Patient's Age ("51" without its unit, as in anonymised exports) is not guessed at.
 */
import type { DataSetView } from './dataset.ts';

const DAYS_PER_YEAR = 365.25;

export function patientAgeYears(h: DataSetView): number | undefined {
  const as = /^(\d{3})([DWMY])$/.exec((h.string('PatientAge') ?? '').trim().toUpperCase());
  if (as) {
    const n = Number(as[1]);
    const years = { D: n / DAYS_PER_YEAR, W: (n * 7) / DAYS_PER_YEAR, M: n / 12, Y: n }[as[2] as 'D' | 'W' | 'M' | 'Y'];
    return Math.floor(years + 1e-9);
  }
  const birth = dateOf(h.string('PatientBirthDate'));
  const study = dateOf(h.string('StudyDate'));
  if (birth === undefined || study === undefined || study < birth) return undefined;
  // YYYYMMDD as a number: whole years are the difference once the month and day of the birthday are reached.
  return Math.floor((study - birth) / 10000);
}

/** A DICOM DA (YYYYMMDD) as the number YYYYMMDD, or undefined. */
function dateOf(da: string | undefined): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec((da ?? '').trim());
  if (!m) return undefined;
  const [mo, d] = [Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return undefined;
  return Number(m[1]) * 10000 + mo * 100 + d;
}
