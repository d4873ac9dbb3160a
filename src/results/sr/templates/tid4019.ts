/**
 * TID 4019 Algorithm Identification (PS3.16, https://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_TID_4019.html):
 * name, version and parameters, as IHE AIR asks for every algorithm result (highdicom
 * `AlgorithmIdentification`). The 2019 edition pixelmed checks against has no Algorithm Manufacturer row; the
 * manufacturer is in Contributing Equipment instead.
 */
import { RadnodeError } from '../../../errors.ts';
import { DCM } from '../codes.ts';
import type { ContentItem } from '../content-items.ts';

export type AlgorithmIdentification = { name: string; version: string; parameters?: string[] };

export function tid4019AlgorithmIdentification(algorithm: AlgorithmIdentification): ContentItem[] {
  if (!algorithm.name) throw new RadnodeError('RN_RESULT_INVALID', 'algorithm.name is required (TID 4019 row 1)', { details: { argument: 'algorithm.name' } });
  if (!algorithm.version) throw new RadnodeError('RN_RESULT_INVALID', 'algorithm.version is required (TID 4019 row 2)', { details: { argument: 'algorithm.version' } });
  const items: ContentItem[] = [
    { valueType: 'TEXT', relationship: 'HAS CONCEPT MOD', concept: DCM.AlgorithmName, text: algorithm.name },
    { valueType: 'TEXT', relationship: 'HAS CONCEPT MOD', concept: DCM.AlgorithmVersion, text: algorithm.version },
  ];
  for (const p of algorithm.parameters ?? []) {
    items.push({ valueType: 'TEXT', relationship: 'HAS CONCEPT MOD', concept: DCM.AlgorithmParameters, text: p });
  }
  return items;
}
