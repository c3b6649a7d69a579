// `batch.size: { target, min, max }` (chunks sized by time): how the plan is read and checked, what the
// fingerprint keeps of it, and how a changed `min` is recorded with done work kept.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepare } from '../../src/engine/prepare.js';
import type { CheckpointEvent, Stamped } from '../../src/journal/events.js';
import { applyEvent, type CheckpointState, emptyState } from '../../src/journal/state.js';
import { PlanError } from '../../src/plan/errors.js';
import { fingerprintStep } from '../../src/plan/fingerprint.js';
import { parsePlan } from '../../src/plan/load.js';
import type { Plan } from '../../src/plan/types.js';

const FILE = 'checkpoint.yml';

function withSize(size: string, extra = ''): string {
  return `version: 1\nsteps:\n  - id: b\n    run: echo "$CHECKPOINT_BATCH_START"\n    batch: { range: { from: 0, to: 1000 }, size: ${size}${extra} }\n`;
}

function problems(text: string): string[] {
  try {
    parsePlan(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(PlanError);
    return [...(err as PlanError).problems];
  }
  throw new Error('expected parsePlan to throw');
}

describe('batch.size: { target, min, max }', () => {
  it('is read into the grid size (min) and the sizing', () => {
    const plan = parsePlan(withSize('{ target: 30s, min: 100, max: 100000 }'), FILE);
    expect(plan.steps[0]?.batch).toMatchObject({
      size: 100,
      adaptive: { targetMs: 30_000, min: 100, max: 100_000 },
    });
  });

  it('defaults min to 1 and max to no limit', () => {
    const plan = parsePlan(withSize('{ target: 500ms }'), FILE);
    expect(plan.steps[0]?.batch).toMatchObject({
      size: 1,
      adaptive: { targetMs: 500, min: 1, max: Number.MAX_SAFE_INTEGER },
    });
  });

  it('leaves a plain integer as it was', () => {
    const batch = parsePlan(withSize('25'), FILE).steps[0]?.batch;
    expect(batch?.size).toBe(25);
    expect(batch?.adaptive).toBeUndefined();
  });

  it('names the file, the path, the value and the fix of every problem', () => {
    expect(problems(withSize('{ target: 0s, min: 0, max: 2.5 }'))).toEqual([
      'checkpoint.yml: steps[0].batch.size.target: expected a duration above zero, like 90s or 10m, got "0s"',
      'checkpoint.yml: steps[0].batch.size.min: expected a positive integer (the smallest chunk), got 0',
      'checkpoint.yml: steps[0].batch.size.max: expected a positive integer (the largest chunk), got 2.5',
    ]);
    expect(problems(withSize('{ target: 1s, min: 100, max: 50 }'))).toEqual([
      'checkpoint.yml: steps[0].batch.size.max: expected an integer >= min (100), got 50; max is the largest chunk, min the smallest',
    ]);
    expect(problems(withSize('{ min: 10 }'))).toEqual([
      'checkpoint.yml: steps[0].batch.size.target: required; add target: DURATION, how long each chunk should take (e.g. target: 30s)',
    ]);
    expect(problems(withSize('{ target: soon }'))).toEqual([
      'checkpoint.yml: steps[0].batch.size.target: expected a duration like 90s, 10m, 1h30m or 2d, got "soon"',
    ]);
    expect(problems(withSize('{ target: 1s, minimum: 10 }'))).toEqual([
      'checkpoint.yml: steps[0].batch.size.minimum: unknown key; allowed keys: target, min, max (did you mean "min"?)',
    ]);
    expect(problems(withSize('{ chunk-time: 1s }'))).toEqual([
      'checkpoint.yml: steps[0].batch.size.chunk-time: unknown key; allowed keys: target, min, max (did you mean "target"?)',
      'checkpoint.yml: steps[0].batch.size.target: required; add target: DURATION, how long each chunk should take (e.g. target: 30s)',
    ]);
  });

  it('suggests the mapping when a duration is given as the size', () => {
    expect(problems(withSize('30s'))).toEqual([
      'checkpoint.yml: steps[0].batch.size: expected a positive integer, got "30s"; to size chunks by time, write size: { target: 30s, min: 100, max: 100000 }',
    ]);
    // Other wrong values read as before.
    expect(problems(withSize('10k'))).toEqual([
      'checkpoint.yml: steps[0].batch.size: expected a positive integer, got "10k"',
    ]);
    expect(problems(withSize('0'))).toEqual([
      'checkpoint.yml: steps[0].batch.size: expected a positive integer, got 0',
    ]);
  });
});

describe('the fingerprint of a step with chunks sized by time', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'size-by-time-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const fp = (text: string) => {
    const plan = parsePlan(text, path.join(dir, FILE));
    return fingerprintStep(plan, plan.steps[0] as Plan['steps'][number]);
  };

  it('does not change with target, min or max: done work is kept as intervals', async () => {
    const a = await fp(withSize('{ target: 30s, min: 100, max: 100000 }'));
    const b = await fp(withSize('{ target: 2m, min: 50 }'));
    expect(b.hash).toBe(a.hash);
  });

  it('changes between a fixed size and sizing by time, and with the space', async () => {
    const adaptive = await fp(withSize('{ target: 30s, min: 100 }'));
    const fixed = await fp(withSize('100'));
    expect(fixed.parts.batch).not.toBe(adaptive.parts.batch);
    const other = await fp(withSize('{ target: 30s, min: 100 }').replace('to: 1000', 'to: 2000'));
    expect(other.parts.batch).not.toBe(adaptive.parts.batch);
  });
});

describe('prepare: a changed min', () => {
  function replay(state: CheckpointState, events: CheckpointEvent[]): void {
    for (const e of events) applyEvent(state, { ...e, seq: state.seq + 1, t: Date.now() } as Stamped);
  }

  it('records the new grid and keeps the done work', async () => {
    const dir = os.tmpdir();
    const first = parsePlan(withSize('{ target: 1s, min: 10 }'), path.join(dir, FILE));
    const state = emptyState('r', first.name);
    const p1 = await prepare(first, state);
    expect(p1.events).toMatchObject([{ type: 'step-init', size: 10, adaptive: true }]);
    replay(state, p1.events);
    replay(state, [{ type: 'done', step: 'b', start: 0, end: 40, index: 0, ms: 40 }]);

    const second = parsePlan(withSize('{ target: 1s, min: 25, max: 500 }'), path.join(dir, FILE));
    const p2 = await prepare(second, state);
    expect(p2.events).toMatchObject([
      { type: 'step-redefine', size: 25, adaptive: true, reason: 'batch.size.min changed: 10 → 25' },
    ]);
    expect(p2.info.get('b')?.action).toBe('partial');
    expect(p2.info.get('b')?.chunks).toMatchObject({ targetMs: 1000, min: 25, max: 500, lastSize: 40 });
    replay(state, p2.events);
    const rec = state.steps.get('b');
    expect(rec?.size).toBe(25);
    expect(rec?.done.toJSON()).toEqual([[0, 40]]);
    expect(rec?.pace?.lastSize).toBe(40);

    // Only target or max changed: nothing to record.
    const third = parsePlan(withSize('{ target: 5s, min: 25 }'), path.join(dir, FILE));
    expect((await prepare(third, state)).events).toEqual([]);
  });
});
