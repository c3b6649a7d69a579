// Durations as users write them in plans and flags (`90s`, `10m`, `1h30m`, `2d`, `500ms`) and as the
// program prints them back (`3m05s`).

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;
/** Units in the order they must appear in a combined duration (`1d2h`, never `2h1d`). */
const UNIT_ORDER: readonly Unit[] = ['d', 'h', 'm', 's', 'ms'];

// `ms` must be tried before `m` so that `500ms` is not read as 500 minutes followed by garbage.
const PART = /(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)/y;
const BARE_NUMBER = /^\d+(?:\.\d+)?$/;

function durationError(text: string | number): Error {
  return new Error(`expected a duration like 90s, 10m, 1h30m or 2d, got ${JSON.stringify(String(text))}`);
}

/**
 * Parses a duration into milliseconds. Accepts `500ms`, `90s`, `10m`, `1h30m`, `2d`, combinations in
 * decreasing order of unit (`1d2h`, `2m30s`, `1s500ms`, spaces allowed between parts), decimals (`1.5h`),
 * and a bare number, which means seconds. Throws a plain `Error` with a user-facing message otherwise.
 */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw durationError(text);
    return Math.round(text * 1000);
  }
  if (typeof text !== 'string') throw durationError(text);
  const s = text.trim();
  if (s === '') throw durationError(text);
  if (BARE_NUMBER.test(s)) {
    // Hundreds of digits read as Infinity, which every caller would take for a real duration.
    const ms = Number(s) * 1000;
    if (!Number.isFinite(ms)) throw durationError(text);
    return Math.round(ms);
  }

  let total = 0;
  let pos = 0;
  let lastUnit = -1;
  while (pos < s.length) {
    PART.lastIndex = pos;
    const m = PART.exec(s);
    if (!m) throw durationError(text);
    const unit = m[2] as Unit;
    const order = UNIT_ORDER.indexOf(unit);
    // Each unit at most once and from largest to smallest: `1m1m` or `30m1h` are more likely typos than intent.
    if (order <= lastUnit) throw durationError(text);
    lastUnit = order;
    total += Number(m[1]) * UNIT_MS[unit];
    pos = PART.lastIndex;
    while (s[pos] === ' ') pos++;
  }
  if (!Number.isFinite(total)) throw durationError(text);
  return Math.round(total);
}

/**
 * Formats milliseconds compactly: `850ms`, `42s`, `3m05s`, `1h30m`, `2d4h`. Two units at most; the smaller
 * one is left out when it is zero (`3m`, `1h`, `2d`). Rounds down, so 59.9 s prints as `59s`, never `60s`.
 */
export function formatDuration(ms: number): string {
  if (Number.isNaN(ms)) return '?';
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (!Number.isFinite(ms)) return '∞';
  if (ms < 1000) return `${Math.floor(ms)}ms`;
  const totalSeconds = Math.floor(ms / 1000);
  if (totalSeconds < 60) return `${totalSeconds}s`;
  const totalMinutes = Math.floor(totalSeconds / 60);
  if (totalMinutes < 60) return pair(totalMinutes, 'm', totalSeconds % 60, 's', true);
  const totalHours = Math.floor(totalMinutes / 60);
  if (totalHours < 24) return pair(totalHours, 'h', totalMinutes % 60, 'm', true);
  return pair(Math.floor(totalHours / 24), 'd', totalHours % 24, 'h', false);
}

function pair(big: number, bigUnit: string, small: number, smallUnit: string, pad: boolean): string {
  if (small === 0) return `${big}${bigUnit}`;
  const smallText = pad ? String(small).padStart(2, '0') : String(small);
  return `${big}${bigUnit}${smallText}${smallUnit}`;
}
