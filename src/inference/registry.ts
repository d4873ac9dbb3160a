import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asRadnodeError, RadnodeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ModelManifest } from './manifest.ts';
import type { OpenReply, TensorInfo } from './protocol.ts';
import type { InferenceRuntime } from './runtime.ts';
import { validateManifest } from './validate-manifest.ts';

/** The models radnode ships: `models/` at the repository root (inference.modelsDir '' means this folder). */
export const SHIPPED_MODELS_DIR = resolve(fileURLToPath(new URL('../../models', import.meta.url)));

export type ModelProblem = { source: string; code: 'RN_MODEL_INVALID'; detail: string };

/** A model whose manifest, file hash and (for loaded models) ONNX interface were all checked. */
export type CheckedModel = { manifest: ModelManifest; dir: string; path: string; sha256: string };
export type LoadedModel = CheckedModel & { session: OpenReply };

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const problem = (source: string, detail: string): ModelProblem => ({ source, code: 'RN_MODEL_INVALID', detail });

/**
 * Reads and checks every `<dir>/<id>/manifest.json` without opening a session: manifest against the type, folder
 * name = id, the ONNX file and card present, sha256 of the file = the manifest's (DESIGN §4: refused at start-up,
 * not at the first study). `radnode models list` stops here; loadModels goes on to open the sessions.
 */
export async function checkModels(dir: string): Promise<{ models: CheckedModel[]; problems: ModelProblem[] }> {
  const models: CheckedModel[] = [];
  const problems: ModelProblem[] = [];
  if (!existsSync(dir)) return { models, problems };
  const folders = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const name of folders) {
    const folder = join(dir, name);
    const manifestPath = join(folder, 'manifest.json');
    // A folder that is still being filled by a training run (model.onnx without a manifest yet) is not a model.
    if (!existsSync(manifestPath)) continue;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(manifestPath, 'utf8'));
      } catch (err) {
        throw new RadnodeError('RN_MODEL_INVALID', `${manifestPath}: not valid JSON: ${(err as Error).message}`, { cause: err });
      }
      const manifest = validateManifest(raw, manifestPath);
      if (models.some((m) => m.manifest.id === manifest.id)) throw new RadnodeError('RN_MODEL_INVALID', `${manifestPath}: duplicate model id ${manifest.id}`);
      const path = join(folder, manifest.file ?? 'model.onnx');
      if (!existsSync(path) || !statSync(path).isFile()) throw new RadnodeError('RN_MODEL_INVALID', `${folder}: model file ${manifest.file ?? 'model.onnx'} is missing`);
      if (!existsSync(join(folder, manifest.card))) throw new RadnodeError('RN_MODEL_INVALID', `${folder}: model card ${manifest.card} (manifest key card) is missing`);
      const sha256 = await sha256File(path);
      if (sha256 !== manifest.sha256)
        throw new RadnodeError('RN_MODEL_INVALID', `${path}: sha256 ${sha256} differs from manifest key sha256 ${manifest.sha256}; the file is not the model the manifest describes`);
      models.push({ manifest, dir: folder, path, sha256 });
    } catch (err) {
      problems.push(problem(folder, asRadnodeError(err).message));
    }
  }
  return { models, problems };
}

const isFixed = (d: number | string): d is number => typeof d === 'number' && d > 0;

/**
 * Does the graph's interface fit the manifest? The one input must be the manifest's, float32, with the same rank
 * and every axis both sides fix equal; each declared output must exist with its declared rank; and the score
 * output must hold an element for every label index.
 */
export function interfaceProblems(manifest: ModelManifest, session: OpenReply): string[] {
  const out: string[] = [];
  const show = (t: TensorInfo) => `${t.name} [${t.shape.join(', ')}]`;
  const input = session.inputs.find((i) => i.name === manifest.input.name);
  if (!input) out.push(`manifest key input.name: the graph has no input ${JSON.stringify(manifest.input.name)} (inputs: ${session.inputs.map(show).join('; ')})`);
  const extra = session.inputs.filter((i) => i.name !== manifest.input.name);
  if (extra.length) out.push(`the graph has inputs the manifest does not feed: ${extra.map(show).join('; ')}`);
  if (input) {
    if (input.type !== undefined && input.type !== 'float32') out.push(`input ${input.name}: the graph wants ${input.type}, the manifest says float32`);
    const want = manifest.input.shape;
    if (input.shape.length !== want.length) out.push(`manifest key input.shape: [${want.join(', ')}] does not fit the graph's ${show(input)} (rank ${want.length} vs ${input.shape.length})`);
    else
      want.forEach((d, i) => {
        const g = input.shape[i];
        if (isFixed(d) && isFixed(g) && d !== g) out.push(`manifest key input.shape: axis ${i} is ${d}, the graph's ${show(input)} has ${g}`);
      });
  }
  for (const o of manifest.outputs) {
    const g = session.outputs.find((x) => x.name === o.name);
    if (!g) {
      out.push(`manifest key outputs: the graph has no output ${JSON.stringify(o.name)} (outputs: ${session.outputs.map(show).join('; ')})`);
      continue;
    }
    if (o.shape && g.shape.length && o.shape.length !== g.shape.length) out.push(`output ${o.name}: manifest shape [${o.shape.join(', ')}] vs graph ${show(g)}`);
    if (o.kind === 'probabilities' || o.kind === 'logits') {
      const last = g.shape.at(-1);
      const maxIndex = Math.max(...manifest.labels.map((l) => l.index));
      if (last !== undefined && isFixed(last) && maxIndex >= last) out.push(`manifest key labels: index ${maxIndex} but output ${show(g)} has ${last} scores`);
    }
    if (o.kind === 'cam' && g.shape.length && g.shape.length < 2) out.push(`output ${o.name}: a class activation map needs at least 2 axes, the graph has ${show(g)}`);
  }
  return out;
}

/**
 * The model registry: every checked model gets its session opened ONCE in the inference worker, and the graph's
 * interface is compared with the manifest. A refused model is a problem with a coded reason (it shows in /readyz
 * and in the log); the node still starts with the rest.
 */
export async function loadModels(dir: string, runtime: InferenceRuntime, log?: Logger): Promise<{ models: LoadedModel[]; problems: ModelProblem[] }> {
  const { models: checked, problems } = await checkModels(dir);
  const models: LoadedModel[] = [];
  for (const m of checked) {
    let session: OpenReply;
    try {
      session = await runtime.open(m.manifest.id, m.path);
    } catch (err) {
      problems.push(problem(m.dir, `${m.path}: onnxruntime cannot load the graph (corrupt or not ONNX): ${asRadnodeError(err).message}`));
      continue;
    }
    for (const w of session.warnings) log?.warn(w, { model: m.manifest.id });
    const bad = interfaceProblems(m.manifest, session);
    if (bad.length) {
      problems.push(problem(m.dir, `${m.path}: the ONNX graph does not fit ${join(m.dir, 'manifest.json')}: ${bad.join('; ')}`));
      await runtime.close(m.manifest.id).catch(() => undefined);
      continue;
    }
    models.push({ ...m, session });
  }
  return { models, problems };
}
