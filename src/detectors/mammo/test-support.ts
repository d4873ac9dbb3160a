/**
 * Test and bench helpers: MG files written from pixels (mini-MIAS PNGs, decoded real mammograms, the calibration
 * pattern), and the mirrored / rotated copies the orientation tests need. Uncompressed explicit VR little endian.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode } from 'fast-png';
import { decodeFrames, readInstance } from '../../dicom/index.ts';
import { writePart10, type DicomDataset } from '../../results/dicom-io.ts';

export const MG_FOR_PRESENTATION = '1.2.840.10008.5.1.4.1.1.1.2';
export const BTO_FOR_PRESENTATION = '1.2.840.10008.5.1.4.1.1.13.1.3';
const IMPL_UID = '1.2.826.0.1.3680043.10.1011.6';

export type Gray = { rows: number; columns: number; data: Uint16Array; bitsStored: number };

let counter = 0;
export function uid(): string {
  counter++;
  return `2.25.${BigInt('0x' + [...crypto.getRandomValues(new Uint8Array(15))].map((b) => b.toString(16).padStart(2, '0')).join('')).toString()}${counter % 10}`;
}

export function fromPng(path: string): Gray {
  const png = decode(readFileSync(path));
  const n = png.width * png.height;
  const data = new Uint16Array(n);
  for (let i = 0; i < n; i++) data[i] = Number(png.data[i * png.channels]);
  return { rows: png.height, columns: png.width, data, bitsStored: 8 };
}

/** A real grayscale DICOM decoded to its stored values (first frame). */
export async function fromDicom(path: string): Promise<Gray> {
  const inst = readInstance(readFileSync(path));
  const [f] = await decodeFrames(inst, { frames: [0] });
  return { rows: f.rows, columns: f.columns, data: Uint16Array.from(f.data as ArrayLike<number>), bitsStored: f.bitsStored };
}

/** Colour → 16-bit luminance (Rec. 601 weights), the calibration pattern labelled MG. */
export async function luminance16(path: string): Promise<Gray> {
  const inst = readInstance(readFileSync(path));
  const [f] = await decodeFrames(inst, { frames: [0] });
  const n = f.rows * f.columns;
  const data = new Uint16Array(n);
  const src = f.data as ArrayLike<number>;
  for (let i = 0; i < n; i++) {
    const y = f.samplesPerPixel === 3 ? 0.299 * src[i * 3] + 0.587 * src[i * 3 + 1] + 0.114 * src[i * 3 + 2] : src[i];
    data[i] = Math.round((y / 255) * 65535);
  }
  return { rows: f.rows, columns: f.columns, data, bitsStored: 16 };
}

export function mirror(g: Gray): Gray {
  const out = new Uint16Array(g.data.length);
  for (let r = 0; r < g.rows; r++) for (let c = 0; c < g.columns; c++) out[r * g.columns + c] = g.data[r * g.columns + g.columns - 1 - c];
  return { ...g, data: out };
}

export function transpose(g: Gray): Gray {
  const out = new Uint16Array(g.data.length);
  for (let r = 0; r < g.rows; r++) for (let c = 0; c < g.columns; c++) out[c * g.rows + r] = g.data[r * g.columns + c];
  return { ...g, rows: g.columns, columns: g.rows, data: out };
}

/** Stored values turned over (max − v): with Photometric Interpretation MONOCHROME1 the same picture. */
export function invert(g: Gray): Gray {
  const max = 2 ** g.bitsStored - 1;
  return { ...g, data: g.data.map((v) => max - v) };
}

/** The same picture at another bit depth (a 12- or 16-bit detector's range). */
export function toBits(g: Gray, bits: number): Gray {
  const k = (2 ** bits - 1) / (2 ** g.bitsStored - 1);
  return { ...g, bitsStored: bits, data: g.data.map((v) => Math.round(v * k)) };
}

export type MgTags = {
  studyUID: string;
  seriesUID?: string;
  laterality?: 'L' | 'R' | 'B';
  view?: string;
  /** Patient Orientation, e.g. ['P', 'FL']; omitted when absent. */
  orientation?: [string, string];
  seriesDescription?: string;
  presentationIntent?: string;
  patientId?: string;
  /** Another SOP Class (breast tomosynthesis) and Image Type; `frames` copies of the image make a multi-frame object. */
  sopClassUID?: string;
  imageType?: string[];
  frames?: number;
  /** MONOCHROME1: the caller passes inverted values (`invert`). */
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
  /** A VOI window as a modality would send it (the model's percentile window replaces it). */
  voi?: { center: number; width: number; fn?: 'LINEAR' | 'SIGMOID' };
  /** Further attributes as written (Breast Implant Present, View Code Sequence, Quality Control Image, ...). */
  extra?: DicomDataset;
};

export function writeMg(dir: string, g: Gray, t: MgTags): { path: string; sopInstanceUID: string } {
  const sop = uid();
  const frames = t.frames ?? 1;
  const pixels = new Uint16Array(g.data.length * frames);
  for (let f = 0; f < frames; f++) pixels.set(g.data, f * g.data.length);
  const ds: DicomDataset = {
    SOPClassUID: t.sopClassUID ?? MG_FOR_PRESENTATION,
    SOPInstanceUID: sop,
    StudyInstanceUID: t.studyUID,
    SeriesInstanceUID: t.seriesUID ?? uid(),
    Modality: 'MG',
    PresentationIntentType: t.presentationIntent ?? 'FOR PRESENTATION',
    PatientName: [{ Alphabetic: 'MAMMO^TEST' }],
    PatientID: t.patientId ?? 'RN-MG-1',
    PatientBirthDate: '',
    PatientSex: 'F',
    StudyDate: '20261124',
    StudyTime: '120000',
    AccessionNumber: '',
    ReferringPhysicianName: [{ Alphabetic: '' }],
    StudyID: '1',
    SeriesNumber: 1,
    InstanceNumber: 1,
    SeriesDescription: t.seriesDescription ?? 'mammo test',
    ImageType: t.imageType ?? ['ORIGINAL', 'PRIMARY'],
    BodyPartExamined: 'BREAST',
    ...(t.laterality ? { ImageLaterality: t.laterality } : {}),
    ...(t.view ? { ViewPosition: t.view } : {}),
    ...(t.orientation ? { PatientOrientation: t.orientation } : {}),
    SamplesPerPixel: 1,
    PhotometricInterpretation: t.photometric ?? 'MONOCHROME2',
    ...(t.voi ? { WindowCenter: t.voi.center, WindowWidth: t.voi.width, ...(t.voi.fn ? { VOILUTFunction: t.voi.fn } : {}) } : {}),
    ...(frames > 1 ? { NumberOfFrames: frames } : {}),
    Rows: g.rows,
    Columns: g.columns,
    BitsAllocated: 16,
    BitsStored: g.bitsStored,
    HighBit: g.bitsStored - 1,
    PixelRepresentation: 0,
    PixelData: [pixels.buffer as ArrayBuffer],
    ...t.extra,
    _vrMap: { PixelData: 'OW' },
  };
  const path = join(dir, `${sop}.dcm`);
  writeFileSync(path, writePart10(ds, IMPL_UID));
  return { path, sopInstanceUID: sop };
}
