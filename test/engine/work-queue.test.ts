// The queue policy on its own: which unit next, under order, retries, failures and the budget's hold.
import { describe, expect, it } from 'vitest';
import { type Unit, WorkQueue } from '../../src/engine/work-queue.js';
import type { CheckpointEvent } from '../../src/journal/events.js';
import type { BatchSpec, Step } from '../../src/plan/types.js';
import { fp, replay } from '../support/events.js';

function step(batch: Partial<BatchSpec> = {}): Step {
  return {
    id: 'w',
    name: 'w',
    run: 'true',
    env: {},
    workingDirectory: '/',
    workingDirectoryRel: '.',
    timeoutMs: undefined,
    retry: { attempts: 3, delayMs: 0, backoff: 1, maxDelayMs: 0 },
    needs: [],
    always: false,
    rollback: undefined,
    inputs: [],
    onChange: 'rerun',
    index: 0,
    batch: {
      space: { kind: 'range', from: 0, to: 10 },
      size: 2,
      parallel: 4,
      order: 'any',
      maxFailures: { kind: 'count', count: 0 },
      ...batch,
    },
  };
}

function queue(s: Step, events: CheckpointEvent[] = [], to = 10, size = 2): WorkQueue {
  const st = replay([
    { type: 'step-init', step: 'w', fingerprint: fp, from: 0, to, size, reason: 'new' },
    ...events,
  ]);
  return new WorkQueue(s, () => {
    const r = st.steps.get('w');
    if (!r) throw new Error('no record');
    return r;
  });
}

function take(q: WorkQueue, now = 0): Unit {
  const u = q.next(now);
  if (!u || 'wakeAt' in u) throw new Error(`expected a unit, got ${JSON.stringify(u)}`);
  return u;
}

describe('the work queue', () => {
  it('hands out the grid in order, never spanning two chunks, then nothing', () => {
    const q = queue(step());
    const got = [1, 2, 3, 4, 5].map(() => take(q)).map((u) => [u.start, u.end, u.index]);
    expect(got).toEqual([
      [0, 2, 0],
      [2, 4, 1],
      [4, 6, 2],
      [6, 8, 3],
      [8, 10, 4],
    ]);
    expect(q.next(0)).toBeUndefined();
  });

  it('failed and interrupted units of earlier attempts go first; done work is skipped', () => {
    const q = queue(step(), [
      { type: 'done', step: 'w', start: 0, end: 2, index: 0, ms: 1 },
      { type: 'start', step: 'w', start: 6, end: 8, index: 3, try: 1, attempt: 1 },
      {
        type: 'fail',
        step: 'w',
        start: 6,
        end: 8,
        index: 3,
        try: 1,
        ms: 1,
        exit: 1,
        signal: null,
        final: true,
        reason: 'x',
      },
      { type: 'interrupt', step: 'w', start: 8, end: 10, index: 4, ms: 1, reason: 'stop' },
    ]);
    expect([take(q), take(q), take(q), take(q)].map((u) => u.start)).toEqual([6, 8, 2, 4]);
    expect(q.next(0)).toBeUndefined();
  });

  it('a retry waits for its backoff on the clock the caller passes', () => {
    const q = queue(step(), [], 2);
    const u = take(q);
    q.startTry(u);
    q.retry(u, 500);
    expect(q.next(100)).toEqual({ wakeAt: 500 });
    expect(take(q, 500).start).toBe(0);
    expect(q.startTry(u)).toBe(2);
  });

  it('order: sequential hands out one unit at a time and stops after a final failure', () => {
    const q = queue(step({ order: 'sequential' }));
    expect(q.parallel).toBe(1);
    const u = take(q);
    expect(q.next(0)).toBeUndefined();
    q.startTry(u);
    expect(q.failed(u)).toBe(true);
    expect(q.next(0)).toBeUndefined();
  });

  it('max-failures: nothing more starts once more units failed for good than it allows', () => {
    const q = queue(step({ maxFailures: { kind: 'count', count: 1 } }));
    const a = take(q);
    const b = take(q);
    expect(q.failed(a)).toBe(false);
    expect(q.hasQueued).toBe(true);
    expect(q.failed(b)).toBe(true);
    expect(q.stoppedByFailures).toBe(true);
    expect(q.hasQueued).toBe(false);
    expect(q.next(0)).toBeUndefined();
    expect(q.failedFinal).toBe(2);
  });

  it('max-failures as a percentage of the step units', () => {
    expect(queue(step({ maxFailures: { kind: 'percent', percent: 50 } }), [], 40).maxFailures).toBe(10);
  });

  it('the budget hold hands the unit back for the next attempt and starts nothing more', () => {
    const q = queue(step());
    const u = take(q);
    expect(q.holdBack(u)).toBe(true);
    expect(q.heldForBudget).toBe(true);
    expect(q.next(0)).toBeUndefined();
  });

  it('a yield runs again without using a try; an interrupt waits for the next attempt', () => {
    const q = queue(step(), [], 4);
    const u = take(q);
    expect(q.startTry(u)).toBe(1);
    q.yielded(u, true);
    const again = take(q);
    expect(again.start).toBe(0);
    expect(q.startTry(again)).toBe(1);
    q.interrupted(again);
    expect(take(q).start).toBe(2);
    expect(q.next(0)).toBeUndefined();
  });

  it('forgets a unit once it is done: in-flight bookkeeping does not grow with the units run', () => {
    const q = queue(step({ order: 'sequential' }), [], 1_000_000, 1);
    for (let i = 0; i < 1000; i++) {
      const u = take(q);
      q.startTry(u);
      q.done(u);
    }
    // Sequential reads the record's done set, which the journal keeps; here nothing was recorded, so the
    // same first unit comes back: the queue itself holds no per-unit state after `done`.
    expect(take(q).start).toBe(0);
  });

  it('a failed unit whose retry was interrupted is queued once in the next attempt, not twice', () => {
    const unit = { step: 'w', start: 2, end: 4, index: 1 };
    const q = queue(step(), [
      { type: 'start', ...unit, try: 1, attempt: 1 },
      { type: 'fail', ...unit, try: 1, ms: 1, exit: 1, signal: null, final: true, reason: 'exit code 1' },
      { type: 'start', ...unit, try: 1, attempt: 2 },
      { type: 'interrupt', ...unit, ms: 1, reason: 'stop' },
    ]);
    const starts: number[] = [];
    for (let u = q.next(0); u && !('wakeAt' in u); u = q.next(0)) starts.push(u.start);
    expect(starts).toEqual([2, 0, 4, 6, 8]);
  });
});
