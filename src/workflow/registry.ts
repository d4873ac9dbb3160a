import { pathToFileURL } from 'node:url';
import { isDetector, type Detector } from '../detectors/detector.ts';
import { RadnodeError } from '../errors.ts';

export type RegistryProblem = { source: string; code: string; detail: string };

/**
 * Builds the detector registry from the built-ins and the site's modules (config detectors.modules). A module
 * that fails to load or exports no valid detector, or a duplicate id, is refused at start-up with a coded reason
 * (it shows in /readyz); the node still starts with the rest.
 */
export async function loadDetectors(builtins: Detector[], modules: string[]): Promise<{ detectors: Map<string, Detector>; problems: RegistryProblem[] }> {
  const detectors = new Map<string, Detector>();
  const problems: RegistryProblem[] = [];
  const add = (d: Detector, source: string) => {
    if (detectors.has(d.manifest.id)) problems.push({ source, code: 'RN_DETECTOR_INVALID', detail: `duplicate detector id ${d.manifest.id}` });
    else detectors.set(d.manifest.id, d);
  };
  for (const d of builtins) add(d, 'builtin');
  for (const m of modules) {
    try {
      const mod = (await import(m.startsWith('/') ? pathToFileURL(m).href : m)) as { detector?: unknown; detectors?: unknown };
      const list = Array.isArray(mod.detectors) ? mod.detectors : mod.detector !== undefined ? [mod.detector] : [];
      if (list.length === 0) throw new RadnodeError('RN_DETECTOR_INVALID', `module ${m} exports neither detector nor detectors`);
      for (const d of list) {
        if (!isDetector(d)) throw new RadnodeError('RN_DETECTOR_INVALID', `module ${m} exports an object that is not a detector (manifest, select, run)`);
        add(d, m);
      }
    } catch (err) {
      problems.push({ source: m, code: err instanceof RadnodeError ? err.code : 'RN_DETECTOR_INVALID', detail: (err as Error)?.message ?? String(err) });
    }
  }
  return { detectors, problems };
}
