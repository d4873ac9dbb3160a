/**
 * The CT lung-nodule request, worker side (issue 7): headers → series choice → volume → detectNodules, with the
 * ONNX session as the patch classifier. It runs in the inference worker thread (worker.ts) because decoding a
 * 261-slice series and the 3D filters take seconds of CPU that must never stall the HTTP thread (DESIGN §2).
 */
import { readFile } from 'node:fs/promises';
import type * as ort from 'onnxruntime-node';
import { loadVolume, planVolumes, type VolumePlan } from '../dicom/volume.ts';
import { readHeader, readInstance, type DicomInstance } from '../dicom/instance.ts';
import { isImageDataError, RadnodeError } from '../errors.ts';
import { chooseCtSeries, MIN_LUNG_VOLUME_ML, type CtSeriesFacts } from '../detectors/ct/select.ts';
import { detectNodules } from '../detectors/ct/pipeline.ts';
import { PATCH_SIZE, PATCH_VOXELS, type PatchClassifier } from '../detectors/ct/types.ts';
import type { SkippedSeries } from '../results/findings.ts';
import { NOT_PROCESSED } from '../workflow/reasons.ts';
import type { CtReply, CtRequest, CtTimings } from './protocol.ts';

const now = () => performance.now();

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Files of one series as parsed instances: whole files when the pixels are needed, headers otherwise. */
async function readSeries(paths: string[], withPixels: boolean): Promise<DicomInstance[]> {
  const out: DicomInstance[] = [];
  for (const p of paths) {
    const bytes = new Uint8Array(await readFile(p));
    out.push(withPixels ? readInstance(bytes) : readHeader(bytes));
  }
  return out;
}

export function factsOf(seriesInstanceUID: string, instances: DicomInstance[], plan: VolumePlan): CtSeriesFacts {
  const h = instances.find((i) => i.image)?.header ?? instances[0]?.header;
  const text = (k: string) => h?.string(k)?.trim() || undefined;
  return {
    seriesInstanceUID,
    seriesDescription: text('SeriesDescription'),
    convolutionKernel: h?.strings('ConvolutionKernel').join('\\').trim() || undefined,
    bodyPartExamined: text('BodyPartExamined'),
    sliceThicknessMm: h?.number('SliceThickness'),
    stacks: plan.stacks.map((s) => ({ slices: s.instances.length, sliceSpacingMm: s.sliceSpacingMm, normal: s.normal, issues: s.issues })),
    issues: plan.issues,
    excluded: plan.excluded.length,
  };
}

/**
 * The patch classifier over an open session: one forward pass per batch the pipeline hands over,
 * [n, channels, 32, 32, 32] (NCDHW, manifest input.layout; channels = the manifest's input.shape[1], one scale per
 * channel, patch.ts), the first label's score per patch, sigmoid applied when the output is logits.
 */
export function sessionClassifier(ortModule: typeof ort, session: ort.InferenceSession, spec: CtRequest['spec']): PatchClassifier {
  const scoreOut = spec.outputs.find((o) => o.kind === 'probabilities' || o.kind === 'logits');
  if (!scoreOut) throw new RadnodeError('RN_MODEL_INVALID', 'the CT model manifest declares no probabilities or logits output');
  const declared = spec.input.shape[1];
  if (typeof declared === 'number' && !(declared >= 1 && declared <= 3))
    throw new RadnodeError('RN_MODEL_INVALID', `the CT model manifest declares ${declared} input channels; patch.ts cuts 1 to 3 scales per candidate`);
  const channels = typeof declared === 'number' ? declared : 1;
  const classify = async (patches: Float32Array, n: number): Promise<Float32Array> => {
    if (n === 0) return new Float32Array(0);
    const floats = n * channels * PATCH_VOXELS;
    const data = patches.length === floats ? patches : patches.subarray(0, floats);
    const out = await session.run({ [spec.input.name]: new ortModule.Tensor('float32', data, [n, channels, PATCH_SIZE, PATCH_SIZE, PATCH_SIZE]) });
    const raw = out[scoreOut.name].data as Float32Array;
    const stride = raw.length / n;
    if (!Number.isInteger(stride) || stride < 1) throw new RadnodeError('RN_MODEL_INVALID', `output ${scoreOut.name} has ${raw.length} values for ${n} patches`);
    const probs = new Float32Array(n);
    for (let i = 0; i < n; i++) probs[i] = scoreOut.kind === 'logits' ? sigmoid(raw[i * stride]) : raw[i * stride];
    return probs;
  };
  return Object.assign(classify, { channels });
}

export async function runCt(req: CtRequest, classify: PatchClassifier): Promise<CtReply> {
  const timings: CtTimings = { select: 0, decode: 0 };
  let t = now();
  // One series (the common case): read the files once, pixels and all. Several: headers first, pixels of the chosen.
  const single = req.series.length === 1;
  const read = new Map<string, DicomInstance[]>();
  let candidates: CtSeriesFacts[] = [];
  // Series that could not be read, or were read and held no lungs: the next-best series is read instead.
  const setAside: SkippedSeries[] = [];
  const unreadable = (seriesInstanceUID: string, err: RadnodeError) =>
    setAside.push({ seriesInstanceUID, reason: NOT_PROCESSED.unreadable, detail: `${err.code}: ${err.message}` });
  for (const s of req.series) {
    try {
      const instances = await readSeries(s.paths, single);
      if (single) read.set(s.seriesInstanceUID, instances);
      candidates.push(factsOf(s.seriesInstanceUID, instances, planVolumes(instances)));
    } catch (err) {
      // One unreadable file makes its series unreadable; the study's other series can still be read.
      if (!isImageDataError(err)) throw err;
      unreadable(s.seriesInstanceUID, err);
    }
  }
  timings.select = now() - t;
  for (;;) {
    t = now();
    const choice = chooseCtSeries(candidates);
    timings.select += now() - t;
    const skipped = [...choice.skipped, ...setAside];
    if (!choice.chosen) return { kind: 'refused', skipped, ...(setAside.length ? { reason: setAside[setAside.length - 1].reason } : {}), timingsMs: timings };
    const chosenUid = choice.chosen.seriesInstanceUID;
    const next = () => (candidates = candidates.filter((c) => c.seriesInstanceUID !== chosenUid));

    t = now();
    let volume: Awaited<ReturnType<typeof loadVolume>>;
    try {
      const instances = read.get(chosenUid) ?? (await readSeries(req.series.find((s) => s.seriesInstanceUID === chosenUid)!.paths, true));
      read.delete(chosenUid);
      volume = await loadVolume(planVolumes(instances).stacks[0]);
    } catch (err) {
      if (!isImageDataError(err)) throw err;
      unreadable(chosenUid, err);
      next();
      continue;
    } finally {
      timings.decode += now() - t;
    }

    const result = await detectNodules(volume, classify, { minProbability: req.minProbability, ...(req.maxCandidates ? { maxCandidates: req.maxCandidates } : {}) });
    Object.assign(timings, result.timingsMs);
    if (result.lungVolumeMl < MIN_LUNG_VOLUME_ML) {
      setAside.push({ seriesInstanceUID: chosenUid, reason: NOT_PROCESSED.noLungs, detail: `lung mask ${Math.round(result.lungVolumeMl)} ml, under ${MIN_LUNG_VOLUME_ML} ml: no lungs in the field of view` });
      next();
      continue;
    }
    const first = volume.instances[0];
    const fallback = setAside.length ? `; ${setAside.length} other series could not be used (listed as not processed)` : '';
    return {
      kind: 'ok',
      seriesInstanceUID: chosenUid,
      why: choice.why + fallback,
      skipped,
      frameOfReferenceUID: first.header.string('FrameOfReferenceUID') ?? '',
      rows: volume.rows,
      columns: volume.columns,
      pixelSpacingMm: volume.pixelSpacingMm,
      sliceSpacingMm: volume.sliceSpacingMm,
      sliceSopInstanceUIDs: volume.instances.map((i) => i.SOPInstanceUID ?? ''),
      nodules: result.nodules,
      candidateCount: result.candidateCount,
      lungVolumeMl: result.lungVolumeMl,
      timingsMs: timings,
    };
  }
}
