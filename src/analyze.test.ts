/**
 * Issue 5, "How it is checked": `radnode analyze` on each CR/DX radiograph in ../shared/data (RSNA CR films, the
 * MONOCHROME1 CR, the NIH DX secondary capture with no Body Part or View Position, the SIIM film) writes an SR and
 * a heatmap SC per study that `radnode validate` (radnode's checks + dciodvfy) passes; MONOCHROME1 gives the same
 * prediction as its inverted MONOCHROME2 copy; a lateral view and a CT get coded reasons, not results.
 * Runs the shipped model (models/cxr) through the CLI entry, i.e. the daemon's own stages.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AnalyzeSummary } from './analyze.ts';
import { main } from './cli/main.ts';
import { readInstance } from './dicom/index.ts';
import { validateFiles } from './results/validate.ts';
import { REPO_ROOT, sharedFile, unpackedFile } from '../test/helpers/paths.ts';
import { newUid } from '../test/helpers/orthanc.ts';

const RSNA = readdirSync(join(REPO_ROOT, '../shared/data/cxr/dicom/rsna')).filter((f) => f.endsWith('.dcm')).map((f) => sharedFile(`cxr/dicom/rsna/${f}`));
const MONO1 = sharedFile('cxr/dicom/other/CR-MONO1-10-chest.part10.dcm');
const NIH_SC = sharedFile('cxr/dicom/other/nih-chestxray14-dx-sc-nofinding.dcm');
const SIIM = readdirSync(join(REPO_ROOT, '../shared/data/cxr/dicom/siim')).filter((f) => f.endsWith('.dcm')).map((f) => sharedFile(`cxr/dicom/siim/${f}`));
const SHIPPED_MODEL = join(REPO_ROOT, 'models/cxr/manifest.json');

async function runAnalyze(paths: string[], extra: string[] = []): Promise<{ code: number; summary: AnalyzeSummary; out: string; stdout: string }> {
  const out = mkdtempSync(join(tmpdir(), 'rn-analyze-'));
  const lines: string[] = [];
  const code = await main(['analyze', ...paths, '--out', out, ...extra], { out: (s) => lines.push(s), err: (s) => lines.push(s) });
  return { code, summary: JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as AnalyzeSummary, out, stdout: lines.join('\n') };
}

function dcmodify(path: string, ...edits: string[]): void {
  const args = ['-nb', ...edits.flatMap((e) => ['-i', e]), path];
  const r = spawnSync('dcmodify', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dcmodify ${args.join(' ')}: ${r.stderr}`);
}

/** A copy with new study/series/SOP UIDs, so each test file is its own study in the temporary store. */
function copyAsNewStudy(src: string, dir: string, ...edits: string[]): string {
  const path = join(dir, `${newUid()}.dcm`);
  copyFileSync(src, path);
  dcmodify(path, `(0020,000d)=${newUid()}`, `(0020,000e)=${newUid()}`, `(0008,0018)=${newUid()}`, ...edits);
  return path;
}

describe.skipIf(!existsSync(SHIPPED_MODEL))('radnode analyze with the shipped chest model', () => {
  let run: Awaited<ReturnType<typeof runAnalyze>>;
  const files = [...RSNA, MONO1, NIH_SC, ...SIIM];
  beforeAll(async () => {
    run = await runAnalyze(files);
  }, 120_000);

  it('writes one SR and one heatmap SC per radiograph study, with a score, a priority and stage timings', () => {
    expect(run.code).toBe(0);
    expect(run.summary.problems).toEqual([]);
    expect(run.summary.notProcessed).toEqual([]);
    // Every file is its own study here (the RSNA and SIIM films are one-image studies; the NIH SC has no body
    // part and no view position and is taken: routing accepts an empty Body Part for CR/DX, select an absent view).
    expect(run.summary.results).toHaveLength(files.length);
    for (const r of run.summary.results) {
      expect(r.state).toBe('delivered');
      expect(r.detector).toBe('cxr');
      expect(r.modelVersion).toMatch(/\S/);
      expect(r.studyScore).toBeGreaterThanOrEqual(0);
      expect(r.studyScore).toBeLessThanOrEqual(1);
      expect(['urgent', 'positive', 'negative']).toContain(r.priority);
      expect(r.outputs).toHaveLength(2);
      for (const k of ['decode', 'preprocess', 'infer', 'postprocess', 'write']) expect(r.timingsMs[k]).toBeGreaterThan(0);
      // A positive film's finding sits on the source image, inside it, as a box.
      for (const f of r.findings) {
        expect(f.concept).toEqual({ scheme: 'SCT', value: '233604007', meaning: 'Pneumonia' });
        expect(f.place && 'shape' in f.place && f.place.shape).toBe('box');
      }
      if (r.priority !== 'negative') expect(r.findings).toHaveLength(1);
    }
    expect(run.stdout).toMatch(/study\s+detector\s+priority/);
  });

  it('every written object passes radnode validate (own checks and dciodvfy)', async () => {
    const outputs = run.summary.results.flatMap((r) => r.outputs);
    const reports = await validateFiles(outputs);
    for (const rep of reports) expect(rep.errors, rep.file).toEqual([]);
    expect(await main(['validate', ...outputs], { out: () => undefined, err: () => undefined })).toBe(0);
    const kinds = outputs.map((p) => readInstance(readFileSync(p)).Modality).sort();
    expect(kinds.filter((m) => m === 'SR')).toHaveLength(files.length);
    expect(kinds.filter((m) => m === 'OT')).toHaveLength(files.length);
  });

  it('MONOCHROME1 and its inverted MONOCHROME2 copy give the same prediction (|Δp| ≤ 1e-4)', async () => {
    // The copy is made here from the real Fuji CR film (tag-edited and pixel-inverted; no such DX exists in the
    // data): stored value v → (2^BitsStored − 1) − v, Photometric Interpretation MONOCHROME2, window centre mirrored.
    const dir = mkdtempSync(join(tmpdir(), 'rn-mono-'));
    const inst = readInstance(readFileSync(MONO1));
    const img = inst.image!;
    const max = 2 ** img.BitsStored - 1;
    const path = copyAsNewStudy(MONO1, dir, '(0028,0004)=MONOCHROME2', `(0028,1050)=${max - (inst.header.number('WindowCenter') ?? 0)}`);
    const bytes = readFileSync(path);
    const copy = readInstance(bytes);
    const px = copy.pixelData!.native!;
    const view = new DataView(px.buffer, px.byteOffset, px.byteLength);
    for (let i = 0; i + 1 < px.byteLength; i += 2) view.setUint16(i, max - (view.getUint16(i, true) & max), true);
    writeFileSync(path, bytes);
    const both = await runAnalyze([MONO1, path]);
    const [a, b] = both.summary.results;
    expect(both.summary.results).toHaveLength(2);
    // The model's percentile window mirrors exactly under inversion (PS3.4 N.2.1.1 inverts MONOCHROME1 after VOI),
    // so only float rounding separates the two: 1e-4 is the golden tolerance of the model card.
    expect(Math.abs(a.studyScore! - b.studyScore!)).toBeLessThanOrEqual(1e-4);
    expect(a.priority).toBe(b.priority);
    expect(a.findings.length).toBe(b.findings.length);
    // This film is under the positive point (no finding, so no box to compare): the heatmap SCs are compared instead.
    // Each draws the film and the CAM, so they match only if both the display and the map do (±2 of 255 for
    // rounding of the window's edges).
    const scPixels = (r: typeof a) => {
      const sc = r.outputs.map((p) => readInstance(readFileSync(p))).find((i) => i.Modality === 'OT')!;
      return sc.pixelData!.native!;
    };
    const [pa, pb] = [scPixels(a), scPixels(b)];
    expect(pa.length).toBe(pb.length);
    let worst = 0;
    for (let i = 0; i < pa.length; i++) worst = Math.max(worst, Math.abs(pa[i] - pb[i]));
    expect(worst).toBeLessThanOrEqual(2);
  }, 60_000);

  it('a lateral view and a CT slice get coded reasons, not results', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-reasons-'));
    // No lateral chest film exists in the data: a tag-edited copy of a real RSNA film says View Position LL.
    const lateral = copyAsNewStudy(RSNA[0], dir, '(0018,5101)=LL', '(0008,103e)=view: LL');
    const ctDir = unpackedFile('ct/lidc/LIDC-IDRI-0001/dicom');
    const ct = join(ctDir, readdirSync(ctDir).filter((f) => f.endsWith('.dcm')).sort()[0]);
    const r = await runAnalyze([lateral, ct]);
    expect(r.summary.results).toEqual([]);
    const reasons = r.summary.notProcessed.map((n) => [n.modality, n.reason.value]).sort();
    // The CT is never routed to cxr: a lone slice is refused by the ct rule's own suitability (too few
    // images), or has no rule; either way a coded reason.
    expect(reasons[0][0]).toBe('CR');
    expect(reasons[0][1]).toBe('RN-NP-LATERAL');
    expect(reasons[1][0]).toBe('CT');
    expect(reasons[1][1]).toMatch(/^RN-NP-(FEWIMAGES|NORULE|NODETECTOR)$/);
  }, 60_000);

  it('--detector names an unknown detector: usage error, exit 2', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rn-analyze-'));
    const err: string[] = [];
    expect(await main(['analyze', RSNA[0], '--out', out, '--detector', 'nope'], { out: () => undefined, err: (s) => err.push(s) })).toBe(2);
    expect(err.join('\n')).toMatch(/RN_USAGE: --detector nope: no such detector \(loaded: [^)]*\bcxr\b/);
  });
});

describe('radnode models', () => {
  it('list prints the shipped model with its routing hints and sha256 check; verify opens it', async () => {
    const lines: string[] = [];
    expect(await main(['models', 'list', '--json'], { out: (s) => lines.push(s), err: (s) => lines.push(s) })).toBe(0);
    const listed = JSON.parse(lines.join('\n')) as { models: { id: string; detector: string; sha256Ok: boolean; routing: Record<string, unknown> }[] };
    if (existsSync(SHIPPED_MODEL)) expect(listed.models).toContainEqual(expect.objectContaining({ id: 'cxr-pneumonia', detector: 'cxr', sha256Ok: true }));
    const v: string[] = [];
    const code = await main(['models', 'verify'], { out: (s) => v.push(s), err: (s) => v.push(s) });
    expect(code, v.join('\n')).toBe(0);
  }, 60_000);

  it('verify exits 1 when a model is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-models-'));
    const { writeModel, cxrManifest } = await import('./inference/test-support/models.ts');
    const { tinyCxrModel } = await import('./inference/test-support/onnx-writer.ts');
    writeModel(dir, 'cxr', tinyCxrModel(), cxrManifest(new Uint8Array([1, 2, 3])));
    const cfg = join(dir, 'radnode.yaml');
    writeFileSync(cfg, `inference:\n  modelsDir: ${dir}\n`);
    const v: string[] = [];
    expect(await main(['models', 'verify', '--config', cfg], { out: (s) => v.push(s), err: (s) => v.push(s) })).toBe(1);
    expect(v.join('\n')).toMatch(/REFUSED: RN_MODEL_INVALID: .*sha256/);
  }, 30_000);
});
