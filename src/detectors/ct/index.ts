/**
 * The CT lung-nodule detector (issue 7): a chest CT study → the best thin axial series (select.ts) → nodules found,
 * classified by the model and measured (pipeline.ts, in the inference worker) → one finding per nodule at or above
 * the manifest's positive operating point, with its 3D centre, a bidirectional measurement on the key slice (the
 * axial slice of largest extent), mean diameter, volume, attenuation type, Lung-RADS size category and Fleischner
 * size band; one heatmap per key slice. Any model whose manifest names detector 'ct' runs here.
 *
 * Codes. Standard where one exists: the finding is the model's label (SCT 786838002 Pulmonary nodule for the shipped
 * model; SCT 27925004 Nodule when a manifest has none), SCT 118565006 Volume; long and short axis
 * (SCT 103339001 / 103340004) are written by the SR writer from the bidirectional points. Private 99RADNODE codes,
 * documented in models/ct/CARD.md and docs, where none does: the mean diameter as Lung-RADS and Fleischner define it
 * ((long + short) / 2 on one axial slice; SNOMED's Diameter has no "mean of two axes" form without a modifier the
 * writer does not emit), the Lung-RADS size category and the Fleischner band (ACR and Fleischner Society categories
 * have no SNOMED or DICOM codes), and the attenuation type.
 */
import { createHash } from 'node:crypto';
import type { LoadedModel } from '../../inference/registry.ts';
import type { InferenceRuntime } from '../../inference/runtime.ts';
import type { CtReply } from '../../inference/protocol.ts';
import type { Code, DetectorResult, Evaluation, Finding, Heatmap, Measurement } from '../../results/findings.ts';
import { priorityOf } from '../cxr/index.ts';
import type { Detector } from '../detector.ts';
import { selectCt, thinSliceWorthWaiting } from './select.ts';
import type { FleischnerBand, LungRadsCategory, Nodule, NoduleType } from './types.ts';

export const CT_DETECTOR = 'ct';

const rn = (value: string, meaning: string): Code => ({ scheme: '99RADNODE', value, meaning });

export const CT_CODES = {
  nodule: { scheme: 'SCT', value: '27925004', meaning: 'Nodule' } as Code,
  volume: { scheme: 'SCT', value: '118565006', meaning: 'Volume' } as Code,
  meanDiameter: rn('RN-CT-MEANDIAM', 'Mean diameter, (long axis + short axis) / 2'),
  solidMeanDiameter: rn('RN-CT-SOLIDDIAM', 'Mean diameter of the solid component'),
  lungRads: rn('RN-CT-LUNGRADS', 'Lung-RADS v2022 size category'),
  fleischner: rn('RN-CT-FLEISCHNER', 'Fleischner 2017 size band'),
  noduleType: rn('RN-CT-TYPE', 'Nodule attenuation type'),
  /** Only on a nodule the model was sure of but the segmentation could not outline (NoduleMeasurement.sizeEstimated). */
  sizeSource: rn('RN-CT-SIZESRC', 'Source of the nodule size'),
  sizeFromScale: rn('RN-CT-SCALE', 'Detection scale estimate, not segmented'),
  lungRadsValue: {
    '2': rn('RN-LR-2', 'Lung-RADS 2 (benign appearance or behavior)'),
    '3': rn('RN-LR-3', 'Lung-RADS 3 (probably benign)'),
    '4A': rn('RN-LR-4A', 'Lung-RADS 4A (suspicious)'),
    '4B': rn('RN-LR-4B', 'Lung-RADS 4B (very suspicious)'),
  } satisfies Record<LungRadsCategory, Code>,
  fleischnerValue: {
    '<6 mm': rn('RN-FL-LT6', 'Under 6 mm'),
    '6-8 mm': rn('RN-FL-6TO8', '6 to 8 mm'),
    '>8 mm': rn('RN-FL-GT8', 'Over 8 mm'),
  } satisfies Record<FleischnerBand, Code>,
  typeValue: {
    solid: rn('RN-CT-SOLID', 'Solid'),
    'part-solid': rn('RN-CT-PARTSOLID', 'Part-solid'),
    'ground-glass': rn('RN-CT-GGO', 'Ground-glass (non-solid)'),
  } satisfies Record<NoduleType, Code>,
} as const;

/** A Tracking Unique Identifier under 2.25 (PS3.5 B.2) from the inputs, so a re-run of the same input gives the same one. */
function trackingUid(parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest().subarray(0, 16);
  return `2.25.${BigInt('0x' + h.toString('hex')).toString(10)}`;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
/** Quarter pixels: exactly representable in the SR's FL coordinates, and finer than any reader's caliper. */
const q = (x: number) => Math.round(x * 4) / 4;

type Ok = Extract<CtReply, { kind: 'ok' }>;

/** One finding per nodule: SCOORD3D centre, bidirectional key image, sizes, categories (issue 7 items 4–5). */
export function noduleFinding(n: Nodule, reply: Ok, index: number, idPrefix: string, uidParts: string[], concept: Code = CT_CODES.nodule): Finding {
  const measurements: Measurement[] = [{ concept: CT_CODES.meanDiameter, value: r1(n.meanDiameterMm), unit: 'mm' }];
  // A size from the blob scale is an estimate: say so, and give no volume (there is no segmentation to count).
  if (!n.sizeEstimated) measurements.push({ concept: CT_CODES.volume, value: Math.round(n.volumeMm3), unit: 'mm3' });
  if (n.type === 'part-solid' && n.solidMeanDiameterMm !== undefined) measurements.push({ concept: CT_CODES.solidMeanDiameter, value: r1(n.solidMeanDiameterMm), unit: 'mm' });
  const evaluations: Evaluation[] = [
    { concept: CT_CODES.noduleType, value: CT_CODES.typeValue[n.type] },
    { concept: CT_CODES.lungRads, value: CT_CODES.lungRadsValue[n.lungRads] },
    { concept: CT_CODES.fleischner, value: CT_CODES.fleischnerValue[n.fleischner] },
    ...(n.sizeEstimated ? [{ concept: CT_CODES.sizeSource, value: CT_CODES.sizeFromScale }] : []),
  ];
  const [a, b] = n.longAxis;
  const [c, d] = n.shortAxis;
  const voxel = n.centreVoxel.map((v) => Math.round(v)).join(',');
  return {
    trackingUid: trackingUid([...uidParts, voxel]),
    trackingId: `${idPrefix}-nodule-${index + 1}`,
    concept,
    probability: r4(n.probability),
    place: {
      frameOfReferenceUID: reply.frameOfReferenceUID,
      point: [r1(n.centrePatient[0]), r1(n.centrePatient[1]), r1(n.centrePatient[2])],
      keyImage: {
        sopInstanceUID: reply.sliceSopInstanceUIDs[n.keySlice],
        shape: 'bidirectional',
        // Long axis end points, then short axis end points: the order OHIF's Bidirectional tool hydrates. The axes are
        // in voxel indices (a pixel's centre at its index); SCOORD puts (0,0) at the top-left pixel's corner, so its
        // centre is at +0.5 (PS3.3 C.18.6.1.1).
        points: [a, b, c, d].map(([x, y]): [number, number] => [q(x + 0.5), q(y + 0.5)]),
      },
    },
    measurements,
    evaluations,
  };
}

/**
 * Nodules are measured from this probability up (or from the positive operating point, if lower) so that the study
 * score is the most suspicious nodule even when none is reported; only those at the operating point become findings.
 */
export const STUDY_SCORE_FLOOR = 0.5;

/** Grid of the per-slice heatmaps; the SC writer scales it to the slice. 128 cells resolve a 5 mm nodule on a 35 cm field. */
export const HEATMAP_GRID = 128;

/**
 * One heatmap per key slice (never one per slice of the series: a 300-frame SC of mostly empty maps helps no one):
 * each nodule whose sphere crosses the slice adds a Gaussian of its radius there, scaled by its probability.
 */
export function keySliceHeatmaps(nodules: Nodule[], reply: Ok): Heatmap[] {
  const keys = [...new Set(nodules.map((n) => n.keySlice))].sort((x, y) => x - y);
  const g = HEATMAP_GRID;
  const sx = g / reply.columns;
  const sy = g / reply.rows;
  return keys.map((k) => {
    const values = new Float32Array(g * g);
    for (const n of nodules) {
      const radiusMm = n.meanDiameterMm / 2;
      const dzMm = Math.abs(k - n.centreVoxel[2]) * reply.sliceSpacingMm;
      if (dzMm > radiusMm && n.keySlice !== k) continue;
      const rMm = n.keySlice === k ? radiusMm : Math.sqrt(radiusMm * radiusMm - dzMm * dzMm);
      const sigmaX = Math.max(1, (rMm / reply.pixelSpacingMm[1]) * sx);
      const sigmaY = Math.max(1, (rMm / reply.pixelSpacingMm[0]) * sy);
      // Grid cell x spans [x, x + 1) in grid units; voxel i's centre lies at i + 0.5 on the slice.
      const cx = (n.centreVoxel[0] + 0.5) * sx;
      const cy = (n.centreVoxel[1] + 0.5) * sy;
      const x0 = Math.max(0, Math.floor(cx - 3 * sigmaX));
      const x1 = Math.min(g - 1, Math.ceil(cx + 3 * sigmaX));
      const y0 = Math.max(0, Math.floor(cy - 3 * sigmaY));
      const y1 = Math.min(g - 1, Math.ceil(cy + 3 * sigmaY));
      for (let y = y0; y <= y1; y++)
        for (let x = x0; x <= x1; x++) {
          const v = n.probability * Math.exp(-(((x + 0.5 - cx) / sigmaX) ** 2 + ((y + 0.5 - cy) / sigmaY) ** 2) / 2);
          if (v > values[y * g + x]) values[y * g + x] = v;
        }
    }
    return { sopInstanceUID: reply.sliceSopInstanceUIDs[k], width: g, height: g, values };
  });
}

const roundTimings = (t: Record<string, number>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v * 10) / 10]));

/** One detector per model whose manifest says detector 'ct'. `id` is 'ct' for the shipped model, the model id otherwise. */
export function createCtDetector(model: LoadedModel, runtime: InferenceRuntime, id: string): Detector {
  const { manifest } = model;
  const identity = { id, version: manifest.version, modelSha256: model.sha256 };
  const positive = manifest.operatingPoints.positive.threshold;
  // The model's own label (the shipped one: SCT 786838002 Pulmonary nodule), else SCT 27925004 Nodule.
  const concept = manifest.labels[0]?.code ?? CT_CODES.nodule;
  return {
    manifest: { ...identity, routing: manifest.routing },
    select: selectCt,
    worthWaiting: thinSliceWorthWaiting,
    async run(input, ctx): Promise<DetectorResult> {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      const started = performance.now();
      const reply = await runtime.ct({
        key: manifest.id,
        series: input.series.map((s) => ({ seriesInstanceUID: s.info.seriesInstanceUID, paths: s.instances.map((i) => i.path) })),
        spec: { input: manifest.input, outputs: manifest.outputs },
        // Measured down to the floor so the study score can say how close the best sub-threshold nodule came.
        minProbability: Math.min(positive, STUDY_SCORE_FLOOR),
      });
      const base = { detector: identity, studyInstanceUID: input.studyInstanceUID };
      if (reply.kind === 'refused') {
        ctx.log.info('ct: no series read', { skipped: reply.skipped.map((s) => s.reason.value) });
        return { ...base, sourceSeries: [], studyScore: 0, priority: 'unprocessed', findings: [], heatmaps: [], skipped: reply.skipped, timingsMs: roundTimings(reply.timingsMs) };
      }
      const t = performance.now();
      const uidParts = [input.studyInstanceUID, reply.seriesInstanceUID, model.sha256];
      const nodules = reply.nodules.filter((n) => n.probability >= positive).sort((a, b) => b.probability - a.probability);
      const findings = nodules.map((n, i) => noduleFinding(n, reply, i, id, uidParts, concept));
      const heatmaps = keySliceHeatmaps(nodules, reply);
      // The study score is the most suspicious nodule (issue 7 item 4), reported or not: a study whose best nodule
      // sits just under the operating point reads differently from one with nothing over the floor (score 0).
      const studyScore = reply.nodules.reduce((m, n) => Math.max(m, n.probability), 0);
      const timingsMs = roundTimings({ ...reply.timingsMs, postprocess: performance.now() - t, total: performance.now() - started });
      ctx.log.info('ct run', { series: reply.seriesInstanceUID, why: reply.why, nodules: nodules.length, candidates: reply.candidateCount, lungVolumeMl: Math.round(reply.lungVolumeMl), timingsMs });
      return {
        ...base,
        sourceSeries: [reply.seriesInstanceUID],
        studyScore: r4(studyScore),
        priority: priorityOf(studyScore, manifest.operatingPoints),
        findings,
        heatmaps,
        skipped: reply.skipped,
        seriesChoice: reply.why,
        timingsMs,
      };
    },
  };
}

