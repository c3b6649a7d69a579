import { describe, expect, it } from 'vitest';
import { parseSnapshot, SnapshotError, serializeSnapshot } from '../../src/journal/snapshot.js';
import { applyEvent, countDoneUnits, isStepComplete, orphanedUnits, p90 } from '../../src/journal/state.js';
import { fp, replay } from '../support/events.js';

describe('applyEvent', () => {
  it('tracks units through start, fail, done and keeps done work as merged intervals', () => {
    const st = replay([
      { type: 'attempt', attempt: 1, plan: 'plan', pid: 1, host: 'h', resumed: false },
      { type: 'step-init', step: 'b', fingerprint: fp, from: 0, to: 10, size: 2, reason: 'new' },
      { type: 'start', step: 'b', start: 0, end: 2, index: 0, try: 1, attempt: 1 },
      { type: 'start', step: 'b', start: 2, end: 4, index: 1, try: 1, attempt: 1 },
      { type: 'done', step: 'b', start: 0, end: 2, index: 0, ms: 10 },
      {
        type: 'fail',
        step: 'b',
        start: 2,
        end: 4,
        index: 1,
        try: 1,
        ms: 5,
        exit: 3,
        signal: null,
        final: true,
        reason: 'exit code 3',
      },
      { type: 'start', step: 'b', start: 4, end: 6, index: 2, try: 1, attempt: 1 },
      { type: 'spawned', step: 'b', start: 4, end: 6, index: 2, pid: 77, startTime: 5, host: 'h' },
    ]);
    const rec = st.steps.get('b');
    expect(rec?.done.toJSON()).toEqual([[0, 2]]);
    expect(rec?.failed.get(2)?.reason).toBe('exit code 3');
    expect(orphanedUnits(st).map((o) => [o.step, o.unit.start, o.unit.pid])).toEqual([['b', 4, 77]]);
    expect(rec && countDoneUnits(rec)).toBe(1);
    expect(st.attempts[0]?.unitsDone).toBe(1);
    expect(st.seq).toBe(8);
  });

  it('counts whole grid units inside done intervals and knows when a step is complete', () => {
    const st = replay([
      { type: 'step-init', step: 'b', fingerprint: fp, from: 10, to: 21, size: 5, reason: 'new' },
      { type: 'done', step: 'b', start: 10, end: 15, index: 0, ms: 1 },
      { type: 'done', step: 'b', start: 20, end: 21, index: 2, ms: 1 },
    ]);
    const rec = st.steps.get('b');
    if (!rec) throw new Error('no record');
    expect(countDoneUnits(rec)).toBe(2);
    expect(isStepComplete(rec)).toBe(false);
    applyEvent(st, { type: 'done', step: 'b', start: 15, end: 20, index: 1, ms: 1, seq: 4, t: 5 });
    expect(isStepComplete(rec)).toBe(true);
    expect(rec.done.toJSON()).toEqual([[10, 21]]);
  });

  it('reset forgets or clears; mark-done completes the space', () => {
    const st = replay([
      { type: 'step-init', step: 'a', fingerprint: fp, from: 0, to: 4, size: 1, reason: 'new' },
      { type: 'mark-done', step: 'a' },
    ]);
    const a = st.steps.get('a');
    expect(a && isStepComplete(a)).toBe(true);
    applyEvent(st, { type: 'reset', step: 'a', failedOnly: false, reason: 'x', seq: 3, t: 1 });
    expect(st.steps.get('a')?.done.size).toBe(0);
    applyEvent(st, { type: 'reset', step: 'a', failedOnly: false, forget: true, reason: 'x', seq: 4, t: 1 });
    expect(st.steps.has('a')).toBe(false);
  });

  it('p90 of durations', () => {
    expect(p90([])).toBeUndefined();
    expect(p90([5])).toBe(5);
    expect(p90([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toBe(9);
  });
});

describe('snapshot', () => {
  it('round-trips, and detects any change through its checksum', () => {
    const st = replay([
      { type: 'attempt', attempt: 1, plan: 'plan', pid: 1, host: 'h', resumed: false },
      { type: 'step-init', step: 'b', fingerprint: fp, from: 0, to: 100, size: 1, reason: 'new' },
      { type: 'done', step: 'b', start: 0, end: 1, index: 0, ms: 3, outputs: { k: 'v' } },
      { type: 'done', step: 'b', start: 5, end: 6, index: 5, ms: 4 },
    ]);
    const text = serializeSnapshot(st);
    expect(text).toContain('"done": [0,1,5,6],\n');
    const back = parseSnapshot(text, 'checkpoint.json');
    expect(serializeSnapshot(back)).toBe(text);
    expect(back.steps.get('b')?.outputs).toEqual({ k: 'v' });
    const tampered = text.replace('[0,1,5,6]', '[0,1,5,7]');
    expect(() => parseSnapshot(tampered, 'checkpoint.json')).toThrow(SnapshotError);
    expect(() => parseSnapshot(tampered, 'checkpoint.json')).toThrow(/checkpoint.json: checksum mismatch/);
    expect(() => parseSnapshot(text.replace('"format": 1', '"format": 9'), 'c.json')).toThrow(
      /newer than this program reads/,
    );
  });
});
