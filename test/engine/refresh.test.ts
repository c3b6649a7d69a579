// `refresh: true` on its own: what a new expansion does to the frozen list (refresh.ts), and, with the real
// state model (applyEvent) and work queue, the promise of DESIGN §2 over any sequence of source changes:
// every item that was in the source at some attempt runs exactly once, unless it left before it ran.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { refreshItems } from '../../src/engine/refresh.js';
import { type Unit, WorkQueue } from '../../src/engine/work-queue.js';
import { itemsHash } from '../../src/journal/checkpoint.js';
import type { CheckpointEvent, Stamped } from '../../src/journal/events.js';
import { IntervalSet } from '../../src/journal/intervals.js';
import {
  applyEvent,
  type CheckpointState,
  emptyState,
  isStepComplete,
  type StepRecord,
  unitCount,
} from '../../src/journal/state.js';
import { checkEventInState, checkUnit } from '../../src/journal/validate.js';
import type { Step } from '../../src/plan/types.js';
import { fp } from '../support/events.js';

const done = (...ranges: Array<[number, number]>) => IntervalSet.from(ranges);

describe('refreshItems', () => {
  it('appends new items in the source order, each once, and keeps every frozen index', () => {
    const r = refreshItems(['a', 'b', 'c'], ['d', 'c', 'b', 'a', 'e', 'd'], done());
    expect(r.list).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(r.added).toEqual(['d', 'e']);
    expect(r.gone).toEqual([]);
  });

  it('calls the items that are not done and not in the source gone, in ranges', () => {
    const r = refreshItems(['a', 'b', 'c', 'd', 'e'], ['a', 'e'], done([0, 1]));
    expect(r.gone).toEqual([[1, 4]]);
    expect(r.goneCount).toBe(3);
  });

  it('never calls a done item gone, and an item that came back is pending again', () => {
    const r = refreshItems(['a', 'b', 'c'], ['b'], done([0, 1], [2, 3]));
    expect(r.gone).toEqual([]);
    expect(refreshItems(['a', 'b', 'c'], ['a', 'b', 'c'], done()).gone).toEqual([]);
  });

  it('an empty expansion appends nothing and leaves every pending item gone', () => {
    const r = refreshItems(['a', 'b'], [], done([1, 2]));
    expect(r.list).toEqual(['a', 'b']);
    expect(r.gone).toEqual([[0, 1]]);
  });
});

function step(size: number): Step {
  return {
    id: 'w',
    name: 'w',
    run: 'true',
    env: {},
    workingDirectory: '/',
    workingDirectoryRel: '.',
    timeoutMs: undefined,
    retry: { attempts: 1, delayMs: 0, backoff: 1, maxDelayMs: 0 },
    needs: [],
    always: false,
    rollback: undefined,
    inputs: [],
    onChange: 'rerun',
    index: 0,
    batch: {
      space: { kind: 'items', source: { kind: 'glob', glob: '*', refresh: true } },
      size,
      parallel: 4,
      order: 'any',
      maxFailures: { kind: 'count', count: 1_000_000 },
    },
  };
}

/** Applies `ev` as the checkpoint would read it back: checked first, then applied. */
function apply(st: CheckpointState, ev: CheckpointEvent): void {
  const stamped = { ...ev, seq: st.seq + 1, t: 1000 + st.seq } as Stamped;
  expect(checkEventInState(st, stamped)).toBeUndefined();
  applyEvent(st, stamped);
}

function rec(st: CheckpointState): StepRecord {
  const r = st.steps.get('w');
  if (!r) throw new Error('no record');
  return r;
}

const UNIVERSE = 'abcdefghijkl'.split('');
type Outcome = 'done' | 'fail' | 'stop';
const attemptArb = fc.record({
  source: fc.shuffledSubarray(UNIVERSE),
  outcomes: fc.array(fc.constantFrom<Outcome>('done', 'done', 'done', 'fail', 'stop'), { maxLength: 20 }),
});

describe('refresh with the state model and the work queue', () => {
  it('every item present at some attempt runs exactly once unless it left before it ran', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(attemptArb, { minLength: 1, maxLength: 6 }),
        fc.shuffledSubarray(UNIVERSE),
        (size, attempts, last) => {
          const st = emptyState('run', 'plan');
          let frozen: string[] = [];
          const ran: string[] = [];
          const sources = [
            ...attempts.map((a) => ({ source: a.source, outcomes: a.outcomes })),
            { source: last },
          ];
          sources.forEach((attempt, n) => {
            const source = attempt.source;
            if (n === 0) {
              frozen = [...source];
              apply(st, {
                type: 'step-init',
                step: 'w',
                fingerprint: fp,
                from: 0,
                to: frozen.length,
                size,
                items: { count: frozen.length, sha256: itemsHash(frozen), source: 'glob *', refresh: true },
                reason: 'new',
              });
            } else {
              const r = refreshItems(frozen, source, rec(st).done);
              frozen = r.list;
              apply(st, {
                type: 'items-refresh',
                step: 'w',
                count: frozen.length,
                sha256: itemsHash(frozen),
                gone: r.gone,
                refresh: true,
              });
            }
            // The attempt: units as the queue hands them out, each done, failed or cut off by a stop; the
            // last attempt runs everything to the end.
            const q = new WorkQueue(step(size), () => rec(st));
            const outcomes: readonly Outcome[] = 'outcomes' in attempt ? attempt.outcomes : [];
            const present = new Set(source);
            for (let k = 0; ; k++) {
              const u = q.next(0);
              if (u === undefined || 'wakeAt' in u) break;
              const unit: Unit = u;
              expect(checkUnit(rec(st), unit.start, unit.end, unit.index)).toBeUndefined();
              const items = frozen.slice(unit.start, unit.end);
              // A unit holds only items the source gives now, none done before.
              for (const item of items) expect(present.has(item)).toBe(true);
              expect(rec(st).done.overlaps(unit.start, unit.end)).toBe(false);
              const outcome = 'outcomes' in attempt ? (outcomes[k] ?? 'stop') : 'done';
              const base = { step: 'w', start: unit.start, end: unit.end, index: unit.index };
              apply(st, { type: 'start', ...base, try: 1, attempt: n + 1 });
              if (outcome === 'done') {
                apply(st, { type: 'done', ...base, ms: 1 });
                ran.push(...items);
                q.done(unit);
              } else if (outcome === 'fail') {
                apply(st, {
                  type: 'fail',
                  ...base,
                  try: 1,
                  ms: 1,
                  exit: 1,
                  signal: null,
                  final: true,
                  reason: 'exit code 1',
                });
                q.failed(unit);
              } else {
                apply(st, { type: 'interrupt', ...base, ms: 1, reason: 'stop' });
                break;
              }
            }
          });
          // Exactly once: no item ran twice; an item that never ran is not in the source at the end.
          expect(new Set(ran).size).toBe(ran.length);
          const finalSource = new Set(last);
          for (const item of frozen) if (!ran.includes(item)) expect(finalSource.has(item)).toBe(false);
          for (const item of last) expect(ran).toContain(item);
          const r = rec(st);
          expect(isStepComplete(r)).toBe(true);
          expect(r.unitsDone).toBe(unitCount(r));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a last cell done before the list grew runs only its rest: [15, 20), not [10, 20)', () => {
    const st = emptyState('run', 'plan');
    const list = Array.from({ length: 15 }, (_, i) => `i${i}`);
    apply(st, {
      type: 'step-init',
      step: 'w',
      fingerprint: fp,
      from: 0,
      to: 15,
      size: 10,
      items: { count: 15, sha256: itemsHash(list), source: 'glob *', refresh: true },
      reason: 'new',
    });
    apply(st, { type: 'done', step: 'w', start: 0, end: 10, index: 0, ms: 1 });
    apply(st, { type: 'done', step: 'w', start: 10, end: 15, index: 1, ms: 1 });
    apply(st, { type: 'step-complete', step: 'w' });
    expect(rec(st).unitsDone).toBe(2);
    const grown = [...list, 'n0', 'n1', 'n2', 'n3', 'n4'];
    apply(st, {
      type: 'items-refresh',
      step: 'w',
      count: 20,
      sha256: itemsHash(grown),
      gone: [],
      refresh: true,
    });
    expect(isStepComplete(rec(st))).toBe(false);
    expect(rec(st).completedAt).toBeUndefined();
    expect(rec(st).unitsDone).toBe(1);
    const q = new WorkQueue(step(10), () => rec(st));
    const u = q.next(0);
    expect(u).toEqual({ step: 'w', start: 15, end: 20, index: 1 });
    apply(st, { type: 'done', step: 'w', start: 15, end: 20, index: 1, ms: 1 });
    expect(rec(st).unitsDone).toBe(2);
    expect(isStepComplete(rec(st))).toBe(true);
  });

  it('a pending cell runs around its gone items, and a failed unit holding one is cut anew', () => {
    const st = emptyState('run', 'plan');
    const list = Array.from({ length: 20 }, (_, i) => `i${i}`);
    apply(st, {
      type: 'step-init',
      step: 'w',
      fingerprint: fp,
      from: 0,
      to: 20,
      size: 10,
      items: { count: 20, sha256: itemsHash(list), source: 'glob *', refresh: true },
      reason: 'new',
    });
    const base = { step: 'w', start: 10, end: 20, index: 1 };
    apply(st, { type: 'start', ...base, try: 1, attempt: 1 });
    apply(st, { type: 'fail', ...base, try: 1, ms: 1, exit: 1, signal: null, final: true, reason: 'x' });
    apply(st, {
      type: 'items-refresh',
      step: 'w',
      count: 20,
      sha256: itemsHash(list),
      gone: [[13, 14]],
      refresh: true,
    });
    expect(rec(st).failed.size).toBe(0);
    const q = new WorkQueue(step(10), () => rec(st));
    const got: Array<[number, number, number]> = [];
    for (;;) {
      const u = q.next(0);
      if (u === undefined || 'wakeAt' in u) break;
      got.push([u.start, u.end, u.index]);
    }
    expect(got).toEqual([
      [10, 13, 1],
      [14, 20, 1],
      [0, 10, 0],
    ]);
  });

  it('an items-refresh that shrinks the list, changes it without growing, or calls done items gone is damage', () => {
    const st = emptyState('run', 'plan');
    const list = ['a', 'b', 'c'];
    apply(st, {
      type: 'step-init',
      step: 'w',
      fingerprint: fp,
      from: 0,
      to: 3,
      size: 1,
      items: { count: 3, sha256: itemsHash(list), source: 'glob *', refresh: true },
      reason: 'new',
    });
    apply(st, { type: 'done', step: 'w', start: 0, end: 1, index: 0, ms: 1 });
    const check = (ev: Partial<CheckpointEvent>) =>
      checkEventInState(st, {
        type: 'items-refresh',
        step: 'w',
        count: 3,
        sha256: itemsHash(list),
        gone: [],
        refresh: true,
        ...ev,
        seq: 9,
        t: 1,
      } as Stamped);
    expect(check({ count: 2 })).toMatch(/shrinks from 3 to 2 items/);
    expect(check({ sha256: 'f'.repeat(64) })).toMatch(/changes without growing/);
    expect(check({ gone: [[0, 2]] })).toMatch(/gone items \[0, 2\) include done ones/);
    expect(check({ gone: [[2, 4]] })).toMatch(/reach past its 3 items/);
    expect(check({})).toBeUndefined();
  });
});
