/**
 * docs/errors.md is generated from ERROR_TABLE; this test fails when someone changes the table and forgets to
 * regenerate the page (the approach of fastify's test/internals/errors.test.js, which checks its docs against its
 * error list). It also holds the table to the rules the rest of the code relies on.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_DOCS_PATH, renderErrorDocs } from '../scripts/gen-error-docs.ts';
import { ERROR_TABLE, RadnodeError, asRadnodeError, type ErrorCode } from './errors.ts';

const codes = Object.keys(ERROR_TABLE) as ErrorCode[];

describe('ERROR_TABLE', () => {
  it('gives every code a non-empty description', () => {
    for (const code of codes) expect(ERROR_TABLE[code].description.trim(), code).not.toBe('');
  });

  it('names every code RN_<UPPER_SNAKE>', () => {
    for (const code of codes) expect(code).toMatch(/^RN_[A-Z0-9]+(_[A-Z0-9]+)*$/);
  });

  it('uses real HTTP statuses and exit codes 1 or 2', () => {
    for (const code of codes) {
      const e = ERROR_TABLE[code];
      expect(Number.isInteger(e.httpStatus) && e.httpStatus >= 200 && e.httpStatus <= 599, code).toBe(true);
      expect([1, 2], code).toContain(e.exitCode);
    }
  });

  it('exits 2 for configuration and usage errors, as DESIGN §6 promises', () => {
    expect(ERROR_TABLE.RN_CONFIG_INVALID.exitCode).toBe(2);
    expect(ERROR_TABLE.RN_CONFIG_UNREADABLE.exitCode).toBe(2);
    expect(ERROR_TABLE.RN_USAGE.exitCode).toBe(2);
  });

  it('carries status, retryability and exit code into RadnodeError', () => {
    const e = new RadnodeError('RN_DELIVERY_UNREACHABLE', 'down');
    expect([e.httpStatus, e.retryable, e.exitCode]).toEqual([502, true, 1]);
    expect(asRadnodeError(new Error('x')).code).toBe('RN_INTERNAL');
  });
});

describe('docs/errors.md', () => {
  const doc = readFileSync(ERROR_DOCS_PATH, 'utf8');

  it('is up to date with ERROR_TABLE (regenerate with: npx tsx scripts/gen-error-docs.ts)', () => {
    expect(doc).toBe(renderErrorDocs());
  });

  it('lists every code exactly once with its status, retryability, exit code and description', () => {
    for (const code of codes) {
      const rows = doc.split('\n').filter((l) => l.startsWith(`| \`${code}\` |`));
      expect(rows, code).toHaveLength(1);
      const cells = rows[0].split(' | ').map((c) => c.replace(/^\| |\s\|$/g, ''));
      const e = ERROR_TABLE[code];
      expect(cells.slice(1, 4), code).toEqual([String(e.httpStatus), e.retryable ? 'yes' : 'no', String(e.exitCode)]);
    }
  });

  it('documents no code that the table lacks', () => {
    const documented = [...doc.matchAll(/^\| `(RN_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...codes].sort());
  });
});
