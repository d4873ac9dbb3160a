/**
 * The mammography detector (issue 6): MG images for presentation (and breast tomosynthesis synthetic 2D views) →
 * per-image suspicion and lesion map, per-breast scores fusing the views, an exam score and priority from the
 * manifest's operating points, and a finding (ellipse) on each image whose map peaks above the operating point.
 * Any model whose manifest names detector 'mammo' runs here.
 *
 * View fusion (documented in models/mammo/CARD.md): a breast's score is the maximum of its views' probabilities;
 * when its CC-like and its MLO-like projection are each at or above the positive operating point, the views agree and
 * the score is their noisy-OR, 1 − (1 − p_CC)(1 − p_MLO), which is above either. Agreement of two independent
 * projections is the reason a reader trusts a finding seen on both CC and MLO; images of one projection (a repeat, a
 * tile, a synthetic 2D view of the same compression) are one piece of evidence and count once. A finding on one view
 * only keeps its own probability (neither amplified nor diluted, since a lesion may hide in the other projection).
 * The exam score is the maximum over breasts; an exam where a breast may have gone unread is never called negative.
 */
import { createHash } from 'node:crypto';
import type { LoadedModel } from '../../inference/registry.ts';
import type { InferenceRuntime } from '../../inference/runtime.ts';
import type { MammogramReply } from '../../inference/protocol.ts';
import type { Code, DetectorResult, Finding } from '../../results/findings.ts';
import { NOT_PROCESSED } from '../../workflow/reasons.ts';
import { priorityOf } from '../cxr/index.ts';
import { refuseColour } from '../colour.ts';
import { readEachImage } from '../read-images.ts';
import type { Detector, SelectResult, SeriesInfo } from '../detector.ts';

export const MAMMO_DETECTOR = 'mammo';

/** SOP Classes (PS3.4 B.5): Digital Mammography X-Ray for Presentation, Breast Tomosynthesis (synthetic 2D lives in MG or BTO). */
const MG_PRESENTATION = '1.2.840.10008.5.1.4.1.1.1.2';
const MG_PROCESSING = '1.2.840.10008.5.1.4.1.1.1.2.1';
const BTO_PRESENTATION = '1.2.840.10008.5.1.4.1.1.13.1.3';
const BTO_PROCESSING = '1.2.840.10008.5.1.4.1.1.13.1.5';
/** Secondary captures and legacy films arrive under other classes; routing already said MG, so they are read too. */
const PROCESSING_CLASSES = [MG_PROCESSING, BTO_PROCESSING, '1.2.840.10008.5.1.4.1.1.1.1.1'];

/** SNOMED CT, DICOM CID 6023 (Side from BI-RADS). */
export const BREAST_SITE = {
  L: { scheme: 'SCT', value: '80248007', meaning: 'Left breast' },
  R: { scheme: 'SCT', value: '73056007', meaning: 'Right breast' },
  // Image Laterality B: a cleavage view shows both (CID 6022).
  B: { scheme: 'SCT', value: '63762007', meaning: 'Both breasts' },
} as const satisfies Record<string, Code>;

type Side = keyof typeof BREAST_SITE;
const isSide = (l: string): l is Side => l === 'L' || l === 'R' || l === 'B';

const BREAST_SCORE: Code = { scheme: '99RADNODE', value: 'RN-MG-BREAST', meaning: 'Breast suspicion score (views fused)' };

/** Above this flat fraction an image is taken for a synthetic/calibration image (measured values: mammogram.ts). */
export const MAX_FLAT_FRACTION = 0.5;

const QC_WORDS = /\b(QC|CALIBRATION|CALIB|PHANTOM|FLAT ?FIELD|FLATFIELD|TEST ?PATTERN|CONSTANCY)\b/i;
/** "Implant(s)" not negated ("no implant", "w/o implants" are screening exams), or an implant-displaced view label. */
const IMPLANT_WORDS = /(?<!\b(?:no|w\/o|without|non)[\s-]+)\bimplants?\b|\b[RL]?[\s_-]?(?:CC|MLO|ML|LM|XCCL|XCCM)[\s_-]?ID\b/i;
/** View Position values with the implant-displaced suffix (CCID, MLOID, ...). */
const IMPLANT_VIEW_POSITION = /^(CC|MLO|ML|LM|XCCL|XCCM|FB|SIO)ID$/;
/**
 * Work-up and interventional images (CID 4015 modifiers, CID 4014 views, Image Type words): a spot or magnified
 * field, a specimen radiograph or a stereotactic biopsy image is not a whole breast, so its score would mean nothing.
 */
const WORKUP_MODIFIER = /\b(399163009|399055006|R-102D7)\b|magnif|spot/i;
const WORKUP_VIEW = /specimen/i;
const WORKUP_IMAGE_TYPE = /^(STEREO|BIOPSY|SPECIMEN|MAG|MAGNIFICATION|SPOT)$/;

export function selectMammogram(s: SeriesInfo): SelectResult {
  const modality = (s.modality ?? '').toUpperCase();
  if (modality !== 'MG') return { accepted: false, reason: NOT_PROCESSED.declined, detail: `modality ${s.modality ?? '(none)'}: the mammography detector reads MG only` };
  const colour = refuseColour(s);
  if (colour) return colour;
  // A series of slice stacks only is refused from its header; in a series that mixes stacks with a synthetic 2D view
  // the worker refuses each stack when it reads it (RN-NP-MULTIFRAME either way).
  if (s.multiFrameCount && s.multiFrameCount === s.instanceCount)
    return { accepted: false, reason: NOT_PROCESSED.multiFrame, detail: `${s.instanceCount === 1 ? 'its one object has' : `all ${s.instanceCount} objects have`} several frames (tomosynthesis slices or projections), not a 2D view` };
  if (s.sopClassUID && PROCESSING_CLASSES.includes(s.sopClassUID))
    return { accepted: false, reason: NOT_PROCESSED.forProcessing, detail: `SOP Class ${s.sopClassUID} is "for processing"` };
  const words = [s.seriesDescription ?? '', ...(s.imageType ?? [])].join(' ');
  if (QC_WORDS.test(words)) return { accepted: false, reason: NOT_PROCESSED.qualityControl, detail: `"${words.trim()}"` };
  if (IMPLANT_WORDS.test(s.seriesDescription ?? '')) return { accepted: false, reason: NOT_PROCESSED.implant, detail: `Series Description "${s.seriesDescription}"` };
  return { accepted: true };
}

type OkReply = Extract<MammogramReply, { kind: 'ok' }>;

/** Per-image refusals the series attributes cannot show: the intent, view modifiers and implant flag live per image. */
export function refuseImage(r: OkReply): { reason: Code; detail: string } | undefined {
  if (r.presentationIntent === 'FOR PROCESSING') return { reason: NOT_PROCESSED.forProcessing, detail: 'Presentation Intent Type FOR PROCESSING' };
  // BOTH (a patient image with a test object in the field) is still a breast to read.
  if (r.qualityControlImage === 'YES') return { reason: NOT_PROCESSED.qualityControl, detail: 'Quality Control Image YES' };
  const implant = r.viewModifiers.find((m) => /implant|399209000/i.test(m));
  if (implant) return { reason: NOT_PROCESSED.implant, detail: `View Modifier ${implant}` };
  if (IMPLANT_VIEW_POSITION.test(r.viewPosition)) return { reason: NOT_PROCESSED.implant, detail: `View Position ${r.viewPosition}` };
  if (r.implantPresent) return { reason: NOT_PROCESSED.implant, detail: 'Breast Implant Present YES' };
  const workup = r.viewModifiers.find((m) => WORKUP_MODIFIER.test(m));
  if (workup) return { reason: NOT_PROCESSED.workupView, detail: `View Modifier ${workup}` };
  if (WORKUP_VIEW.test(r.viewCode)) return { reason: NOT_PROCESSED.workupView, detail: `View Code ${r.viewCode}` };
  const workupType = r.imageType.slice(2).find((t) => WORKUP_IMAGE_TYPE.test(t));
  if (workupType) return { reason: NOT_PROCESSED.workupView, detail: `Image Type ${r.imageType.join('\\')}` };
  // A calibration or test pattern sent as MG carries no QC word: its flat synthetic content gives it away.
  if (r.content.flatFraction > MAX_FLAT_FRACTION)
    return { reason: NOT_PROCESSED.qualityControl, detail: `${Math.round(r.content.flatFraction * 100)}% of neighbouring pixels identical: a synthetic or calibration image, or a film shown inverted (check Photometric Interpretation), not a readable mammogram` };
  const qc = r.imageType.find((t) => QC_WORDS.test(t));
  if (qc) return { reason: NOT_PROCESSED.qualityControl, detail: `Image Type ${r.imageType.join('\\')}` };
  return undefined;
}

/** The two standard projections; a view of unknown projection (OTHER) can never be the second, agreeing one. */
export type Projection = 'CC' | 'MLO' | 'OTHER';

/** CID 4014 views by projection: CC-like (from above or below) and lateral/oblique. */
export function projectionOf(view: string): Projection {
  if (['CC', 'XCCL', 'XCCM', 'FB'].includes(view)) return 'CC';
  if (['MLO', 'ML', 'LM', 'SIO'].includes(view)) return 'MLO';
  return 'OTHER';
}

/**
 * The fusion rule above, on one breast's images. Images of the same projection are not independent evidence (a
 * repeat, a second tile of a large breast, the synthetic 2D of the same compression), so each projection counts once
 * with its highest probability; only a CC and an MLO projection both at or above the positive point agree.
 */
export function fuseViews(views: { projection: Projection; p: number }[], positive: number): number {
  if (!views.length) return 0;
  const best = new Map<Projection, number>();
  for (const v of views) best.set(v.projection, Math.max(best.get(v.projection) ?? 0, v.p));
  const agreeing = (['CC', 'MLO'] as const).map((k) => best.get(k)).filter((p): p is number => p !== undefined && p >= positive);
  if (agreeing.length === 2) return 1 - agreeing.reduce((acc, p) => acc * (1 - p), 1);
  return Math.max(...best.values());
}

/**
 * Whether a breast may have gone unread: a side whose every image was refused, or, when an image was skipped before
 * its side was known (unreadable, a slice stack, colour), fewer than both breasts read. A study that simply holds one
 * breast (after a mastectomy) cannot be told apart and is not flagged.
 */
export function unreadBreast(readSides: string[], refusedSides: Set<string>, skippedUnknownSide: number): boolean {
  const read = new Set(readSides.filter(isSide));
  const both = read.has('B') || (read.has('L') && read.has('R'));
  if ([...refusedSides].some((s) => (s === 'L' || s === 'R') && !read.has(s) && !read.has('B'))) return true;
  return skippedUnknownSide > 0 && !both;
}

function trackingUid(parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest().subarray(0, 16);
  return `2.25.${BigInt('0x' + h.toString('hex')).toString(10)}`;
}

const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

export function createMammoDetector(model: LoadedModel, runtime: InferenceRuntime, id: string): Detector {
  const { manifest } = model;
  const identity = { id, version: manifest.version, modelSha256: model.sha256 };
  const label = manifest.labels[0];
  return {
    manifest: { ...identity, routing: manifest.routing },
    select: selectMammogram,
    async run(input, ctx): Promise<DetectorResult> {
      const findings: Finding[] = [];
      const byBreast = new Map<string, { projection: Projection; p: number }[]>();
      const refusedSides = new Set<string>();
      let refusedWithSide = 0;
      const threshold = manifest.operatingPoints.positive.threshold;
      const infer = (inst: { path: string }) => runtime.mammogram({ key: manifest.id, path: inst.path, spec: manifest, wantHeatmap: true });
      const refuse = (reply: OkReply) => {
        const refusal = refuseImage(reply);
        if (refusal && isSide(reply.laterality)) {
          refusedWithSide++;
          refusedSides.add(reply.laterality);
        }
        return refusal;
      };
      const images = await readEachImage(input, ctx.signal, infer, (reply, inst) => {
        const p = reply.scores[label?.index ?? 0];
        if (p === undefined || !Number.isFinite(p)) return;
        // Images without a known side still count for the exam, under their own key.
        const side = isSide(reply.laterality) ? reply.laterality : `U:${inst.sopInstanceUID}`;
        byBreast.set(side, [...(byBreast.get(side) ?? []), { projection: projectionOf(reply.view), p }]);
        if (p < threshold || !reply.peak || !label) return;
        const site = isSide(reply.laterality) ? BREAST_SITE[reply.laterality] : undefined;
        findings.push({
          trackingUid: trackingUid([input.studyInstanceUID, inst.sopInstanceUID, model.sha256, 'lesion']),
          trackingId: `${id}-lesion-${findings.length + 1}`,
          concept: label.code,
          probability: r4(p),
          ...(site ? { site } : {}),
          place: { sopInstanceUID: inst.sopInstanceUID, shape: 'ellipse', points: reply.peak.ellipse },
        });
      }, refuse);
      const { read, skipped, heatmaps, timingsMs } = images;
      let studyScore = 0;
      for (const [side, views] of byBreast) {
        const score = fuseViews(views, threshold);
        studyScore = Math.max(studyScore, score);
        if (!isSide(side)) continue;
        // The breast score as a placeless finding: the SR lists it with its site among the qualitative evaluations.
        findings.push({
          trackingUid: trackingUid([input.studyInstanceUID, side, model.sha256, 'breast']),
          trackingId: `${id}-breast-${side}`,
          concept: BREAST_SCORE,
          probability: r4(score),
          site: BREAST_SITE[side],
        });
      }
      const incomplete = unreadBreast([...byBreast.keys()], refusedSides, skipped.length - refusedWithSide);
      let priority = read ? priorityOf(studyScore, manifest.operatingPoints) : 'unprocessed';
      // A score can raise an exam with an unread breast, never clear it: "negative" would say both breasts were read.
      if (incomplete && priority === 'negative') priority = 'unprocessed';
      ctx.log.debug('mammo run', { images: read, breasts: byBreast.size, skipped: skipped.length, incomplete, timingsMs });
      return {
        detector: identity,
        studyInstanceUID: input.studyInstanceUID,
        sourceSeries: input.series.map((s) => s.info.seriesInstanceUID),
        studyScore: read ? r4(studyScore) : 0,
        priority,
        findings,
        heatmaps,
        skipped,
        timingsMs,
      };
    },
  };
}
