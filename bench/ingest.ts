/**
 * STOW-RS ingest benchmark (issue 2): the real LIDC-IDRI-0002 CT series (261 slices) STOWed with one client
 * (bench/stow-client.ts, shaped like Orthanc's own DICOMweb client: one chunked multipart request for the study)
 * into a radnode process and into an Orthanc process on the same machine, in one run, fresh storage for each
 * repetition, alternating which goes first. Reported: instances/s, MB/s and peak RSS (VmHWM) of each server.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOrthanc } from '../test/helpers/orthanc.ts';
import { unpackedFile } from '../test/helpers/paths.ts';
import { startRadnode } from '../test/helpers/radnode.ts';
import { alternating, median, type BenchRow } from './row.ts';
import { stowFiles } from './stow-client.ts';


/** Peak resident set of a process in MB (Linux /proc VmHWM), read after the run. */
function peakRssMb(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The pid of the Orthanc serving `dir` (the harness keeps its process private): found by its command line. */
function orthancPid(dir: string): number | undefined {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('Orthanc') && cmd.includes(dir)) return Number(p);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

type Run = { instPerS: number; mbPerS: number; peakMb: number; status: number[] };

async function oneRadnode(files: string[]): Promise<Run> {
  // No detectors and a long quiet period: this measures ingest alone (parse, fsync, rename, record, acknowledge).
  const rn = await startRadnode({ workflow: { quietSeconds: 86_400 }, logging: { level: 'warn' }, routing: { rules: [] } });
  try {
    const r = await stowFiles(`${rn.url}/dicom-web/studies`, files);
    return { instPerS: r.instances / (r.ms / 1000), mbPerS: r.bytes / 1e6 / (r.ms / 1000), peakMb: peakRssMb(rn.pid()), status: r.status };
  } finally {
    await rn.stop();
  }
}

async function oneOrthanc(files: string[]): Promise<Run> {
  const o = await startOrthanc({});
  try {
    const r = await stowFiles(`${o.dicomWebUrl}/studies`, files);
    return { instPerS: r.instances / (r.ms / 1000), mbPerS: r.bytes / 1e6 / (r.ms / 1000), peakMb: peakRssMb(orthancPid(o.dir)), status: r.status };
  } finally {
    await o.stop();
  }
}

export async function benchIngest(opts: { repetitions?: number } = {}): Promise<BenchRow[]> {
  const dir = unpackedFile('ct/lidc/LIDC-IDRI-0002/dicom');
  const files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).map((f) => join(dir, f));
  const reps = opts.repetitions ?? 3;
  const { radnode: rn, reference: or } = await alternating(reps, () => oneRadnode(files), () => oneOrthanc(files));
  for (const r of [...rn, ...or]) if (r.status.some((s) => s !== 200)) throw new Error(`a STOW run did not answer 200: ${r.status.join(',')}`);
  const row = (name: string, unit: string, pick: (r: Run) => number, note: string): BenchRow => {
    const a = median(rn.map(pick));
    const b = median(or.map(pick));
    return { name, radnode: a, reference: b, unit, ratio: a / b, note };
  };
  const note = `LIDC-IDRI-0002, ${files.length} instances, one chunked STOW, median of ${reps}; reference: Orthanc 1.10.1 + DICOMweb 1.7`;
  return [
    row('STOW ingest rate', 'instances/s', (r) => r.instPerS, note),
    row('STOW ingest throughput', 'MB/s', (r) => r.mbPerS, note),
    row('server peak RSS during ingest', 'MB', (r) => r.peakMb, 'lower is better; radnode streams parts to disk'),
  ];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { printRows } = await import('./row.ts');
  printRows(await benchIngest());
}
