import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedFile } from '../../test/helpers/paths.ts';
import { compare, opjDecode8, pythonInflateRaw, referenceDecode, storedValues, type ReferenceTool } from '../../test/dicom/reference.ts';
import { RadnodeError } from '../errors.ts';
import { decodeFrames, type DecodedFrame } from './decode.ts';
import { readInstance } from './instance.ts';
import { TS } from './transfer-syntax.ts';

const CORPUS = sharedFile('dicom');

function corpusFiles(): string[] {
  const out: string[] = [];
  for (const dir of readdirSync(CORPUS)) {
    const p = join(CORPUS, dir);
    if (!statSync(p).isDirectory()) continue;
    for (const f of readdirSync(p)) out.push(`${dir}/${f}`);
  }
  return out.sort();
}

/** Files known to be broken (data README, "Known-broken and trap files") and the typed error each must give. */
const EXPECTED_ERRORS: Partial<Record<string, string>> = {
  'pylibjpeg-data/966.dcm': 'RN_DICOM_DECODE_FAILED', // invalid COM marker: OpenJPEG "Stream too short"
  'pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm': 'RN_DICOM_MALFORMED', // no Sequence Delimitation Item
  'pydicom/JPEG2000-embedded-sequence-delimiter.dcm': 'RN_DICOM_DECODE_FAILED', // parses; the codestream is corrupt
};

/**
 * Lossy syntaxes: the largest absolute difference in stored values allowed against the reference decoder. Every
 * other file, lossy JPEG baseline/extended/progressive, JPEG-LS near-lossless and J2K lossy included, came out
 * identical to its reference, so the tolerance is 0 unless listed here.
 */
const TOLERANCE: Partial<Record<string, number>> = {
  // HTJ2K lossy (9/7 + ICT): OpenJPH against OpenJPEG 2.5, 678 of 921600 samples differ by 1 (inverse ICT rounding).
  'pydicom-data/HTJ2K_08_RGB.dcm': 1,
};

/** Files whose reference is another file or another tool than their transfer syntax implies. */
const REFERENCE_FILE: Partial<Record<string, string>> = {
  // The data README: 32-bit big-endian words, decodes to the values of rtdose.dcm (GDCM swaps per 16 bits).
  'pydicom/rtdose_expb.dcm': 'pydicom/rtdose.dcm',
};
const REFERENCE_TOOL: Partial<Record<string, ReferenceTool>> = {
  'pydicom-data/JLSL_08_07_0_1F.dcm': 'gdcm', // dcmdjpls 3.6.7 rejects P=7
};

function toolFor(tsUid: string): ReferenceTool | 'opj' | 'inflate' {
  switch (tsUid) {
    case TS.ImplicitVRLittleEndian:
    case TS.ExplicitVRLittleEndian:
    case TS.ExplicitVRBigEndian:
    case TS.DeflatedExplicitVRLittleEndian:
      return 'native';
    case TS.JPEGBaseline8Bit:
    case TS.JPEGExtended12Bit:
    case TS.JPEGSpectralSelection:
    case TS.JPEGFullProgression:
    case TS.JPEGLossless:
    case TS.JPEGLosslessSV1:
      return 'dcmdjpeg';
    case TS.JPEGLSLossless:
    case TS.JPEGLSNearLossless:
      return 'dcmdjpls';
    case TS.RLELossless:
      return 'dcmdrle';
    case TS.JPEG2000Lossless:
    case TS.JPEG2000:
      return 'gdcm';
    case TS.HTJ2KLossless:
    case TS.HTJ2KLosslessRPCL:
    case TS.HTJ2K:
      return 'opj';
    case TS.DeflatedImageFrame:
      return 'inflate';
    default:
      throw new Error(`no reference tool for ${tsUid}`);
  }
}

function flatten(frames: DecodedFrame[]): Float64Array {
  const n = frames.reduce((s, f) => s + f.data.length, 0);
  const out = new Float64Array(n);
  let o = 0;
  for (const f of frames) {
    out.set(f.data, o);
    o += f.data.length;
  }
  return out;
}

/** Native YBR_FULL_422 as dcmtk stores it (Y1 Y2 Cb Cr) expanded to interleaved YBR_FULL, as radnode does. */
function expand422(ref: Float64Array, rows: number, columns: number): Float64Array {
  const out = new Float64Array(rows * columns * 3);
  let s = 0;
  for (let p = 0; p < rows * columns; p += 2) {
    out.set([ref[s], ref[s + 2], ref[s + 3], ref[s + 1], ref[s + 2], ref[s + 3]], p * 3);
    s += 4;
  }
  return out;
}

/** dcmtk writes colour-by-plane data as stored (RRR…GGG…BBB per frame); radnode returns pixel-interleaved samples. */
function interleave(planar: Float64Array, pixels: number): Float64Array {
  const out = new Float64Array(planar.length);
  for (let f = 0; f < planar.length; f += pixels * 3) {
    for (let p = 0; p < pixels; p++) for (let s = 0; s < 3; s++) out[f + p * 3 + s] = planar[f + s * pixels + p];
  }
  return out;
}

function unpackBits(raw: Uint8Array, count: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = (raw[i >> 3] >> (i & 7)) & 1;
  return out;
}

const results: string[] = [];

describe('every pixel-bearing file of ../shared/data/dicom decodes like an independent reference, or fails typed', () => {
  for (const rel of corpusFiles()) {
    if (rel.endsWith('README.md') || rel === 'pylibjpeg-data/JPEGLossless_1s_1f_i_16_16_bad.dcm') continue;
    it(rel, async () => {
      const file = join(CORPUS, rel);
      const bytes = readFileSync(file);
      const expectedError = EXPECTED_ERRORS[rel];
      if (expectedError) {
        const err = await (async () => decodeFrames(readInstance(bytes)))().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(RadnodeError);
        expect((err as RadnodeError).code).toBe(expectedError);
        results.push(`${rel}: ${(err as RadnodeError).code} as expected`);
        return;
      }
      const instance = readInstance(bytes);
      const frames = await decodeFrames(instance, { convertColour: false, applyPalette: false });
      const ours = flatten(frames);
      const img = instance.image!;
      const tool: ReferenceTool | 'opj' | 'inflate' = REFERENCE_TOOL[rel] ?? toolFor(instance.transferSyntaxUID);
      let ref: Float64Array;
      if (tool === 'opj') {
        const o = opjDecode8(instance.encapsulatedFrames()[0]);
        expect([o.width, o.height, o.channels]).toEqual([img.Columns, img.Rows, img.SamplesPerPixel]);
        ref = Float64Array.from(o.data);
      } else if (tool === 'inflate') {
        const parts = instance.encapsulatedFrames().map((f) => unpackBits(pythonInflateRaw(f), img.Rows * img.Columns));
        ref = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
        let o = 0;
        for (const p of parts) {
          ref.set(p, o);
          o += p.length;
        }
      } else {
        const r = referenceDecode(REFERENCE_FILE[rel] ? join(CORPUS, REFERENCE_FILE[rel]) : file, tool);
        if (r.attrs.BitsAllocated === 1) ref = unpackBits(r.raw, img.Rows * img.Columns * img.NumberOfFrames);
        else {
          ref = storedValues(r.raw, r.attrs).subarray(0, ours.length);
          if (r.attrs.PlanarConfiguration === 1 && r.attrs.SamplesPerPixel === 3) ref = interleave(ref, img.Rows * img.Columns);
          if (r.attrs.PhotometricInterpretation === 'YBR_FULL_422' && frames[0].photometricInterpretation === 'YBR_FULL') {
            ref = expand422(storedValues(r.raw, r.attrs), img.Rows, img.Columns);
          }
        }
      }
      const d = compare(ours, ref);
      results.push(`${rel}: ${instance.transferSyntaxUID} via ${tool}: max |diff| ${d.maxAbs}, mean ${d.meanAbs.toFixed(4)}, ${d.count} differ`);
      expect(d.maxAbs, `${rel} against ${tool}`).toBeLessThanOrEqual(TOLERANCE[rel] ?? 0);
    });
  }
  it('prints the comparison table', () => {
    console.log(results.join('\n'));
  });
});
