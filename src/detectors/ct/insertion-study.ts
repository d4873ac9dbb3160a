/**
 * Development study behind the figures quoted in candidates.ts and measure.ts (not imported by radnode):
 * nodules inserted into the two LIDC volumes, found by findCandidates (among the first 300) and measured by
 * measureNodule from the candidate's own centre, as the pipeline does.
 *
 *   npx tsx src/detectors/ct/insertion-study.ts [seed=11] [rounds=3]
 *
 * Per volume and round: 24 nodules 4–10 mm (semi-axes jittered ±15 %, 40 HU noise), at least 30 mm apart and from
 * the reference nodules; every 4th on the lateral chest wall (juxtapleural, solid), every 4th ground-glass
 * (−650..−550 HU), the rest solid (−50..+50 HU) at random lung voxels below −700 HU. The reference diameter is the
 * mean of the two in-plane axes.
 */
import { voxelToPatient, type Vec3 } from '../../dicom/volume.ts';
import { findCandidates } from './candidates.ts';
import { lungMask } from './lung-mask.ts';
import { measureNodule } from './measure.ts';
import { cloneVolume, dist, insertEllipsoid, LIDC_0002_MARKS, loadLidc, LUNA_0001, wallSpot } from './testing.ts';

type Row = { kind: 'solid' | 'ground-glass' | 'juxtapleural'; d: number; rank: number; measured?: number; type?: string; volumeError?: number };

async function main(): Promise<void> {
  let seed = Number(process.argv[2] ?? 11);
  const rounds = Number(process.argv[3] ?? 3);
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const rows: Row[] = [];
  for (const id of ['LIDC-IDRI-0001', 'LIDC-IDRI-0002'] as const) {
    const v0 = await loadLidc(id);
    const m = lungMask(v0);
    const [C, R, S] = v0.dims;
    const refs = id === 'LIDC-IDRI-0001' ? [LUNA_0001] : LIDC_0002_MARKS;
    for (let round = 0; round < rounds; round++) {
      const v = cloneVolume(v0);
      const ins: { p: Vec3; d: number; kind: Row['kind']; volume: number }[] = [];
      let tries = 0;
      while (ins.length < 24 && tries++ < 200000) {
        const kind: Row['kind'] = ins.length % 4 === 3 ? 'juxtapleural' : ins.length % 4 === 2 ? 'ground-glass' : 'solid';
        const d = 4 + rnd() * 6;
        let c: Vec3 | undefined;
        if (kind === 'juxtapleural') c = wallSpot(v, m.mask, Math.floor(S * (0.25 + 0.5 * rnd())), Math.floor(R * (0.35 + 0.3 * rnd())), d / 2, 0.8);
        else {
          const idx = Math.floor(rnd() * m.mask.length);
          if (!m.mask[idx] || v0.voxels[idx] > -700) continue;
          c = [idx % C, Math.floor(idx / C) % R, Math.floor(idx / (C * R))];
        }
        if (!c) continue;
        const p = voxelToPatient(v.affine, c);
        if (ins.some((q) => dist(q.p, p) < 30) || refs.some((r) => dist(r.patient, p) < 30)) continue;
        const hu = kind === 'ground-glass' ? -650 + 100 * rnd() : -50 + 100 * rnd();
        const semi: Vec3 = [(d / 2) * (0.85 + 0.3 * rnd()), (d / 2) * (0.85 + 0.3 * rnd()), (d / 2) * (0.85 + 0.3 * rnd())];
        const volume = insertEllipsoid(v, c, semi, hu, 40, ins.length + 1);
        ins.push({ p, d: semi[0] + semi[1], kind, volume });
      }
      const cs = findCandidates(v, m);
      for (const q of ins) {
        const rank = cs.findIndex((c) => dist(c.patient, q.p) < Math.max(q.d / 2, 2.5));
        const row: Row = { kind: q.kind, d: q.d, rank };
        if (rank >= 0) {
          const x = measureNodule(v, m, cs[rank].voxel, cs[rank].scaleMm);
          if (x) Object.assign(row, { measured: x.meanDiameterMm, type: x.type, volumeError: x.volumeMm3 / q.volume - 1 });
        }
        rows.push(row);
      }
    }
  }
  const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;
  for (const kind of ['solid', 'ground-glass', 'juxtapleural'] as const) {
    const r = rows.filter((x) => x.kind === kind);
    const found = r.filter((x) => x.rank >= 0);
    const measured = found.filter((x) => x.measured !== undefined);
    const err = measured.map((x) => x.measured! - x.d);
    const types = measured.reduce<Record<string, number>>((a, x) => ((a[x.type!] = (a[x.type!] ?? 0) + 1), a), {});
    console.log(
      `${kind}: ${found.length}/${r.length} among the first 300 candidates, ${measured.length} measured; mean diameter error mean |e| ` +
        `${(err.reduce((a, e) => a + Math.abs(e), 0) / err.length).toFixed(2)} mm, bias ${(err.reduce((a, e) => a + e, 0) / err.length).toFixed(2)} mm, ` +
        `> 1.5 mm: ${err.filter((e) => Math.abs(e) > 1.5).length}; median |volume error| ${(100 * median(measured.map((x) => Math.abs(x.volumeError!)))).toFixed(0)} %; types ${JSON.stringify(types)}`,
    );
  }
}

await main();
