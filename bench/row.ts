/** One benchmark figure beside its reference measured in the same run (README: speed targets are shown this way). */
export type BenchRow = { name: string; radnode: number; reference: number; unit: string; ratio: number; note?: string };

const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2)) : 'n/a');

export function printRows(rows: BenchRow[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): void {
  const header = ['figure', 'radnode', 'reference', 'unit', 'ratio', 'note'];
  const body = rows.map((r) => [r.name, fmt(r.radnode), fmt(r.reference), r.unit, fmt(r.ratio), r.note ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  out(line(header));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) out(line(b));
}

/** The middle value (upper middle for an even count), as every benchmark group reports it. */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs radnode and its reference `reps` times each, alternating which goes first, so that neither always gets the
 * warmer page cache or the quieter moment of a shared machine.
 */
export async function alternating<T>(reps: number, radnode: () => Promise<T>, reference: () => Promise<T>): Promise<{ radnode: T[]; reference: T[] }> {
  const out = { radnode: [] as T[], reference: [] as T[] };
  for (let i = 0; i < reps; i++) {
    if (i % 2 === 0) {
      out.radnode.push(await radnode());
      out.reference.push(await reference());
    } else {
      out.reference.push(await reference());
      out.radnode.push(await radnode());
    }
  }
  return out;
}
