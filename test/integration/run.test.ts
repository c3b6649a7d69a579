// The engine through the real CLI: real child processes, real files, real exit codes.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLines, runCli, status, useProjects } from '../support/cli.js';

const project = useProjects();

describe('checkpoint run', () => {
  it('runs steps and batch ranges, gives every unit its environment, and leaves the documented layout', async () => {
    const p = await project(`version: 1
name: env-check
concurrency: 3
env: { REGION: eu }
steps:
  - id: setup
    run: echo "setup $REGION $CHECKPOINT_STEP $CHECKPOINT_TRY $CHECKPOINT_RESUMED \${CHECKPOINT_BATCH_INDEX:-none}" >> ../effects.log
    working-directory: sub
  - id: chunks
    run: |
      echo "chunk $CHECKPOINT_BATCH_INDEX $CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END $(paste -sd, "$CHECKPOINT_ITEMS_FILE")" >> effects.log
      test -d "$CHECKPOINT_STATE_DIR"
      test -z "\${ACTIONS_RUNTIME_TOKEN:-}"
    batch:
      range: { from: 10, to: 20 }
      size: 4
      parallel: 2
  - id: items
    needs: []
    run: echo "item $CHECKPOINT_ITEM" >> effects.log
    batch:
      items: [alpha, beta, gamma]
`);
    await (await import('node:fs/promises')).mkdir(join(p.dir, 'sub'));
    const r = await runCli(['run'], { cwd: p.dir, env: { ACTIONS_RUNTIME_TOKEN: 'secret-token' } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = await readLines(p.effects);
    expect(lines).toContain('setup eu setup 1 false none');
    expect(lines.filter((l) => l.startsWith('chunk')).sort()).toEqual([
      'chunk 0 10 14 10,11,12,13',
      'chunk 1 14 18 14,15,16,17',
      'chunk 2 18 20 18,19',
    ]);
    expect(lines.filter((l) => l.startsWith('item')).sort()).toEqual([
      'item alpha',
      'item beta',
      'item gamma',
    ]);

    const root = join(p.dir, '.checkpoints');
    const runId = (await readFile(join(root, 'latest'), 'utf8')).trim();
    expect(runId).toMatch(/^env-check-\d{8}-\d{6}$/);
    const dir = join(root, runId);
    const names = await readdir(dir);
    for (const f of ['checkpoint.json', 'journal.ndjson', 'steps', 'state', 'logs'])
      expect(names).toContain(f);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'checkpoint.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'journal.ndjson'))).mode & 0o777).toBe(0o600);
    const marker = await readFile(join(dir, 'steps', 'chunks.complete'), 'utf8');
    expect(marker).toMatch(
      /^STEP=chunks\nCOMPLETED_AT=\S+\nDURATION_SECONDS=[\d.]+\nEXIT_CODE=0\nFINGERPRINT=[0-9a-f]+\n$/,
    );
    const s = await status(p);
    expect(s.complete).toBe(true);
    expect(s.units).toEqual({ total: 7, done: 7, failed: 0, remaining: 0 });
    // A second run finds the latest run complete: a no-op in that same run (`--new` starts a fresh one).
    const again = await runCli(['run'], { cwd: p.dir });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/is complete: nothing to do/);
    expect((await readdir(root)).filter((n) => n !== 'latest' && !n.startsWith('.')).length).toBe(1);
  });

  it('retries with backoff, then succeeds; CHECKPOINT_TRY counts the tries', async () => {
    const p = await project(`version: 1
steps:
  - id: flaky
    retry: { attempts: 3, delay: 10ms, backoff: 2, max-delay: 50ms }
    run: |
      echo "try $CHECKPOINT_TRY" >> effects.log
      n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count
      [ "$n" -ge 2 ]
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['try 1', 'try 2', 'try 3']);
    expect(r.stdout).toMatch(/flaky: exit code 1 \(try 1 of 3\); retrying in/);
  });

  it('fails a unit past its retries, keeps independent steps going, and exits 1; the next attempt retries failed units first', async () => {
    const p = await project(`version: 1
concurrency: 1
steps:
  - id: bad
    run: |
      echo "bad $CHECKPOINT_TRY" >> effects.log
      [ -f fixed ]
  - id: after-bad
    run: echo after-bad >> effects.log
  - id: independent
    needs: []
    run: echo independent >> effects.log
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    expect(await readLines(p.effects)).toEqual(['bad 1', 'independent']);
    const s = await status(p);
    expect(s.steps.find((x) => x.id === 'bad')?.state).toBe('failed');
    expect(s.steps.find((x) => x.id === 'bad')?.failed[0]?.reason).toBe('exit code 1');
    expect(s.steps.find((x) => x.id === 'after-bad')?.state).toBe('pending');
    await writeFile(join(p.dir, 'fixed'), '');
    const r2 = await runCli(['run'], { cwd: p.dir });
    expect(r2.code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['bad 1', 'independent', 'bad 1', 'after-bad']);
  });

  it('max-failures: a step stops starting units once more than N failed; N% tolerates more', async () => {
    const plan = (mf: string) => `version: 1
concurrency: 1
steps:
  - id: b
    run: |
      echo "u $CHECKPOINT_BATCH_INDEX" >> effects.log
      [ $((CHECKPOINT_BATCH_INDEX % 3)) -ne 1 ]
    batch: { range: { from: 0, to: 10 }, max-failures: ${mf} }
`;
    const p = await project(plan('1'));
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    // Units 1 and 4 fail; after the second failure (more than 1) no new unit starts.
    expect(await readLines(p.effects)).toEqual(['u 0', 'u 1', 'u 2', 'u 3', 'u 4']);
    expect(r.stdout).toMatch(/more than max-failures \(1\)/);

    const q = await project(plan('"50%"'));
    const r2 = await runCli(['run'], { cwd: q.dir });
    expect(r2.code).toBe(1);
    expect((await readLines(q.effects)).length).toBe(10);
    const s = await status(q);
    expect(s.steps[0]?.failed.map((f) => f.start)).toEqual([1, 4, 7]);
    expect(s.units.done).toBe(7);
  });

  it('ends a unit at its timeout (SIGTERM to the group) and counts it as a failed try', async () => {
    const p = await project(`version: 1
steps:
  - id: slow
    timeout: 1s
    run: |
      sleep 60 &
      echo $! > child.pid
      wait
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/slow: timed out after 1s/);
    const child = Number((await readFile(join(p.dir, 'child.pid'), 'utf8')).trim());
    const { pidAlive } = await import('../support/cli.js');
    expect(pidAlive(child)).toBe(false);
  });

  it('a unit that exits 75 has yielded: it runs again without using a retry', async () => {
    const p = await project(`version: 1
steps:
  - id: coop
    run: |
      n=$(cat "$CHECKPOINT_STATE_DIR/cursor" 2>/dev/null || echo 0)
      echo "slice $n try $CHECKPOINT_TRY" >> effects.log
      echo $((n+1)) > "$CHECKPOINT_STATE_DIR/cursor"
      [ "$n" -ge 2 ] || exit 75
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['slice 0 try 1', 'slice 1 try 1', 'slice 2 try 1']);
  });

  it('always steps run on every attempt; outputs of steps done earlier reach later attempts', async () => {
    const p = await project(`version: 1
steps:
  - id: setup
    always: true
    run: echo setup >> effects.log
  - id: produce
    run: |
      echo produce >> effects.log
      echo "version=1.2.3" >> "$CHECKPOINT_OUTPUT"
      printf 'notes<<EOF\\nline one\\nline two\\nEOF\\n' >> "$CHECKPOINT_OUTPUT"
  - id: consume
    run: |
      cat "$CHECKPOINT_OUTPUTS" > seen.json
      [ -f go ]
`);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    await writeFile(join(p.dir, 'go'), '');
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['setup', 'produce', 'setup']);
    const seen = JSON.parse(await readFile(join(p.dir, 'seen.json'), 'utf8'));
    expect(seen.produce).toEqual({ version: '1.2.3', notes: 'line one\nline two' });
    const s = await status(p);
    expect(s.steps.find((x) => x.id === 'produce')?.outputs.version).toBe('1.2.3');
  });

  it('on-change: rerun invalidates the step and its dependents; keep leaves done units done', async () => {
    const plan = (cmd: string, mode: string) => `version: 1
concurrency: 1
steps:
  - id: a
    run: echo "a ${cmd} $CHECKPOINT_BATCH_INDEX" >> effects.log; [ ! -f stop-$CHECKPOINT_BATCH_INDEX ]
    on-change: ${mode}
    batch: { range: { from: 0, to: 4 }, max-failures: 4 }
  - id: b
    run: echo b >> effects.log
`;
    const p = await project(plan('v1', 'rerun'));
    await writeFile(join(p.dir, 'stop-2'), '');
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    await writeFile(p.plan, plan('v2', 'rerun'));
    const ex = await runCli(['explain'], { cwd: p.dir });
    expect(ex.stdout).toMatch(/a .*fingerprint changed: run/);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const lines = await readLines(p.effects);
    expect(lines.slice(4)).toEqual(['a v2 0', 'a v2 1', 'a v2 2', 'a v2 3']);

    const q = await project(plan('v1', 'keep'));
    await writeFile(join(q.dir, 'stop-2'), '');
    expect((await runCli(['run'], { cwd: q.dir })).code).toBe(1);
    await writeFile(q.plan, plan('v2', 'keep'));
    await (await import('node:fs/promises')).rm(join(q.dir, 'stop-2'));
    expect((await runCli(['run'], { cwd: q.dir })).code).toBe(0);
    expect((await readLines(q.effects)).slice(4)).toEqual(['a v2 2', 'b']);
  });

  it('items from a file are frozen at the first attempt and addressed by index afterwards', async () => {
    const p = await project(`version: 1
steps:
  - id: each
    run: |
      echo "$CHECKPOINT_ITEM" >> effects.log
      [ "$CHECKPOINT_ITEM" != c ] || [ -f ok ]
    batch: { items: { file: ids.txt }, parallel: 1, max-failures: 5 }
`);
    await writeFile(join(p.dir, 'ids.txt'), 'a\nb\nc\nd\n');
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    await writeFile(join(p.dir, 'ids.txt'), 'z\ny\nx\nw\nv\n');
    await writeFile(join(p.dir, 'ok'), '');
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['a', 'b', 'c', 'd', 'c']);
  });

  it('a missing working directory is a failed start naming it; both ways of starting units behave the same', async () => {
    const yaml = `version: 1
concurrency: 2
steps:
  - id: lost
    needs: []
    working-directory: nowhere
    run: "true"
  - id: talk
    needs: []
    run: |
      echo "out $CHECKPOINT_BATCH_INDEX"
      echo "err $CHECKPOINT_BATCH_INDEX" >&2
      echo "v=$CHECKPOINT_BATCH_INDEX" >> "$CHECKPOINT_OUTPUT"
    batch: { range: { from: 0, to: 6 }, parallel: 2 }
`;
    for (const launcher of ['1', '0']) {
      const p = await project(yaml);
      const r = await runCli(['run'], { cwd: p.dir, env: { CHECKPOINT_LAUNCHER: launcher } });
      expect(r.code, `launcher=${launcher}`).toBe(1);
      expect(r.stdout).toMatch(
        /lost: could not start ".*bash" in .*nowhere: .*check `shell` and `working-directory`/,
      );
      // Every line is attributed to the unit that printed it.
      for (let i = 0; i < 6; i++) {
        expect(r.stdout).toContain(`[talk#${i}] out ${i}`);
        expect(r.stdout).toContain(`[talk#${i}] err ${i}`);
      }
      expect(r.stdout).not.toMatch(/Done|checkpoint-unit-end/);
    }
  });
});
