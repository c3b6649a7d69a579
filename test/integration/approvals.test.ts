// Approvals (manual intervention points), through the real CLI: `approval: true` stops the run before the
// step once its needs are done, `checkpoint approve` lets it start, `checkpoint reset` takes the approval back.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Project, readLines, runCli, startCli, status, useProjects, waitFor } from '../support/cli.js';

const project = useProjects();

/** a → b (approval) → c, and d on its own. Every unit appends its name to effects.log. */
const plan = `version: 1
name: gate
concurrency: 2
steps:
  - id: a
    run: echo a >> effects.log
  - id: b
    needs: [a]
    approval: true
    run: echo b >> effects.log
  - id: c
    needs: [b]
    run: echo c >> effects.log
  - id: d
    needs: []
    run: echo d >> effects.log
`;

interface Approval {
  required: boolean;
  approved: boolean;
  by?: string;
  at?: string;
}

async function approvals(p: Project): Promise<Record<string, Approval | null>> {
  const r = await runCli(['status', '--json'], { cwd: p.dir });
  expect(r.code, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout) as { steps: Array<{ id: string; approval: Approval | null }> };
  return Object.fromEntries(doc.steps.map((s) => [s.id, s.approval]));
}

const states = async (p: Project) => Object.fromEntries((await status(p)).steps.map((s) => [s.id, s.state]));

const count = (lines: string[], name: string) => lines.filter((l) => l === name).length;

describe('approvals', () => {
  it('stops before the step (exit 75), runs it once approved, and shows who approved it', async () => {
    const p = await project(plan);
    const first = await runCli(['run'], { cwd: p.dir });
    expect(first.code, first.stdout + first.stderr).toBe(75);
    const lines = first.stdout.trimEnd().split('\n');
    expect(lines.at(-2)).toMatch(/waiting for approval: b: 2 of 4 units done \(attempt 1, exit 75\)$/);
    expect(lines.at(-1)).toMatch(
      /approve with: checkpoint approve b, then run again: checkpoint run \(GitHub Action: .*`approve: b`\)$/,
    );
    expect(first.stdout).toMatch(/⏸ b waiting for approval \(checkpoint approve b\)/);
    // No unit of b (or of c, behind it) ran; the independent d did.
    const effects = await readLines(p.effects);
    expect([...effects].sort()).toEqual(['a', 'd']);
    expect(await states(p)).toEqual({ a: 'done', b: 'waiting', c: 'pending', d: 'done' });
    expect(await approvals(p)).toEqual({
      a: null,
      b: { required: true, approved: false },
      c: null,
      d: null,
    });
    const text = await runCli(['status'], { cwd: p.dir });
    expect(text.stdout).toMatch(/⏸ b\s+waiting\s+0\/1/);
    expect(text.stdout).toMatch(/^ {4}waiting for approval \(checkpoint approve b\)$/m);
    const explain = await runCli(['explain'], { cwd: p.dir });
    expect(explain.stdout).toMatch(
      /run\s+b\s+after a: not started; waits for approval \(checkpoint approve b\)/,
    );

    // Running again without an approval changes nothing.
    const again = await runCli(['run'], { cwd: p.dir });
    expect(again.code).toBe(75);
    expect(count(await readLines(p.effects), 'b')).toBe(0);

    const ok = await runCli(['approve', 'b', '--by', 'alice'], { cwd: p.dir });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^approved b \(by alice\)$/m);
    expect(ok.stdout).toMatch(/run again to continue: checkpoint run$/m);
    const approved = (await approvals(p)).b;
    expect(approved).toMatchObject({ required: true, approved: true, by: 'alice' });
    expect(Date.parse(approved?.at ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect(await states(p)).toMatchObject({ b: 'pending' });

    const second = await runCli(['run'], { cwd: p.dir });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const after = await readLines(p.effects);
    expect(Object.fromEntries(['a', 'b', 'c', 'd'].map((s) => [s, count(after, s)]))).toEqual({
      a: 1,
      b: 1,
      c: 1,
      d: 1,
    });
    // b before c.
    expect(after.indexOf('b')).toBeLessThan(after.indexOf('c'));
    const done = await status(p);
    expect(done.complete).toBe(true);
    const finalText = await runCli(['status'], { cwd: p.dir });
    expect(finalText.stdout).toMatch(/✓ b\s+done/);
    expect(finalText.stdout).toMatch(/^ {4}approved by alice at \d{4}-\d\d-\d\dT[\d:.]+Z$/m);
    // The approval is in the journal as an `approve` event.
    const journal = await readFile(join(p.dir, '.checkpoints', done.runId, 'journal.ndjson'), 'utf8');
    const ev = journal
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.type === 'approve');
    expect(ev).toMatchObject({ type: 'approve', step: 'b', by: 'alice' });
    expect(typeof ev?.t).toBe('number');
  });

  it('refuses an unknown step or a step without approval: true (exit 2, naming the step and the fix)', async () => {
    const p = await project(plan);
    const none = await runCli(['approve', 'b'], { cwd: p.dir });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no runs in .* yet; start one with `checkpoint run`/);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(75);
    const unknown = await runCli(['approve', 'nope', '--by', 'alice'], { cwd: p.dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /approve: no step "nope" in checkpoint.yml; steps that wait for approval: b \(all steps: a, b, c, d\)/,
    );
    const plain = await runCli(['approve', 'a'], { cwd: p.dir });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(
      /approve: step "a" does not wait for approval; add `approval: true` to it in checkpoint.yml/,
    );
    const empty = await runCli(['approve', 'b', '--by', ' '], { cwd: p.dir });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/--by: expected a name/);
    // Nothing was recorded.
    expect((await approvals(p)).b).toEqual({ required: true, approved: false });
  });

  it('approving twice is fine; the approver defaults to $GITHUB_ACTOR, else $USER', async () => {
    const p = await project(plan);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(75);
    const env = { GITHUB_ACTOR: '', USER: 'carol' };
    const one = await runCli(['approve', 'b'], { cwd: p.dir, env });
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^approved b \(by carol\)$/m);
    const two = await runCli(['approve', 'b'], { cwd: p.dir, env: { GITHUB_ACTOR: 'octocat' } });
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout).toMatch(/^approved b \(by octocat\); it was approved before by carol at \S+Z$/m);
    expect((await approvals(p)).b).toMatchObject({ approved: true, by: 'octocat' });
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(count(await readLines(p.effects), 'b')).toBe(1);
  });

  it('approve while a run holds the checkpoint exits 75 naming the holder', async () => {
    const p = await project(`version: 1
name: gate
steps:
  - id: a
    run: echo a >> effects.log
  - id: b
    approval: true
    run: echo b >> effects.log
  - id: slow
    needs: []
    run: echo $$ > pid; sleep 60
`);
    const holder = startCli(['run'], { cwd: p.dir });
    await waitFor(async () => (await readLines(join(p.dir, 'pid')))[0], 30_000, 'the slow step');
    const r = await runCli(['approve', 'b', '--by', 'alice'], { cwd: p.dir });
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(new RegExp(`is locked by pid ${holder.child.pid} on host`));
    holder.child.kill('SIGINT');
    expect((await holder.result).code).toBe(75);
    expect((await approvals(p)).b).toEqual({ required: true, approved: false });
  });

  it('reset of the step takes its approval back: the next run stops before it again', async () => {
    const p = await project(plan);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(75);
    expect((await runCli(['approve', 'b', '--by', 'alice'], { cwd: p.dir })).code).toBe(0);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    const reset = await runCli(['reset', 'b'], { cwd: p.dir });
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toMatch(/reset b: all its work is pending again; its approval is taken back/);
    expect(reset.stdout).toMatch(/reset c \(depends on a reset step\): all its work is pending again$/m);
    expect((await approvals(p)).b).toEqual({ required: true, approved: false });
    expect(await states(p)).toMatchObject({ a: 'done', b: 'waiting', c: 'pending', d: 'done' });
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(75);
    expect(count(await readLines(p.effects), 'b')).toBe(1);
    // `reset --failed` leaves an approval alone.
    expect((await runCli(['approve', 'b', '--by', 'bob'], { cwd: p.dir })).code).toBe(0);
    expect((await runCli(['reset', '--failed'], { cwd: p.dir })).code).toBe(0);
    expect((await approvals(p)).b).toMatchObject({ approved: true, by: 'bob' });
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(count(await readLines(p.effects), 'b')).toBe(2);
  });
});
