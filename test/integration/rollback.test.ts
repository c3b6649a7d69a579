// `checkpoint rollback` through the real CLI: the order in which real rollback commands run, `--to`, and
// steps without a rollback command.
import { describe, expect, it } from 'vitest';
import { applyEvent, emptyState } from '../../src/journal/state.js';
import { parsePlan } from '../../src/plan/load.js';
import { rollbackOrder } from '../../src/session/manage.js';
import { readLines, runCli, status, useProjects } from '../support/cli.js';

const project = useProjects();

// `chunks` needs `fast` and ends 4/5 done; `notes` is independent and fails, then is marked done by hand
// (so its work is the newest); `later` needs `chunks` and never runs.
const PLAN = `version: 1
name: rb
concurrency: 1
steps:
  - id: setup
    run: echo setup >> effects.log
    rollback: echo undo-setup >> effects.log
  - id: fast
    run: echo fast >> effects.log
    rollback: echo undo-fast >> effects.log
  - id: chunks
    run: '[ "$CHECKPOINT_BATCH_INDEX" != 4 ]'
    rollback: echo undo-chunks >> effects.log
    batch: { range: { from: 0, to: 5 }, size: 1, max-failures: 1 }
  - id: notes
    needs: []
    run: exit 1
  - id: later
    needs: [chunks]
    run: echo later >> effects.log
    rollback: echo undo-later >> effects.log
`;

const undos = async (file: string) => (await readLines(file)).filter((l) => l.startsWith('undo-'));

describe('checkpoint rollback', () => {
  it('rolls back dependents before what they need, a partly done step included, newest work first', async () => {
    const p = await project(PLAN);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const before = await status(p);
    expect(before.steps.find((s) => s.id === 'chunks')?.units.done).toBe(4);
    expect((await runCli(['mark-done', 'notes'], { cwd: p.dir })).code).toBe(0);

    const rb = await runCli(['rollback', '--to', 'fast'], { cwd: p.dir });
    expect(rb.stderr).toBe('');
    expect(rb.code).toBe(0);
    expect(rb.stdout).toContain(
      'rolling back 3 step(s), dependents first, then newest done work first: notes, chunks, fast\n',
    );
    // chunks (4 of 5 done, so never complete) goes before fast, which it needs; setup stays.
    expect(await undos(p.effects)).toEqual(['undo-chunks', 'undo-fast']);
    expect(rb.stdout).toContain(
      'rollback notes: no rollback command; its work is pending again (nothing outside the checkpoint was undone)\n',
    );
    expect(rb.stdout).toContain('rolled back 3 step(s), 2 rollback command(s) run\n');
    const after = await status(p);
    expect(after.steps.map((s) => [s.id, s.state])).toEqual([
      ['setup', 'done'],
      ['fast', 'pending'],
      ['chunks', 'pending'],
      ['notes', 'pending'],
      ['later', 'pending'],
    ]);

    // The rest: only setup has done work now.
    const all = await runCli(['rollback'], { cwd: p.dir });
    expect(all.code).toBe(0);
    expect(await undos(p.effects)).toEqual(['undo-chunks', 'undo-fast', 'undo-setup']);
    expect((await runCli(['rollback'], { cwd: p.dir })).stdout).toBe(
      'nothing to roll back: no step has done work\n',
    );
  });

  it('--to a step with no done work says so and rolls back nothing', async () => {
    const p = await project(PLAN);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const rb = await runCli(['rollback', '--to', 'later'], { cwd: p.dir });
    expect(rb.code).toBe(2);
    expect(rb.stderr).toContain(
      'rollback --to later: step "later" has no done work, so there is nothing to roll back to; steps with done work, newest first: chunks, fast, setup',
    );
    expect(await undos(p.effects)).toEqual([]);
    const s = await status(p);
    expect(s.steps.map((x) => x.state)).toEqual(['done', 'done', 'failed', 'failed', 'pending']);
  });
});

describe('rollbackOrder', () => {
  const plan = parsePlan(
    'version: 1\nsteps:\n  - { id: a, run: x }\n  - { id: b, run: x }\n  - { id: c, run: x, needs: [] }\n  - { id: d, run: x, needs: [b] }\n',
    '/tmp/p/checkpoint.yml',
  );
  const fp = {
    hash: 'h',
    parts: { run: 'r', shell: 's', env: 'e', workingDirectory: 'w', batch: 'b', inputs: {} },
  };
  /** Steps marked done at the given times (ms), in that order. */
  function state(done: Array<[string, number]>) {
    const st = emptyState('r', 'p');
    let seq = 0;
    for (const [step, t] of done) {
      applyEvent(st, {
        type: 'step-init',
        step,
        fingerprint: fp,
        from: 0,
        to: 1,
        size: 1,
        reason: 'new',
        seq: ++seq,
        t,
      });
      applyEvent(st, { type: 'mark-done', step, seq: ++seq, t });
    }
    return st;
  }

  it('newest done work first, but never before a step that depends on it', () => {
    // d needs b needs a; c is independent. a was done last, yet its dependents go first.
    const st = state([
      ['b', 10],
      ['d', 20],
      ['c', 30],
      ['a', 40],
    ]);
    expect(rollbackOrder(plan, st).map((s) => s.id)).toEqual(['c', 'd', 'b', 'a']);
  });

  it('a checkpoint without lastDoneAt falls back to completedAt; steps with neither go last, later ones first', () => {
    const st = state([
      ['a', 10],
      ['b', 20],
      ['c', 30],
    ]);
    for (const id of ['a', 'b', 'c']) delete st.steps.get(id)?.lastDoneAt;
    const c = st.steps.get('c');
    if (c) delete c.completedAt;
    expect(rollbackOrder(plan, st).map((s) => s.id)).toEqual(['b', 'a', 'c']);
  });
});
