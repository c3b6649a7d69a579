// The checks on what a checkpoint says never refuse what the engine itself writes: a history with a
// redefinition that shrinks the space and changes the grid (on-change: keep), orphans interrupted after it,
// and retries, replays without damage; the redefinition cuts the work to the new space.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { CheckpointDamageError } from '../../src/journal/damage.js';
import type { CheckpointEvent } from '../../src/journal/events.js';
import { readJournal } from '../../src/journal/journal-file.js';
import { countDoneUnits, unitCount } from '../../src/journal/state.js';
import { checkEvent, checkUnit } from '../../src/journal/validate.js';
import type { Fingerprint } from '../../src/plan/fingerprint.js';
import { makeTempDir, removeDir } from './support.js';

const fp = (hash: string): Fingerprint => ({
  hash,
  parts: { run: hash, shell: '', env: '', workingDirectory: '', batch: '', inputs: {} },
});
const unit = (start: number, end: number, index: number) => ({ step: 'w', start, end, index });

let root: string;
beforeEach(async () => {
  root = await makeTempDir('validate');
});
afterEach(async () => {
  await removeDir(root);
});

describe('what the engine writes is never damage', () => {
  it('a keep-redefinition that shrinks the space and the grid replays, with work cut to the new space', async () => {
    const ckpt = Checkpoint.blank(root, 'r1', 'p');
    await ckpt.openForWrite();
    const events: CheckpointEvent[] = [
      { type: 'attempt', attempt: 1, plan: 'p', pid: 10, host: 'h', resumed: false },
      { type: 'step-init', step: 'w', fingerprint: fp('a'), from: 0, to: 20, size: 4, reason: 'new' },
      { type: 'start', ...unit(0, 4, 0), try: 1, attempt: 1 },
      { type: 'done', ...unit(0, 4, 0), ms: 5 },
      { type: 'start', ...unit(12, 16, 3), try: 1, attempt: 1 },
      { type: 'done', ...unit(12, 16, 3), ms: 5 },
      { type: 'start', ...unit(4, 8, 1), try: 1, attempt: 1 },
      { type: 'fail', ...unit(4, 8, 1), try: 1, ms: 5, exit: 3, signal: null, final: true, reason: 'x' },
      { type: 'start', ...unit(8, 12, 2), try: 1, attempt: 1 },
      { type: 'spawned', ...unit(8, 12, 2), pid: 99, host: 'h', marker: 'm-w-8' },
      // Attempt 2: the step shrinks to [0, 10) in chunks of 3; the orphan [8, 12) is ended after it.
      { type: 'attempt', attempt: 2, plan: 'p', pid: 11, host: 'h', resumed: true },
      { type: 'step-redefine', step: 'w', fingerprint: fp('b'), from: 0, to: 10, size: 3, reason: 'kept' },
      { type: 'interrupt', ...unit(8, 12, 2), ms: 0, reason: 'attempt 1 ended while it ran' },
    ];
    for (const ev of events) await ckpt.record(ev);
    const rec = ckpt.state.steps.get('w');
    if (!rec) throw new Error('no record');
    // [12, 16) is outside the new space; [0, 4) stays; the failed [4, 8) is off the 3-grid: interrupted.
    expect(rec.done.toJSON()).toEqual([[0, 4]]);
    expect(rec.failed.size).toBe(0);
    expect(rec.interrupted.toJSON()).toEqual([[4, 10]]);
    expect(rec.unitsDone).toBe(countDoneUnits(rec));
    expect(rec.unitsDone).toBeLessThanOrEqual(unitCount(rec));
    // Units cut anew on the 3-grid, as the scheduler does, are valid events.
    await ckpt.record({ type: 'start', ...unit(4, 6, 1), try: 1, attempt: 2 });
    await ckpt.record({ type: 'done', ...unit(4, 6, 1), ms: 1 });
    await ckpt.record({ type: 'start', ...unit(6, 9, 2), try: 1, attempt: 2 });
    await ckpt.record({ type: 'done', ...unit(6, 9, 2), ms: 1 });
    await ckpt.record({ type: 'start', ...unit(9, 10, 3), try: 1, attempt: 2 });
    await ckpt.record({ type: 'done', ...unit(9, 10, 3), ms: 1 });
    await ckpt.close();
    // Read back from the journal alone (the snapshot written at creation holds nothing).
    const back = await Checkpoint.read(root, 'r1');
    expect(back.state.steps.get('w')?.done.toJSON()).toEqual([[0, 10]]);
    expect(back.state.steps.get('w')?.unitsDone).toBe(4);
    expect((await readJournal(join(root, 'r1', 'journal.ndjson'))).events).toHaveLength(events.length + 6);
    // And through a compacted snapshot.
    const again = await Checkpoint.read(root, 'r1');
    await again.openForWrite();
    await again.compact(true);
    await again.close();
    expect((await Checkpoint.read(root, 'r1')).state.steps.get('w')?.done.toJSON()).toEqual([[0, 10]]);
  });
});

describe('checks', () => {
  it('checkUnit: inside the space, on the grid, not empty', () => {
    const rec = { from: 0, to: 10, size: 3 };
    expect(checkUnit(rec, 0, 3, 0)).toBeUndefined();
    expect(checkUnit(rec, 9, 10, 3)).toBeUndefined();
    expect(checkUnit(rec, 4, 6, 1)).toBeUndefined();
    expect(checkUnit(rec, 9, 12, 3)).toMatch(/outside/);
    expect(checkUnit(rec, -3, 0, -1)).toMatch(/empty|outside/);
    expect(checkUnit(rec, 3, 9, 1)).toMatch(/larger than/);
    expect(checkUnit(rec, 3, 6, 2)).toMatch(/index 2, not 1/);
    expect(checkUnit({ ...rec, adaptive: true }, 3, 9, 1)).toBeUndefined();
  });

  it('checkEvent: whole safe integers, known types, the right types', () => {
    const ok = { type: 'done', step: 'w', start: 1, end: 2, index: 1, ms: 3, seq: 4, t: 5 };
    expect(checkEvent(ok)).toBeUndefined();
    for (const [key, value] of [
      ['start', 1e308],
      ['start', '1'],
      ['start', 1.5],
      ['index', -1],
      ['ms', Number.NaN],
      ['seq', 0],
      ['t', 'now'],
      ['step', 7],
      ['outputs', { a: 1 }],
      ['type', 'obey'],
    ] as const) {
      expect(checkEvent({ ...ok, [key]: value }), `${key}: ${String(value)}`).toBeTypeOf('string');
    }
    expect(
      checkEvent({ type: 'spawned', step: 'w', start: 1, end: 2, index: 1, pid: 5, host: 'h', seq: 1, t: 1 }),
    ).toBeUndefined();
    expect(
      checkEvent({
        type: 'spawned',
        step: 'w',
        start: 1,
        end: 2,
        index: 1,
        pid: 5,
        host: 'h',
        marker: 3,
        seq: 1,
        t: 1,
      }),
    ).toMatch(/marker/);
  });
});

describe('marks by hand (unit-level mark-done and reset)', () => {
  const base: CheckpointEvent[] = [
    { type: 'attempt', attempt: 1, plan: 'p', pid: 10, host: 'h', resumed: false },
    { type: 'step-init', step: 'w', fingerprint: fp('a'), from: 0, to: 20, size: 4, reason: 'new' },
    { type: 'start', ...unit(0, 4, 0), try: 1, attempt: 1 },
    { type: 'done', ...unit(0, 4, 0), ms: 5 },
  ];

  async function written(events: CheckpointEvent[]): Promise<void> {
    const ckpt = Checkpoint.blank(root, 'r1', 'p');
    await ckpt.openForWrite();
    for (const ev of [...base, ...events]) await ckpt.record(ev);
    await ckpt.close();
  }

  it('what the commands write replays: marks with who and when, resets cut them, old events still read', async () => {
    await written([
      // Written before marks had ranges and `by`: the whole step.
      { type: 'mark-done', step: 'w' },
      {
        type: 'reset',
        step: 'w',
        failedOnly: false,
        reason: 'checkpoint reset --unit',
        ranges: [[4, 20]],
        by: 'al',
      },
      {
        type: 'mark-done',
        step: 'w',
        ranges: [
          [0, 8],
          [16, 20],
        ],
        by: 'bo',
      },
      { type: 'reset', step: 'w', failedOnly: false, reason: 'checkpoint reset --unit', ranges: [[4, 8]] },
    ]);
    const back = await Checkpoint.read(root, 'r1');
    const rec = back.state.steps.get('w');
    expect(rec?.done.toJSON()).toEqual([
      [0, 4],
      [16, 20],
    ]);
    // [0, 4) ran; [4, 8) was reset again; [16, 20) is by hand.
    expect(rec?.manual?.map((m) => [m.start, m.end, m.by])).toEqual([[16, 20, 'bo']]);
    expect(rec?.unitsDone).toBe(2);
    expect(rec?.completedAt).toBeUndefined();
    // Through a compacted snapshot, the same.
    await back.openForWrite();
    await back.compact(true);
    await back.close();
    const snap = (await Checkpoint.read(root, 'r1')).state.steps.get('w');
    expect(snap?.manual).toEqual(rec?.manual);
    expect(snap?.done.toJSON()).toEqual(rec?.done.toJSON());
  });

  it.each([
    [[[20, 24]], /mark-done event of step "w": range \[20, 24\) lies outside its step's space \[0, 20\)/],
    [[[-4, 0]], /lies outside its step's space/],
    [[[2, 6]], /range \[2, 6\) is not made of whole units \(chunks of 4 from 0\)/],
    [[[8, 4]], /mark-done event: field `ranges`/],
    [
      [
        [0, 4],
        [2, 8],
      ],
      /mark-done event: field `ranges`/,
    ],
    [[[0, 1e300]], /mark-done event: field `ranges`/],
    [[], /mark-done event: field `ranges`/],
  ])('a forged mark-done of %j is refused as damage', async (ranges, message) => {
    await written([{ type: 'mark-done', step: 'w', ranges: ranges as Array<[number, number]>, by: 'x' }]);
    const read = Checkpoint.read(root, 'r1');
    await expect(read).rejects.toThrow(CheckpointDamageError);
    await expect(Checkpoint.read(root, 'r1')).rejects.toThrow(message);
  });

  it('a forged reset with ranges outside the space, or with forget, is refused as damage', async () => {
    await written([{ type: 'reset', step: 'w', failedOnly: false, reason: 'x', ranges: [[0, 400]] }]);
    await expect(Checkpoint.read(root, 'r1')).rejects.toThrow(
      /reset event of step "w": range \[0, 400\) lies outside/,
    );
    await removeDir(root);
    root = await makeTempDir('validate');
    await written([
      { type: 'reset', step: 'w', failedOnly: false, forget: true, reason: 'x', ranges: [[0, 4]] },
    ]);
    await expect(Checkpoint.read(root, 'r1')).rejects.toThrow(/`ranges` with `forget`/);
  });
});
