/**
 * C-STORE ingest benchmark (issue 11): the real LIDC-IDRI-0002 CT series (261 instances) pushed by dcmtk's storescu,
 * one association as a modality or PACS autoroute sends it, into radnode's Storage SCP and into Orthanc's, in one run,
 * fresh storage each repetition, alternating which goes first. Both answer each C-STORE only after storing the
 * instance (radnode: fsync of file and folder, then the record; Orthanc: its SyncStorageArea default and its SQLite
 * index). Reported: instances/s and the ratio.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startOrthanc } from '../test/helpers/orthanc.ts';
import { unpackedFile } from '../test/helpers/paths.ts';
import { startRadnode } from '../test/helpers/radnode.ts';
import { alternating, median, type BenchRow } from './row.ts';


/** storescu into aeTitle@127.0.0.1:port; instances/s over the whole run (association, every C-STORE, release). */
function push(aeTitle: string, port: number, files: string[]): number {
  const t0 = performance.now();
  const r = spawnSync('storescu', ['-aet', 'BENCHSCU', '-aec', aeTitle, '127.0.0.1', String(port), ...files], { encoding: 'utf8', timeout: 300_000 });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`storescu into ${aeTitle} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return files.length / s;
}

async function oneRadnode(files: string[]): Promise<number> {
  const port = await freePort();
  // A long quiet period and no routing: this measures ingest alone (receive, fsync, rename, record, acknowledge).
  const rn = await startRadnode({
    workflow: { quietSeconds: 86_400 }, logging: { level: 'warn' }, routing: { rules: [] },
    dimse: { enabled: true, port, aeTitle: 'RADNODE', knownCallers: [{ aeTitle: 'BENCHSCU' }] },
  });
  try {
    return push('RADNODE', port, files);
  } finally {
    await rn.stop();
  }
}

async function oneOrthanc(files: string[]): Promise<number> {
  const port = await freePort();
  const o = await startOrthanc({ dicom: { aeTitle: 'ORTHANC', port, modalities: {} } });
  try {
    return push('ORTHANC', port, files);
  } finally {
    await o.stop();
  }
}

export async function benchDimse(reps = 3): Promise<BenchRow[]> {
  const dir = unpackedFile('ct/lidc/LIDC-IDRI-0002/dicom');
  const files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().map((f) => join(dir, f));
  const { radnode: rn, reference: or } = await alternating(reps, () => oneRadnode(files), () => oneOrthanc(files));
  const r = median(rn);
  const o = median(or);
  return [{ name: `C-STORE ingest, LIDC-IDRI-0002 (${files.length} inst, storescu, 1 association)`, radnode: r, reference: o, unit: 'inst/s', ratio: r / o, note: `median of ${reps}; reference: Orthanc 1.10 Storage SCP, same storescu` }];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printRows } = await import('./row.ts');
  printRows(await benchDimse());
}
