import type { FleischnerBand, LungRadsCategory, NoduleMeasurement } from './types.ts';

/**
 * Size categories (issue 7, item 4), from the mean of the long and short axes: Lung-RADS v2022 takes it to 0.1 mm,
 * Fleischner 2017 rounded to the nearest whole millimetre (Bankier et al., Radiology 2017;285:584), so 5.6 mm is a
 * 6 mm nodule there and 8.4 mm an 8 mm one:
 *
 * - Lung-RADS v2022 (ACR), baseline screening, size criteria only (growth, new nodules, perifissural or benign
 *   features need priors or a reader and are not scored here):
 *   solid        < 6 mm → 2;  6 to < 8 → 3;  8 to < 15 → 4A;  ≥ 15 → 4B
 *   part-solid   total < 6 → 2;  total ≥ 6 with solid component < 6 → 3;  solid 6 to < 8 → 4A;  solid ≥ 8 → 4B
 *   ground-glass < 30 mm → 2;  ≥ 30 → 3
 * - Fleischner Society 2017 (incidental nodules) size bands: solid < 6 mm, 6–8 mm, > 8 mm. For subsolid nodules the
 *   table only splits < 6 mm from ≥ 6 mm; the band is still reported as '6-8 mm' or '>8 mm' so that the size shows,
 *   and both mean "≥ 6 mm" there.
 */

export function lungRadsCategory(m: Pick<NoduleMeasurement, 'type' | 'meanDiameterMm' | 'solidMeanDiameterMm'>): LungRadsCategory {
  const d = m.meanDiameterMm;
  if (m.type === 'ground-glass') return d < 30 ? '2' : '3';
  if (m.type === 'part-solid') {
    if (d < 6) return '2';
    // a part-solid nodule without a measured solid component is scored on a solid component below 6 mm
    const s = m.solidMeanDiameterMm ?? 0;
    if (s < 6) return '3';
    return s < 8 ? '4A' : '4B';
  }
  if (d < 6) return '2';
  if (d < 8) return '3';
  return d < 15 ? '4A' : '4B';
}

export function fleischnerBand(m: Pick<NoduleMeasurement, 'meanDiameterMm'>): FleischnerBand {
  const d = Math.round(m.meanDiameterMm);
  if (d < 6) return '<6 mm';
  return d <= 8 ? '6-8 mm' : '>8 mm';
}
