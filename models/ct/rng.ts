/** A small seedable generator (mulberry32): training data and evaluations must be reproducible from a seed. */
export type Rng = { next(): number; uniform(lo: number, hi: number): number; normal(): number; int(n: number): number; pick<T>(items: readonly T[]): T };

export function rng(seed: number): Rng {
  let s = seed >>> 0;
  let spare: number | undefined;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: () => {
      if (spare !== undefined) {
        const v = spare;
        spare = undefined;
        return v;
      }
      const u = Math.max(next(), 1e-12);
      const a = 2 * Math.PI * next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(a);
      return r * Math.cos(a);
    },
    int: (n) => Math.floor(next() * n),
    pick: (items) => items[Math.floor(next() * items.length)],
  };
}
