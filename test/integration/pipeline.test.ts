// Pipelining through the real CLI: a unit queued behind a running one (engine/launcher.ts) starts only when
// the engine would have started it. Each test makes the queue happen for sure: the running unit waits until
// the next unit's request is in its launcher's request file before it goes on.
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Project,
  pidAlive,
  readLines,
  runCli,
  startCli,
  status,
  useProjects,
  waitFor,
} from '../support/cli.js';

const project = useProjects();

/** A plan of one batch step over [0, n), one unit at a time, running `body` (shell) for each unit. */
function plan(n: number, body: string, batchExtra = ''): string {
  const script = [
    // `queued N`: wait until the request for item N is queued with the launcher of slot 0.
    'queued() {',
    '  q="$(dirname "$CHECKPOINT_OUTPUT")/slot-0.launch"',
    `  until grep -qF "CHECKPOINT_ITEM=$1'" "$q" 2>/dev/null; do sleep 0.01; done`,
    '}',
    ...body.trim().split('\n'),
  ];
  return `version: 1
concurrency: 1
steps:
  - id: work
    run: |
${script.map((l) => `      ${l}`).join('\n')}
    batch: { range: { from: 0, to: ${n} }, parallel: 1${batchExtra} }
`;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function waitForFile(path: string, what: string): Promise<boolean> {
  return waitFor(async () => (await exists(path)) || undefined, 30_000, what);
}

async function runDir(p: Project): Promise<string> {
  const id = (await readFile(join(p.dir, '.checkpoints', 'latest'), 'utf8')).trim();
  return join(p.dir, '.checkpoints', id);
}

async function journal(p: Project): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(await runDir(p), 'journal.ndjson'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function recorded(
  p: Project,
  type: string,
  unitStart: number,
): Promise<Array<Record<string, unknown>>> {
  return (await journal(p)).filter((e) => e.type === type && e.start === unitStart);
}

describe('pipelined units', () => {
  it('a queued unit is not started after SIGINT; the next run runs it', async () => {
    const p = await project(
      plan(
        3,
        `
echo "start $CHECKPOINT_ITEM" >> effects.log
if [ "$CHECKPOINT_ITEM" = 0 ] && [ ! -f once ]; then
  touch once
  echo $$ > pid0
  queued 1
  touch queued
  sleep 60
fi`,
      ),
    );
    const run = startCli(['run'], { cwd: p.dir });
    await waitForFile(join(p.dir, 'queued'), 'the request of unit 1 to be queued');
    run.child.kill('SIGINT');
    const r = await run.result;
    expect(r.code).toBe(75);
    expect(await readLines(p.effects)).toEqual(['start 0']);
    expect(pidAlive(Number((await readLines(join(p.dir, 'pid0')))[0]))).toBe(false);
    expect(await recorded(p, 'start', 1)).toEqual([]);
    expect((await status(p)).steps[0]?.interrupted).toEqual([[0, 1]]);

    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect((await readLines(p.effects)).slice(1).sort()).toEqual(['start 0', 'start 1', 'start 2']);
  });

  it('SIGINT: the unit queued behind one that exits 0 on SIGTERM does not start either', async () => {
    const p = await project(
      plan(
        3,
        `
echo "start $CHECKPOINT_ITEM" >> effects.log
if [ "$CHECKPOINT_ITEM" = 0 ]; then
  trap 'exit 0' TERM
  queued 1
  touch queued
  sleep 60 &
  wait
fi`,
      ),
    );
    const run = startCli(['run'], { cwd: p.dir });
    await waitForFile(join(p.dir, 'queued'), 'the request of unit 1 to be queued');
    run.child.kill('SIGINT');
    expect((await run.result).code).toBe(75);
    expect(await readLines(p.effects)).toEqual(['start 0']);
    expect(await recorded(p, 'start', 1)).toEqual([]);
    // Exit 0 is exit 0, stopped or not: unit 0 is done.
    expect((await status(p)).steps[0]?.done).toEqual([[0, 1]]);
  });

  it('max-failures 0, one at a time: the unit queued behind a failing one never starts', async () => {
    const body = `
echo "start $CHECKPOINT_ITEM try $CHECKPOINT_TRY" >> effects.log
if [ "$CHECKPOINT_ITEM" = 0 ]; then
  queued 1
  exit 1
fi`;
    const p = await project(plan(3, body));
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    expect(await readLines(p.effects)).toEqual(['start 0 try 1']);
    expect(await recorded(p, 'start', 1)).toEqual([]);
    const s = await status(p);
    expect(s.steps[0]?.failed.map((f) => f.start)).toEqual([0]);
    expect(s.steps[0]?.interrupted).toEqual([]);

    // Within max-failures the queued unit runs after all, on its first try (the revoked start used none).
    const q = await project(plan(3, body, ', max-failures: 5'));
    expect((await runCli(['run'], { cwd: q.dir })).code).toBe(1);
    expect(await readLines(q.effects)).toEqual(['start 0 try 1', 'start 1 try 1', 'start 2 try 1']);
  });

  it('every output line goes to the unit that printed it while the next unit is queued and started', async () => {
    const n = 12;
    const p = await project(
      plan(
        n,
        `
i=$CHECKPOINT_ITEM
echo "$i-a"
echo "$i-e" >&2
[ "$i" -eq ${n - 1} ] || queued $((i + 1))
seq 1 2000 | sed "s/^/$i-/"
printf '%s' "$i-z"`,
      ),
    );
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(0);
    const labelled = r.stdout.split('\n').filter((l) => l.startsWith('[work#'));
    expect(labelled.length).toBe(n * 2003);
    for (const l of labelled) {
      const m = /^\[work#(\d+)\] (\d+)-/.exec(l);
      expect(m?.[1], l).toBe(m?.[2]);
    }
    const dir = await runDir(p);
    for (let i = 0; i < n; i++) {
      const log = await readFile(join(dir, 'logs', 'work', `${i}.log`), 'utf8');
      const lines = log.split('\n');
      expect(
        lines.every((l) => l.startsWith(`${i}-`)),
        `log of unit ${i}`,
      ).toBe(true);
      expect(lines).toContain(`${i}-a`);
      expect(lines).toContain(`${i}-e`);
      expect(lines).toContain(`${i}-2000`);
      expect(log.endsWith(`${i}-z`)).toBe(true);
    }
  });

  // Unit 1 hangs the first time; the engine is SIGKILLed once its start and pid are recorded.
  const HANGS_ONCE = `
echo "start $CHECKPOINT_ITEM" >> effects.log
if [ "$CHECKPOINT_ITEM" = 0 ] && [ "$CHECKPOINT_LAUNCHER" != 0 ]; then
  queued 1
elif [ "$CHECKPOINT_ITEM" = 1 ] && [ ! -f once ]; then
  touch once
  echo $$ > pid1
  sleep 60
fi`;

  async function killWhileUnit1Hangs(p: Project, env?: NodeJS.ProcessEnv): Promise<number> {
    const run = startCli(['run'], { cwd: p.dir, ...(env ? { env } : {}) });
    const pid = Number(
      await waitFor(async () => (await readLines(join(p.dir, 'pid1')))[0], 30_000, 'unit 1 to start'),
    );
    await waitFor(
      async () =>
        (await recorded(p, 'spawned', 1)).some((e) => e.pid === pid) &&
        (await recorded(p, 'done', 0)).length === 1
          ? true
          : undefined,
      30_000,
      'unit 1 to be recorded running',
    );
    run.child.kill('SIGKILL');
    await run.result;
    return pid;
  }

  it('a unit left running by a SIGKILLed engine is ended by its launcher, which sees the engine gone', async () => {
    const p = await project(plan(3, HANGS_ONCE));
    const pid = await killWhileUnit1Hangs(p);
    // No next run needed: the launcher's watcher reads end-of-file from the engine and ends the group.
    await waitFor(() => !pidAlive(pid) || undefined, 30_000, 'the launcher to end unit 1');
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['start 0', 'start 1', 'start 1', 'start 2']);
  });

  it('a unit started without a launcher and left running by a SIGKILLed engine is ended by the next run', async () => {
    const p = await project(plan(3, HANGS_ONCE));
    const env = { ...process.env, CHECKPOINT_LAUNCHER: '0' };
    const pid = await killWhileUnit1Hangs(p, env);
    expect(pidAlive(pid)).toBe(true);
    const r = await runCli(['run'], { cwd: p.dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ended unit work \[1, 2\) left running by attempt 1/);
    expect(pidAlive(pid)).toBe(false);
    expect(await readLines(p.effects)).toEqual(['start 0', 'start 1', 'start 1', 'start 2']);
  });

  it('a launcher whose engine was SIGKILLed does not start the unit queued in it', async () => {
    const p = await project(
      plan(
        3,
        `
echo "start $CHECKPOINT_ITEM" >> effects.log
if [ "$CHECKPOINT_ITEM" = 0 ]; then
  echo $PPID > launcher.pid
  queued 1
  touch queued
  until [ -f go ]; do sleep 0.01; done
fi`,
      ),
    );
    const run = startCli(['run'], { cwd: p.dir });
    await waitForFile(join(p.dir, 'queued'), 'the request of unit 1 to be queued');
    const launcher = Number((await readLines(join(p.dir, 'launcher.pid')))[0]);
    expect(pidAlive(launcher)).toBe(true);
    run.child.kill('SIGKILL');
    await run.result;
    await writeFile(join(p.dir, 'go'), '');
    // Unit 0 ends; its launcher finds the engine gone and exits instead of starting unit 1.
    await waitFor(() => !pidAlive(launcher) || undefined, 30_000, 'the launcher to exit');
    expect(await readLines(p.effects)).toEqual(['start 0']);
  });

  it('order: sequential is never queued ahead: the next request waits for the unit before to end', async () => {
    // A negative check: each unit gives a wrong engine time to queue the next one (it would within a few
    // ms), then looks at its launcher's request file. A correct engine never fails it, however slow.
    const body = `
sleep 0.2
if grep -qF "CHECKPOINT_ITEM=$((CHECKPOINT_ITEM + 1))'" "$(dirname "$CHECKPOINT_OUTPUT")/slot-0.launch"; then
  echo "unit $((CHECKPOINT_ITEM + 1)) was queued while $CHECKPOINT_ITEM ran" >> effects.log
fi`;
    const p = await project(plan(5, body, ', order: sequential'));
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual([]);
  });

  it('the time budget: a queued unit past its last useful start is not started', async () => {
    // Units take 5 s; 13 s of budget. Unit 1 is queued while unit 0 runs and starts at ~5 s; unit 2 is
    // queued at ~5 s with a start-by of 13 - 5 = 8 s, which has passed when unit 1 ends at ~10 s.
    const p = await project(
      plan(
        3,
        `
echo "start $CHECKPOINT_ITEM" >> effects.log
sleep 5`,
      ),
    );
    const r = await runCli(['run', '--time-budget', '13s'], { cwd: p.dir });
    expect(r.code).toBe(75);
    expect(r.stdout).toMatch(/not starting more units: p90 \S+ would end after the time budget/);
    expect(await readLines(p.effects)).toEqual(['start 0', 'start 1']);
    expect((await status(p)).steps[0]?.done).toEqual([[0, 2]]);
  }, 60_000);
});
