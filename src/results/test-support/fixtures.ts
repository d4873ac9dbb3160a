/** Shared fixtures for the results tests: a node identity, contexts, and results built on real source files. */
import { readFileSync } from 'node:fs';
import { readPart10, str, type DicomDataset } from '../dicom-io.ts';
import type { DetectorResult } from '../findings.ts';
import type { NodeIdentity, SourceInstance, WriteContext } from '../objects.ts';

export const NODE: NodeIdentity = {
  uidRoot: '1.2.826.0.1.3680043.10.1234',
  manufacturer: 'radnode',
  modelName: 'radnode',
  softwareVersion: '0.1.0',
  institutionName: 'Test Hospital',
  stationName: 'RADNODE1',
};

export function ctxFor(inputKey: string, over: Partial<WriteContext> = {}): WriteContext {
  return { node: NODE, contentDateTime: new Date(Date.UTC(2026, 10, 24, 10, 30, 15)), inputKey, srInstanceNumber: 1, ...over };
}

export function headerOf(path: string): DicomDataset {
  return readPart10(readFileSync(path), { untilPixelData: true }).dataset;
}

export function sourceOf(path: string): SourceInstance {
  const ds = headerOf(path);
  return {
    path,
    sopInstanceUID: str(ds, 'SOPInstanceUID') ?? '',
    sopClassUID: str(ds, 'SOPClassUID') ?? '',
    seriesInstanceUID: str(ds, 'SeriesInstanceUID') ?? '',
  };
}

export const DETECTOR = { id: 'cxr-demo', version: '1.0.0', modelSha256: 'ab'.repeat(32) };

export function emptyResult(studyInstanceUID: string, sourceSeries: string[], over: Partial<DetectorResult> = {}): DetectorResult {
  return {
    detector: DETECTOR,
    studyInstanceUID,
    sourceSeries,
    studyScore: 0.125,
    priority: 'negative',
    findings: [],
    heatmaps: [],
    skipped: [],
    ...over,
  };
}

// ---- findings of each kind (DESIGN §4), with coordinates exactly representable in FL ----
import type { Finding, Place2D } from '../findings.ts';
import { deriveUid } from '../uids.ts';

export const CODES = {
  nodule: { scheme: 'SCT', value: '27925004', meaning: 'Nodule' },
  opacity: { scheme: 'SCT', value: '263716002', meaning: 'Lung opacity' },
  mass: { scheme: 'SCT', value: '4147007', meaning: 'Mass' },
  rightLung: { scheme: 'SCT', value: '3341006', meaning: 'Right lung' },
  leftBreast: { scheme: 'SCT', value: '80248007', meaning: 'Left breast' },
  diameter: { scheme: 'DCM', value: '121211', meaning: 'Path length' },
  longAxis: { scheme: 'SCT', value: '103339001', meaning: 'Long Axis' },
  volume: { scheme: 'SCT', value: '118565006', meaning: 'Volume' },
  lungRads: { scheme: 'RADLEX', value: 'RID50134', meaning: 'Lung-RADS size category' },
  lungRads4A: { scheme: 'RADLEX', value: 'RID50139', meaning: 'Lung-RADS 4A' },
} as const satisfies Record<string, Finding['concept']>;

export function finding(n: number, place: Finding['place'], over: Partial<Finding> = {}): Finding {
  return {
    trackingUid: deriveUid(NODE.uidRoot, 'trackingUid', ['test', String(n)]),
    trackingId: `finding-${n}`,
    concept: CODES.opacity,
    probability: 0.8125 - n / 64,
    ...(place ? { place } : {}),
    ...over,
  };
}

export function place2D(sopInstanceUID: string, shape: Place2D['shape'], points: [number, number][]): Place2D {
  return { sopInstanceUID, shape, points };
}

/** A Gaussian blob heatmap (values 0..1) at a given place of a width×height grid. */
export function blob(width: number, height: number, cx: number, cy: number, sigma: number): Float32Array {
  const v = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) v[y * width + x] = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma * sigma));
  return v;
}
