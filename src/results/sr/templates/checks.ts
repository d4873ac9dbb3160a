/** Argument checks shared by the template builders; each error names the argument (style.md §1, §5). */
import { RadnodeError } from '../../../errors.ts';
import type { CodedConcept } from '../codes.ts';

const UID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;

/** PS3.5 §9.1: digits and dots, no leading zeros, at most 64 characters. */
export function checkUid(uid: string, argument: string): void {
  if (!UID.test(uid) || uid.length > 64) {
    throw new RadnodeError('RN_RESULT_INVALID', `${argument} is not a valid UID: ${JSON.stringify(uid)}`, { details: { argument } });
  }
}

/** PS3.3 §8.1–8.3: Code Value (SH, 16), Coding Scheme Designator (SH, 16), Code Meaning (LO, 64). */
export function checkCode(code: CodedConcept, argument: string): void {
  const bad =
    code.value.length === 0 ||
    code.value.length > 16 ||
    code.scheme.length === 0 ||
    code.scheme.length > 16 ||
    code.meaning.length === 0 ||
    code.meaning.length > 64 ||
    code.meaning.includes('\\');
  if (bad) {
    throw new RadnodeError('RN_RESULT_INVALID', `${argument} is not a valid code: ${JSON.stringify(code)}`, { details: { argument } });
  }
}

export function checkFinite(value: number, argument: string): void {
  if (!Number.isFinite(value)) {
    throw new RadnodeError('RN_RESULT_INVALID', `${argument} must be a finite number, got ${value}`, { details: { argument } });
  }
}
