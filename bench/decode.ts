/**
 * Decode benchmark (issue 3): throughput per transfer syntax in MB/s of decoded output pixels, radnode against the
 * reference decoder on the same file in the same run (dcmtk's dcmdjpeg/dcmdjpls/dcmdrle/dcmconv; GDCM's gdcmconv for
 * JPEG 2000 and OpenJPEG's opj_decompress for HTJ2K, which dcmtk lacks), and the 261-slice LIDC-IDRI-0002 series
 * assembled into a volume (time and peak memory). The reference runs as a child process per file, so its figure
 * includes process start and file I/O: the note says so.
 *
 * Standalone: npx tsx bench/decode.ts
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeFrames } from '../src/dicom/decode.ts';
import { readInstance } from '../src/dicom/instance.ts';
import { buildVolumes } from '../src/dicom/volume.ts';

import type { BenchRow } from './row.ts';
export type { BenchRow };

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA = resolve(ROOT, '../shared/data');

type RefTool = { cmd: string; args: (src: string, dst: string) => string[]; name: string };
const DCMTK = (cmd: string, extra: string[] = []): RefTool => ({ cmd, name: cmd, args: (s, d) => [...extra, s, d] });

const CASES: { ts: string; file: string; ref: RefTool | 'opj' }[] = [
  { ts: 'Explicit VR LE (1.2.1)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm', ref: DCMTK('dcmconv', ['+te']) },
  { ts: 'Explicit VR BE (1.2.2)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_BigEndianExplicitTransferSyntax_1.2.840.10008.1.2.2.dcm', ref: DCMTK('dcmconv', ['+te']) },
  { ts: 'Deflated (1.2.1.99)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_DeflatedExplicitVRLittleEndianTransferSyntax_1.2.840.10008.1.2.1.99.dcm', ref: DCMTK('dcmconv', ['+te']) },
  { ts: 'RLE (1.2.5)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_RLELosslessTransferSyntax_1.2.840.10008.1.2.5.dcm', ref: DCMTK('dcmdrle') },
  { ts: 'JPEG baseline (4.50)', file: 'dicom/cornerstone3D/TestPattern_JPEG-Baseline_YBR422.dcm', ref: DCMTK('dcmdjpeg') },
  { ts: 'JPEG extended 12-bit (4.51)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51.dcm', ref: DCMTK('dcmdjpeg') },
  { ts: 'JPEG lossless P14 (4.57)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_JPEGProcess14TransferSyntax_1.2.840.10008.1.2.4.57.dcm', ref: DCMTK('dcmdjpeg') },
  { ts: 'JPEG lossless SV1 (4.70)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70.dcm', ref: DCMTK('dcmdjpeg') },
  { ts: 'JPEG lossless SV1 mammogram (4.70)', file: 'dicom/fo-dicom/GH133.dcm', ref: DCMTK('dcmdjpeg') },
  { ts: 'JPEG-LS lossless (4.80)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm', ref: DCMTK('dcmdjpls') },
  { ts: 'JPEG-LS near-lossless (4.81)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_JPEGLSLossyTransferSyntax_1.2.840.10008.1.2.4.81.dcm', ref: DCMTK('dcmdjpls') },
  { ts: 'JPEG 2000 lossless (4.90)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm', ref: { cmd: 'gdcmconv', name: 'gdcmconv --raw', args: (s, d) => ['--raw', s, d] } },
  { ts: 'JPEG 2000 (4.91)', file: 'dicom/cs-wadoimageloader/CTImage.dcm_JPEG2000TransferSyntax_1.2.840.10008.1.2.4.91.dcm', ref: { cmd: 'gdcmconv', name: 'gdcmconv --raw', args: (s, d) => ['--raw', s, d] } },
  { ts: 'HTJ2K lossless (4.201)', file: 'dicom/pydicom-data/HTJ2KLossless_08_RGB.dcm', ref: 'opj' },
  { ts: 'Deflated image frame (8.1)', file: 'dicom/pydicom-data/liver_deflate.dcm', ref: DCMTK('dcmconv', ['+te']) },
];

function timeAsync(minMs: number, fn: () => Promise<unknown>): Promise<number> {
  return (async () => {
    await fn(); // warm-up (loads WASM)
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < minMs || n < 3) {
      await fn();
      n++;
    }
    return (performance.now() - t0) / n;
  })();
}

function timeSpawn(runs: number, cmd: string, args: string[]): number | undefined {
  const first = spawnSync(cmd, args, { stdio: 'ignore' });
  if (first.status !== 0) return undefined;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) spawnSync(cmd, args, { stdio: 'ignore' });
  return (performance.now() - t0) / runs;
}

async function decodeRows(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'radnode-bench-'));
  try {
    for (const c of CASES) {
      const path = join(DATA, c.file);
      if (!existsSync(path)) continue;
      const bytes = new Uint8Array(readFileSync(path));
      let outBytes = 0;
      const ms = await timeAsync(500, async () => {
        const frames = await decodeFrames(readInstance(bytes));
        outBytes = frames.reduce((n, f) => n + f.data.byteLength, 0);
      });
      const mb = outBytes / 1e6;
      let refMs: number | undefined;
      let refName: string;
      const src = join(dir, 'in.dcm');
      copyFileSync(path, src);
      if (c.ref === 'opj') {
        const inst = readInstance(bytes);
        const cs = join(dir, 'in.j2k');
        writeFileSync(cs, inst.encapsulatedFrames()[0]);
        refName = 'opj_decompress';
        refMs = timeSpawn(5, 'opj_decompress', ['-i', cs, '-o', join(dir, 'out.raw'), '-quiet']);
      } else {
        refName = c.ref.name;
        refMs = timeSpawn(5, c.ref.cmd, c.ref.args(src, join(dir, 'out.dcm')));
      }
      const radnode = mb / (ms / 1000);
      const reference = refMs === undefined ? 0 : mb / (refMs / 1000);
      rows.push({
        name: `decode ${c.ts}`,
        radnode: Number(radnode.toFixed(1)),
        reference: Number(reference.toFixed(1)),
        unit: 'MB/s',
        ratio: reference ? Number((radnode / reference).toFixed(2)) : 0,
        note: refMs === undefined ? `no reference: ${refName} failed (dcmtk 3.6.7 and GDCM 3.0.21 do not know some syntaxes, e.g. 1.2.840.10008.1.2.8.1)` : `reference: ${refName}, one process per file (includes start-up and file I/O); ${mb.toFixed(2)} MB out`,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

async function volumeRows(): Promise<BenchRow[]> {
  const seriesDir = resolve(ROOT, '.cache/data/ct/lidc/LIDC-IDRI-0002/dicom');
  if (!existsSync(seriesDir)) {
    const r = spawnSync(join(DATA, 'unpack'), [resolve(ROOT, '.cache/data')], { stdio: 'ignore' });
    if (r.status !== 0 || !existsSync(seriesDir)) return [];
  }
  const files = readdirSync(seriesDir).filter((f) => f.endsWith('.dcm')).map((f) => join(seriesDir, f));
  // reference floor: only reading the bytes from disk
  const tr0 = performance.now();
  for (const f of files) readFileSync(f);
  const readMs = performance.now() - tr0;

  global.gc?.();
  const base = process.memoryUsage();
  let peak = base.rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  const t0 = performance.now();
  const instances = files.map((f) => readInstance(new Uint8Array(readFileSync(f))));
  const { volumes } = await buildVolumes(instances);
  const ms = performance.now() - t0;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  const voxelMb = volumes[0] ? volumes[0].voxels.byteLength / 1e6 : 0;
  const peakMb = (peak - base.rss) / 1e6;
  return [
    {
      name: `volume LIDC-IDRI-0002 (${files.length} slices) time`,
      radnode: Number(ms.toFixed(0)),
      reference: Number(readMs.toFixed(0)),
      unit: 'ms',
      ratio: Number((ms / readMs).toFixed(2)),
      note: 'reference: only reading the files (warm cache), the I/O floor; radnode reads, parses, sorts, decodes and rescales to HU',
    },
    {
      name: `volume LIDC-IDRI-0002 (${files.length} slices) peak memory`,
      radnode: Number(peakMb.toFixed(0)),
      reference: Number(voxelMb.toFixed(0)),
      unit: 'MB',
      ratio: voxelMb ? Number((peakMb / voxelMb).toFixed(2)) : 0,
      note: 'radnode: RSS growth while building (file bytes are held until the volume is done); reference: the Int16 HU voxel buffer alone',
    },
  ];
}

export async function benchDecode(): Promise<BenchRow[]> {
  return [...(await decodeRows()), ...(await volumeRows())];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { printRows } = await import('./row.ts');
  printRows(await benchDecode());
}
