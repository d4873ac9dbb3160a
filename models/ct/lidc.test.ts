/**
 * The LIDC XML and LUNA16 CSV readers on the two shared cases: the per-reader counts of ../shared/data/ct/README.md,
 * and the placed marks against LUNA16's own coordinates and diameters (an independent derivation of the same outlines).
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sharedFile, unpackedFile } from '../../test/helpers/paths.ts';
import { clusterNoduleMarks, dist, loadLidcCase, parseLidcXml, parseLunaCsv, type LidcCase, type LunaRow } from './lidc.ts';

const SERIES_1 = '1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192';
const SERIES_2 = '1.3.6.1.4.1.14519.5.2.1.6279.6001.619372068417051974713149104919';

const counts = (xmlPath: string): Record<string, [number, number, number]> =>
  Object.fromEntries(
    parseLidcXml(readFileSync(xmlPath, 'utf8')).readers.map((r) => [
      r.readerId,
      [r.nodules.filter((n) => n.kind === 'nodule').length, r.nodules.filter((n) => n.kind === 'small').length, r.nonNodules.length],
    ]),
  );

describe('models/ct LIDC XML reader', () => {
  it('069.xml (LIDC-IDRI-0001): per reader, nodules ≥ 3 mm / < 3 mm / non-nodules as the data README counts them', () => {
    const xml = unpackedFile('ct/lidc/LIDC-IDRI-0001/069.xml');
    expect(parseLidcXml(readFileSync(xml, 'utf8')).seriesInstanceUID).toBe(SERIES_1);
    expect(counts(xml)).toEqual({ '540461523': [1, 3, 4], '1428348137': [1, 0, 1], '-750896469': [1, 3, 8], '2103845659': [1, 3, 0] });
  });

  it('071.xml (LIDC-IDRI-0002): only two readers outline a nodule ≥ 3 mm', () => {
    const xml = unpackedFile('ct/lidc/LIDC-IDRI-0002/071.xml');
    expect(parseLidcXml(readFileSync(xml, 'utf8')).seriesInstanceUID).toBe(SERIES_2);
    expect(counts(xml)).toEqual({ '-360930790': [0, 7, 8], '-628702345': [0, 1, 3], '307281171': [1, 11, 12], '-101455218': [1, 7, 2] });
  });

  it('refuses a file that is not a LIDC read message', () => {
    expect(() => parseLidcXml('<foo/>')).toThrow(/SeriesInstanceUid/);
  });
});

describe('models/ct LUNA16 CSV reader', () => {
  it('annotations: one consensus row (LIDC-IDRI-0001, 23.35 mm); excluded: 25 + 53 rows, 22 + 51 without size', () => {
    const ann = parseLunaCsv(readFileSync(sharedFile('ct/lidc/luna16-annotations.csv'), 'utf8'));
    expect(ann).toHaveLength(1);
    expect(ann[0].seriesuid).toBe(SERIES_1);
    expect(ann[0].coord).toEqual([56.20840547, 86.34341278, -115.8675792]);
    expect(ann[0].diameterMm).toBeCloseTo(23.35064438, 8);
    const ex = parseLunaCsv(readFileSync(sharedFile('ct/lidc/luna16-annotations-excluded.csv'), 'utf8'));
    const of = (s: string): LunaRow[] => ex.filter((r) => r.seriesuid === s);
    expect([of(SERIES_1).length, of(SERIES_2).length]).toEqual([25, 53]);
    expect([of(SERIES_1).filter((r) => r.diameterMm === -1).length, of(SERIES_2).filter((r) => r.diameterMm === -1).length]).toEqual([22, 51]);
  });
});

describe('models/ct LIDC marks placed in the volumes', () => {
  let c1: LidcCase;
  let c2: LidcCase;
  let excluded: LunaRow[];
  beforeAll(async () => {
    c1 = await loadLidcCase(dirname(unpackedFile('ct/lidc/LIDC-IDRI-0001/069.xml')));
    c2 = await loadLidcCase(dirname(unpackedFile('ct/lidc/LIDC-IDRI-0002/071.xml')));
    excluded = parseLunaCsv(readFileSync(sharedFile('ct/lidc/luna16-annotations-excluded.csv'), 'utf8'));
  });

  it('LIDC-IDRI-0001: the four readers outline one nodule; its centre and mean diameter agree with the LUNA16 consensus row', () => {
    const clusters = clusterNoduleMarks(c1.marks);
    expect(clusters).toHaveLength(1);
    expect(clusters[0].readers).toBe(4);
    expect(dist(clusters[0].centrePatient, [56.20840547, 86.34341278, -115.8675792])).toBeLessThan(0.5);
    expect(Math.abs(clusters[0].diameterMm - 23.35064438)).toBeLessThan(0.5);
  });

  it('each sized LUNA16 single-reader row matches a placed reader outline (or two-reader mean) within 0.3 mm and 0.8 mm of diameter', () => {
    for (const c of [c1, c2]) {
      const rows = excluded.filter((r) => r.seriesuid === c.volume.seriesInstanceUID && r.diameterMm > 0);
      const ours = [
        ...c.marks.filter((m) => m.kind === 'nodule').map((m) => ({ p: m.centrePatient, d: m.diameterMm ?? 0 })),
        ...clusterNoduleMarks(c.marks).map((k) => ({ p: k.centrePatient, d: k.diameterMm })),
      ];
      for (const row of rows) {
        const best = ours.reduce((a, b) => (dist(a.p, row.coord) <= dist(b.p, row.coord) ? a : b));
        expect(dist(best.p, row.coord)).toBeLessThan(0.3);
        expect(Math.abs(best.d - row.diameterMm)).toBeLessThan(0.8);
      }
    }
  });

  it('every small-nodule and non-nodule point lies inside the volume, on the slice its SOP UID names', () => {
    for (const c of [c1, c2]) {
      const [cols, rows, slices] = c.volume.dims;
      const points = c.marks.filter((m) => m.kind !== 'nodule');
      expect(points.length).toBe(c === c1 ? 9 + 13 : 26 + 25);
      for (const m of points) {
        expect(m.centreVoxel[0]).toBeGreaterThanOrEqual(0);
        expect(m.centreVoxel[0]).toBeLessThan(cols);
        expect(m.centreVoxel[1]).toBeLessThan(rows);
        expect(m.centreVoxel[2]).toBeLessThan(slices);
        // Patient z of the slice = imageZposition the reader's tool recorded (axial, IOP 1\0\0\0\1\0).
        const src = c.read.readers.flatMap((r) => [...r.nonNodules.map((n) => ({ id: n.id, reader: r.readerId, z: n.zMm })), ...r.nodules.map((n) => ({ id: n.noduleId, reader: r.readerId, z: n.rois[0].zMm }))]);
        const z = src.find((s) => s.id === m.id && s.reader === m.readerId)?.z;
        expect(m.centrePatient[2]).toBeCloseTo(z ?? NaN, 2);
      }
    }
  });
});
