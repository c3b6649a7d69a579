// `retry.on` through the real CLI: real scripts without the executable bit, real exit codes, real timeouts
// and signals.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLines, runCli, status, useProjects } from '../support/cli.js';

const project = useProjects();

/** A unit's command that logs its try and then exits with the code of that try (the last one repeats). */
const tries = (name: string, codes: number[]) =>
  `echo "${name} $CHECKPOINT_TRY" >> effects.log; codes=(${codes.join(' ')}); i=$((CHECKPOINT_TRY - 1)); [ $i -lt \${#codes[@]} ] || i=$((\${#codes[@]} - 1)); exit \${codes[$i]}`;

describe('retry.on', () => {
  it('a script that is not executable fails after one try with the chmod hint, though tries are left', async () => {
    const p = await project(`version: 1
defaults:
  retry: { attempts: 3, delay: 10ms }
steps:
  - id: migrate
    run: ./migrate.sh up
`);
    const script = join(p.dir, 'migrate.sh');
    await writeFile(script, '#!/bin/sh\necho ran >> effects.log\n');
    await chmod(script, 0o644);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /migrate: exit code 126: \.\/migrate\.sh is not executable; run chmod \+x \.\/migrate\.sh .*\(try 1 of 3; not retried: no retry fixes exit code 126; retry\.on: \[126\] retries it anyway\)/,
    );
    expect(r.stdout).not.toMatch(/try 2 of 3/);
    const s = await status(p);
    const failed = s.steps.find((x) => x.id === 'migrate')?.failed;
    expect(failed).toHaveLength(1);
    expect(failed?.[0]?.tries).toBe(1);
    expect(failed?.[0]?.reason).toMatch(/chmod \+x \.\/migrate\.sh/);
    expect(await readLines(p.effects)).toEqual([]);
  });

  it('a program not found fails at once, naming it and the PATH the unit saw', async () => {
    const p = await project(`version: 1
steps:
  - id: fetch
    retry: 3
    env: { PATH: "/usr/bin:/bin:/nowhere/bin" }
    run: |
      echo "fetch $CHECKPOINT_TRY" >> effects.log
      no-such-program-xyz --version
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /fetch: exit code 127: no-such-program-xyz was not found on the PATH the unit saw: \/usr\/bin:\/bin:\/nowhere\/bin \(try 1 of 3; not retried/,
    );
    expect(await readLines(p.effects)).toEqual(['fetch 1']);
  });

  it('on: [3] retries exit code 3 but not exit code 1', async () => {
    const p = await project(`version: 1
concurrency: 1
defaults:
  retry: { attempts: 3, delay: 10ms, on: [3] }
steps:
  - id: three
    run: '${tries('three', [3, 3, 0])}'
  - id: one
    needs: []
    run: '${tries('one', [1, 0])}'
`);
    const explain = await runCli(['explain'], { cwd: p.dir });
    expect(explain.stdout).toMatch(/run +three: new\n +note: retry: up to 3 tries, on \[3\] only\n/);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    const lines = await readLines(p.effects);
    expect(lines.filter((l) => l.startsWith('three'))).toEqual(['three 1', 'three 2', 'three 3']);
    expect(lines.filter((l) => l.startsWith('one'))).toEqual(['one 1']);
    expect(r.stdout).toMatch(/three: exit code 3 \(try 1 of 3\); retrying in/);
    expect(r.stdout).toMatch(
      /one: exit code 1 \(try 1 of 3; not retried: exit code 1 is not in retry.on \[3\]\)/,
    );
    const s = await status(p);
    expect(s.steps.map((x) => [x.id, x.state])).toEqual([
      ['three', 'done'],
      ['one', 'failed'],
    ]);
  });

  it('on: [timeout] retries a unit that timed out, not one that failed', async () => {
    const p = await project(`version: 1
concurrency: 1
steps:
  - id: slow
    timeout: 500ms
    retry: { attempts: 2, delay: 10ms, on: [timeout] }
    run: |
      echo "slow $CHECKPOINT_TRY" >> effects.log
      if [ "$CHECKPOINT_TRY" = 1 ]; then exec sleep 60; fi
  - id: failing
    needs: []
    retry: { attempts: 2, delay: 10ms, on: timeout }
    run: '${tries('failing', [2, 0])}'
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    const lines = await readLines(p.effects);
    expect(lines.filter((l) => l.startsWith('slow'))).toEqual(['slow 1', 'slow 2']);
    expect(lines.filter((l) => l.startsWith('failing'))).toEqual(['failing 1']);
    expect(r.stdout).toMatch(/slow: timed out after 500ms \(try 1 of 2\); retrying in/);
    expect(r.stdout).toMatch(
      /failing: exit code 2 \(try 1 of 2; not retried: exit code 2 is not in retry.on \[timeout\]\)/,
    );
  });

  it('on: [signal] retries a unit killed by a signal the engine did not send; on: [1] does not', async () => {
    const p = await project(`version: 1
concurrency: 1
steps:
  - id: killed
    retry: { attempts: 2, delay: 10ms, on: [signal] }
    run: |
      echo "killed $CHECKPOINT_TRY" >> effects.log
      if [ "$CHECKPOINT_TRY" = 1 ]; then kill -KILL $$; fi
  - id: not-retried
    needs: []
    retry: { attempts: 2, delay: 10ms, on: [1] }
    run: |
      echo "not-retried $CHECKPOINT_TRY" >> effects.log
      kill -KILL $$
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    const lines = await readLines(p.effects);
    expect(lines.filter((l) => l.startsWith('killed'))).toEqual(['killed 1', 'killed 2']);
    expect(lines.filter((l) => l.startsWith('not-retried'))).toEqual(['not-retried 1']);
    expect(r.stdout).toMatch(
      /not-retried: killed by SIGKILL \(try 1 of 2; not retried: a signal \(SIGKILL\) is not in retry.on \[1\]\)/,
    );
  });
});
