import { describe, expect, it } from 'vitest';
import { DCM, UCUM } from '../codes.ts';
import { imageReference, polylineToBox, boxToPolyline, scoordRegion } from './geometry.ts';
import { tid1410PlanarRoiGroup } from './tid1410.ts';
import { tid1500MeasurementReport } from './tid1500.ts';
import { tid300Measurement } from './tid300.ts';
import { tid4019AlgorithmIdentification } from './tid4019.ts';
import { tid4108TrackingIdentifier } from './tid4108.ts';

const image = imageReference('1.2.840.10008.5.1.4.1.1.1', '1.2.3.4');
const algorithm = { name: 'cxr-demo', version: '1.0.0' };

describe('template builders check their own constraints (coded errors naming the argument)', () => {
  it('rejects an ellipse with fewer than four points (PS3.3 §C.18.6.1.2)', () => {
    expect(() => scoordRegion(DCM.ImageRegion, 'ellipse', [[1, 2], [3, 4]], image)).toThrow(expect.objectContaining({ code: 'RN_RESULT_INVALID', details: { argument: 'place.points' } }));
  });
  it('rejects a point with two points and a non-finite coordinate', () => {
    expect(() => scoordRegion(DCM.ImageRegion, 'point', [[1, 2], [3, 4]], image)).toThrow(/a point region cannot have 2 points/);
    expect(() => scoordRegion(DCM.ImageRegion, 'point', [[Number.NaN, 2]], image)).toThrow(/finite/);
  });
  it('rejects a tracking UID that is not a UID, and an empty tracking identifier (TID 4108)', () => {
    expect(() => tid4108TrackingIdentifier('x', '1.02.3')).toThrow(expect.objectContaining({ details: { argument: 'trackingUniqueIdentifier' } }));
    expect(() => tid4108TrackingIdentifier('', '1.2.3')).toThrow(expect.objectContaining({ details: { argument: 'trackingIdentifier' } }));
  });
  it('rejects a measurement with a code meaning over 64 characters and a NaN value (TID 300)', () => {
    expect(() => tid300Measurement({ value: 'x', scheme: 'DCM', meaning: 'm'.repeat(65) }, 1, UCUM.mm)).toThrow(expect.objectContaining({ details: { argument: 'measurement.concept' } }));
    expect(() => tid300Measurement(DCM.CertaintyOfFinding, Number.NaN, UCUM.probability)).toThrow(/finite/);
  });
  it('TID 4019 needs a name and a version', () => {
    expect(() => tid4019AlgorithmIdentification({ name: '', version: '1' })).toThrow(expect.objectContaining({ details: { argument: 'algorithm.name' } }));
    expect(tid4019AlgorithmIdentification({ name: 'a', version: '1', parameters: ['p=1'] }).map((i) => i.concept?.value)).toEqual(['111001', '111003', '111002']);
  });
  it('TID 1410 refuses a region without its SELECTED FROM image', () => {
    const region = { ...scoordRegion(DCM.ImageRegion, 'point', [[1, 2]], image), children: [] };
    expect(() => tid1410PlanarRoiGroup({ trackingIdentifier: 't', trackingUniqueIdentifier: '1.2.3', algorithm, measurements: [], evaluations: [], region })).toThrow(
      expect.objectContaining({ details: { argument: 'region' } }),
    );
  });
  it('TID 1500 refuses a report without procedure reported or image library (rows 4 and 5)', () => {
    const base = { observer: { uid: '1.2.3', name: 'd', manufacturer: 'm', modelName: 'x' }, measurementGroups: [], qualitativeEvaluations: [] };
    expect(() => tid1500MeasurementReport({ ...base, procedureReported: [], imageLibrary: [image] })).toThrow(expect.objectContaining({ details: { argument: 'procedureReported' } }));
    expect(() => tid1500MeasurementReport({ ...base, procedureReported: [DCM.Device], imageLibrary: [] })).toThrow(expect.objectContaining({ details: { argument: 'imageLibrary' } }));
  });
  it('TID 1500 refuses a measurement group without an image region (OHIF 3.13.2 fails the whole viewer on one)', () => {
    const base = { observer: { uid: '1.2.3', name: 'd', manufacturer: 'm', modelName: 'x' }, procedureReported: [DCM.Device], imageLibrary: [image], qualitativeEvaluations: [] };
    const tracking = tid4108TrackingIdentifier('t', '1.2.3');
    const noRegion = { valueType: 'CONTAINER' as const, concept: DCM.MeasurementGroup, continuity: 'SEPARATE' as const, children: [...tracking, tid300Measurement(DCM.CertaintyOfFinding, 0.5, UCUM.probability)] };
    expect(() => tid1500MeasurementReport({ ...base, measurementGroups: [noRegion] })).toThrow(expect.objectContaining({ code: 'RN_RESULT_INVALID', details: { argument: 'measurementGroups[0]' } }));
    // A NUM INFERRED FROM a SCOORD is a region for OHIF (its non-geometric path collects those coords).
    const region = scoordRegion(DCM.ImageRegion, 'point', [[1, 2]], image);
    const inferred = { ...noRegion, children: [...tracking, tid300Measurement(DCM.CertaintyOfFinding, 0.5, UCUM.probability, [{ ...region, relationship: 'INFERRED FROM' as const }])] };
    expect(() => tid1500MeasurementReport({ ...base, measurementGroups: [inferred] })).not.toThrow();
    expect(() => tid1500MeasurementReport({ ...base, measurementGroups: [] })).toThrow(expect.objectContaining({ details: { argument: 'qualitativeEvaluations' } }));
  });
  it('a box is a closed 5-point polyline and reads back as a box; other polylines do not', () => {
    const data = boxToPolyline([[10, 20], [30, 40]]);
    expect(data).toEqual([10, 20, 30, 20, 30, 40, 10, 40, 10, 20]);
    expect(polylineToBox(data)).toEqual([[10, 20], [30, 40]]);
    expect(polylineToBox([10, 20, 30, 20, 30, 40, 10, 40, 11, 20])).toBeUndefined();
  });
});
