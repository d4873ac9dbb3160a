/** Independent reference tools for the results tests: dicom3tools dciodvfy and dcmtk dsrdump on written bytes. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const scratch = mkdtempSync(join(tmpdir(), 'radnode-results-'));
let n = 0;

export function tempFile(bytes: Uint8Array, name = `obj${n++}.dcm`): string {
  const p = join(scratch, name);
  writeFileSync(p, bytes);
  return p;
}

/** dciodvfy prints everything on stderr (orthanc.md, last section); returns its `Error -` lines. */
export function dciodvfyErrors(bytes: Uint8Array): { errors: string[]; output: string } {
  const r = spawnSync('dciodvfy', [tempFile(bytes)], { encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`;
  return { errors: output.split('\n').filter((l) => l.startsWith('Error -')), output };
}

export function dsrdump(bytes: Uint8Array): string {
  const r = spawnSync('dsrdump', ['+Pc', '+Pl', tempFile(bytes)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dsrdump failed: ${r.stderr}`);
  return r.stdout;
}

export function dcmdump(bytes: Uint8Array, ...args: string[]): string {
  const r = spawnSync('dcmdump', [...args, tempFile(bytes)], { encoding: 'utf8' });
  return r.stdout;
}

