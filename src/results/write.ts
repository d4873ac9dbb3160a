/**
 * The results stage's entry point (DESIGN §2): a detector's result and its source instances in, the DICOM objects
 * radnode delivers out — the TID 1500 SR first, then the heatmap secondary captures.
 */
import { RadnodeError } from '../errors.ts';
import { readSourceHeader } from './modules.ts';
import type { ResultObject, ResultWriter } from './objects.ts';
import { writeSr } from './sr/write-sr.ts';

export const writeResultObjects: ResultWriter = async (result, sources, ctx): Promise<ResultObject[]> => {
  if (sources.length === 0) {
    throw new RadnodeError('RN_RESULT_INVALID', 'a result needs at least one source instance', { details: { studyInstanceUID: result.studyInstanceUID } });
  }
  const first = await readSourceHeader(sources[0]);
  const sr = writeSr(result, sources, first, ctx);
  return [sr];
};
