import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/plan/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['1d2h', 93_600_000],
    ['2m30s', 150_000],
    ['1s500ms', 1_500],
    ['1h 30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['0s', 0],
    [' 45s ', 45_000],
    ['90', 90_000],
    ['0.25', 250],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('reads a bare number as seconds', () => {
    expect(parseDuration(90)).toBe(90_000);
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration(1.5)).toBe(1_500);
  });

  it.each([
    '',
    ' ',
    'x',
    '10x',
    '1h30',
    'h',
    '-5s',
    '5 s s',
    '30m1h',
    '1m1m',
    '10M',
    '1e3s',
    'ms',
    '1h-30m',
  ])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(
      `expected a duration like 90s, 10m, 1h30m or 2d, got ${JSON.stringify(text)}`,
    );
  });

  it('rejects negative and non-finite numbers', () => {
    expect(() => parseDuration(-1)).toThrow('expected a duration like 90s, 10m, 1h30m or 2d, got "-1"');
    expect(() => parseDuration(Number.NaN)).toThrow('got "NaN"');
    expect(() => parseDuration(Number.POSITIVE_INFINITY)).toThrow('got "Infinity"');
  });

  it('throws a plain Error', () => {
    try {
      parseDuration('soon');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe('Error');
    }
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [850, '850ms'],
    [999.9, '999ms'],
    [1_000, '1s'],
    [42_000, '42s'],
    [59_999, '59s'],
    [60_000, '1m'],
    [185_000, '3m05s'],
    [3_599_000, '59m59s'],
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [3_900_000, '1h05m'],
    [86_400_000, '1d'],
    [187_200_000, '2d4h'],
    [-42_000, '-42s'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('handles values that are not durations', () => {
    expect(formatDuration(Number.NaN)).toBe('?');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('∞');
  });

  it('round-trips through parseDuration to the precision it prints', () => {
    for (const ms of [850, 42_000, 185_000, 5_400_000, 187_200_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
