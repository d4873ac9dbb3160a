/**
 * The chest radiograph detector (issue 5): frontal CR/DX chest films (and DX-like secondary captures such as the
 * public RSNA and NIH films) → probability of an abnormal opacity, a study score and priority from the manifest's
 * operating points, a finding with its box when positive, and the model's class activation map as the heatmap.
 * Any model whose manifest names detector 'cxr' runs here, so a site's own ONNX model needs no code.
 */
import { createHash } from 'node:crypto';
import type { ModelManifest } from '../../inference/manifest.ts';
import type { LoadedModel } from '../../inference/registry.ts';
import type { InferenceRuntime } from '../../inference/runtime.ts';
import type { RadiographReply } from '../../inference/protocol.ts';
import type { Code, DetectorResult, Finding, Priority } from '../../results/findings.ts';
import { NOT_PROCESSED } from '../../workflow/reasons.ts';
import { refuseColour } from '../colour.ts';
import { readEachImage } from '../read-images.ts';
import type { Detector, SelectResult, SeriesInfo } from '../detector.ts';

export const CXR_DETECTOR = 'cxr';

const MODALITIES = ['CR', 'DX'];
/** Empty is accepted: many exported films (the NIH ChestX-ray14 secondary captures) carry no Body Part Examined. */
const BODY_PARTS = ['CHEST', 'THORAX', ''];
const FRONTAL = ['PA', 'AP', ''];
/** PS3.3 C.8.11.5 (DX) and C.8.1 (CR) View Position values for a lateral projection, plus common vendor spellings. */
const LATERAL = ['LL', 'RL', 'LATERAL', 'LAT', 'LLAT', 'RLAT', 'XTABLE'];
/** Body parts a radiograph's description may name instead of the chest (PS3.16 Annex L terms and plain words). */
const OTHER_PARTS = /\b(abdomen|abd|pelvis|hip|knee|ankle|foot|feet|hand|wrist|elbow|shoulder|humerus|femur|tibia|skull|sinus|spine|c-spine|l-spine|t-spine|lumbar|cervical|kub)\b/i;
/** DX Image Storage - For Processing (PS3.4 B.5): raw detector data, not a film to read. */
const DX_FOR_PROCESSING = '1.2.840.10008.5.1.4.1.1.1.1.1';

/** A view that is not read, from View Position (or, without one, words): the reason, or undefined for a frontal view. */
function viewRefusal(view: string, words: string, where: string): { reason: Code; detail: string } | undefined {
  // "PA/LAT" or "Thorax pa + lat" names the exam's two views, not this image's: only a lateral named alone counts.
  const describedLateral = view === '' && /\b(lat|lateral|ll|rl)\b/i.test(words) && !/\b(pa|ap|frontal)\b/i.test(words);
  if (LATERAL.includes(view) || describedLateral) return { reason: NOT_PROCESSED.lateralView, detail: view ? `View Position ${view}` : `${where} "${words}"` };
  if (!FRONTAL.includes(view)) return { reason: NOT_PROCESSED.declined, detail: `View Position ${view}: only PA and AP views are read` };
  return undefined;
}

/** SNOMED CT finding sites: the side of the hot region when the image says which side is which. */
const SITE = {
  right: { scheme: 'SCT', value: '3341006', meaning: 'Right lung' },
  left: { scheme: 'SCT', value: '44029006', meaning: 'Left lung' },
} as const satisfies Record<string, Code>;

export function selectChestRadiograph(s: SeriesInfo): SelectResult {
  const modality = (s.modality ?? '').toUpperCase();
  if (!MODALITIES.includes(modality)) return { accepted: false, reason: NOT_PROCESSED.declined, detail: `modality ${s.modality ?? '(none)'}: the chest radiograph detector reads CR and DX only` };
  const colour = refuseColour(s);
  if (colour) return colour;
  const body = (s.bodyPartExamined ?? '').toUpperCase();
  if (!BODY_PARTS.includes(body)) return { accepted: false, reason: NOT_PROCESSED.notChest, detail: `Body Part Examined ${body}` };
  // An empty Body Part is common on exported films; then a description naming another part speaks instead.
  const otherPart = body === '' ? OTHER_PARTS.exec(s.seriesDescription ?? '') : null;
  if (otherPart) return { accepted: false, reason: NOT_PROCESSED.notChest, detail: `Series Description "${s.seriesDescription}"` };
  if (s.sopClassUID === DX_FOR_PROCESSING) return { accepted: false, reason: NOT_PROCESSED.forProcessing, detail: `SOP Class ${s.sopClassUID} is "for processing"` };
  // The series row carries its first image's View Position: it speaks for the series only when that is its one
  // image. A series of several (a PA and a lateral together) is taken, and each image is judged by its own view.
  if ((s.instanceCount ?? 1) > 1) return { accepted: true };
  const refusal = viewRefusal((s.viewPosition ?? '').toUpperCase(), s.seriesDescription ?? '', 'Series Description');
  return refusal ? { accepted: false, ...refusal } : { accepted: true };
}

type OkReply = Extract<RadiographReply, { kind: 'ok' }>;

/**
 * Per-image refusals: the intent and the view of each image (a lateral inside a PA series is not read as frontal),
 * and the patient's age against the model's population when both are known.
 */
export function refuseRadiograph(r: OkReply, population?: ModelManifest['population']): { reason: Code; detail: string } | undefined {
  if (r.presentationIntent === 'FOR PROCESSING') return { reason: NOT_PROCESSED.forProcessing, detail: 'Presentation Intent Type FOR PROCESSING' };
  if (population && r.ageYears !== undefined && (r.ageYears < population.ageYears[0] || r.ageYears > population.ageYears[1]))
    return { reason: NOT_PROCESSED.outsidePopulation, detail: `patient aged ${r.ageYears} years; the model was trained on ${population.ageYears[0]}-${population.ageYears[1]} years` };
  if (!r.viewPosition && /lateral/i.test(r.viewCode)) return { reason: NOT_PROCESSED.lateralView, detail: `View Code ${r.viewCode}` };
  return viewRefusal(r.viewPosition, '', 'View Code');
}

/** A Tracking Unique Identifier under 2.25 (PS3.5 B.2, UUID-derived) from the inputs, so a re-run gives the same one. */
function trackingUid(parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest().subarray(0, 16);
  return `2.25.${BigInt('0x' + h.toString('hex')).toString(10)}`;
}

/**
 * Which lung the region lies over: the worker tells the side only when Patient Orientation (0020,0020) placed the
 * film. Films without it get no site, since a flipped secondary capture would put the finding in the wrong lung.
 */
function siteOf(reply: OkReply): Code | undefined {
  return reply.side ? SITE[reply.side] : undefined;
}

export function priorityOf(score: number, op: LoadedModel['manifest']['operatingPoints']): Priority {
  if (op.urgent && score >= op.urgent.threshold) return 'urgent';
  if (score >= op.positive.threshold) return 'positive';
  return 'negative';
}

/** One detector per model whose manifest says detector 'cxr'. `id` is 'cxr' for the shipped model, the model id otherwise. */
export function createCxrDetector(model: LoadedModel, runtime: InferenceRuntime, id: string): Detector {
  const { manifest } = model;
  const identity = { id, version: manifest.version, modelSha256: model.sha256 };
  return {
    manifest: { ...identity, routing: manifest.routing },
    select: selectChestRadiograph,
    async run(input, ctx): Promise<DetectorResult> {
      const findings: Finding[] = [];
      let studyScore = 0;
      const images = await readEachImage(input, ctx.signal, (inst) => runtime.radiograph({ key: manifest.id, path: inst.path, spec: manifest, wantHeatmap: true }), (reply, inst) => {
        for (const label of manifest.labels) {
          const p = reply.scores[label.index];
          if (p === undefined || !Number.isFinite(p)) continue;
          studyScore = Math.max(studyScore, p);
          if (p < manifest.operatingPoints.positive.threshold) continue;
          // The CAM is the map of the model's positive class: it places the finding of a single-label model.
          const place = reply.hot && manifest.labels.length === 1 ? { sopInstanceUID: inst.sopInstanceUID, shape: 'box' as const, points: reply.hot.box.map(([x, y]) => [Math.round(x * 10) / 10, Math.round(y * 10) / 10] as [number, number]) } : undefined;
          const site = manifest.labels.length === 1 ? siteOf(reply) : undefined;
          findings.push({
            trackingUid: trackingUid([input.studyInstanceUID, inst.sopInstanceUID, model.sha256, String(label.index)]),
            trackingId: `${id}-${label.code.value}-${findings.length + 1}`,
            concept: label.code,
            probability: Math.round(p * 1e4) / 1e4,
            ...(site ? { site } : {}),
            ...(place ? { place } : {}),
          });
        }
      }, (reply) => refuseRadiograph(reply, manifest.population));
      const { read, skipped, heatmaps, timingsMs } = images;
      ctx.log.debug('cxr run', { images: read, skipped: skipped.length, timingsMs });
      const result: DetectorResult = {
        detector: identity,
        studyInstanceUID: input.studyInstanceUID,
        sourceSeries: input.series.map((s) => s.info.seriesInstanceUID),
        studyScore: read ? Math.round(studyScore * 1e4) / 1e4 : 0,
        priority: read ? priorityOf(studyScore, manifest.operatingPoints) : 'unprocessed',
        findings,
        heatmaps,
        skipped,
        timingsMs,
      };
      return result;
    },
  };
}
