/**
 * The heatmap series (DESIGN §1, issue 4 as corrected): a Multi-frame True Color Secondary Capture
 * (PS3.3 §A.8.5) showing the source with the heatmap and outlines burned in and the label "AI result — not for
 * diagnosis" with the model name. One single-frame SC per radiograph or mammogram, one multi-frame SC of key slices
 * per CT series. Modality OT and Image Type DERIVED\SECONDARY keep it out of hanging protocols and out of radnode's
 * own detectors; General Equipment describes radnode (IHE AIR, loop guard); the source is in Source Image Sequence;
 * no Frame of Reference, because the picture is not registered to the patient.
 */
import { RadnodeError } from '../../errors.ts';
import { writePart10, type DicomDataset } from '../dicom-io.ts';
import { isPlace3D, type DetectorResult, type Place2D } from '../findings.ts';
import {
  contentDateTime,
  contributingEquipment,
  copyPatientAndStudy,
  generalEquipment,
  heatmapSeriesUid,
  implementationClassUid,
  lo,
  objectUid,
  sopCommon,
  SOP_CLASS,
} from '../modules.ts';
import type { ResultObject, SourceInstance, WriteContext } from '../objects.ts';
import type { SourceImage } from '../source-pixels.ts';
import { MAX_HEATMAP_SIDE } from '../validate.ts';
import { composeRgb, drawEllipse, drawLabel, drawPointMark, drawPolyline, OUTLINE, outputSize, resample, toDisplay, type Rgb } from './render.ts';
import { boxToPolyline } from '../sr/templates/geometry.ts';

export const HEATMAP_LABEL = 'AI result \u2014 not for diagnosis';

export function labelLines(result: DetectorResult): string[] {
  return [HEATMAP_LABEL, `${result.detector.id} ${result.detector.version}`];
}

/** The places drawn on one source image: 2D places, and the key images of 3D ones. */
export function placesOn(result: DetectorResult, sopInstanceUID: string): Place2D[] {
  return result.findings
    .map((f) => (f.place ? (isPlace3D(f.place) ? f.place.keyImage : f.place) : undefined))
    .filter((p): p is Place2D => p !== undefined && p.sopInstanceUID === sopInstanceUID);
}

/** Renders one frame: the source with its window, the heatmap, outlines and label, at most 2048 px on the long side. */
export function renderFrame(result: DetectorResult, source: SourceInstance, image: SourceImage, frameIndex = 0): Rgb {
  const { width, height, scale } = outputSize(image.rows, image.columns, MAX_HEATMAP_SIDE);
  const gray = resample(toDisplay(image.frames[frameIndex], image), image.columns, image.rows, width, height);
  const hm = result.heatmaps.find((h) => h.sopInstanceUID === source.sopInstanceUID && (h.frame ?? 1) === frameIndex + 1);
  if (hm && hm.values.length !== hm.width * hm.height) {
    throw new RadnodeError('RN_RESULT_INVALID', 'heatmap values do not match width × height', { details: { sopInstanceUID: hm.sopInstanceUID } });
  }
  const rgb = composeRgb(gray, width, height, hm ? resample(hm.values, hm.width, hm.height, width, height) : undefined);
  const thickness = Math.max(1, Math.round(Math.max(width, height) / 512));
  // SCOORD (0,0) is the top left corner of the top left pixel (PS3.3 §C.18.6.1.1): pixel centres are at +0.5.
  const map = ([x, y]: [number, number]): [number, number] => [x * scale - 0.5, y * scale - 0.5];
  for (const p of placesOn(result, source.sopInstanceUID)) {
    if ((p.frame ?? 1) !== frameIndex + 1) continue;
    const pts = p.points.map(map);
    if (p.shape === 'point') drawPointMark(rgb, pts[0][0], pts[0][1], OUTLINE, 6 * thickness + 4, thickness);
    else if (p.shape === 'ellipse') drawEllipse(rgb, pts, OUTLINE, thickness);
    else if (p.shape === 'box') {
      const d = boxToPolyline(pts);
      drawPolyline(rgb, Array.from({ length: 5 }, (_, i): [number, number] => [d[2 * i], d[2 * i + 1]]), OUTLINE, thickness);
    } else if (p.shape === 'bidirectional') {
      drawPolyline(rgb, pts.slice(0, 2), OUTLINE, thickness);
      drawPolyline(rgb, pts.slice(2, 4), OUTLINE, thickness);
    } else drawPolyline(rgb, pts, OUTLINE, thickness);
  }
  drawLabel(rgb, labelLines(result));
  return rgb;
}

function lossyCompression(frames: ScFrame[]): DicomDataset {
  const lossy = frames.find((f) => f.image.lossy);
  if (!lossy) return { LossyImageCompression: '00' };
  const h = lossy.image.header;
  return {
    LossyImageCompression: '01',
    ...(h.LossyImageCompressionRatio !== undefined ? { LossyImageCompressionRatio: h.LossyImageCompressionRatio } : {}),
    ...(h.LossyImageCompressionMethod !== undefined ? { LossyImageCompressionMethod: h.LossyImageCompressionMethod } : {}),
  };
}

export type ScFrame = { source: SourceInstance; image: SourceImage; frameIndex?: number };

/** `seriesNumber`: from `seriesNumbers` in modules.ts, after the source series (write.ts computes it once per result). */
export function writeHeatmapSc(result: DetectorResult, frames: ScFrame[], index: number, ctx: WriteContext, seriesNumber: number): ResultObject {
  if (frames.length === 0) throw new RadnodeError('RN_RESULT_INVALID', 'a heatmap SC needs at least one frame');
  const rendered = frames.map((f) => renderFrame(result, f.source, f.image, f.frameIndex ?? 0));
  const { width, height } = rendered[0];
  if (rendered.some((r) => r.width !== width || r.height !== height)) {
    throw new RadnodeError('RN_RESULT_INVALID', 'the key slices of one heatmap SC differ in size', { details: { index } });
  }
  const frameBytes = width * height * 3;
  const total = frameBytes * rendered.length;
  const pixels = new Uint8Array(total + (total % 2)); // PS3.5 §7.1: even value length
  rendered.forEach((r, i) => pixels.set(r.data, i * frameBytes));

  const first = frames[0].image.header;
  const { date, time } = contentDateTime(ctx);
  const sopInstanceUID = objectUid(ctx.node, ctx.inputKey, 'heatmap-sc', index);
  const seriesInstanceUID = heatmapSeriesUid(ctx.node, ctx.inputKey);
  const dataset: DicomDataset = {
    ...sopCommon(ctx, SOP_CLASS.multiframeTrueColorSC, sopInstanceUID),
    ...copyPatientAndStudy(first, result.studyInstanceUID),
    // General Series (PS3.3 §C.7.3.1)
    Modality: 'OT',
    SeriesInstanceUID: seriesInstanceUID,
    SeriesNumber: seriesNumber,
    SeriesDescription: lo(`radnode ${result.detector.id} AI heatmap \u2014 not for diagnosis`),
    // Type 2C in General Series: required unless Image Laterality is sent (then it must be absent, as dciodvfy checks).
    ...(first.ImageLaterality === undefined ? { Laterality: first.Laterality ?? '' } : {}),
    ...generalEquipment(ctx.node),
    // SC Equipment (PS3.3 §C.8.6.1): WSD = workstation
    ConversionType: 'WSD',
    // General Image (PS3.3 §C.7.6.1)
    InstanceNumber: index + 1,
    PatientOrientation: first.PatientOrientation ?? '',
    ContentDate: date,
    ContentTime: time,
    ImageType: ['DERIVED', 'SECONDARY'],
    DerivationDescription: lo(`${result.detector.id} ${result.detector.version} heatmap and outlines burned in`),
    ImageComments: HEATMAP_LABEL,
    BurnedInAnnotation: 'YES',
    // PS3.3 C.7.6.1.1.5: once an image has been through lossy compression the flag stays "01" in what derives from it.
    ...lossyCompression(frames),
    SourceImageSequence: frames.map((f) => ({
      ReferencedSOPClassUID: f.source.sopClassUID,
      ReferencedSOPInstanceUID: f.source.sopInstanceUID,
      ...(f.frameIndex !== undefined && f.frameIndex > 0 ? { ReferencedFrameNumber: String(f.frameIndex + 1) } : {}),
    })),
    ...(first.ImageLaterality !== undefined ? { ImageLaterality: first.ImageLaterality } : {}),
    ContributingEquipmentSequence: contributingEquipment(ctx, result.detector),
    // Image Pixel (PS3.3 §C.7.6.3), true colour, interleaved
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    Rows: height,
    Columns: width,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    // SC Multi-frame Image (PS3.3 §C.8.6.3)
    NumberOfFrames: rendered.length,
    // Type 1C, only when there is more than one frame: frames are labelled with their source's Instance Number.
    ...(rendered.length > 1
      ? { FrameIncrementPointer: 0x00182002, FrameLabelVector: frames.map((f) => `slice ${String(f.image.header.InstanceNumber ?? '')}`.slice(0, 16)) } // SH: 16 characters
      : {}),
    PixelData: [pixels.buffer],
    _vrMap: { PixelData: 'OB' },
  };
  return {
    kind: 'heatmap-sc',
    studyInstanceUID: result.studyInstanceUID,
    seriesInstanceUID,
    sopInstanceUID,
    sopClassUID: SOP_CLASS.multiframeTrueColorSC,
    instanceNumber: index + 1,
    bytes: writePart10(dataset, implementationClassUid(ctx.node)),
    fingerprint: `${date} ${time}`,
  };
}
