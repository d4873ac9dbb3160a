import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unpackedFile } from '../../test/helpers/paths.ts';
import { dcmdumpRaw, storedValues, dcmdumpAttributes, withTemp } from '../../test/dicom/reference.ts';
import { readInstance, type DicomInstance } from './instance.ts';
import { buildVolumes, patientToVoxel, planVolumes, voxelToPatient, type Volume } from './volume.ts';

function readSeries(dir: string): DicomInstance[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => readInstance(new Uint8Array(readFileSync(join(dir, f)))));
}

const lidc1 = (): string => unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
const lidc2 = (): string => unpackedFile('ct/lidc/LIDC-IDRI-0002/dicom');
const ge = (): string => unpackedFile('ct/edge/ge-head-ct-gantry-tilt');

interface Roi {
  z: number;
  sop: string;
  points: [number, number][];
}

/** The outlined (≥ 3 mm) nodules' contours of a LIDC reader XML. */
function lidcNoduleRois(xml: string): Roi[] {
  const rois: Roi[] = [];
  for (const nodule of xml.split('<unblindedReadNodule>').slice(1)) {
    const body = nodule.split('</unblindedReadNodule>')[0];
    if (!body.includes('<characteristics>')) continue;
    for (const roi of body.split('<roi>').slice(1)) {
      const z = Number(/<imageZposition>([^<]+)</.exec(roi)![1]);
      const sop = /<imageSOP_UID>([^<]+)</.exec(roi)![1].trim();
      const points = [...roi.matchAll(/<xCoord>(\d+)<\/xCoord>\s*<yCoord>(\d+)<\/yCoord>/g)].map((m) => [Number(m[1]), Number(m[2])] as [number, number]);
      if (points.length >= 3) rois.push({ z, sop, points });
    }
  }
  return rois;
}

function insidePolygon(x: number, y: number, poly: [number, number][]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

describe('CT volumes', () => {
  let v1: Volume;

  it('LIDC-IDRI-0001: 133 slices sorted along the normal, 2.5 mm from positions, affine and HU as the headers say', async () => {
    const instances = readSeries(lidc1());
    const { volumes, plan } = await buildVolumes(instances);
    expect(plan.issues).toEqual([]);
    expect(volumes).toHaveLength(1);
    v1 = volumes[0];
    expect(v1.dims).toEqual([512, 512, 133]);
    expect(v1.issues).toEqual([]);
    expect(v1.sliceSpacingMm).toBeCloseTo(2.5, 6);
    expect(v1.pixelSpacingMm).toEqual([0.703125, 0.703125]);
    expect(v1.unit).toBe('HU');
    // file names are not in slice order (000001.dcm is InstanceNumber 80): the first slice is the lowest z
    expect(v1.positionsMm[0]).toBeCloseTo(-340, 6);
    expect(v1.positionsMm.at(-1)).toBeCloseTo(-10, 6);
    expect(v1.affine.slice(0, 4)).toEqual([0.703125, 0, 0, expect.closeTo(-166.0, 1)]);
    expect(v1.affine[10]).toBeCloseTo(2.5, 6);
    // every slice's Image Position (Patient) is where the affine puts voxel (0, 0, k)
    v1.instances.forEach((inst, k) => {
      const ipp = inst.header.numbers('ImagePositionPatient');
      const p = voxelToPatient(v1.affine, [0, 0, k]);
      for (let a = 0; a < 3; a++) expect(p[a]).toBeCloseTo(ipp[a], 4);
    });
    // HU of three slices equal dcmtk's raw stored values plus the header's Rescale Intercept
    for (const k of [0, 66, 132]) {
      const sop = v1.instances[k].SOPInstanceUID;
      const file = readdirSync(lidc1()).map((f) => join(lidc1(), f)).find((f) => readInstance(new Uint8Array(readFileSync(f))).SOPInstanceUID === sop)!;
      const ref = withTemp((dir) => storedValues(dcmdumpRaw(file, dir), dcmdumpAttributes(file)));
      const intercept = v1.instances[k].header.number('RescaleIntercept')!;
      const slice = v1.voxels.subarray(k * 512 * 512, (k + 1) * 512 * 512);
      for (let i = 0; i < slice.length; i += 997) expect(slice[i]).toBe(ref[i] + intercept);
    }
  });

  it('LIDC-IDRI-0001: the readers\' nodule contours land on the nodule, and the LUNA16 centre inside them', () => {
    const xml = readFileSync(unpackedFile('ct/lidc/LIDC-IDRI-0001/069.xml'), 'utf8');
    const rois = lidcNoduleRois(xml);
    expect(rois.length).toBeGreaterThan(20);
    const sops = v1.instances.map((i) => i.SOPInstanceUID);
    let ks: number[] = [];
    let allIn = 0;
    let allInN = 0;
    for (const roi of rois) {
      const k = sops.indexOf(roi.sop);
      expect(k).toBeGreaterThanOrEqual(0);
      ks.push(k);
      expect(voxelToPatient(v1.affine, [0, 0, k])[2]).toBeCloseTo(roi.z, 3);
      const xs = roi.points.map((p) => p[0]);
      const ys = roi.points.map((p) => p[1]);
      let inSum = 0;
      let inN = 0;
      let outSum = 0;
      let outN = 0;
      for (let y = Math.min(...ys) - 6; y <= Math.max(...ys) + 6; y++) {
        for (let x = Math.min(...xs) - 6; x <= Math.max(...xs) + 6; x++) {
          const hu = v1.voxels[k * 512 * 512 + y * 512 + x];
          if (insidePolygon(x + 0.5, y + 0.5, roi.points)) {
            inSum += hu;
            inN++;
          } else {
            outSum += hu;
            outN++;
          }
        }
      }
      // Denser inside every outline than in the lung around it (by 190 HU or more on this case).
      expect(inSum / inN, `slice ${k}`).toBeGreaterThan(outSum / outN + 150);
      expect(outSum / outN, `slice ${k}`).toBeLessThan(-500);
      allIn += inSum;
      allInN += inN;
    }
    expect(allIn / allInN).toBeGreaterThan(-250); // the outlined voxels, taken together, are soft tissue
    ks = [...new Set(ks)].sort((a, b) => a - b);
    // LUNA16 annotations.csv: (56.208, 86.343, -115.868), 23.35 mm
    const [i, j, k] = patientToVoxel(v1.affine, [56.20840547, 86.34341278, -115.8675792]);
    expect(k).toBeGreaterThanOrEqual(ks[0]);
    expect(k).toBeLessThanOrEqual(ks.at(-1)!);
    const near = rois.filter((r) => sops.indexOf(r.sop) === Math.round(k));
    expect(near.some((r) => insidePolygon(i, j, r.points))).toBe(true);
  });

  it('LIDC-IDRI-0002: 261 slices at 1.25 mm, z from -334.5 to -9.5', async () => {
    const plan = planVolumes(readSeries(lidc2()));
    expect(plan.stacks).toHaveLength(1);
    const s = plan.stacks[0];
    expect(s.instances).toHaveLength(261);
    expect(s.issues).toEqual([]);
    expect(s.sliceSpacingMm).toBeCloseTo(1.25, 6);
    expect(s.positionsMm[0]).toBeCloseTo(-334.5, 6);
    expect(s.positionsMm.at(-1)).toBeCloseTo(-9.5, 6);
    expect(s.affine[3]).toBeCloseTo(-175.5, 3);
    expect(s.affine[7]).toBeCloseTo(-174.5, 3);
    expect(s.pixelSpacingMm[0]).toBeCloseTo(0.681641, 6);
  });

  it('reports the GE head CT as gantry-tilted (18.5°) with non-uniform spacing', () => {
    const plan = planVolumes(readSeries(ge()));
    expect(plan.stacks).toHaveLength(1);
    const s = plan.stacks[0];
    const tilt = s.issues.find((i) => i.code === 'GANTRY_TILT');
    expect(tilt?.angleDeg).toBeCloseTo(18.5, 0);
    expect(s.gantryDetectorTiltDeg).toBeCloseTo(18.5, 3);
    expect(s.issues.map((i) => i.code)).toContain('NON_UNIFORM_SPACING');
    // the affine follows the real slice positions (sheared), not the normal
    const last = s.instances.at(-1)!.header.numbers('ImagePositionPatient');
    const p = voxelToPatient(s.affine, [0, 0, s.instances.length - 1]);
    for (let a = 0; a < 3; a++) expect(p[a]).toBeCloseTo(last[a], 3);
  });

  it('reports a missing slice and a duplicated slice', () => {
    const instances = readSeries(lidc1());
    const sorted = planVolumes(instances).stacks[0].instances;
    const withGap = planVolumes(sorted.filter((_, k) => k !== 60));
    expect(withGap.stacks[0].issues).toEqual([expect.objectContaining({ code: 'MISSING_SLICES', count: 1 })]);
    expect(withGap.stacks[0].sliceSpacingMm).toBeCloseTo(2.5, 6);
    const withDup = planVolumes([...sorted, sorted[10]]);
    expect(withDup.stacks[0].issues).toEqual([expect.objectContaining({ code: 'DUPLICATE_SLICES', count: 1 })]);
    expect(withDup.stacks[0].instances).toHaveLength(133);
  });

  it('splits mixed orientations and repeated acquisitions in one series into stacks (copies edited with dcmodify)', () => {
    const lidcFiles = readdirSync(lidc1()).filter((f) => f.endsWith('.dcm')).sort();
    const series = readInstance(new Uint8Array(readFileSync(join(lidc1(), lidcFiles[0])))).SeriesInstanceUID!;
    const edited = withTemp((dir) => {
      const out: DicomInstance[] = [];
      // five GE (tilted orientation) slices relabelled into the LIDC series
      readdirSync(ge()).filter((f) => f.endsWith('.dcm')).sort().slice(0, 5).forEach((f, n) => {
        const p = join(dir, `ge${n}.dcm`);
        copyFileSync(join(ge(), f), p);
        spawnSync('dcmodify', ['-nb', '-m', `(0020,000e)=${series}`, p]);
        out.push(readInstance(new Uint8Array(readFileSync(p))));
      });
      // ten LIDC slices again as acquisition 99 (a repeat scan over the same positions)
      lidcFiles.slice(0, 10).forEach((f, n) => {
        const p = join(dir, `acq${n}.dcm`);
        copyFileSync(join(lidc1(), f), p);
        spawnSync('dcmodify', ['-nb', '-i', '(0020,0012)=99', '-m', `(0008,0018)=2.25.${1000 + n}`, p]);
        out.push(readInstance(new Uint8Array(readFileSync(p))));
      });
      return out;
    });
    const plan = planVolumes([...readSeries(lidc1()), ...edited]);
    expect([...new Set(plan.issues.map((i) => i.code))].sort()).toEqual(['MIXED_ORIENTATION', 'MULTIPLE_ACQUISITIONS']);
    const sizes = plan.stacks.map((s) => s.instances.length).sort((a, b) => a - b);
    expect(sizes).toEqual([5, 10, 133]);
  });
});
