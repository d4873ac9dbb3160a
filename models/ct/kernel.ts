import type { Volume } from '../../src/dicom/index.ts';
import { gaussianBlur } from '../../src/detectors/ct/candidates.ts';
import { rng } from './rng.ts';

/**
 * A simulated sharper reconstruction kernel for robustness checks. Both shared scans are one soft kernel (GE
 * STANDARD); LIDC scans also come with sharp lung kernels, which draw edges with overshoot and parenchyma with more
 * grain. Each slice becomes slice + gain × (slice − its in-plane Gaussian of σ sigmaMm), plus optional white noise,
 * clipped to the CT range: an unsharp mask, the usual first-order model of a sharper kernel's transfer function.
 */
export type KernelSim = { gain: number; sigmaMm?: number; noiseHu?: number; seed?: number };

/** The voxels of `volume` (or `voxels`, e.g. after inserting nodules) as a sharper kernel would draw them. */
export function simulateKernel(volume: Volume, sim: KernelSim, voxels: Int16Array | Float32Array = volume.voxels): Int16Array {
  const [C, R, S] = volume.dims;
  const plane = C * R;
  const out = new Int16Array(voxels.length);
  const blurred = new Float32Array(plane);
  const tmp = new Float32Array(plane);
  // one slice at a time, sz = Infinity: the pipeline's own Gaussian, in-plane only
  const slice = { nx: C, ny: R, nz: 1, sx: volume.pixelSpacingMm[1], sy: volume.pixelSpacingMm[0], sz: Infinity };
  const noise = sim.noiseHu ?? 0;
  const r = rng(sim.seed ?? 1);
  for (let k = 0; k < S; k++) {
    const src = voxels.subarray(k * plane, (k + 1) * plane);
    blurred.set(src);
    gaussianBlur(blurred, slice, sim.sigmaMm ?? 1, tmp);
    for (let p = 0; p < plane; p++) {
      const v = src[p] + sim.gain * (src[p] - blurred[p]) + (noise ? noise * r.normal() : 0);
      out[k * plane + p] = Math.max(-1024, Math.min(3071, Math.round(v)));
    }
  }
  return out;
}
