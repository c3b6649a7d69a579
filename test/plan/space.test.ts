// The split of a step's space among N shards (DESIGN §7): contiguous, disjoint parts that are exactly the
// whole, then chunked by `size` inside each part — for any range, size and N, N larger than the units too.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseShardText, partOf, shardModeOf, shardPart, unitsOf } from '../../src/plan/space.js';

/** Every shard's part of [from, to). */
function parts(from: number, to: number, total: number): Array<[number, number]> {
  return Array.from({ length: total }, (_, index) => shardPart(from, to, { index, total }));
}

const space = fc.record({
  from: fc.integer({ min: -1_000_000, max: 1_000_000 }),
  len: fc.integer({ min: 0, max: 5_000 }),
  size: fc.integer({ min: 1, max: 700 }),
  total: fc.integer({ min: 1, max: 300 }),
});

describe('shardPart', () => {
  it('shard i of N gets [from + ⌊i·len/N⌋, from + ⌊(i+1)·len/N⌋)', () => {
    expect(parts(0, 10, 3)).toEqual([
      [0, 3],
      [3, 6],
      [6, 10],
    ]);
    expect(parts(7, 107, 3)).toEqual([
      [7, 40],
      [40, 73],
      [73, 107],
    ]);
    // More shards than numbers: some parts are empty, the rest hold one each.
    expect(parts(0, 2, 5)).toEqual([
      [0, 0],
      [0, 0],
      [0, 1],
      [1, 1],
      [1, 2],
    ]);
    expect(parts(5, 5, 3)).toEqual([
      [5, 5],
      [5, 5],
      [5, 5],
    ]);
    expect(parts(3, 9, 1)).toEqual([[3, 9]]);
  });

  it('property: the parts are contiguous, disjoint, differ in length by at most one, and are exactly the whole', () => {
    fc.assert(
      fc.property(space, ({ from, len, total }) => {
        const to = from + len;
        const ps = parts(from, to, total);
        expect(ps[0]?.[0]).toBe(from);
        expect(ps[ps.length - 1]?.[1]).toBe(to);
        for (let i = 0; i < ps.length; i++) {
          const [s, e] = ps[i] as [number, number];
          expect(e).toBeGreaterThanOrEqual(s);
          if (i > 0) expect(s).toBe((ps[i - 1] as [number, number])[1]);
        }
        const lens = ps.map(([s, e]) => e - s);
        expect(Math.max(...lens) - Math.min(...lens)).toBeLessThanOrEqual(1);
        expect(lens.reduce((a, b) => a + b, 0)).toBe(len);
      }),
      { numRuns: 500 },
    );
  });

  it('property: chunked by size inside the parts, the units of all shards are disjoint and cover the whole once', () => {
    fc.assert(
      fc.property(space, ({ from, len, size, total }) => {
        const to = from + len;
        const seen = new Uint8Array(len);
        let units = 0;
        for (let index = 0; index < total; index++) {
          const [ps, pe] = shardPart(from, to, { index, total });
          for (const [s, e] of unitsOf(ps, pe, size)) {
            units += 1;
            // A unit stays inside its shard's part and is at most `size` long.
            if (s < ps || e > pe || e - s < 1 || e - s > size)
              throw new Error(`unit [${s}, ${e}) of part [${ps}, ${pe}) with size ${size}`);
            for (let x = s; x < e; x++) {
              if (seen[x - from]) throw new Error(`number ${x} is in two units`);
              seen[x - from] = 1;
            }
          }
        }
        expect(seen.every((v) => v === 1)).toBe(true);
        // Never fewer units than unsharded, never more than one extra per shard boundary.
        const whole = Math.ceil(len / size);
        expect(units).toBeGreaterThanOrEqual(whole);
        expect(units).toBeLessThanOrEqual(whole + total - 1);
      }),
      { numRuns: 300 },
    );
  });

  it('property: N larger than the number of units still covers the whole exactly once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 21, max: 256 }),
        (len, size, total) => {
          const covered: number[] = [];
          for (let index = 0; index < total; index++) {
            const [s, e] = shardPart(100, 100 + len, { index, total });
            for (const [us, ue] of unitsOf(s, e, size)) for (let x = us; x < ue; x++) covered.push(x);
          }
          expect(covered).toEqual(Array.from({ length: len }, (_, i) => 100 + i));
        },
      ),
    );
  });

  it('stays exact for spaces far past 2^53 / N', () => {
    const from = 0;
    const to = Number.MAX_SAFE_INTEGER - 1;
    const total = 7;
    const ps = parts(from, to, total);
    for (let i = 0; i < total; i++) {
      const want = Number((BigInt(i) * BigInt(to)) / BigInt(total));
      expect((ps[i] as [number, number])[0]).toBe(want);
    }
    expect(ps[total - 1]?.[1]).toBe(to);
  });
});

describe('modes', () => {
  it('batch steps split, plain steps run on every shard, shards: first runs the whole step on shard 0', () => {
    expect(shardModeOf({ batch: undefined, shards: 'all' })).toBe('every');
    expect(shardModeOf({ batch: undefined })).toBe('every');
    expect(shardModeOf({ batch: undefined, shards: 'first' })).toBe('first');
    const batch = { space: { kind: 'range', from: 0, to: 9 }, size: 1 } as never;
    expect(shardModeOf({ batch, shards: 'all' })).toBe('split');
    expect(shardModeOf({ batch, shards: 'first' })).toBe('first');
    expect(partOf(0, 1, 'every', { index: 2, total: 3 })).toEqual([0, 1]);
    expect(partOf(0, 1, 'first', { index: 0, total: 3 })).toEqual([0, 1]);
    expect(partOf(0, 1, 'first', { index: 1, total: 3 })).toEqual([0, 0]);
    expect(partOf(0, 9, 'split', { index: 1, total: 3 })).toEqual([3, 6]);
  });

  it('parses I/N with 0 <= I < N only', () => {
    expect(parseShardText('1/3')).toEqual({ index: 1, total: 3 });
    expect(parseShardText(' 0/1 ')).toEqual({ index: 0, total: 1 });
    for (const bad of ['3/3', '0/0', '1', '*/3', '-1/3', '1/3/4', 'a/b', ''])
      expect(parseShardText(bad), bad).toBeUndefined();
  });
});
