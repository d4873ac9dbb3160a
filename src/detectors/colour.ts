import { NOT_PROCESSED } from '../workflow/reasons.ts';
import type { SelectResult, SeriesInfo } from './detector.ts';

const GRAYSCALE = new Set(['MONOCHROME1', 'MONOCHROME2']);

/**
 * Every shipped detector reads grayscale. Photometric Interpretation and Samples per Pixel are in the header, so a
 * colour series (RGB, YBR_*, PALETTE COLOR: screenshots, photos, colour-mapped reformats) is refused at routing and
 * never makes a job; the decoder's own check stays as the backstop for a series whose first instance was grayscale.
 * Unknown values (a header without them) are left to the decoder.
 */
export function refuseColour(s: SeriesInfo): SelectResult | null {
  const pi = s.photometricInterpretation?.trim().toUpperCase();
  const colour = (pi !== undefined && pi !== '' && !GRAYSCALE.has(pi)) || (s.samplesPerPixel !== undefined && s.samplesPerPixel > 1);
  if (!colour) return null;
  return { accepted: false, reason: NOT_PROCESSED.colourImage, detail: `Photometric Interpretation ${pi ?? '(none)'}, ${s.samplesPerPixel ?? '?'} samples per pixel` };
}
