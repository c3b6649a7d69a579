import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntervalSet } from '../../src/journal/intervals.js';

const of = (...pairs: [number, number][]) => IntervalSet.from(pairs);

describe('IntervalSet.add', () => {
  it('merges overlapping and adjacent intervals, keeps disjoint ones apart', () => {
    const set = new IntervalSet();
    set.add(10, 20).add(30, 40);
    expect(set.toJSON()).toEqual([
      [10, 20],
      [30, 40],
    ]);
    set.add(20, 25); // adjacent to [10,20)
    expect(set.toJSON()).toEqual([
      [10, 25],
      [30, 40],
    ]);
    set.add(26, 30); // adjacent to [30,40), one gap (25) remains
    expect(set.toJSON()).toEqual([
      [10, 25],
      [26, 40],
    ]);
    set.add(25, 26); // fills the gap: everything merges
    expect(set.toJSON()).toEqual([[10, 40]]);
    set.add(0, 5).add(50, 60).add(3, 55); // spans several
    expect(set.toJSON()).toEqual([[0, 60]]);
    expect(set.size).toBe(60);
    expect(set.count).toBe(1);
  });

  it('treats empty ranges as no-ops and rejects non-integers', () => {
    const set = of([1, 3]);
    set.add(5, 5).add(7, 6);
    expect(set.toJSON()).toEqual([[1, 3]]);
    expect(() => set.add(1.5, 3)).toThrow(/safe integer/);
    expect(() => set.add(0, Number.NaN)).toThrow(/safe integer/);
  });

  it('inserts before, between and inside existing intervals', () => {
    const set = of([10, 20], [40, 50]);
    set.add(0, 5);
    set.add(25, 30);
    set.add(12, 18);
    expect(set.toJSON()).toEqual([
      [0, 5],
      [10, 20],
      [25, 30],
      [40, 50],
    ]);
    expect(set.size).toBe(5 + 10 + 5 + 10);
  });

  it('appends a million units quickly, contiguous or every other', () => {
    const t0 = performance.now();
    const contiguous = new IntervalSet();
    for (let i = 0; i < 1_000_000; i++) contiguous.add(i, i + 1);
    const t1 = performance.now();
    const sparse = new IntervalSet();
    for (let i = 0; i < 2_000_000; i += 2) sparse.add(i, i + 1);
    const t2 = performance.now();
    expect(contiguous.count).toBe(1);
    expect(contiguous.size).toBe(1_000_000);
    expect(sparse.count).toBe(1_000_000);
    expect(sparse.size).toBe(1_000_000);
    // Each loop takes ~10-30 ms; the bound leaves room for a loaded CI machine.
    expect(t1 - t0).toBeLessThan(1000);
    expect(t2 - t1).toBeLessThan(1000);
    // Lookups stay logarithmic on 1,000,000 fragments.
    expect(sparse.has(1_234_566)).toBe(true);
    expect(sparse.has(1_234_567)).toBe(false);
    expect(sparse.firstGap(0, 2_000_000, 1_000_000)).toEqual([1_000_001, 1_000_002]);
  });
});

describe('IntervalSet.remove', () => {
  it('splits, trims and deletes intervals', () => {
    const set = of([0, 10], [20, 30], [40, 50]);
    set.remove(5, 7); // split
    expect(set.toJSON()).toEqual([
      [0, 5],
      [7, 10],
      [20, 30],
      [40, 50],
    ]);
    set.remove(8, 45); // trims [7,10) and [40,50), deletes [20,30)
    expect(set.toJSON()).toEqual([
      [0, 5],
      [7, 8],
      [45, 50],
    ]);
    set.remove(10, 20); // nothing there
    set.remove(-100, 100);
    expect(set.toJSON()).toEqual([]);
    expect(set.size).toBe(0);
    expect(set.isEmpty).toBe(true);
  });

  it('does not touch adjacent intervals', () => {
    const set = of([0, 10], [20, 30]);
    set.remove(10, 20);
    expect(set.toJSON()).toEqual([
      [0, 10],
      [20, 30],
    ]);
    expect(set.size).toBe(20);
  });
});

describe('IntervalSet queries', () => {
  const set = of([0, 10], [20, 30], [40, 50]);

  it('has, covers, overlaps, coveredIn', () => {
    expect(set.has(0)).toBe(true);
    expect(set.has(9)).toBe(true);
    expect(set.has(10)).toBe(false);
    expect(set.has(-1)).toBe(false);
    expect(set.covers(20, 30)).toBe(true);
    expect(set.covers(19, 30)).toBe(false);
    expect(set.covers(5, 25)).toBe(false);
    expect(set.covers(7, 7)).toBe(true);
    expect(set.overlaps(10, 20)).toBe(false);
    expect(set.overlaps(9, 20)).toBe(true);
    expect(set.overlaps(29, 41)).toBe(true);
    expect(set.overlaps(50, 60)).toBe(false);
    expect(set.coveredIn(5, 45)).toBe(5 + 10 + 5);
  });

  it('gaps and firstGap', () => {
    expect([...set.gaps(0, 50)]).toEqual([
      [10, 20],
      [30, 40],
    ]);
    expect([...set.gaps(-5, 60)]).toEqual([
      [-5, 0],
      [10, 20],
      [30, 40],
      [50, 60],
    ]);
    expect([...set.gaps(5, 25)]).toEqual([[10, 20]]);
    expect([...set.gaps(12, 15)]).toEqual([[12, 15]]);
    expect([...set.gaps(20, 30)]).toEqual([]);
    expect([...new IntervalSet().gaps(3, 7)]).toEqual([[3, 7]]);
    expect(set.firstGap(0, 50)).toEqual([10, 20]);
    expect(set.firstGap(0, 50, 15)).toEqual([15, 20]);
    expect(set.firstGap(0, 50, 20)).toEqual([30, 40]);
    expect(set.firstGap(40, 50)).toBeUndefined();
    expect(set.min).toBe(0);
    expect(set.max).toBe(50);
  });

  it('clone is independent; equals and toString', () => {
    const copy = set.clone();
    copy.add(10, 20);
    expect(set.count).toBe(3);
    expect(copy.toJSON()).toEqual([
      [0, 30],
      [40, 50],
    ]);
    expect(copy.equals(set)).toBe(false);
    expect(set.clone().equals(set)).toBe(true);
    expect(of([0, 3], [5, 6]).toString()).toBe('0-2, 5');
  });
});

describe('IntervalSet JSON', () => {
  it('round-trips through JSON text', () => {
    const set = of([0, 10], [20, 30], [1_000_000, 2_000_000]);
    const back = IntervalSet.fromJSON(JSON.parse(JSON.stringify(set)));
    expect(back.toJSON()).toEqual(set.toJSON());
    expect(back.size).toBe(set.size);
    expect(IntervalSet.fromJSON([]).isEmpty).toBe(true);
  });

  it('merges adjacent entries', () => {
    const set = IntervalSet.fromJSON([
      [0, 5],
      [5, 9],
    ]);
    expect(set.toJSON()).toEqual([[0, 9]]);
    expect(set.size).toBe(9);
  });

  it.each([
    ['not an array', { a: 1 }, /expected an array/],
    ['a non-pair entry', [[1, 2, 3]], /entry 0 must be a \[start, end\] pair/],
    ['non-integers', [[0, 1.5]], /entry 0 must hold two integers/],
    ['strings', [['0', '1']], /entry 0 must hold two integers/],
    ['an empty interval', [[4, 4]], /entry 0 \[4, 4\] is empty or reversed/],
    [
      'overlapping entries',
      [
        [0, 10],
        [5, 20],
      ],
      /entry 1 \[5, 20\] overlaps or precedes the previous one, which ends at 10/,
    ],
    [
      'unsorted entries',
      [
        [20, 30],
        [0, 10],
      ],
      /entry 1 \[0, 10\] overlaps or precedes/,
    ],
  ])('rejects %s', (_label, value, message) => {
    expect(() => IntervalSet.fromJSON(value)).toThrow(message);
  });
});

describe('IntervalSet against a boolean-array model', () => {
  const U = 64;
  const range = fc
    .tuple(fc.integer({ min: 0, max: U }), fc.integer({ min: 0, max: U }))
    .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
  const op = fc.record({ kind: fc.constantFrom('add', 'add', 'remove'), range });

  function modelIntervals(model: boolean[]): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < U; i++) {
      if (!model[i]) continue;
      const last = out[out.length - 1];
      if (last && last[1] === i) last[1] = i + 1;
      else out.push([i, i + 1]);
    }
    return out;
  }

  it('agrees on every query after random adds and removes', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 40 }),
        range,
        fc.integer({ min: 0, max: U }),
        (ops, [qs, qe], after) => {
          const set = new IntervalSet();
          const model = new Array<boolean>(U).fill(false);
          for (const {
            kind,
            range: [s, e],
          } of ops) {
            if (kind === 'add') set.add(s, e);
            else set.remove(s, e);
            for (let i = s; i < e; i++) model[i] = kind === 'add';
          }
          const expected = modelIntervals(model);
          expect(set.toJSON()).toEqual(expected);
          expect(set.count).toBe(expected.length);
          expect(set.size).toBe(model.filter(Boolean).length);
          for (let x = -1; x <= U; x++) expect(set.has(x)).toBe(model[x] === true);
          const inQuery = model.slice(qs, qe);
          expect(set.covers(qs, qe)).toBe(inQuery.every(Boolean));
          expect(set.overlaps(qs, qe)).toBe(inQuery.some(Boolean));
          expect(set.coveredIn(qs, qe)).toBe(inQuery.filter(Boolean).length);
          const gapModel = new Array<boolean>(U).fill(false);
          for (let i = qs; i < qe; i++) gapModel[i] = !model[i];
          const expectedGaps = modelIntervals(gapModel);
          expect([...set.gaps(qs, qe)]).toEqual(expectedGaps);
          const gapModelAfter = gapModel.map((g, i) => g && i >= after);
          expect(set.firstGap(qs, qe, after)).toEqual(modelIntervals(gapModelAfter)[0]);
          expect(IntervalSet.fromJSON(set.toJSON()).equals(set)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('agrees on fragmented sets of thousands of intervals (many internal blocks)', () => {
    const N = 6000;
    const short = fc
      .integer({ min: 0, max: N })
      .chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: s, max: s + 3 })));
    const long = fc
      .tuple(fc.integer({ min: 0, max: N }), fc.integer({ min: 0, max: N }))
      .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]);
    const bigOp = fc.record({
      kind: fc.constantFrom('add', 'remove'),
      range: fc.oneof({ weight: 9, arbitrary: short }, { weight: 1, arbitrary: long }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 3 }), fc.array(bigOp, { maxLength: 60 }), (stride, ops) => {
        const set = new IntervalSet();
        const model = new Uint8Array(N + 4);
        for (let i = 0; i < N; i += stride) {
          set.add(i, i + 1);
          model[i] = 1;
        }
        for (const {
          kind,
          range: [s, e],
        } of ops) {
          if (kind === 'add') set.add(s, e);
          else set.remove(s, e);
          model.fill(kind === 'add' ? 1 : 0, s, e);
        }
        const expected: [number, number][] = [];
        for (let i = 0; i < model.length; i++) {
          if (!model[i]) continue;
          const last = expected[expected.length - 1];
          if (last && last[1] === i) last[1] = i + 1;
          else expected.push([i, i + 1]);
        }
        expect(set.toJSON()).toEqual(expected);
        expect(set.count).toBe(expected.length);
        expect(set.size).toBe(model.reduce((a, b) => a + b, 0));
        for (let x = 0; x < model.length; x += 7) expect(set.has(x)).toBe(model[x] === 1);
        expect([...set.gaps(0, N)].length).toBe([...IntervalSet.from(expected).gaps(0, N)].length);
      }),
      { numRuns: 150 },
    );
  });

  it('fills the gaps of a 500,000-fragment set quickly', () => {
    const set = new IntervalSet();
    for (let i = 0; i < 1_000_000; i += 2) set.add(i, i + 1);
    const t0 = performance.now();
    for (let i = 1; i < 1_000_000; i += 2) set.add(i, i + 1);
    expect(performance.now() - t0).toBeLessThan(3000); // ~100 ms; one flat array took minutes
    expect(set.toJSON()).toEqual([[0, 1_000_000]]);
    expect(set.count).toBe(1);
    for (let i = 999_998; i > 0; i -= 2) set.remove(i, i + 1);
    expect(set.count).toBe(500_000);
    expect(set.size).toBe(500_001);
  });
});
