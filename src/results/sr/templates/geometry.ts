/**
 * Image regions as SR spatial coordinates. SCOORD: PS3.3 §C.18.6 (column, row in image pixels, origin at the top
 * left corner of the top left pixel, Graphic Data FL). SCOORD3D: PS3.3 §C.18.9 (patient LPS in mm, FL).
 * OHIF renders POINT, MULTIPOINT, POLYLINE, CIRCLE and ELLIPSE with image-aligned axes (constants/scoordTypes.js,
 * utils/getRenderableData.ts); a box is therefore a closed 5-point POLYLINE.
 */
import { RadnodeError } from '../../../errors.ts';
import type { CodedConcept } from '../codes.ts';
import type { GraphicType2D, ImageItem, Scoord3DItem, ScoordItem } from '../content-items.ts';
import { checkFinite, checkUid } from './checks.ts';

export type RegionShape = 'point' | 'polyline' | 'ellipse' | 'box' | 'bidirectional';

const POINTS_REQUIRED: Record<RegionShape, (n: number) => boolean> = {
  point: (n) => n === 1,
  polyline: (n) => n >= 2,
  ellipse: (n) => n === 4, // PS3.3 §C.18.6.1.2: major axis end points, then minor axis end points
  box: (n) => n === 2, // radnode's box: top-left and bottom-right corners
  bidirectional: (n) => n === 4, // long axis end points, then short axis end points
};

export function boxToPolyline([[x0, y0], [x1, y1]]: [number, number][]): number[] {
  return [x0, y0, x1, y0, x1, y1, x0, y1, x0, y0];
}

/** The inverse of boxToPolyline: a closed axis-aligned rectangle written in that order reads back as a box. */
export function polylineToBox(data: number[]): [number, number][] | undefined {
  if (data.length !== 10) return undefined;
  const [x0, y0, x1, ya, xb, y1, xc, yb, xd, yc] = data;
  if (ya === y0 && xb === x1 && xc === x0 && yb === y1 && xd === x0 && yc === y0) return [[x0, y0], [x1, y1]];
  return undefined;
}

export function imageReference(sopClassUID: string, sopInstanceUID: string, frame?: number): ImageItem {
  checkUid(sopClassUID, 'sopClassUID');
  checkUid(sopInstanceUID, 'sopInstanceUID');
  return { valueType: 'IMAGE', relationship: 'SELECTED FROM', sopClassUID, sopInstanceUID, ...(frame !== undefined ? { frame } : {}) };
}

export function scoordRegion(
  concept: CodedConcept,
  shape: RegionShape,
  points: [number, number][],
  image: ImageItem,
): ScoordItem {
  if (!POINTS_REQUIRED[shape](points.length)) {
    throw new RadnodeError('RN_RESULT_INVALID', `a ${shape} region cannot have ${points.length} points`, { details: { argument: 'place.points' } });
  }
  points.flat().forEach((v, i) => checkFinite(v, `place.points[${i >> 1}]`));
  const graphicType: GraphicType2D = shape === 'point' ? 'POINT' : shape === 'ellipse' ? 'ELLIPSE' : 'POLYLINE';
  // A bidirectional finding's region is its long axis; both axes are also written as TID 300 NUMs (axisMeasurement).
  const data = shape === 'box' ? boxToPolyline(points) : shape === 'bidirectional' ? points.slice(0, 2).flat() : points.flat();
  return { valueType: 'SCOORD', relationship: 'CONTAINS', concept, graphicType, data, children: [image] };
}

export function scoord3DPoint(concept: CodedConcept, point: [number, number, number], frameOfReferenceUID: string): Scoord3DItem {
  checkUid(frameOfReferenceUID, 'place.frameOfReferenceUID');
  point.forEach((v, i) => checkFinite(v, `place.point[${i}]`));
  return { valueType: 'SCOORD3D', relationship: 'CONTAINS', concept, graphicType: 'POINT', data: [...point], frameOfReferenceUID };
}

/**
 * One axis of a bidirectional measurement as TID 300 writes it: a NUM in mm INFERRED FROM a two-point SCOORD
 * POLYLINE on the image, the shape dcmjs's TID300 Bidirectional produces and OHIF hydrates
 * (cornerstone adapters Cornerstone3D/Bidirectional.ts, MeasurementReport.getSetupMeasurementData).
 */
export function axisLengthMm(a: [number, number], b: [number, number], spacing: { rowMm: number; columnMm: number }): number {
  return Math.hypot((b[0] - a[0]) * spacing.columnMm, (b[1] - a[1]) * spacing.rowMm);
}

export function inferredFrom(region: ScoordItem): ScoordItem {
  return { ...region, relationship: 'INFERRED FROM' };
}
