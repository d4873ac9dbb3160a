import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { inspectInstance, serialiseStoredValues } from '../dicom/inspect.ts';
import { RadnodeError } from '../errors.ts';

/**
 * `radnode inspect FILE [--pixels OUT]`: header summary, transfer syntax and whether the pixels decode; with --pixels
 * the decoded stored values as raw little-endian, BitsAllocated wide, frames one after another (DESIGN §6), for
 * comparison with other toolkits. Exit 1 when the pixels do not decode.
 */
export async function inspectCommand(args: string[], io: { out: (s: string) => void }): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { pixels: { type: 'string' } } });
  if (positionals.length !== 1) throw new RadnodeError('RN_USAGE', 'radnode inspect needs exactly one FILE');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(positionals[0]));
  } catch (err) {
    throw new RadnodeError('RN_USAGE', `cannot read ${positionals[0]}: ${(err as Error).message}`, { cause: err });
  }
  const { summary, frames } = await inspectInstance(bytes);
  io.out(JSON.stringify(summary, null, 2));
  if (values.pixels) {
    if (!frames) throw new RadnodeError('RN_DICOM_DECODE_FAILED', `no decoded pixels to write to ${values.pixels}`);
    await writeFile(values.pixels, serialiseStoredValues(frames));
  }
  return summary.pixelsDecode === false ? 1 : 0;
}
