import { describe, expect, it } from 'vitest';
import { close, components3D, dilate, erode, fillHoles2D, open, squaredDistance, type Grid } from './morphology.ts';

/** Deterministic pseudo-random bits. */
function bits(n: number, density: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 < density ? 1 : 0;
  }
  return out;
}

describe('squaredDistance', () => {
  it('equals the brute-force Euclidean distance on an anisotropic 3D grid', () => {
    const g: Grid = { nx: 13, ny: 11, nz: 7, sx: 0.7, sy: 0.8, sz: 2.5 };
    const n = g.nx * g.ny * g.nz;
    const f = bits(n, 0.03, 7);
    const d = squaredDistance(f, g);
    const pts: [number, number, number][] = [];
    for (let p = 0; p < n; p++) if (f[p]) pts.push([p % g.nx, Math.floor(p / g.nx) % g.ny, Math.floor(p / (g.nx * g.ny))]);
    expect(pts.length).toBeGreaterThan(3);
    for (let p = 0; p < n; p++) {
      const x = p % g.nx;
      const y = Math.floor(p / g.nx) % g.ny;
      const z = Math.floor(p / (g.nx * g.ny));
      let best = Infinity;
      for (const [a, b, c] of pts) best = Math.min(best, ((x - a) * g.sx) ** 2 + ((y - b) * g.sy) ** 2 + ((z - c) * g.sz) ** 2);
      expect(d[p]).toBeCloseTo(best, 3);
    }
  });

  it('is infinite without any feature', () => {
    const d = squaredDistance(new Uint8Array(8), { nx: 2, ny: 2, nz: 2, sx: 1, sy: 1, sz: 1 });
    expect(Math.min(...d)).toBeGreaterThan(1e19);
  });
});

describe('ball morphology', () => {
  const g: Grid = { nx: 41, ny: 41, nz: 1, sx: 0.5, sy: 0.5, sz: 1 };
  const disc = (r: number, cx = 20, cy = 20): Uint8Array => {
    const m = new Uint8Array(g.nx * g.ny);
    for (let y = 0; y < g.ny; y++) for (let x = 0; x < g.nx; x++) m[y * g.nx + x] = Math.hypot((x - cx) * g.sx, (y - cy) * g.sy) <= r ? 1 : 0;
    return m;
  };
  const sum = (m: Uint8Array): number => m.reduce((a, b) => a + b, 0);

  it('dilating and eroding a disc by r mm grows and shrinks its radius by r (to a pixel\'s rounding)', () => {
    const grown = dilate(disc(4), g, 2);
    const shrunk = erode(disc(6), g, 2);
    expect(Math.abs(sum(grown) / sum(disc(6)) - 1)).toBeLessThan(0.05);
    expect(Math.abs(sum(shrunk) / sum(disc(4)) - 1)).toBeLessThan(0.05);
    // and nothing beyond r: every grown pixel within 6 mm of the centre, every kept pixel within 4 mm and half a pixel
    // (the digital disc's rim lies inside 6 mm)
    for (let p = 0; p < grown.length; p++) {
      const r = Math.hypot(((p % g.nx) - 20) * g.sx, (Math.floor(p / g.nx) - 20) * g.sy);
      if (grown[p]) expect(r).toBeLessThanOrEqual(6 + 1e-9);
      if (shrunk[p]) expect(r).toBeLessThanOrEqual(4 + g.sx / 2);
    }
  });

  it('an opening removes a line thinner than the ball and keeps the disc; a closing fills a gap narrower than 2r', () => {
    const m = disc(5);
    for (let x = 0; x < g.nx; x++) m[20 * g.nx + x] = 1; // a one-pixel (0.5 mm) line through it
    const o = open(m, g, 1.5);
    expect(o[20 * g.nx + 1]).toBe(0);
    expect(sum(o)).toBeGreaterThanOrEqual(sum(disc(5)) - 4);
    // two blocks with a 2 mm slit between them (columns 17–20 empty): a 1.5 mm closing fills it, a 0.75 mm one not
    const slit = new Uint8Array(g.nx * g.ny);
    for (let y = 0; y < g.ny; y++) for (let x = 0; x < g.nx; x++) slit[y * g.nx + x] = x < 17 || x > 20 ? 1 : 0;
    expect(close(slit, g, 1.5)[20 * g.nx + 18]).toBe(1);
    expect(close(slit, g, 0.75)[20 * g.nx + 18]).toBe(0);
  });

  it('fillHoles2D fills a ring and leaves what touches the border', () => {
    const ring = disc(6);
    const hole = disc(3);
    for (let i = 0; i < ring.length; i++) ring[i] = ring[i] && !hole[i] ? 1 : 0;
    fillHoles2D(ring, g.nx, g.ny);
    expect(sum(ring)).toBe(sum(disc(6)));
  });

  it('components3D labels 6-connected parts and counts them', () => {
    // two cubes that touch only along an edge are two components
    const nx = 6;
    const m = new Uint8Array(nx * nx * nx);
    const set = (x: number, y: number, z: number): void => void (m[(z * nx + y) * nx + x] = 1);
    for (let z = 0; z < 2; z++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) (set(x, y, z), set(x + 2, y + 2, z));
    const { labels, sizes } = components3D(m, nx, nx, nx);
    expect(sizes.slice(1).sort()).toEqual([8, 8]);
    expect(labels[0]).not.toBe(labels[(0 * nx + 2) * nx + 2]);
  });
});
