// status, explain, reset, mark-done, rollback, runs, prune — through the real CLI.
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeLine } from '../../src/journal/journal-file.js';
import { readLines, runCli, status, useProjects } from '../support/cli.js';

const project = useProjects();

const plan = `version: 1
name: cmds
concurrency: 1
steps:
  - id: schema
    run: echo schema >> effects.log
    rollback: echo undo-schema >> effects.log
  - id: fill
    run: |
      echo "fill $CHECKPOINT_BATCH_INDEX" >> effects.log
      [ "$CHECKPOINT_BATCH_INDEX" != 2 ] || [ -f ok ]
    rollback: echo undo-fill >> effects.log
    batch: { range: { from: 0, to: 40 }, size: 10, max-failures: 3 }
  - id: report
    run: echo report >> effects.log
`;

describe('commands', () => {
  it('status shows states, ranges and failures; --json is the documented shape', async () => {
    const p = await project(plan);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const text = await runCli(['status'], { cwd: p.dir });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/run cmds-\d{8}-\d{6} · plan cmds · incomplete · 4\/6 units/);
    expect(text.stdout).toMatch(/✓ schema\s+done/);
    expect(text.stdout).toMatch(/fill\s+failed\s+3\/4 ✗1/);
    expect(text.stdout).toMatch(/failed \[20, 30\): exit code 1 after 1 tries/);
    const s = await status(p);
    expect(s.units).toEqual({ total: 6, done: 4, failed: 1, remaining: 2 });
    const fill = s.steps.find((x) => x.id === 'fill');
    expect(fill?.done).toEqual([
      [0, 20],
      [30, 40],
    ]);
    expect(fill?.failed).toEqual([
      expect.objectContaining({ start: 20, end: 30, index: 2, reason: 'exit code 1', tries: 1 }),
    ]);
  });

  it('status refuses, naming the line, a well-checksummed record whose space is not the plan’s', async () => {
    const p = await project(plan);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const dir = join(
      p.dir,
      '.checkpoints',
      (await readFile(join(p.dir, '.checkpoints', 'latest'), 'utf8')).trim(),
    );
    const journal = join(dir, 'journal.ndjson');
    const lines = (await readFile(journal, 'utf8')).trim().split('\n');
    // The step's own record, with its fingerprint, claiming twice the plan's range: as an attacker who read
    // docs/format.md would write it, CRC and all.
    const init = lines.map((l) => JSON.parse(l)).find((e) => e.type === 'step-init' && e.step === 'fill');
    const seq = Math.max(...lines.map((l) => JSON.parse(l).seq)) + 1;
    const { crc: _crc, ...forged } = { ...init, to: 80, seq, t: Date.now(), reason: 'forged' };
    await writeFile(journal, `${lines.join('\n')}\n${encodeLine(forged)}`);
    const before = await readFile(journal, 'utf8');
    const r = await runCli(['status'], { cwd: p.dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`journal\\.ndjson:${lines.length + 1}`));
    expect(r.stderr).toMatch(/\[0, 80\).*defines \[0, 40\)/);
    expect(r.stdout).not.toMatch(/units/);
    expect(await readFile(journal, 'utf8')).toBe(before);
  });

  it('explain says what will run and why; run --dry-run runs nothing', async () => {
    const p = await project(plan);
    const first = await runCli(['explain'], { cwd: p.dir });
    expect(first.stdout).toMatch(/run\s+schema: new/);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const ex = await runCli(['explain'], { cwd: p.dir });
    expect(ex.stdout).toMatch(/skip\s+schema: done/);
    expect(ex.stdout).toMatch(
      /resume fill\s+\[3\/4 units\] after schema: 3 of 4 units done, 1 failed \(retried first\)/,
    );
    const before = await readLines(p.effects);
    const dry = await runCli(['run', '--dry-run'], { cwd: p.dir });
    expect(dry.code).toBe(0);
    expect(await readLines(p.effects)).toEqual(before);
  });

  it('reset makes a step and its dependents pending; --failed only clears failures', async () => {
    const p = await project(plan);
    await writeFile(join(p.dir, 'ok'), '');
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    const r = await runCli(['reset', 'fill', '--run', (await status(p)).runId], { cwd: p.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/reset fill: all its work is pending again/);
    expect(r.stdout).toMatch(/reset report \(depends on a reset step\)/);
    const s = await status(p);
    expect(s.steps.map((x) => x.state)).toEqual(['done', 'pending', 'pending']);
    // `run` resumes the (now incomplete) latest run.
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    const lines = await readLines(p.effects);
    expect(lines.filter((l) => l === 'schema').length).toBe(1);
    expect(lines.filter((l) => l === 'fill 0').length).toBe(2);
    const bad = await runCli(['reset', 'nope'], { cwd: p.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/reset: no step "nope" in checkpoint.yml; steps: schema, fill, report/);
  });

  it('mark-done accepts a step by hand; rollback undoes done steps newest first', async () => {
    const p = await project(plan);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    expect((await runCli(['mark-done', 'fill'], { cwd: p.dir })).code).toBe(0);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect((await readLines(p.effects)).slice(-1)).toEqual(['report']);
    const rb = await runCli(['rollback', '--to', 'fill'], { cwd: p.dir });
    expect(rb.code).toBe(0);
    expect((await readLines(p.effects)).slice(-1)).toEqual(['undo-fill']);
    const s = await status(p);
    expect(s.steps.map((x) => x.state)).toEqual(['done', 'pending', 'pending']);
  });

  it('runs lists runs; prune removes old ones and keeps the newest', async () => {
    const p = await project(`version: 1\nname: pr\nsteps:\n  - id: a\n    run: "true"\n`);
    for (let i = 0; i < 3; i++) expect((await runCli(['run', '--new'], { cwd: p.dir })).code).toBe(0);
    const list = await runCli(['runs', '--json'], { cwd: p.dir });
    const rows = JSON.parse(list.stdout) as Array<{ id: string; latest: boolean; complete: boolean }>;
    expect(rows.length).toBe(3);
    expect(rows.filter((r) => r.latest).length).toBe(1);
    expect(rows.every((r) => r.complete)).toBe(true);
    const pruned = await runCli(['prune', '--keep', '1'], { cwd: p.dir });
    expect(pruned.stdout).toMatch(/2 run\(s\) removed, 1 kept/);
    const left = (await readdir(join(p.dir, '.checkpoints'))).filter((n) => n !== 'latest');
    expect(left).toEqual([(await readFile(join(p.dir, '.checkpoints', 'latest'), 'utf8')).trim()]);
    // --older-than looks at the run's last update, recorded in its snapshot.
    const old = join(p.dir, '.checkpoints', left[0] as string, 'checkpoint.json');
    await utimes(old, new Date(0), new Date(0));
    expect((await runCli(['prune', '--older-than', '1d'], { cwd: p.dir })).stdout).toMatch(
      /0 run\(s\) removed, 1 kept/,
    );
  });

  it('usage errors exit 2 with the flag, the value and the fix', async () => {
    const p = await project(plan);
    const cases: Array<[string[], RegExp]> = [
      [
        ['run', '--time-budget', 'soon'],
        /--time-budget: expected a duration like 90s, 10m, 1h30m or 2d, got "soon"/,
      ],
      [['run', '--concurrency', '0'], /--concurrency: expected a positive integer, got "0"/],
      [['run', '--only', 'nope'], /--only: no step "nope"/],
      [['run', '--shard', '3/2'], /--shard: expected I\/N with 0 <= I < N/],
      [['status'], /no runs in .checkpoints yet; start one with `checkpoint run`/],
      [['run', '-f', 'missing.yml'], /missing.yml: file not found; create it or pass -f PATH/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, { cwd: p.dir });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('plan errors through the CLI (property-based)', () => {
  it('every generated bad plan exits 2 with a message, never a stack trace, and never touches the checkpoint', async () => {
    const p = await project(`version: 1\nsteps:\n  - id: ok\n    run: "true"\n`);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    const runId = (await status(p)).runId;
    const snapshot = join(p.dir, '.checkpoints', runId, 'checkpoint.json');
    const before = await readFile(snapshot, 'utf8');
    const bad = fc.oneof(
      fc.constant('version: 2\nsteps: [{id: a, run: x}]\n'),
      fc.constant('steps: []\n'),
      fc.string().map((s) => `version: 1\nsteps:\n  - id: "${s.replace(/["\\\n]/g, '')}A!"\n    run: x\n`),
      fc.integer({ min: -5, max: 0 }).map((n) => `version: 1\nconcurrency: ${n}\nsteps: [{id: a, run: x}]\n`),
      fc
        .string({ minLength: 1, maxLength: 8 })
        .map((k) => `version: 1\nsteps:\n  - id: a\n    run: x\n    x${k.replace(/[^a-z]/g, '')}: 1\n`),
      fc
        .constantFrom('1x', '-3s', 'soon', '10', '1h1h')
        .map((d) => `version: 1\nsteps:\n  - id: a\n    run: x\n    timeout: "${d === '10' ? 'ten' : d}"\n`),
      fc.constant(
        'version: 1\nsteps:\n  - id: a\n    run: x\n    needs: [b]\n  - id: b\n    run: y\n    needs: [a]\n',
      ),
      fc.constant('version: 1\nsteps:\n  - id: a\n    run: x\n  - id: a\n    run: y\n'),
      fc.constant('version: 1\nsteps:\n  - id: a\n    run: x\n    batch: { range: { from: 5, to: 1 } }\n'),
      fc.constant('version: 1\nsteps:\n  - id: a\n    run: [\n'),
      fc.constant('\t- nonsense: [}\n'),
    );
    await fc.assert(
      fc.asyncProperty(bad, async (yaml) => {
        await writeFile(p.plan, yaml);
        const r = await runCli(['run'], { cwd: p.dir });
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/^checkpoint: checkpoint\.yml/);
        expect(r.stderr).not.toMatch(/\n\s+at |\[object Object\]|internal error/);
        expect(await readFile(snapshot, 'utf8')).toBe(before);
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
