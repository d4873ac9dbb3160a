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
