import type { Volume } from '../../src/dicom/index.ts';
import { rng } from './rng.ts';

/**
 * A simulated sharper reconstruction kernel for robustness checks. Both shared scans are one soft kernel (GE
 * STANDARD); LIDC scans also come with sharp lung kernels, which draw edges with overshoot and parenchyma with more
 * grain. Each slice becomes slice + gain × (slice − its in-plane Gaussian of σ sigmaMm), plus optional white noise,
 * clipped to the CT range: an unsharp mask, the usual first-order model of a sharper kernel's transfer function.
 */
export type KernelSim = { gain: number; sigmaMm?: number; noiseHu?: number; seed?: number };

function kernel1d(sigmaPx: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigmaPx));
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigmaPx * sigmaPx));
  return k.map((x) => x / s);
}

/** In-plane separable Gaussian of one C×R slice into `out` (edges clamped). */
export function blurSlice(src: ArrayLike<number>, C: number, R: number, spacingMm: [number, number], sigmaMm: number, out: Float32Array): void {
  const kx = kernel1d(sigmaMm / spacingMm[1]);
  const ky = kernel1d(sigmaMm / spacingMm[0]);
  const rx = (kx.length - 1) / 2;
  const ry = (ky.length - 1) / 2;
  const tmp = new Float32Array(C * R);
  for (let y = 0; y < R; y++)
    for (let x = 0; x < C; x++) {
      let acc = 0;
      for (let t = 0; t < kx.length; t++) acc += kx[t] * src[y * C + Math.min(C - 1, Math.max(0, x - rx + t))];
      tmp[y * C + x] = acc;
    }
  out.fill(0);
  for (let y = 0; y < R; y++)
    for (let t = 0; t < ky.length; t++) {
      const w = ky[t];
      const q = Math.min(R - 1, Math.max(0, y - ry + t)) * C;
      for (let x = 0; x < C; x++) out[y * C + x] += w * tmp[q + x];
    }
}

/** The voxels of `volume` (or `voxels`, e.g. after inserting nodules) as a sharper kernel would draw them. */
export function simulateKernel(volume: Volume, sim: KernelSim, voxels: Int16Array | Float32Array = volume.voxels): Int16Array {
  const [C, R, S] = volume.dims;
  const plane = C * R;
  const out = new Int16Array(voxels.length);
  const blurred = new Float32Array(plane);
  const noise = sim.noiseHu ?? 0;
  const r = rng(sim.seed ?? 1);
  for (let k = 0; k < S; k++) {
    const src = voxels.subarray(k * plane, (k + 1) * plane);
    blurSlice(src, C, R, volume.pixelSpacingMm, sim.sigmaMm ?? 1, blurred);
    for (let p = 0; p < plane; p++) {
      const v = src[p] + sim.gain * (src[p] - blurred[p]) + (noise ? noise * r.normal() : 0);
      out[k * plane + p] = Math.max(-1024, Math.min(3071, Math.round(v)));
    }
  }
  return out;
}
