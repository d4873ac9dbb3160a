/**
 * The inference worker thread: it holds the onnxruntime sessions and does decode → preprocess → infer →
 * postprocess for one image at a time. onnxruntime-node's `session.run` is synchronous on the calling thread
 * (its promise wraps a blocking native call in setImmediate: onnxruntime-node dist/backend.js), so inference on
 * the main thread would stall every HTTP request for the length of a forward pass. Here it stalls nothing.
 */
import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { decodeFrames, exactPercentileWindow, inverseTurn, patientAgeYears, physicalValues, modalityLut, radiographTurn, readInstance, reorient, toDisplay, turnedPointToStored, type DataSetView, type Turn, type DecodedFrame, type DicomInstance, type VoiWindow } from '../dicom/index.ts';
import { RadnodeError } from '../errors.ts';
import { camToSource, hotRegion, normalise, resizeToInput, type HotRegion } from './image.ts';
import { runCt, sessionClassifier } from './ct.ts';
import { mammoCamToStored, mammogramInput, mammoPeak, type MammoPeak } from './mammogram.ts';
import type { CtReply, CtRequest, ExecutionProvider, Image2DSpec, ImageRefused, MammogramReply, MammogramRequest, OpenReply, OpenRequest, RadiographReply, RadiographRequest, TensorInfo, WorkerReply, WorkerRequest } from './protocol.ts';

const sessions = new Map<string, ort.InferenceSession>();

function metadata(list: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return list.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, shape: [] }));
}

async function open(req: OpenRequest): Promise<OpenReply> {
  const warnings: string[] = [];
  let providers: ExecutionProvider[] = req.settings.executionProviders;
  if (providers.includes('cuda')) {
    // The npm tarball carries only the CPU provider; the CUDA one is a separate install (docs/configuration.md).
    const cuda = ort.listSupportedBackends().find((b) => b.name === 'cuda');
    if (!cuda?.bundled) {
      warnings.push('inference.executionProviders names cuda, but the CUDA execution provider is not installed; using cpu');
      providers = ['cpu'];
    }
  }
  const options = (p: ExecutionProvider[]): ort.InferenceSession.SessionOptions => ({
    executionProviders: p,
    graphOptimizationLevel: 'all',
    ...(req.settings.intraOpThreads > 0 ? { intraOpNumThreads: req.settings.intraOpThreads } : {}),
    ...(req.settings.interOpThreads > 0 ? { interOpNumThreads: req.settings.interOpThreads } : {}),
  });
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(req.path, options(providers));
  } catch (err) {
    if (providers[0] !== 'cuda') throw err;
    warnings.push(`the CUDA execution provider failed to start (${(err as Error).message}); using cpu`);
    providers = ['cpu'];
    session = await ort.InferenceSession.create(req.path, options(providers));
  }
  await sessions.get(req.key)?.release();
  sessions.set(req.key, session);
  return { inputs: metadata(session.inputMetadata), outputs: metadata(session.outputMetadata), provider: providers[0], warnings };
}

const now = () => performance.now();
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

type FirstFrame = { session: ort.InferenceSession; instance: DicomInstance; frame: DecodedFrame; decode: number };

/**
 * The 2D detectors' shared first step: the open session, the first frame decoded (timed), or a refusal value for a
 * colour frame (routing refuses colour series from the header; this catches a colour image later in a series) or,
 * where `singleFrame`, for an object of several frames.
 */
async function firstFrame(req: { key: string; path: string }, singleFrame = false): Promise<FirstFrame | ImageRefused> {
  const session = sessions.get(req.key);
  if (!session) throw new RadnodeError('RN_MODEL_INVALID', `model ${req.key} has no open session`);
  const t = now();
  const instance = readInstance(await readFile(req.path));
  const frames = instance.image?.NumberOfFrames ?? 1;
  // A tomosynthesis object holds reconstructed slices or projections, not a 2D view: its first frame is one slab near
  // the detector and would be read as a whole breast (the synthetic 2D view is a single-frame MG or BTO image).
  if (singleFrame && frames > 1)
    return { kind: 'refused', reason: 'multiframe', detail: `${frames} frames (tomosynthesis slices or projections), not a 2D view`, timingsMs: { decode: now() - t } };
  const [frame] = await decodeFrames(instance, { frames: [0] });
  const decode = now() - t;
  if (frame.samplesPerPixel !== 1)
    return { kind: 'refused', reason: 'colour', detail: `Photometric Interpretation ${frame.photometricInterpretation}, ${frame.samplesPerPixel} samples per pixel`, timingsMs: { decode } };
  return { session, instance, frame, decode };
}

/** Modality LUT → the manifest's window (fixed, or nearest-rank percentiles over every pixel) → 0..1, MONOCHROME1 inverted (PS3.4 N.2.1.1). */
function displayOf(f: FirstFrame, w: Image2DSpec['preprocess']['window']): Float32Array {
  let window: VoiWindow | undefined;
  if (w.kind === 'fixed') window = { center: w.center, width: w.width, function: 'LINEAR' };
  else if (w.kind === 'percentile') window = exactPercentileWindow(physicalValues(f.frame, modalityLut(f.instance, 0)), w.low / 100, w.high / 100);
  return toDisplay(f.instance, f.frame, window ? { window } : {});
}

/** The score output (sigmoid applied to logits) and the class-activation map, if the manifest declares one. */
function scoresAndCam(out: ort.InferenceSession.OnnxValueMapType, spec: Image2DSpec): { scores: number[]; cam?: { height: number; width: number; values: Float32Array } } {
  const scoreOut = spec.outputs.find((o) => o.kind === 'probabilities' || o.kind === 'logits')!;
  const raw = Array.from(out[scoreOut.name].data as Float32Array);
  const scores = scoreOut.kind === 'logits' ? raw.map(sigmoid) : raw;
  const camOut = spec.outputs.find((o) => o.kind === 'cam');
  if (!camOut) return { scores };
  const tensor = out[camOut.name];
  const [height, width] = tensor.dims.slice(-2);
  return { scores, cam: { height, width, values: Float32Array.from(tensor.data as Float32Array).subarray(0, height * width) } };
}

const codeText = (item: DataSetView): string => `${item.string('CodeValue') ?? ''} ${item.string('CodeMeaning') ?? ''}`.trim();

/** The per-image view and intent both 2D detectors refuse on (View Code Sequence's first item as "value meaning"). */
function viewFacts(h: DataSetView): { viewPosition: string; viewCode: string; presentationIntent: string } {
  return {
    viewPosition: (h.string('ViewPosition') ?? '').trim().toUpperCase(),
    viewCode: h.items('ViewCodeSequence').slice(0, 1).map(codeText).join(''),
    presentationIntent: (h.string('PresentationIntentType') ?? '').trim().toUpperCase(),
  };
}

/** A hot region found on the turned film, on the stored one: the box's corners map back, and it stays axis-aligned. */
function hotToStored(hot: HotRegion, turn: Turn, rows: number, columns: number): HotRegion {
  const [a, b] = hot.box.map(([x, y]) => turnedPointToStored(turn, rows, columns, x, y));
  return {
    box: [[Math.min(a[0], b[0]), Math.min(a[1], b[1])], [Math.max(a[0], b[0]), Math.max(a[1], b[1])]],
    centre: turnedPointToStored(turn, rows, columns, hot.centre[0], hot.centre[1]),
    peak: hot.peak,
  };
}

function sideOf(hot: HotRegion, columns: number): 'right' | 'left' | undefined {
  const [[x0], [x1]] = hot.box;
  const mid = columns / 2;
  return x1 <= mid ? 'right' : x0 >= mid ? 'left' : undefined;
}

async function radiograph(req: RadiographRequest): Promise<{ value: RadiographReply; transfer: ArrayBuffer[] }> {
  const f = await firstFrame(req);
  if ('kind' in f) return { value: f, transfer: [] };
  const { spec } = req;
  const { frame, instance, decode } = f;

  let t = now();
  // The model always sees bone bright, whatever the photometric interpretation; the window is taken over every pixel
  // (train.py's contract), so a mirrored or turned copy of a film gets the same window.
  const display = displayOf(f, spec.preprocess.window);
  const h = instance.header;
  // The model learnt films in the standard display: a film stored mirrored or turned is turned back first.
  const turn = radiographTurn(h.strings('PatientOrientation'));
  const o = turn ? reorient(display, frame.rows, frame.columns, turn) : { data: display, rows: frame.rows, columns: frame.columns };
  const [height, width] = spec.preprocess.size ?? [o.rows, o.columns];
  const { data, geometry } = resizeToInput(o.data, o.rows, o.columns, height, width, spec.preprocess.resize ?? 'stretch');
  normalise(data, spec.preprocess.normalise.mean, spec.preprocess.normalise.std);
  const preprocess = now() - t;

  t = now();
  const out = await f.session.run({ [spec.input.name]: new ort.Tensor('float32', data, [1, 1, height, width]) });
  const infer = now() - t;

  t = now();
  const { scores, cam } = scoresAndCam(out, spec);
  const turnedHot: HotRegion | undefined = cam && hotRegion(cam.values, cam.height, cam.width, geometry, o.rows, o.columns);
  const hot = turnedHot && turn ? hotToStored(turnedHot, turn, o.rows, o.columns) : turnedHot;
  const turnedHeat = cam && req.wantHeatmap ? camToSource(cam.values, cam.height, cam.width, geometry, o.rows, o.columns) : undefined;
  const heatmap = turnedHeat && turn ? reorient(turnedHeat, o.rows, o.columns, inverseTurn(turn)).data : turnedHeat;
  // In the standard display the image's left half is the patient's right.
  const side = turn && turnedHot ? sideOf(turnedHot, o.columns) : undefined;
  const age = patientAgeYears(h);
  const postprocess = now() - t;
  const value: RadiographReply = {
    kind: 'ok', rows: frame.rows, columns: frame.columns, photometricInterpretation: frame.photometricInterpretation,
    ...(side ? { side } : {}),
    ...viewFacts(h),
    ...(age !== undefined ? { ageYears: age } : {}),
    scores, cam, heatmap, hot, timingsMs: { decode, preprocess, infer, postprocess },
  };
  return { value, transfer: heatmap ? [heatmap.buffer as ArrayBuffer] : [] };
}

async function mammogram(req: MammogramRequest): Promise<{ value: MammogramReply; transfer: ArrayBuffer[] }> {
  const f = await firstFrame(req, true);
  if ('kind' in f) return { value: f, transfer: [] };
  const { spec } = req;
  const { frame, instance, decode } = f;

  let t = now();
  const display = displayOf(f, spec.preprocess.window);
  const [height, width] = spec.preprocess.size ?? [256, 256];
  const { data, geometry, orientation, content } = mammogramInput(instance, display, frame.rows, frame.columns, [height, width], spec.preprocess.normalise);
  const preprocess = now() - t;

  t = now();
  const out = await f.session.run({ [spec.input.name]: new ort.Tensor('float32', data, [1, 1, height, width]) });
  const infer = now() - t;

  t = now();
  const { scores, cam } = scoresAndCam(out, spec);
  const peak: MammoPeak | undefined = cam && mammoPeak(cam.values, cam.height, cam.width, geometry);
  const heatmap = cam && req.wantHeatmap ? mammoCamToStored(cam.values, cam.height, cam.width, geometry, frame.rows, frame.columns) : undefined;
  const postprocess = now() - t;
  const h = instance.header;
  const value: MammogramReply = {
    kind: 'ok', rows: frame.rows, columns: frame.columns,
    laterality: orientation.laterality, view: orientation.view,
    orientation: { transpose: orientation.transpose, flipHorizontal: orientation.flipHorizontal, flipVertical: orientation.flipVertical, source: orientation.source },
    ...viewFacts(h),
    imageType: h.strings('ImageType').map((s) => s.trim().toUpperCase()),
    // Some producers write the modifiers beside View Code Sequence rather than inside it: read both.
    viewModifiers: [...h.items('ViewCodeSequence').flatMap((v) => v.items('ViewModifierCodeSequence')), ...h.items('ViewModifierCodeSequence')].map(codeText),
    implantPresent: (h.string('BreastImplantPresent') ?? '').trim().toUpperCase() === 'YES',
    qualityControlImage: (h.string('QualityControlImage') ?? '').trim().toUpperCase(),
    content,
    scores, cam, peak, heatmap, timingsMs: { decode, preprocess, infer, postprocess },
  };
  return { value, transfer: heatmap ? [heatmap.buffer as ArrayBuffer] : [] };
}

async function ct(req: CtRequest): Promise<{ value: CtReply; transfer: ArrayBuffer[] }> {
  const session = sessions.get(req.key);
  if (!session) throw new RadnodeError('RN_MODEL_INVALID', `model ${req.key} has no open session`);
  return { value: await runCt(req, sessionClassifier(ort, session, req.spec)), transfer: [] };
}

parentPort!.on('message', (msg: WorkerRequest) => {
  void (async () => {
    try {
      let reply: { value: unknown; transfer: ArrayBuffer[] };
      if (msg.type === 'open') reply = { value: await open(msg), transfer: [] };
      else if (msg.type === 'close') {
        await sessions.get(msg.key)?.release();
        sessions.delete(msg.key);
        reply = { value: null, transfer: [] };
      } else if (msg.type === 'mammogram') reply = await mammogram(msg);
      else if (msg.type === 'ct') reply = await ct(msg);
      else reply = await radiograph(msg);
      parentPort!.postMessage({ id: msg.id, ok: true, value: reply.value } satisfies WorkerReply, reply.transfer);
    } catch (err) {
      const e = err instanceof RadnodeError ? err : null;
      parentPort!.postMessage({
        id: msg.id, ok: false, code: e?.code ?? 'RN_INTERNAL', message: (err as Error)?.message ?? String(err), details: e?.details,
      } satisfies WorkerReply);
    }
  })();
});
