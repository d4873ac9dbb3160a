/**
 * `npm run bench`: every speed figure beside a reference measured in the same run on the same machine
 * (Orthanc for ingest; dcmtk, GDCM and OpenJPEG for decoding; torch and the measured FLOP peak for the chest model), with the ratio. Not a test: nothing here can flake
 * a CI run. `npm run bench -- ingest` or `-- decode` runs one group.
 */
import { cpus } from 'node:os';
import { benchCt } from './ct.ts';
import { benchCxr } from './cxr.ts';
import { benchDecode } from './decode.ts';
import { benchDimse } from './dimse.ts';
import { benchIngest } from './ingest.ts';
import { benchMammo } from './mammo.ts';
import { benchViewer } from './viewer.ts';
import { benchWorklist } from './worklist.ts';
import { printRows, type BenchRow } from './row.ts';

const groups: Record<string, () => Promise<BenchRow[]>> = { ingest: () => benchIngest(), decode: () => benchDecode(), cxr: () => benchCxr(), mammo: () => benchMammo(), ct: () => benchCt(), worklist: () => benchWorklist(), viewer: () => benchViewer(), dimse: () => benchDimse() };
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !(w in groups));
if (unknown.length) {
  process.stderr.write(`bench: unknown group(s) ${unknown.join(', ')}; known: ${Object.keys(groups).join(', ')}\n`);
  process.exit(2);
}
process.stdout.write(`radnode bench — ${new Date().toISOString()} — ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}\n\n`);
for (const name of wanted.length ? wanted : Object.keys(groups)) {
  process.stdout.write(`## ${name}\n`);
  printRows(await groups[name]());
  process.stdout.write('\n');
}
