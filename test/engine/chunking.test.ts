// Chunks sized by time (`batch.size: { target, min, max }`): the sizing function, the measured pace, and how
// the checkpoint records them.
import { describe, expect, it } from 'vitest';
import {
  chunkInfo,
  estimateMs,
  fitsRemaining,
  GROWTH,
  largestChunk,
  latestStart,
  nextChunkSize,
  usableMs,
  wantedChunk,
} from '../../src/engine/chunking.js';
import type { CheckpointEvent } from '../../src/journal/events.js';
import { PACE_WEIGHT, type Pace, paceRate, updatePace } from '../../src/journal/pace.js';
import { parseSnapshot, serializeSnapshot } from '../../src/journal/snapshot.js';
import { countDoneUnits } from '../../src/journal/state.js';
import type { AdaptiveSize } from '../../src/plan/types.js';
import { fp, replay } from '../support/events.js';

const size: AdaptiveSize = { targetMs: 200, min: 10, max: 1000 };

/** A pace measured from chunks of `items` items that each took `ms`. */
function paceOf(...chunks: Array<[number, number]>): Pace {
  let p: Pace | undefined;
  for (const [items, ms] of chunks) p = updatePace(p, items, ms);
  if (!p) throw new Error('no chunks');
  return p;
}

describe('pace', () => {
  it('is the ratio of exponentially weighted items and time', () => {
    const p = paceOf([100, 100], [100, 50]);
    expect(p.items).toBeCloseTo(100 * PACE_WEIGHT + 100);
    expect(p.ms).toBeCloseTo(100 * PACE_WEIGHT + 50);
    expect(paceRate(p)).toBeCloseTo(175 / 125);
    expect(p).toMatchObject({ lastSize: 100, lastMs: 50, chunks: 2 });
  });

  it('has no rate before a chunk finished, and never an infinite one', () => {
    expect(paceRate(undefined)).toBeUndefined();
    expect(paceRate(paceOf([50, 0]))).toBe(50);
  });

  it('follows a change of speed: recent chunks weigh most', () => {
    let p = paceOf([100, 100]);
    for (let i = 0; i < 20; i++) p = updatePace(p, 100, 10);
    expect(paceRate(p)).toBeGreaterThan(9);
  });
});

describe('nextChunkSize', () => {
  it('starts at min before anything was measured', () => {
    expect(nextChunkSize({ size, pace: undefined, room: 10_000 })).toBe(10);
    expect(wantedChunk(size, undefined)).toBe(10);
  });

  it('grows when chunks are fast', () => {
    // 10 items in 10 ms: 1 item/ms, so 200 ms is about 200 items; growth is capped at GROWTH × the last.
    const p = paceOf([10, 10]);
    expect(nextChunkSize({ size, pace: p, room: 10_000 })).toBe(10 * GROWTH);
    const steady = paceOf([100, 100], [200, 200], [200, 200]);
    expect(nextChunkSize({ size, pace: steady, room: 10_000 })).toBe(200);
  });

  it('shrinks at once when chunks are slow', () => {
    // 400 items took 2 s: 0.2 item/ms, so 200 ms is 40 items.
    const p = paceOf([400, 2000]);
    expect(nextChunkSize({ size, pace: p, room: 10_000 })).toBe(40);
  });

  it('is a whole multiple of min', () => {
    const p = paceOf([100, 100], [100, 100], [100, 80]);
    const n = nextChunkSize({ size, pace: p, room: 10_000 });
    expect(n % size.min).toBe(0);
    expect(n).toBeGreaterThan(200);
  });

  it('clamps to min and max', () => {
    const crawling = paceOf([10, 60_000]);
    expect(nextChunkSize({ size, pace: crawling, room: 10_000 })).toBe(10);
    const flying = paceOf([1000, 1], [1000, 1]);
    expect(nextChunkSize({ size, pace: flying, room: 1e9 })).toBe(1000);
    // A max that is not a multiple of min rounds down to one.
    const odd: AdaptiveSize = { targetMs: 200, min: 30, max: 100 };
    expect(largestChunk(odd)).toBe(90);
    expect(nextChunkSize({ size: odd, pace: paceOf([90, 1], [90, 1]), room: 1e9 })).toBe(90);
    // max == min: always min.
    expect(nextChunkSize({ size: { targetMs: 1, min: 7, max: 7 }, pace: flying, room: 1e9 })).toBe(7);
  });

  it('is cut to the room left in its gap', () => {
    const p = paceOf([100, 100], [200, 200]);
    expect(nextChunkSize({ size, pace: p, room: 55 })).toBe(55);
    expect(nextChunkSize({ size, pace: undefined, room: 3 })).toBe(3);
  });

  it('respects the time left in the budget, keeping a margin', () => {
    const p = paceOf([200, 200], [200, 200]); // 1 item/ms
    // 1.1 s left: the margin is 1 s (at least a second), so 100 ms of work, 100 items.
    expect(nextChunkSize({ size, pace: p, room: 10_000, remainingMs: 1100 })).toBe(100);
    // Plenty of time: the target decides.
    expect(nextChunkSize({ size, pace: p, room: 10_000, remainingMs: 60_000 })).toBe(200);
    // Not even min fits: min (the engine's predictive stop then holds it back).
    expect(nextChunkSize({ size, pace: p, room: 10_000, remainingMs: 1005 })).toBe(10);
    expect(fitsRemaining(estimateMs(p, 10) ?? 0, 1005)).toBe(false);
    expect(fitsRemaining(estimateMs(p, 100) ?? 0, 1100)).toBe(true);
    // With a slower pace and a long budget the margin is a tenth of the time left.
    const slow = paceOf([10, 1000]); // 0.01 item/ms
    const big: AdaptiveSize = { targetMs: 3_600_000, min: 1, max: 1_000_000 };
    expect(nextChunkSize({ size: big, pace: slow, room: 1e9, remainingMs: 100_000 })).toBe(40); // growth cap
    expect(
      nextChunkSize({
        size: { ...big, min: 1 },
        pace: paceOf([1000, 100_000]),
        room: 1e9,
        remainingMs: 100_000,
      }),
    ).toBe(900);
    expect(usableMs(100_000)).toBe(90_000);
    expect(usableMs(500)).toBe(0);
  });

  it('ignores the budget before anything was measured (like the p90: nothing to predict from)', () => {
    expect(nextChunkSize({ size, pace: undefined, room: 10_000, remainingMs: 1 })).toBe(10);
    expect(estimateMs(undefined, 10)).toBeUndefined();
  });

  it('gives the latest start that still fits', () => {
    for (const est of [900, 18_000]) {
      const start = latestStart(100_000, est);
      expect(fitsRemaining(est, 100_000 - start)).toBe(true);
      expect(fitsRemaining(est, 100_000 - start - 1)).toBe(false);
    }
    expect(latestStart(100_000, 900)).toBe(98_100);
    expect(latestStart(100_000, 18_000)).toBe(80_000);
  });
});

describe('chunkInfo', () => {
  it('reports the last chunk, the rate, the next size and the bounds', () => {
    const info = chunkInfo({ size: 10, pace: paceOf([100, 100], [200, 200]) }, size);
    expect(info).toEqual({
      targetMs: 200,
      min: 10,
      max: 1000,
      lastSize: 200,
      lastMs: 200,
      ratePerSecond: 1000,
      nextSize: 200,
      measured: 2,
    });
  });

  it('works without the plan and before any chunk', () => {
    expect(chunkInfo({ size: 10 }, undefined)).toEqual({
      targetMs: null,
      min: 10,
      max: null,
      lastSize: null,
      lastMs: null,
      ratePerSecond: null,
      nextSize: null,
      measured: 0,
    });
    expect(chunkInfo({ size: 1 }, { targetMs: 1000, min: 1, max: Number.MAX_SAFE_INTEGER }).max).toBeNull();
  });
});

describe('the checkpoint record of a step with chunks sized by time', () => {
  const attempt: CheckpointEvent = {
    type: 'attempt',
    attempt: 1,
    plan: 'plan',
    pid: 1,
    host: 'h',
    resumed: false,
  };

  it('measures done chunks and counts them in grid cells of min', () => {
    const st = replay([
      attempt,
      {
        type: 'step-init',
        step: 'b',
        fingerprint: fp,
        from: 0,
        to: 105,
        size: 10,
        adaptive: true,
        reason: 'new',
      },
      { type: 'done', step: 'b', start: 0, end: 10, index: 0, ms: 10 },
      { type: 'done', step: 'b', start: 10, end: 50, index: 1, ms: 40 },
      { type: 'done', step: 'b', start: 50, end: 105, index: 5, ms: 55 },
    ]);
    const rec = st.steps.get('b');
    expect(rec?.adaptive).toBe(true);
    expect(rec?.pace).toMatchObject({ lastSize: 55, lastMs: 55, chunks: 3 });
    expect(paceRate(rec?.pace)).toBeCloseTo(1);
    // 1 + 4 + 6 cells (the last one ends at `to`): the same as counted from the intervals.
    expect(rec?.unitsDone).toBe(11);
    expect(rec && countDoneUnits(rec)).toBe(11);
    expect(st.attempts[0]?.unitsDone).toBe(11);
  });

  it('keeps the pace and the flag through the snapshot', () => {
    const st = replay([
      attempt,
      {
        type: 'step-init',
        step: 'b',
        fingerprint: fp,
        from: 0,
        to: 100,
        size: 10,
        adaptive: true,
        reason: 'new',
      },
      { type: 'done', step: 'b', start: 0, end: 30, index: 0, ms: 12 },
    ]);
    const back = parseSnapshot(serializeSnapshot(st), 'checkpoint.json');
    expect(back.steps.get('b')?.adaptive).toBe(true);
    expect(back.steps.get('b')?.pace).toEqual(st.steps.get('b')?.pace);
  });

  it('measures nothing for steps of a fixed size, and a redefinition to a fixed size drops the pace', () => {
    const st = replay([
      attempt,
      { type: 'step-init', step: 'f', fingerprint: fp, from: 0, to: 100, size: 10, reason: 'new' },
      { type: 'done', step: 'f', start: 0, end: 10, index: 0, ms: 12 },
      {
        type: 'step-init',
        step: 'b',
        fingerprint: fp,
        from: 0,
        to: 100,
        size: 10,
        adaptive: true,
        reason: 'new',
      },
      { type: 'done', step: 'b', start: 0, end: 30, index: 0, ms: 12 },
      { type: 'step-redefine', step: 'b', fingerprint: fp, from: 0, to: 100, size: 10, reason: 'kept' },
    ]);
    expect(st.steps.get('f')?.pace).toBeUndefined();
    expect(st.steps.get('f')?.adaptive).toBeUndefined();
    expect(st.steps.get('b')?.pace).toBeUndefined();
    expect(st.steps.get('b')?.adaptive).toBeUndefined();
    expect(st.steps.get('b')?.done.toJSON()).toEqual([[0, 30]]);
  });
});
