// Re-sharding after a merge (src/plan/space.ts: remainderCuts, remainderSplit): what remains of a step,
// split among any number of shards. Examples first, then properties over random done sets and shard counts,
// and over histories of shard counts (merge, re-split, run partway, merge again).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  recordedPart,
  remainderCuts,
  remainderOf,
  remainderSplit,
  type Spans,
} from '../../src/plan/space.js';

type Span = [number, number];

/** Positions of the spans, as a sorted list (the spaces in these tests are small). */
function positions(spans: Spans): number[] {
  const out: number[] = [];
  for (const [s, e] of spans) for (let p = s; p < e; p++) out.push(p);
  return out.sort((a, b) => a - b);
}

describe('remainderOf', () => {
  it('is the whole minus the done work, clipped and merged', () => {
    expect(remainderOf(0, 10, [])).toEqual([[0, 10]]);
    expect(
      remainderOf(0, 10, [
        [3, 5],
        [4, 6],
        [-2, 1],
        [9, 40],
      ]),
    ).toEqual([
      [1, 3],
      [6, 9],
    ]);
    expect(remainderOf(5, 5, [])).toEqual([]);
  });
});

describe('remainderCuts', () => {
  it('splits a fresh space as the plain split does', () => {
    expect(remainderCuts(0, 100, [], 4)).toEqual([0, 25, 50, 75, 100]);
    expect(remainderCuts(7, 107, [], 3)).toEqual([7, 40, 73, 107]);
  });

  it('shares out the remaining positions evenly, each part starting on one', () => {
    // 4 old shards of [0, 100) each did their first 15: 40 positions remain in 4 pieces.
    const done: Span[] = [
      [0, 15],
      [25, 40],
      [50, 65],
      [75, 90],
    ];
    const parts = remainderSplit(0, 100, done, 8);
    expect(parts.map((p) => positions(p.todo).length)).toEqual([5, 5, 5, 5, 5, 5, 5, 5]);
    expect(parts[0]?.range).toEqual([0, 20]);
    expect(parts[0]?.todo).toEqual([[15, 20]]);
    expect(parts[1]?.range).toEqual([20, 40]);
    expect(parts[1]?.todo).toEqual([[20, 25]]);
    expect(parts[7]?.range[1]).toBe(100);
  });

  it('gives empty parts when fewer positions remain than shards', () => {
    const parts = remainderSplit(0, 10, [[0, 8]], 4);
    expect(parts.map((p) => positions(p.todo).length).sort()).toEqual([0, 0, 1, 1]);
    expect(parts.map((p) => p.range[1] - p.range[0]).reduce((a, b) => a + b, 0)).toBe(10);
  });

  it('uses the plain split when nothing remains', () => {
    expect(remainderCuts(0, 10, [[0, 10]], 2)).toEqual([0, 5, 10]);
  });
});

describe('recordedPart', () => {
  it('takes the recorded cuts when they fit the shard count and mode, else the plain split', () => {
    const sharding = { from: 0, to: 100, mode: 'split' as const, merge: 'm', cuts: [0, 20, 100] };
    expect(recordedPart(sharding, 'split', { index: 1, total: 2 })).toEqual([20, 100]);
    expect(recordedPart(sharding, 'split', { index: 1, total: 4 })).toEqual([25, 50]);
    expect(recordedPart(sharding, 'every', { index: 1, total: 2 })).toEqual([0, 100]);
  });
});

const doneSets = (len: number) =>
  fc.array(
    fc
      .tuple(fc.integer({ min: -3, max: len + 3 }), fc.integer({ min: 0, max: 12 }))
      .map(([s, n]): Span => [s, s + n]),
    { maxLength: 12 },
  );

describe('remainderSplit properties', () => {
  it('parts are disjoint, cover the remainder exactly, hold no done unit and are the same when computed again', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -20, max: 20 }),
        fc.integer({ min: 0, max: 120 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 120 }).chain((len) => doneSets(len)),
        (from, len, total, rawDone) => {
          const to = from + len;
          const done = rawDone.map(([s, e]): Span => [from + s, from + e]);
          const parts = remainderSplit(from, to, done, total);
          expect(parts).toHaveLength(total);
          // The same input gives the same split: every shard computes it on its own.
          expect(
            remainderSplit(
              from,
              to,
              done.map(([s, e]): Span => [s, e]),
              total,
            ),
          ).toEqual(parts);
          const donePos = new Set(positions(done).filter((p) => p >= from && p < to));
          const rest = positions(remainderOf(from, to, done));
          const todo = parts.flatMap((p) => positions(p.todo));
          // Disjoint and exactly the remainder.
          expect(new Set(todo).size).toBe(todo.length);
          expect([...todo].sort((a, b) => a - b)).toEqual(rest);
          for (const p of todo) expect(donePos.has(p)).toBe(false);
          // The ranges tile the whole in shard order, and each part's todo lies in its range.
          expect(parts[0]?.range[0]).toBe(from);
          expect(parts[total - 1]?.range[1]).toBe(to);
          for (let i = 0; i < total; i++) {
            const p = parts[i] as (typeof parts)[number];
            expect(p.range[0]).toBeLessThanOrEqual(p.range[1]);
            if (i > 0) expect(p.range[0]).toBe(parts[i - 1]?.range[1]);
            for (const [s, e] of p.todo) {
              expect(s).toBeGreaterThanOrEqual(p.range[0]);
              expect(e).toBeLessThanOrEqual(p.range[1]);
            }
            // Balanced as the plain split is: ⌊(i+1)·R/M⌋ − ⌊i·R/M⌋.
            const share = Math.floor(((i + 1) * rest.length) / total) - Math.floor((i * rest.length) / total);
            expect(positions(p.todo).length).toBe(share);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('any history of shard counts: every position is done exactly once across the merges', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 150 }),
        // Each round: a shard count and, per shard, how much of its remaining part it gets done.
        fc.array(
          fc
            .integer({ min: 1, max: 12 })
            .chain((n) =>
              fc.tuple(
                fc.constant(n),
                fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: n, maxLength: n }),
              ),
            ),
          { minLength: 1, maxLength: 5 },
        ),
        (len, rounds) => {
          const doneCount = new Map<number, number>();
          let merged: Span[] = [];
          for (const [n, fractions] of rounds) {
            const parts = remainderSplit(0, len, merged, n);
            const doneNow: Span[] = [...merged];
            parts.forEach((p, i) => {
              // A shard does a prefix of its todo (the engine hands units out in order).
              let budget = Math.floor(positions(p.todo).length * (fractions[i] ?? 0));
              for (const [s, e] of p.todo) {
                const take = Math.min(budget, e - s);
                if (take <= 0) break;
                for (let x = s; x < s + take; x++) doneCount.set(x, (doneCount.get(x) ?? 0) + 1);
                doneNow.push([s, s + take]);
                budget -= take;
              }
            });
            // The merge: the union of the shards' done work, inherited work included.
            merged = positions(remainderOf(0, len, remainderOf(0, len, doneNow))).map(
              (x): Span => [x, x + 1],
            );
          }
          for (const c of doneCount.values()) expect(c).toBe(1);
          // What the last split leaves is exactly what was never done.
          const never = positions(remainderOf(0, len, merged));
          for (const x of never) expect(doneCount.has(x)).toBe(false);
          expect(never.length + doneCount.size).toBe(len);
        },
      ),
      { numRuns: 300 },
    );
  });
});
