/** Calendar days of the reader's time zone, for the worklist's day filters (pure; Intl from Node's full ICU). */

/** The node's own time zone: the day filters' default when a client names none. */
export const NODE_TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function isTimeZone(tz: string): boolean {
  if (tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Minutes east of UTC of `timeZone` at the instant `ms`. */
function offsetMinutes(timeZone: string, ms: number): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(ms);
  const n = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return Math.round((Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')) - Math.floor(ms / 1000) * 1000) / 60_000);
}

/** The instant the day after a calendar day begins in `timeZone`: 23 or 25 hours later on a daylight-saving change. */
export function dayEndMs(day: string, timeZone: string): number {
  return dayStartMs(new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10), timeZone);
}

/** The instant a calendar day (YYYY-MM-DD) begins in `timeZone`, daylight saving time included. */
export function dayStartMs(day: string, timeZone: string): number {
  const utcMidnight = Date.parse(`${day}T00:00:00Z`);
  const first = utcMidnight - offsetMinutes(timeZone, utcMidnight) * 60_000;
  return utcMidnight - offsetMinutes(timeZone, first) * 60_000;
}
