import type { RoutingMatch, RoutingRule } from '../config/types.ts';
import type { Detector, SeriesInfo } from '../detectors/detector.ts';
import type { Code } from '../results/findings.ts';
import { NOT_PROCESSED } from './reasons.ts';

export type RouteDecision = { detector: string } | { detector: null; reason: Code; detail: string };

/** SOP classes that carry no image a detector could read (PS3.4 Annex B): SR family, KO, PR, SEG, RT, documents. */
const NON_IMAGE_SOP_PREFIXES = ['1.2.840.10008.5.1.4.1.1.88.', '1.2.840.10008.5.1.4.1.1.11.', '1.2.840.10008.5.1.4.1.1.66', '1.2.840.10008.5.1.4.1.1.481.', '1.2.840.10008.5.1.4.1.1.104.'];
const NON_IMAGE_MODALITIES = new Set(['SR', 'KO', 'PR', 'SEG', 'RTSTRUCT', 'RTPLAN', 'RTDOSE', 'DOC', 'REG', 'AU', 'ECG']);

/** Checks that hold for every detector: an image series that could be a source at all. */
function generalSuitability(s: SeriesInfo): RouteDecision | null {
  const imageType = s.imageType ?? [];
  if (s.isOwn) return { detector: null, reason: NOT_PROCESSED.ownOutput, detail: "the series is radnode's own output" };
  if ((s.modality && NON_IMAGE_MODALITIES.has(s.modality)) || (s.sopClassUID && NON_IMAGE_SOP_PREFIXES.some((p) => s.sopClassUID!.startsWith(p))))
    return { detector: null, reason: NOT_PROCESSED.nonImage, detail: `modality ${s.modality ?? '?'}, SOP class ${s.sopClassUID ?? '?'}` };
  if (imageType.includes('LOCALIZER')) return { detector: null, reason: NOT_PROCESSED.localizer, detail: `Image Type ${imageType.join('\\')}` };
  // Vendors mark dose screenshots differently: Philips DERIVED\SECONDARY\DOSE_INFO, GE "SCREEN SAVE", others by name.
  if (imageType.includes('SCREEN SAVE') || imageType.some((t) => t.includes('DOSE')) || /\bdose\b/i.test(s.seriesDescription ?? ''))
    return { detector: null, reason: NOT_PROCESSED.doseReport, detail: `Image Type ${imageType.join('\\')}, series "${s.seriesDescription ?? ''}"` };
  // DERIVED\SECONDARY marks reformats, screenshots and other AI output. Public chest films are Secondary Capture
  // objects without that Image Type, so the SOP class alone is no reason to skip (DESIGN §3).
  if (imageType[0] === 'DERIVED' && imageType.includes('SECONDARY'))
    return { detector: null, reason: NOT_PROCESSED.derived, detail: `Image Type ${imageType.join('\\')}` };
  return null;
}

const anyOf = (list: string[] | undefined, value: string | undefined) =>
  list === undefined || list.some((x) => x.toUpperCase() === (value ?? '').toUpperCase());

/** The identifying conditions: does this rule talk about this kind of series at all? */
function identifies(m: RoutingMatch, s: SeriesInfo): boolean {
  const imageType = s.imageType ?? [];
  return (
    anyOf(m.modality, s.modality) &&
    anyOf(m.sopClassUID, s.sopClassUID) &&
    anyOf(m.bodyPart, s.bodyPartExamined) &&
    anyOf(m.viewPosition, s.viewPosition) &&
    (m.imageTypeIncludes ?? []).every((t) => imageType.includes(t.toUpperCase())) &&
    !(m.imageTypeExcludes ?? []).some((t) => imageType.includes(t.toUpperCase())) &&
    (m.seriesDescription === undefined || new RegExp(m.seriesDescription, 'i').test(s.seriesDescription ?? '')) &&
    (m.seriesDescriptionExcludes === undefined || !new RegExp(m.seriesDescriptionExcludes, 'i').test(s.seriesDescription ?? ''))
  );
}

/** The suitability conditions: the rule is about this series, but the series is not good enough for it. */
function unsuitable(m: RoutingMatch, s: SeriesInfo): RouteDecision | null {
  if (m.minInstances !== undefined && s.instanceCount < m.minInstances)
    return { detector: null, reason: NOT_PROCESSED.tooFewImages, detail: `${s.instanceCount} images, at least ${m.minInstances} needed` };
  if (m.sliceThicknessMmMax !== undefined && s.sliceThicknessMm !== undefined && s.sliceThicknessMm > m.sliceThicknessMmMax)
    return { detector: null, reason: NOT_PROCESSED.sliceTooThick, detail: `slice thickness ${s.sliceThicknessMm} mm over ${m.sliceThicknessMmMax} mm` };
  if (m.sliceThicknessMmMin !== undefined && s.sliceThicknessMm !== undefined && s.sliceThicknessMm < m.sliceThicknessMmMin)
    return { detector: null, reason: NOT_PROCESSED.sliceTooThin, detail: `slice thickness ${s.sliceThicknessMm} mm under ${m.sliceThicknessMmMin} mm` };
  return null;
}

/**
 * Picks the detector for one series, or the coded reason it is not processed. Rules are tried in their configured
 * order (the order is the precedence); a rule that identifies the series but finds it unsuitable leaves its reason,
 * which stands unless a later rule takes the series.
 */
export function routeSeries(s: SeriesInfo, rules: RoutingRule[], detectors: ReadonlyMap<string, Detector>): RouteDecision {
  const general = generalSuitability(s);
  if (general) return general;
  let refusal: RouteDecision | null = null;
  for (const rule of rules) {
    if (!identifies(rule.match, s)) continue;
    const bad = unsuitable(rule.match, s);
    if (bad) {
      refusal ??= bad;
      continue;
    }
    const detector = detectors.get(rule.detector);
    if (!detector) {
      refusal ??= { detector: null, reason: NOT_PROCESSED.notInstalled, detail: `detector ${rule.detector} is not installed` };
      continue;
    }
    const sel = detector.select(s);
    if (!sel.accepted) {
      refusal ??= { detector: null, reason: sel.reason, detail: sel.detail };
      continue;
    }
    return { detector: rule.detector };
  }
  return refusal ?? { detector: null, reason: NOT_PROCESSED.noRule, detail: `modality ${s.modality ?? '?'}, body part ${s.bodyPartExamined ?? '?'}` };
}
