import { createHash } from 'node:crypto';
import { RadnodeError } from '../errors.ts';
import { isTimeZone, NODE_TIME_ZONE } from './calendar.ts';
import { isWorklistPriority, type WorklistPriority } from './priority.ts';
import { REVIEW_STATES, type ReviewState } from './model.ts';

/** GET /api/worklist's filters and page, validated at the boundary. */
export type WorklistQuery = {
  tab: 'all' | 'second';
  priorities: WorklistPriority[];
  modality?: string;
  detector?: string;
  /** Arrival day range, YYYY-MM-DD, both ends included, as calendar days in `tz`. */
  from?: string;
  to?: string;
  /** IANA time zone of the reader's calendar (the page sends its own); default: the node's. */
  tz: string;
  review?: ReviewState;
  limit: number;
  offset: number;
};

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 200;

const bad = (key: string, value: unknown, expected: string) =>
  new RadnodeError('RN_WORKLIST_BAD_REQUEST', `query ${key}: ${expected}, got ${JSON.stringify(value)}`, { details: { key } });

const one = (q: Record<string, unknown>, key: string): string | undefined => {
  const v = q[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw bad(key, v, 'expected one value');
  return v;
};

const DAY = /^\d{4}-\d{2}-\d{2}$/;
// Modality (CS, 16 chars) and detector ids are short tokens; anything else is a typo or an injection attempt.
const TOKEN = /^[A-Za-z0-9._-]{1,64}$/;

export function parseWorklistQuery(q: Record<string, unknown>): WorklistQuery {
  const tab = one(q, 'tab') ?? 'all';
  if (tab !== 'all' && tab !== 'second') throw bad('tab', tab, 'expected all or second');
  const priorities = (one(q, 'priority') ?? '').split(',').filter(Boolean);
  for (const p of priorities) if (!isWorklistPriority(p)) throw bad('priority', p, 'expected urgent, positive, failed, pending, negative or unprocessed');
  const modality = one(q, 'modality');
  if (modality !== undefined && !TOKEN.test(modality)) throw bad('modality', modality, 'expected a modality such as CR');
  const detector = one(q, 'detector');
  if (detector !== undefined && !TOKEN.test(detector)) throw bad('detector', detector, 'expected a detector id');
  const from = one(q, 'from');
  const to = one(q, 'to');
  // A day that does not exist (2024-02-30) is refused, not rolled over into the next month.
  for (const [k, v] of [['from', from], ['to', to]] as const)
    if (v !== undefined && (!DAY.test(v) || Number.isNaN(Date.parse(v)) || new Date(Date.parse(v)).toISOString().slice(0, 10) !== v)) throw bad(k, v, 'expected a day YYYY-MM-DD');
  const tz = one(q, 'tz') ?? NODE_TIME_ZONE;
  if (!isTimeZone(tz)) throw bad('tz', tz, 'expected an IANA time zone such as Europe/Berlin');
  const review = one(q, 'review');
  if (review !== undefined && !REVIEW_STATES.includes(review as ReviewState)) throw bad('review', review, 'expected new, opened or reviewed');
  const int = (key: string, dflt: number, min: number, max: number) => {
    const v = one(q, key);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw bad(key, v, `expected an integer between ${min} and ${max}`);
    return n;
  };
  return {
    tab, priorities: priorities as WorklistPriority[], modality: modality?.toUpperCase(), detector, from, to, tz,
    review: review as ReviewState | undefined, limit: int('limit', DEFAULT_PAGE, 1, MAX_PAGE), offset: int('offset', 0, 0, 10_000_000),
  };
}

/**
 * A weak validator for one query at one worklist version. Every row change bumps the version, so equal ETags
 * mean an equal answer, and a poll that changed nothing is answered 304 without running the list query.
 */
export function worklistEtag(version: number, q: WorklistQuery): string {
  const key = JSON.stringify([q.tab, [...q.priorities].sort(), q.modality ?? '', q.detector ?? '', q.from ?? '', q.to ?? '', q.from || q.to ? q.tz : '', q.review ?? '', q.limit, q.offset]);
  return `W/"wl-${version}-${createHash('sha256').update(key).digest('hex').slice(0, 16)}"`;
}

/** If-None-Match (RFC 9110 §13.1.2): a list of tags or `*`, compared weakly. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || strip(t) === strip(etag));
}
