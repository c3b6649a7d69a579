// The events of a merge (`merge`, `merge-done`) and the fields a run started from one carries
// (`sharding.merge`, `sharding.cuts`): applied, kept across a snapshot, and checked as evidence.
import { describe, expect, it } from 'vitest';
import { parseSnapshot, serializeSnapshot } from '../../src/journal/snapshot.js';
import { isStepComplete } from '../../src/journal/state.js';
import { checkEvent, checkEventInState } from '../../src/journal/validate.js';
import { fp, replay } from '../support/events.js';

describe('merge events', () => {
  it('merge-done adds done work, counts its units and takes the outputs; merge names the shards', () => {
    const st = replay([
      { type: 'merge', run: 'm', total: 4, runs: ['a', 'b', '', 'd'], at: 1234 },
      {
        type: 'step-init',
        step: 'n',
        fingerprint: fp,
        from: 10,
        to: 30,
        size: 4,
        sharding: { from: 0, to: 40, mode: 'split', merge: 'm', cuts: [0, 10, 30, 40] },
        reason: 'from merge m',
      },
      {
        type: 'merge-done',
        step: 'n',
        done: [
          [10, 18],
          [26, 30],
        ],
        outputs: { k: 'v' },
      },
    ]);
    expect(st.merge).toEqual({ run: 'm', total: 4, runs: ['a', 'b', '', 'd'], at: 1234 });
    const rec = st.steps.get('n');
    expect([...(rec?.done.intervals() ?? [])]).toEqual([
      [10, 18],
      [26, 30],
    ]);
    expect(rec?.unitsDone).toBe(3);
    expect(rec?.outputs).toEqual({ k: 'v' });
    expect(rec && isStepComplete(rec)).toBe(false);
    const back = parseSnapshot(serializeSnapshot(st), 'checkpoint.json');
    expect(back.merge).toEqual(st.merge);
    expect(back.steps.get('n')?.sharding).toEqual({
      from: 0,
      to: 40,
      mode: 'split',
      merge: 'm',
      cuts: [0, 10, 30, 40],
    });
  });

  it('a step whose merged work is the whole is complete', () => {
    const st = replay([
      { type: 'step-init', step: 's', fingerprint: fp, from: 0, to: 1, size: 1, reason: 'merged' },
      { type: 'merge-done', step: 's', done: [[0, 1]] },
    ]);
    const rec = st.steps.get('s');
    expect(rec && isStepComplete(rec)).toBe(true);
    expect(rec?.completedAt).toBeDefined();
  });

  it('malformed merge events and cuts are damage', () => {
    const base = { seq: 1, t: 1 };
    expect(checkEvent({ ...base, type: 'merge', run: 'm', total: 0, runs: [] })).toMatch(/total/);
    expect(checkEvent({ ...base, type: 'merge', run: 'm', total: 2, runs: [1] })).toMatch(/runs/);
    expect(checkEvent({ ...base, type: 'merge-done', step: 's', done: [[3, 3]] })).toMatch(/done/);
    expect(checkEvent({ ...base, type: 'merge-done', step: 's', done: [[0, 2.5]] })).toMatch(/done/);
    const init = {
      ...base,
      type: 'step-init',
      step: 's',
      fingerprint: fp,
      from: 0,
      to: 5,
      size: 1,
      reason: 'x',
    };
    for (const cuts of [[0, 20, 10], [1, 10], [0], 'x'])
      expect(checkEvent({ ...init, sharding: { from: 0, to: 10, mode: 'split', cuts } })).toMatch(/sharding/);
    expect(
      checkEvent({ ...init, sharding: { from: 0, to: 10, mode: 'split', cuts: [0, 5, 10] } }),
    ).toBeUndefined();
    const st = replay([
      { type: 'step-init', step: 's', fingerprint: fp, from: 0, to: 5, size: 1, reason: 'x' },
    ]);
    expect(checkEventInState(st, { ...base, type: 'merge-done', step: 's', done: [[3, 9]] })).toMatch(
      /\[3, 9\) lies outside its space \[0, 5\)/,
    );
  });
});
