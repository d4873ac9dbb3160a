import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { RadnodeError } from '../errors.ts';

/** `radnode inspect FILE [--pixels OUT]`: header summary and whether the pixels decode (src/dicom). */
export async function inspectCommand(args: string[], io: { out: (s: string) => void }): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { pixels: { type: 'string' } } });
  if (positionals.length !== 1) throw new RadnodeError('RN_USAGE', 'radnode inspect needs exactly one FILE');
  const dicom = (await import('../dicom/index.ts')) as Record<string, unknown>;
  const bytes = new Uint8Array(await readFile(positionals[0]));
  const inspect = dicom.inspectInstance as ((b: Uint8Array) => Promise<unknown> | unknown) | undefined;
  if (typeof inspect !== 'function') throw new RadnodeError('RN_INTERNAL', 'this build has no pixel inspection');
  const summary = await inspect(bytes);
  io.out(JSON.stringify(summary, null, 2));
  if (values.pixels) {
    const raw = dicom.rawStoredValues as ((b: Uint8Array) => Promise<Uint8Array>) | undefined;
    if (typeof raw !== 'function') throw new RadnodeError('RN_INTERNAL', 'this build cannot write raw pixels');
    await writeFile(values.pixels, await raw(bytes));
  }
  return 0;
}
