/**
 * Training patches for the CT nodule false-positive-reduction model (issue 7 item 3), from nodules inserted into the
 * two real LIDC volumes (insert.ts):
 *
 *   npx tsx models/ct/dump.ts [--cases LIDC-IDRI-0001,LIDC-IDRI-0002] [--seeds 1-6] [--count 25] [--jitter 4]
 *
 * For each case and seed: insert `count` nodules, run the pipeline's own lung mask and candidate finder on the
 * modified volume, label each candidate, cut the pipeline's own patches (patch.ts) and write them to
 * .cache/ct-train/<case>-s<seed>.bin (float32, n × 32³) with <case>-s<seed>.json (one label and its story per patch).
 *
 * Labels:
 * - positive: the candidate's centre is within the radius of an inserted nodule (the LUNA16 hit rule);
 * - positive, jittered: `jitter` extra patches per inserted nodule, centred within ±min(2 mm, d/4) of its centre, so
 *   that the model sees every nodule, including those the candidate finder ranks low or misses;
 * - dropped: near a real nodule of any LIDC reader (≥ 3 mm outlines, < 3 mm points: real nodules whose label we do
 *   not want to guess), and the ring between 1× and 1.5× an inserted nodule's radius (half on the nodule);
 * - negative: everything else, i.e. the real scan's vessels, airway walls, fissures, pleura, and the readers'
 *   non-nodule marks.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { patientToVoxel, type Vec3, type Volume } from '../../src/dicom/volume.ts';
import { findCandidates } from '../../src/detectors/ct/candidates.ts';
import { lungMask } from '../../src/detectors/ct/lung-mask.ts';
import type { Candidate } from '../../src/detectors/ct/types.ts';
import { insertNodules, type InsertedNodule, type InsertOptions } from './insert.ts';
import { dist, loadLidcCase, type LidcCase, type LidcMark } from './lidc.ts';
import { rng, type Rng } from './rng.ts';

// patch.ts is being written beside the pipeline (src/detectors/ct); loaded by path until it is committed.
type ExtractPatches = (volume: Volume, centres: Vec3[], channels?: number) => Float32Array;
const PATCH_MODULE = '../../src/detectors/ct/patch.ts';
export const loadExtractPatches = async (): Promise<ExtractPatches> => ((await import(PATCH_MODULE)) as { extractPatches: ExtractPatches }).extractPatches;

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const TRAIN_DIR = resolve(REPO, '.cache/ct-train');
export const CASES_DIR = resolve(REPO, '.cache/data/ct/lidc');

/**
 * The training inserts' mix (model 1.1.0). The test inserts of crossval.ts keep insert.ts's defaults (60/25/15 solid /
 * ground-glass / part-solid, 50/30/20 parenchymal / juxtapleural / juxtavascular, 15% 10–30 mm); training over-samples
 * the kinds the 1.0.0 model missed most on the cross-volume folds (ground glass, juxtavascular, large nodules next to
 * hilar vessels), so that each seed adds more of the hard positives. A change of training distribution only: the test
 * distribution, and so the figures' meaning, stays the same.
 */
export const TRAIN_MIX: Pick<InsertOptions, 'typeMix' | 'placementMix' | 'largeShare'> = {
  typeMix: { solid: 0.5, 'ground-glass': 0.32, 'part-solid': 0.18 },
  placementMix: { parenchymal: 0.35, juxtapleural: 0.3, juxtavascular: 0.35 },
  largeShare: 0.25,
};

export type CandidateLabel = { label: 0 | 1 | null; nodule?: InsertedNodule; why: string };

/** Places to keep inserted nodules away from, and to drop candidates near: every real nodule mark of any reader. */
export function realNoduleZones(marks: LidcMark[]): { patient: Vec3; radiusMm: number }[] {
  return marks
    .filter((m) => m.kind !== 'nonNodule')
    .map((m) => ({ patient: m.centrePatient, radiusMm: m.kind === 'nodule' ? (m.diameterMm ?? 10) / 2 + 5 : 5 }));
}

export function labelCandidate(c: Candidate, inserted: InsertedNodule[], zones: { patient: Vec3; radiusMm: number }[]): CandidateLabel {
  for (const z of zones) if (dist(c.patient, z.patient) < z.radiusMm) return { label: null, why: 'near a real LIDC nodule mark' };
  let near: CandidateLabel | undefined;
  for (const n of inserted) {
    const d = dist(c.patient, n.centrePatient);
    if (d < n.diameterMm / 2) return { label: 1, nodule: n, why: 'within the radius of an inserted nodule' };
    if (d < 0.75 * n.diameterMm) near = { label: null, nodule: n, why: 'on the rim of an inserted nodule' };
  }
  return near ?? { label: 0, why: 'real structure' };
}

type PatchMeta = {
  label: 0 | 1;
  kind: 'candidate' | 'jitter';
  noduleId?: number;
  type?: string;
  placement?: string;
  diameterMm?: number;
  scaleMm?: number;
  response?: number;
  rank?: number;
  patient: Vec3;
};

/**
 * Candidates labelled in full per training scan (the first 300 by filter response, the pipeline's count up to 1.3.0),
 * a recipe constant of the training data: the pipeline's own count (DEFAULT_MAX_CANDIDATES) may differ.
 */
export const LABELLED_RANKS = 300;

/** How far down the candidate ranking the extra negatives are drawn from. */
const EXTRA_FROM_RANKS = 1500;

/** `count` negatives drawn uniformly (seeded) from the candidates below the first LABELLED_RANKS, in rank order. */
export function extraNegativesOf(all: Candidate[], isNegative: (c: Candidate) => boolean, count: number, r: Rng): { cand: Candidate; rank: number }[] {
  const lower = all
    .map((cand, rank) => ({ cand, rank }))
    .slice(LABELLED_RANKS)
    .filter((x) => isNegative(x.cand));
  for (let i = lower.length - 1; i > 0; i--) {
    const j = Math.floor(r.next() * (i + 1));
    [lower[i], lower[j]] = [lower[j], lower[i]];
  }
  return lower.slice(0, Math.max(0, count)).sort((a, b) => a.rank - b.rank);
}

/**
 * One training scan: `count` nodules inserted with `seed`, every pipeline candidate labelled (label null = near a real
 * mark or on a nodule's rim: left out), `jitter` off-centre copies of each nodule, and `extraNegatives` candidates
 * drawn at random from ranks 300–1500 (model 1.3.0). The top 300 candidates of one scan are the same ~270 real
 * structures in every seed, so a fold model otherwise learns the negatives of a single scan; the lower-ranked ones,
 * drawn afresh per seed, show it several times as many distinct vessels, bronchi and fissure points.
 */
export async function dumpCase(
  c: LidcCase,
  seed: number,
  count: number,
  jitter: number,
  mix: Pick<InsertOptions, 'typeMix' | 'placementMix' | 'largeShare'> = TRAIN_MIX,
  extraNegatives = 0,
  channels = 1,
): Promise<{ patches: Float32Array; meta: PatchMeta[]; candidateRecall: number }> {
  const zones = realNoduleZones(c.marks);
  const base = lungMask(c.volume);
  const { voxels, nodules } = insertNodules(c.volume, { ...mix, seed, count, lung: base.mask, avoid: zones.map((z) => ({ ...z, radiusMm: z.radiusMm + 5 })) });
  const vol: Volume = { ...c.volume, voxels };
  const mask = lungMask(vol);
  const all = findCandidates(vol, mask, { maxCandidates: extraNegatives > 0 ? EXTRA_FROM_RANKS : LABELLED_RANKS });
  const cands = all.slice(0, LABELLED_RANKS);
  const centres: Vec3[] = [];
  const meta: PatchMeta[] = [];
  const found = new Set<number>();
  for (const { cand, rank } of extraNegativesOf(all, (c) => labelCandidate(c, nodules, zones).label === 0, extraNegatives, rng(seed * 104729 + 3))) {
    centres.push(cand.voxel);
    meta.push({ label: 0, kind: 'candidate', scaleMm: cand.scaleMm, response: cand.response, rank, patient: cand.patient });
  }
  cands.forEach((cand, rank) => {
    const l = labelCandidate(cand, nodules, zones);
    if (l.label === null) return;
    if (l.label === 1 && l.nodule) found.add(l.nodule.id);
    centres.push(cand.voxel);
    meta.push({
      label: l.label,
      kind: 'candidate',
      noduleId: l.label === 1 ? l.nodule?.id : undefined,
      type: l.label === 1 ? l.nodule?.type : undefined,
      placement: l.label === 1 ? l.nodule?.placement : undefined,
      diameterMm: l.label === 1 ? l.nodule?.diameterMm : undefined,
      scaleMm: cand.scaleMm,
      response: cand.response,
      rank,
      patient: cand.patient,
    });
  });
  const r = rng(seed * 7919 + 17);
  for (const n of nodules) {
    for (let q = 0; q < jitter; q++) {
      const j = Math.min(2, n.diameterMm / 4);
      const p: Vec3 = [n.centrePatient[0] + r.uniform(-j, j), n.centrePatient[1] + r.uniform(-j, j), n.centrePatient[2] + r.uniform(-j, j)];
      centres.push(patientToVoxel(vol.affine, p));
      meta.push({ label: 1, kind: 'jitter', noduleId: n.id, type: n.type, placement: n.placement, diameterMm: n.diameterMm, patient: p });
    }
  }
  const patches = (await loadExtractPatches())(vol, centres, channels);
  return { patches, meta, candidateRecall: nodules.length ? found.size / nodules.length : NaN };
}

function parseSeeds(s: string): number[] {
  const m = /^(\d+)-(\d+)$/.exec(s);
  if (m) return Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i);
  return s.split(',').map(Number);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (k: string, d: string): string => {
    const i = args.indexOf(k);
    return i >= 0 && args[i + 1] ? args[i + 1] : d;
  };
  const cases = opt('--cases', 'LIDC-IDRI-0001,LIDC-IDRI-0002').split(',');
  const seeds = parseSeeds(opt('--seeds', '1-6'));
  const count = Number(opt('--count', '25'));
  const jitter = Number(opt('--jitter', '4'));
  mkdirSync(TRAIN_DIR, { recursive: true });
  for (const name of cases) {
    const c = await loadLidcCase(join(CASES_DIR, name));
    for (const seed of seeds) {
      const t = Date.now();
      const { patches, meta, candidateRecall } = await dumpCase(c, seed, count, jitter);
      const stem = join(TRAIN_DIR, `${name}-s${seed}`);
      writeFileSync(`${stem}.bin`, Buffer.from(patches.buffer, patches.byteOffset, patches.byteLength));
      writeFileSync(`${stem}.json`, JSON.stringify({ case: name, seed, count, jitter, candidateRecall, patchSize: 32, meta }));
      const pos = meta.filter((m) => m.label === 1).length;
      process.stdout.write(`${name} seed ${seed}: ${meta.length} patches (${pos} positive, ${meta.length - pos} negative), candidate recall ${(100 * candidateRecall).toFixed(0)}%, ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
