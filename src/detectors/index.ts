import type { LoadedModel } from '../inference/registry.ts';
import type { InferenceRuntime } from '../inference/runtime.ts';
import { createCtDetector } from './ct/index.ts';
import { createCxrDetector } from './cxr/index.ts';
import { createMammoDetector } from './mammo/index.ts';
import type { Detector } from './detector.ts';

/**
 * The detector kinds radnode ships, by the `detector` key of a model manifest. A model folder under
 * inference.modelsDir whose manifest names one of these becomes a detector with no code change (DESIGN §4).
 */
export const DETECTOR_KINDS: Record<string, (model: LoadedModel, runtime: InferenceRuntime, id: string) => Detector> = {
  cxr: createCxrDetector,
  mammo: createMammoDetector,
  ct: createCtDetector,
};

/**
 * The model that answers to the bare detector id (the id the default routing rules name). Any other model of the
 * same kind registers under its own model id, so a site routes to it with a rule naming that id, beside or
 * instead of the shipped one, and a second model never silently replaces the first.
 */
export const DEFAULT_MODEL_OF: Record<string, string> = {
  cxr: 'cxr-pneumonia',
  mammo: 'mammo-mias',
  ct: 'ct-lung-nodule',
};

/**
 * Builds the built-in detectors from the loaded models. A model whose detector kind radnode does not have is a
 * problem at start-up (it would otherwise sit loaded and never run).
 */
export function builtinDetectors(models: LoadedModel[], runtime: InferenceRuntime): { detectors: Detector[]; problems: { source: string; code: 'RN_MODEL_INVALID'; detail: string }[] } {
  const detectors: Detector[] = [];
  const problems: { source: string; code: 'RN_MODEL_INVALID'; detail: string }[] = [];
  for (const m of models) {
    const make = DETECTOR_KINDS[m.manifest.detector];
    if (!make) {
      problems.push({ source: m.dir, code: 'RN_MODEL_INVALID', detail: `manifest key detector: no detector ${JSON.stringify(m.manifest.detector)} (known: ${Object.keys(DETECTOR_KINDS).join(', ')})` });
      continue;
    }
    const id = DEFAULT_MODEL_OF[m.manifest.detector] === m.manifest.id ? m.manifest.detector : m.manifest.id;
    detectors.push(make(m, runtime, id));
  }
  return { detectors, problems };
}

/** Kept for callers that want the list without models (tests, tools): radnode ships no model-less detector. */
export const BUILTIN_DETECTORS: Detector[] = [];

/**
 * Start-up of the shipped detectors: the inference worker, the model registry (every model checked and its
 * session opened once) and one detector per model. Problems are returned, never thrown: the node starts without
 * a refused model and says why in /readyz.
 */
export async function startBuiltinDetectors(
  inference: { modelsDir: string; intraOpThreads: number; interOpThreads: number; executionProviders: ('cpu' | 'cuda')[] },
  log?: import('../log.ts').Logger,
): Promise<{ runtime: InferenceRuntime; models: LoadedModel[]; detectors: Detector[]; problems: { source: string; code: string; detail: string }[] }> {
  const { InferenceRuntime: Runtime } = await import('../inference/runtime.ts');
  const { loadModels } = await import('../inference/registry.ts');
  const runtime = new Runtime({ intraOpThreads: inference.intraOpThreads, interOpThreads: inference.interOpThreads, executionProviders: inference.executionProviders });
  const { models, problems } = await loadModels(inference.modelsDir, runtime, log);
  const built = builtinDetectors(models, runtime);
  return { runtime, models, detectors: built.detectors, problems: [...problems, ...built.problems] };
}
