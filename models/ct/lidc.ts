/**
 * Readers for the reference marks of the two shared LIDC cases (issue 7, training and evaluation only; radnode
 * never reads these at run time):
 * - the LIDC-IDRI reader XML (LidcReadMessage 1.8, one readingSession per radiologist): `unblindedReadNodule` with
 *   `<characteristics>` and outline contours for nodules ≥ 3 mm, one-point `unblindedReadNodule` for nodules < 3 mm,
 *   `nonNodule` loci (Armato et al., Med Phys 2011;38:915, and the LIDC XML documentation);
 * - the LUNA16 CSVs (annotations.csv / annotations_excluded.csv: seriesuid, coordX, coordY, coordZ in the patient
 *   (ITK world = DICOM LPS) frame, diameter_mm, −1 for marks without a size).
 * Pixel coordinates in the XML are (column, row) of the slice named by imageSOP_UID, 0-based; they become patient mm
 * through the loaded Volume's affine, so the slice's own IPP and pixel spacing are used, not imageZposition.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readInstance } from '../../src/dicom/instance.ts';
import { buildVolumes, voxelToPatient, type Vec3, type Volume } from '../../src/dicom/volume.ts';

export type LidcRoi = { sopInstanceUID: string; zMm: number; inclusion: boolean; points: [number, number][] };

export type LidcNodule = {
  readerId: string;
  noduleId: string;
  /** 'nodule': ≥ 3 mm, outlined, rated; 'small': < 3 mm, one point. */
  kind: 'nodule' | 'small';
  rois: LidcRoi[];
  characteristics?: Record<string, number>;
};

export type LidcNonNodule = { readerId: string; id: string; sopInstanceUID: string; zMm: number; point: [number, number] };

export type LidcReader = { readerId: string; nodules: LidcNodule[]; nonNodules: LidcNonNodule[] };

export type LidcRead = { seriesInstanceUID: string; studyInstanceUID: string; readers: LidcReader[] };

/** A reader's mark placed in the volume. */
export type LidcMark = {
  readerId: string;
  id: string;
  kind: 'nodule' | 'small' | 'nonNodule';
  centreVoxel: Vec3;
  centrePatient: Vec3;
  /** ≥ 3 mm nodules: diameter of the sphere of the outlined volume, mm. */
  diameterMm?: number;
  /** ≥ 3 mm nodules: outlined volume (pixels inside the outlines, holes removed), mm³. */
  volumeMm3?: number;
  /** ≥ 3 mm nodules: the longest in-plane extent over the outlined slices, mm. */
  maxAxialExtentMm?: number;
};

const tag = (body: string, name: string): string | undefined => new RegExp(`<${name}>([^<]*)</${name}>`).exec(body)?.[1]?.trim();

function blocks(xml: string, name: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, 'g');
  for (const m of xml.matchAll(re)) out.push(m[1]);
  return out;
}

function points(body: string, wrapper: string): [number, number][] {
  return blocks(body, wrapper).map((p) => [Number(tag(p, 'xCoord')), Number(tag(p, 'yCoord'))] as [number, number]);
}

/** Parses a LIDC reader XML. Throws when it is not one (no SeriesInstanceUid): training data must not be guessed. */
export function parseLidcXml(xml: string): LidcRead {
  const seriesInstanceUID = tag(xml, 'SeriesInstanceUid');
  if (!seriesInstanceUID) throw new Error('not a LIDC read message: no <SeriesInstanceUid>');
  const studyInstanceUID = tag(xml, 'StudyInstanceUID') ?? '';
  const readers: LidcReader[] = blocks(xml, 'readingSession').map((session) => {
    const readerId = tag(session, 'servicingRadiologistID') ?? '';
    const nodules: LidcNodule[] = blocks(session, 'unblindedReadNodule').map((n) => {
      const charBlock = blocks(n, 'characteristics')[0];
      const characteristics = charBlock
        ? Object.fromEntries([...charBlock.matchAll(/<(\w+)>([^<]*)<\/\1>/g)].map((m) => [m[1], Number(m[2])]))
        : undefined;
      const rois: LidcRoi[] = blocks(n, 'roi').map((r) => ({
        sopInstanceUID: tag(r, 'imageSOP_UID') ?? '',
        zMm: Number(tag(r, 'imageZposition')),
        inclusion: (tag(r, 'inclusion') ?? 'TRUE').toUpperCase() === 'TRUE',
        points: points(r, 'edgeMap'),
      }));
      // The LIDC protocol: a nodule ≥ 3 mm is outlined and rated, a nodule < 3 mm gets one point and no ratings.
      const outlined = characteristics !== undefined && rois.some((r) => r.points.length >= 3);
      return { readerId, noduleId: tag(n, 'noduleID') ?? '', kind: outlined ? 'nodule' : 'small', rois, characteristics };
    });
    const nonNodules: LidcNonNodule[] = blocks(session, 'nonNodule').map((n) => ({
      readerId,
      id: tag(n, 'nonNoduleID') ?? '',
      sopInstanceUID: tag(n, 'imageSOP_UID') ?? '',
      zMm: Number(tag(n, 'imageZposition')),
      point: points(n, 'locus')[0],
    }));
    return { readerId, nodules, nonNodules };
  });
  return { seriesInstanceUID, studyInstanceUID, readers };
}

function insidePolygon(x: number, y: number, poly: [number, number][]): boolean {
  let inside = false;
  for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
    const [xa, ya] = poly[a];
    const [xb, yb] = poly[b];
    if (ya > y !== yb > y && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) inside = !inside;
  }
  return inside;
}

/**
 * Pixels of one contour: those the even-odd rule puts inside the outline, less the pixels under the outline itself.
 * The LIDC protocol had readers draw the outline just outside the nodule, so the outline pixels are not nodule; with
 * this rule the equivalent diameters of the shared cases' 6 reader outlines come within 0.75 mm of LUNA16's per-reader
 * diameters (two of them to 0.01 mm), where keeping the outline pixels made them 0.6–1.3 mm larger. A degenerate
 * outline (a few pixels, nothing inside) keeps its own points.
 */
export function contourPixels(poly: [number, number][]): [number, number][] {
  const xs = poly.map((p) => p[0]);
  const ys = poly.map((p) => p[1]);
  const outline = new Set(poly.map(([x, y]) => y * 100_000 + x));
  const out: [number, number][] = [];
  for (let y = Math.min(...ys); y <= Math.max(...ys); y++)
    for (let x = Math.min(...xs); x <= Math.max(...xs); x++) if (!outline.has(y * 100_000 + x) && insidePolygon(x, y, poly)) out.push([x, y]);
  if (out.length > 0) return out;
  return [...outline].map((key) => [key % 100_000, Math.floor(key / 100_000)] as [number, number]);
}

/** The slice index of each SOP Instance UID of a volume. */
function sliceIndex(volume: Volume): Map<string, number> {
  return new Map(volume.instances.map((inst, k) => [inst.SOPInstanceUID ?? '', k]));
}

/** Places every mark of a read in the volume (the read must be of this series). */
export function locateLidcMarks(read: LidcRead, volume: Volume): LidcMark[] {
  if (read.seriesInstanceUID !== volume.seriesInstanceUID) throw new Error(`XML is for series ${read.seriesInstanceUID}, volume is ${volume.seriesInstanceUID}`);
  const slices = sliceIndex(volume);
  const kOf = (sop: string): number => {
    const k = slices.get(sop);
    if (k === undefined) throw new Error(`LIDC mark on SOP ${sop}, not a slice of the volume`);
    return k;
  };
  const [rowMm, colMm] = volume.pixelSpacingMm;
  const marks: LidcMark[] = [];
  for (const reader of read.readers) {
    for (const n of reader.nodules) {
      if (n.kind === 'small') {
        const r = n.rois[0];
        const v: Vec3 = [r.points[0][0], r.points[0][1], kOf(r.sopInstanceUID)];
        marks.push({ readerId: reader.readerId, id: n.noduleId, kind: 'small', centreVoxel: v, centrePatient: voxelToPatient(volume.affine, v) });
        continue;
      }
      // Per slice: included pixels minus exclusion (hole) pixels.
      const perSlice = new Map<number, Set<number>>();
      for (const r of n.rois.filter((r) => r.inclusion)) {
        const k = kOf(r.sopInstanceUID);
        const s = perSlice.get(k) ?? new Set<number>();
        for (const [x, y] of contourPixels(r.points)) s.add(y * 100_000 + x);
        perSlice.set(k, s);
      }
      for (const r of n.rois.filter((r) => !r.inclusion)) {
        const s = perSlice.get(kOf(r.sopInstanceUID));
        if (s) for (const [x, y] of contourPixels(r.points)) s.delete(y * 100_000 + x);
      }
      let si = 0;
      let sj = 0;
      let sk = 0;
      let count = 0;
      let maxExtent = 0;
      for (const [k, s] of perSlice) {
        const pts = [...s].map((key) => [key % 100_000, Math.floor(key / 100_000)] as [number, number]);
        for (const [x, y] of pts) {
          si += x;
          sj += y;
          sk += k;
        }
        count += pts.length;
        maxExtent = Math.max(maxExtent, maxPairDistanceMm(pts, colMm, rowMm));
      }
      const v: Vec3 = [si / count, sj / count, sk / count];
      // Each outlined slice stands for one slice spacing of tissue (the contours are on consecutive slices).
      const volumeMm3 = count * rowMm * colMm * volume.sliceSpacingMm;
      marks.push({
        readerId: reader.readerId,
        id: n.noduleId,
        kind: 'nodule',
        centreVoxel: v,
        centrePatient: voxelToPatient(volume.affine, v),
        volumeMm3,
        diameterMm: Math.cbrt((6 * volumeMm3) / Math.PI),
        maxAxialExtentMm: maxExtent,
      });
    }
    for (const nn of reader.nonNodules) {
      const v: Vec3 = [nn.point[0], nn.point[1], kOf(nn.sopInstanceUID)];
      marks.push({ readerId: reader.readerId, id: nn.id, kind: 'nonNodule', centreVoxel: v, centrePatient: voxelToPatient(volume.affine, v) });
    }
  }
  return marks;
}

function maxPairDistanceMm(pts: [number, number][], colMm: number, rowMm: number): number {
  let best = 0;
  // Outlines are at most a few hundred pixels: the quadratic scan is cheap, and exact.
  for (let a = 0; a < pts.length; a++)
    for (let b = a + 1; b < pts.length; b++) best = Math.max(best, Math.hypot((pts[a][0] - pts[b][0]) * colMm, (pts[a][1] - pts[b][1]) * rowMm));
  return best + Math.min(colMm, rowMm);
}

export type MarkCluster = { marks: LidcMark[]; readers: number; centrePatient: Vec3; diameterMm: number };

/**
 * Groups the ≥ 3 mm marks of different readers that describe one nodule: a mark joins a cluster when its centre lies
 * within the larger of the two radii (the LUNA16 rule for merging reader annotations, Setio et al. 2017).
 */
export function clusterNoduleMarks(marks: LidcMark[]): MarkCluster[] {
  const clusters: LidcMark[][] = [];
  for (const m of marks.filter((m) => m.kind === 'nodule')) {
    const c = clusters.find((c) =>
      c.some((o) => dist(o.centrePatient, m.centrePatient) <= Math.max(o.diameterMm ?? 0, m.diameterMm ?? 0) / 2),
    );
    if (c) c.push(m);
    else clusters.push([m]);
  }
  return clusters.map((c) => ({
    marks: c,
    readers: new Set(c.map((m) => m.readerId)).size,
    centrePatient: [0, 1, 2].map((d) => c.reduce((s, m) => s + m.centrePatient[d], 0) / c.length) as Vec3,
    diameterMm: c.reduce((s, m) => s + (m.diameterMm ?? 0), 0) / c.length,
  }));
}

export const dist = (a: Vec3, b: Vec3): number => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

export type LunaRow = { seriesuid: string; coord: Vec3; diameterMm: number };

/** Parses a LUNA16 annotations / annotations_excluded CSV (header seriesuid,coordX,coordY,coordZ,diameter_mm). */
export function parseLunaCsv(text: string): LunaRow[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0].split(',').map((h) => h.trim());
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`LUNA16 CSV without column ${name}`);
    return i;
  };
  const [s, x, y, z, d] = ['seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm'].map(col);
  return lines.slice(1).map((l) => {
    const f = l.split(',');
    return { seriesuid: f[s].trim(), coord: [Number(f[x]), Number(f[y]), Number(f[z])] as Vec3, diameterMm: Number(f[d]) };
  });
}

export type LidcCase = { name: string; dir: string; xmlPath: string; volume: Volume; read: LidcRead; marks: LidcMark[] };

/** Loads an unpacked LIDC case folder (dicom/*.dcm + one reader XML) into a Volume with its marks placed. */
export async function loadLidcCase(dir: string): Promise<LidcCase> {
  const dicomDir = join(dir, 'dicom');
  const instances = readdirSync(dicomDir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => readInstance(new Uint8Array(readFileSync(join(dicomDir, f)))));
  const { volumes } = await buildVolumes(instances);
  if (volumes.length !== 1) throw new Error(`${dir}: expected one volume, got ${volumes.length}`);
  const xmlName = readdirSync(dir).find((f) => f.endsWith('.xml'));
  if (!xmlName) throw new Error(`${dir}: no LIDC XML`);
  const xmlPath = join(dir, xmlName);
  const read = parseLidcXml(readFileSync(xmlPath, 'utf8'));
  const volume = volumes[0];
  return { name: dir.split('/').filter(Boolean).at(-1) ?? dir, dir, xmlPath, volume, read, marks: locateLidcMarks(read, volume) };
}
