import { describe, expect, it } from 'vitest';
import type { Volume } from '../../src/dicom/index.ts';
import { simulateKernel } from './kernel.ts';

/** A 3-slice 24×24 volume: air on the left half, soft tissue on the right (a vertical edge at column 12). */
function edgeVolume(): Volume {
  const [C, R, S] = [24, 24, 3];
  const voxels = new Int16Array(C * R * S);
  for (let k = 0; k < S; k++) for (let j = 0; j < R; j++) for (let i = 0; i < C; i++) voxels[(k * R + j) * C + i] = i < 12 ? -1000 : 40;
  return { dims: [C, R, S], voxels, pixelSpacingMm: [0.7, 0.7], sliceSpacingMm: 1.25 } as unknown as Volume;
}

describe('simulateKernel (a sharper reconstruction kernel)', () => {
  it('gain 0 and no noise gives the voxels back unchanged', () => {
    const v = edgeVolume();
    expect(Array.from(simulateKernel(v, { gain: 0 }))).toEqual(Array.from(v.voxels));
  });

  it('leaves flat regions as they are and overshoots on both sides of an edge, clipped to the CT range', () => {
    const v = edgeVolume();
    const out = simulateKernel(v, { gain: 1, sigmaMm: 1 });
    const at = (i: number): number => out[(1 * 24 + 12) * 24 + i];
    expect(at(0)).toBe(-1000);
    expect(at(23)).toBe(40);
    expect(at(11)).toBeLessThan(-1000); // undershoot on the air side (still ≥ −1024, the clip)
    expect(at(11)).toBeGreaterThanOrEqual(-1024);
    expect(at(12)).toBeGreaterThan(40); // overshoot on the tissue side
  });

  it('noise is reproducible from its seed', () => {
    const v = edgeVolume();
    const a = simulateKernel(v, { gain: 0, noiseHu: 20, seed: 3 });
    const b = simulateKernel(v, { gain: 0, noiseHu: 20, seed: 3 });
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(v.voxels));
  });
});
