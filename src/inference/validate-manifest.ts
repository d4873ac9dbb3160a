import { RadnodeError } from '../errors.ts';
import type { Code, CodingScheme } from '../results/findings.ts';
import type { RoutingMatch } from '../config/types.ts';
import type { ModelManifest } from './manifest.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every message names the manifest file and the key, as the config loader does (style.md §4: never default bad metadata). */
function bad(file: string, key: string, value: unknown, expected: string): RadnodeError {
  return new RadnodeError('RN_MODEL_INVALID', `${file}: manifest key ${key}: ${expected}, got ${JSON.stringify(value)?.slice(0, 120)}`, { details: { file, key } });
}

const SCHEMES: readonly CodingScheme[] = ['SCT', 'DCM', 'RADLEX', 'LN', 'UCUM', '99RADNODE'];
const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Checks a parsed manifest.json against ModelManifest (DESIGN §4) and returns it typed. Unknown keys are refused,
 * as in the config, so that a misspelt `operatingPoint` cannot silently leave a model without thresholds.
 */
export function validateManifest(raw: unknown, file: string): ModelManifest {
  if (!isObj(raw)) throw bad(file, '(root)', raw, 'expected a JSON object');
  const known = ['id', 'version', 'sha256', 'detector', 'file', 'routing', 'population', 'input', 'preprocess', 'outputs', 'labels', 'operatingPoints', 'card', 'description', 'license'];
  for (const k of Object.keys(raw)) if (!known.includes(k)) throw bad(file, k, raw[k], `unknown key (known: ${known.join(', ')})`);
  const str = (o: Obj, k: string, path: string, re?: RegExp): string => {
    const v = o[k];
    if (typeof v !== 'string' || v.trim() === '' || (re && !re.test(v))) throw bad(file, path, v, re ? `expected a string matching ${re}` : 'expected a non-empty string');
    return v;
  };
  const num = (o: Obj, k: string, path: string, min: number, max: number): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw bad(file, path, v, `expected a number between ${min} and ${max}`);
    return v;
  };
  const obj = (o: Obj, k: string, path: string): Obj => {
    const v = o[k];
    if (!isObj(v)) throw bad(file, path, v, 'expected an object');
    return v;
  };
  const shape = (v: unknown, path: string): (number | string)[] => {
    if (!Array.isArray(v) || v.length === 0 || v.some((d) => !(typeof d === 'string' || (typeof d === 'number' && Number.isInteger(d) && (d === -1 || d > 0)))))
      throw bad(file, path, v, 'expected a list of positive integers, -1 or names (dynamic axes)');
    return v as (number | string)[];
  };
  const code = (v: unknown, path: string): Code => {
    if (!isObj(v)) throw bad(file, path, v, 'expected { scheme, value, meaning }');
    const scheme = v.scheme;
    if (typeof scheme !== 'string' || !SCHEMES.includes(scheme as CodingScheme)) throw bad(file, `${path}.scheme`, scheme, `expected one of ${SCHEMES.join(', ')}`);
    const meaning = str(v, 'meaning', `${path}.meaning`);
    // PS3.3 C.8.25.6: Code Meaning is LO, at most 64 characters.
    if (meaning.length > 64) throw bad(file, `${path}.meaning`, meaning, 'expected at most 64 characters (Code Meaning is LO)');
    return { scheme: scheme as CodingScheme, value: str(v, 'value', `${path}.value`), meaning };
  };

  const id = str(raw, 'id', 'id', ID);
  const input = obj(raw, 'input', 'input');
  const layout = input.layout;
  if (layout !== 'NCHW' && layout !== 'NCDHW') throw bad(file, 'input.layout', layout, 'expected NCHW or NCDHW');
  if (input.dtype !== 'float32') throw bad(file, 'input.dtype', input.dtype, 'expected float32');
  const inputShape = shape(input.shape, 'input.shape');
  if (inputShape.length !== layout.length) throw bad(file, 'input.shape', inputShape, `expected ${layout.length} axes for layout ${layout}`);

  const pre = obj(raw, 'preprocess', 'preprocess');
  const w = obj(pre, 'window', 'preprocess.window');
  let window: ModelManifest['preprocess']['window'];
  if (w.kind === 'image') window = { kind: 'image' };
  else if (w.kind === 'percentile') {
    // Percentiles, 0..100 (the manifest type says "percentiles"; the shipped model uses 0.5 and 99.5).
    const low = num(w, 'low', 'preprocess.window.low', 0, 100);
    const high = num(w, 'high', 'preprocess.window.high', 0, 100);
    if (!(low < high)) throw bad(file, 'preprocess.window', w, 'expected low < high (percentiles 0..100)');
    window = { kind: 'percentile', low, high };
  } else if (w.kind === 'fixed') window = { kind: 'fixed', center: num(w, 'center', 'preprocess.window.center', -1e6, 1e6), width: num(w, 'width', 'preprocess.window.width', 1e-6, 1e7) };
  else throw bad(file, 'preprocess.window.kind', w.kind, 'expected image, percentile or fixed');
  const norm = obj(pre, 'normalise', 'preprocess.normalise');
  const normalise = { mean: num(norm, 'mean', 'preprocess.normalise.mean', -1e6, 1e6), std: num(norm, 'std', 'preprocess.normalise.std', 1e-9, 1e6) };
  let size: [number, number] | undefined;
  if (pre.size !== undefined) {
    const s = pre.size;
    if (!Array.isArray(s) || s.length !== 2 || s.some((x) => !Number.isInteger(x) || (x as number) < 8 || (x as number) > 8192)) throw bad(file, 'preprocess.size', s, 'expected [height, width] in pixels');
    size = [s[0] as number, s[1] as number];
  }
  for (const k of Object.keys(pre)) if (!['window', 'size', 'spacingMm', 'normalise', 'resize'].includes(k)) throw bad(file, `preprocess.${k}`, pre[k], 'unknown key');
  let spacingMm: [number, number, number] | undefined;
  if (pre.spacingMm !== undefined) {
    const s = pre.spacingMm;
    if (!Array.isArray(s) || s.length !== 3 || s.some((x) => typeof x !== 'number' || !(x > 0))) throw bad(file, 'preprocess.spacingMm', s, 'expected [z, y, x] spacing in mm');
    spacingMm = [s[0] as number, s[1] as number, s[2] as number];
  }
  const resize = pre.resize;
  if (resize !== undefined && resize !== 'letterbox' && resize !== 'stretch') throw bad(file, 'preprocess.resize', resize, 'expected letterbox or stretch');
  if (layout === 'NCHW') {
    if (!size) throw bad(file, 'preprocess.size', undefined, 'a 2D model needs [height, width]');
    const [h, wd] = inputShape.slice(2);
    if ((typeof h === 'number' && h > 0 && h !== size[0]) || (typeof wd === 'number' && wd > 0 && wd !== size[1]))
      throw bad(file, 'preprocess.size', size, `expected the input's spatial shape ${h}×${wd}`);
  }

  if (!Array.isArray(raw.outputs) || raw.outputs.length === 0) throw bad(file, 'outputs', raw.outputs, 'expected a non-empty list of { name, kind, shape? }');
  const outputs = raw.outputs.map((o, i) => {
    const path = `outputs[${i}]`;
    if (!isObj(o)) throw bad(file, path, o, 'expected { name, kind, shape? }');
    const kind = o.kind;
    if (kind !== 'probabilities' && kind !== 'logits' && kind !== 'cam' && kind !== 'boxes') throw bad(file, `${path}.kind`, kind, 'expected probabilities, logits, cam or boxes');
    return { name: str(o, 'name', `${path}.name`), kind, ...(o.shape !== undefined ? { shape: shape(o.shape, `${path}.shape`) } : {}) } as ModelManifest['outputs'][number];
  });
  if (!outputs.some((o) => o.kind === 'probabilities' || o.kind === 'logits')) throw bad(file, 'outputs', raw.outputs, 'expected one output of kind probabilities or logits');

  if (!Array.isArray(raw.labels) || raw.labels.length === 0) throw bad(file, 'labels', raw.labels, 'expected a non-empty list of { index, code }');
  const labels = raw.labels.map((l, i) => {
    if (!isObj(l) || !Number.isInteger(l.index) || (l.index as number) < 0) throw bad(file, `labels[${i}]`, l, 'expected { index (integer ≥ 0), code }');
    return { index: l.index as number, code: code(l.code, `labels[${i}].code`) };
  });
  if (new Set(labels.map((l) => l.index)).size !== labels.length) throw bad(file, 'labels', raw.labels, 'expected distinct indices');

  const op = obj(raw, 'operatingPoints', 'operatingPoints');
  const point = (k: 'positive' | 'urgent') => {
    const p = obj(op, k, `operatingPoints.${k}`);
    return {
      threshold: num(p, 'threshold', `operatingPoints.${k}.threshold`, 0, 1),
      ...(p.sensitivity !== undefined ? { sensitivity: num(p, 'sensitivity', `operatingPoints.${k}.sensitivity`, 0, 1) } : {}),
      ...(p.specificity !== undefined ? { specificity: num(p, 'specificity', `operatingPoints.${k}.specificity`, 0, 1) } : {}),
    };
  };
  const positive = point('positive');
  const urgent = op.urgent !== undefined ? point('urgent') : undefined;
  if (urgent && urgent.threshold < positive.threshold) throw bad(file, 'operatingPoints.urgent.threshold', urgent.threshold, `expected at least the positive threshold ${positive.threshold}`);

  let routing: RoutingMatch | undefined;
  if (raw.routing !== undefined) {
    const r = obj(raw, 'routing', 'routing');
    routing = {};
    for (const [k, v] of Object.entries(r)) {
      if (['modality', 'bodyPart', 'viewPosition', 'sopClassUID', 'imageTypeIncludes', 'imageTypeExcludes'].includes(k)) {
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(file, `routing.${k}`, v, 'expected a list of strings');
        (routing as Record<string, unknown>)[k] = v;
      } else if (['sliceThicknessMmMax', 'sliceThicknessMmMin', 'minInstances'].includes(k)) {
        (routing as Record<string, unknown>)[k] = num(r, k, `routing.${k}`, 0, 1e6);
      } else throw bad(file, `routing.${k}`, v, 'unknown routing hint');
    }
  }

  let population: ModelManifest['population'];
  if (raw.population !== undefined) {
    const p = obj(raw, 'population', 'population');
    const ages = p.ageYears;
    if (!Array.isArray(ages) || ages.length !== 2 || ages.some((a) => typeof a !== 'number' || !Number.isFinite(a) || a < 0 || a > 150) || ages[0] > ages[1])
      throw bad(file, 'population.ageYears', ages, 'expected [min, max] completed years, 0 ≤ min ≤ max ≤ 150');
    population = { ageYears: [ages[0], ages[1]] };
  }

  const manifest: ModelManifest = {
    id,
    version: str(raw, 'version', 'version'),
    sha256: str(raw, 'sha256', 'sha256', /^[0-9a-f]{64}$/),
    detector: str(raw, 'detector', 'detector', ID),
    ...(raw.file !== undefined ? { file: str(raw, 'file', 'file', /^[^/\\]+\.onnx$/) } : {}),
    ...(routing ? { routing } : {}),
    ...(population ? { population } : {}),
    input: { name: str(input, 'name', 'input.name'), shape: inputShape, layout, dtype: 'float32' },
    preprocess: { window, normalise, ...(size ? { size } : {}), ...(spacingMm ? { spacingMm } : {}), ...(resize ? { resize } : {}) },
    outputs,
    labels,
    operatingPoints: { positive, ...(urgent ? { urgent } : {}) },
    card: str(raw, 'card', 'card', /^[^/\\]+$/),
  };
  return manifest;
}
