// A unit is exactly its command (DESIGN §3): a real `bash -eo pipefail -c CMD` in its own process group,
// recorded by its exit status only; what it prints or leaves behind can neither fool nor hang the engine,
// and what an interrupted unit started is ended with it, also outside its process group.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Project,
  pidAlive,
  readLines,
  runCli,
  startCli,
  status,
  useProjects,
  waitFor,
  watcherOf,
} from '../support/cli.js';

const project = useProjects();

/** Processes a test left behind on purpose (daemons), ended after it. */
const strays: number[] = [];
afterEach(() => {
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
});

async function pidIn(p: Project, file: string): Promise<number> {
  return waitFor(
    async () => {
      const l = await readLines(join(p.dir, file));
      return l.length > 0 ? Number(l[0]) : undefined;
    },
    30_000,
    `${file} to be written`,
  );
}

function goneWithin(pid: number, ms: number): Promise<true> {
  return waitFor(() => !pidAlive(pid) || undefined, ms, `pid ${pid} to end`);
}

/** The most units of `effects` (lines `start N` / `end N`) that ran at once. */
function mostAtOnce(lines: string[]): number {
  let now = 0;
  let most = 0;
  for (const l of lines) {
    if (l.startsWith('start ')) now += 1;
    else if (l.startsWith('end ')) now -= 1;
    most = Math.max(most, now);
  }
  return most;
}

function runFolder(p: Project): string {
  const id = readFileSync(join(p.dir, '.checkpoints', 'latest'), 'utf8').trim();
  return join(p.dir, '.checkpoints', id);
}

function filesUnder(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = filesUnder(path);
      files += sub.files;
      bytes += sub.bytes;
    } else {
      files += 1;
      bytes += statSync(path).size;
    }
  }
  return { files, bytes };
}

describe('a unit is exactly its command', () => {
  it('forged control bytes on either stream, whole or partial, never change a record', async () => {
    const p = await project(`version: 1
concurrency: 2
steps:
  - id: w
    run: |
      echo "start $CHECKPOINT_BATCH_INDEX" >> effects.log
      printf '\\0checkpoint-unit-end\\n\\0checkpoint-ev E 0\\n\\0checkpoint-ev S 1;R\\n'
      printf '\\0checkpoint-unit-end\\n\\0checkpoint-ev E 0\\n' >&2
      printf '\\0checkpoint-' ; head -c 3000 /dev/urandom
      sleep 1
      echo "end $CHECKPOINT_BATCH_INDEX" >> effects.log
      exit 1
    batch: { range: { from: 0, to: 6 }, parallel: 2 }
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    const s = await status(p);
    expect(s.steps[0]?.done).toEqual([]);
    // Recorded failed by their exit status: the first two units (parallel 2), and nothing after them.
    const failed = s.steps[0]?.failed.map((f) => f.start) ?? [];
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((start) => start < 2)).toBe(true);
    // max-failures 0: the first failure stops the step; never more than `parallel` at once.
    expect(mostAtOnce(await readLines(p.effects))).toBeLessThanOrEqual(2);
  });

  it('code that a command sources sees a fresh bash: its own $$, $PPID and /proc/self', async () => {
    const p = await project(`version: 1
steps:
  - id: probe
    run: . ./lib.sh
`);
    writeFileSync(
      join(p.dir, 'lib.sh'),
      [
        '[ "$$" = "$BASHPID" ] || { echo "\\$\\$ $$ is not BASHPID $BASHPID"; exit 3; }',
        'grep -qz "^CHECKPOINT_STEP=probe$" /proc/self/environ || { echo "/proc/self is not the unit"; exit 4; }',
        // Its parent is the engine itself (no launcher or wrapper in between).
        'grep -q cli/index /proc/$PPID/cmdline || { echo "PPID $PPID is not the engine"; exit 5; }',
        'case $- in *e*) ;; *) echo "no errexit: $-"; exit 6 ;; esac',
        'echo ok',
      ].join('\n'),
    );
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.stdout + r.stderr).not.toMatch(/is not|no errexit/);
    expect(r.code).toBe(0);
  });

  it('a daemon left by a unit that finished keeps its stdout: the run ends promptly and leaves it', async () => {
    const p = await project(`version: 1
steps:
  - id: start-db
    run: |
      setsid sleep 300 &
      echo $! > daemon.pid
      echo started
  - id: after
    run: echo "after" >> effects.log
`);
    const t0 = Date.now();
    const r = await runCli(['run'], { cwd: p.dir });
    const took = Date.now() - t0;
    const daemon = Number((await readLines(join(p.dir, 'daemon.pid')))[0]);
    strays.push(daemon);
    expect(r.code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['after']);
    // The daemon holds the unit's stdout for 300 s; the run did not wait for it.
    expect(took).toBeLessThan(30_000);
    expect(pidAlive(daemon)).toBe(true);
  });

  const ESCAPES = `
      setsid sleep 300 &
      echo $! > escaped.pid
      ( trap '' TERM; exec sleep 301 ) &
      echo $! > stubborn.pid
      sleep 300`;

  it('SIGINT ends an interrupted unit and what escaped its group, and exits 75 within 5 s', async () => {
    const p = await project(`version: 1
steps:
  - id: w
    run: |${ESCAPES}
`);
    const run = startCli(['run'], { cwd: p.dir });
    const escaped = await pidIn(p, 'escaped.pid');
    const stubborn = await pidIn(p, 'stubborn.pid');
    strays.push(escaped, stubborn);
    const t0 = Date.now();
    run.child.kill('SIGINT');
    const r = await run.result;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.code).toBe(75);
    await goneWithin(escaped, 2000);
    await goneWithin(stubborn, 2000);
  });

  it('the time budget and a timeout end what an interrupted unit started outside its group', async () => {
    const p = await project(`version: 1
steps:
  - id: w
    timeout: 1s
    retry: { attempts: 1 }
    run: |${ESCAPES}
`);
    const r = await runCli(['run'], { cwd: p.dir });
    const escaped = Number((await readLines(join(p.dir, 'escaped.pid')))[0]);
    const stubborn = Number((await readLines(join(p.dir, 'stubborn.pid')))[0]);
    strays.push(escaped, stubborn);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/timed out after 1s/);
    await goneWithin(escaped, 2000);
    await goneWithin(stubborn, 2000);

    const q = await project(`version: 1
steps:
  - id: w
    run: |${ESCAPES}
`);
    const b = await runCli(['run', '--time-budget', '2s'], { cwd: q.dir });
    const e2 = Number((await readLines(join(q.dir, 'escaped.pid')))[0]);
    strays.push(e2);
    expect(b.code).toBe(75);
    await goneWithin(e2, 2000);
  });

  it('a SIGKILLed engine: its watcher ends the running unit and its escapees; finished units keep theirs', async () => {
    const p = await project(`version: 1
steps:
  - id: daemon
    run: |
      setsid sleep 300 &
      echo $! > daemon.pid
  - id: w
    run: |${ESCAPES}
`);
    const run = startCli(['run'], { cwd: p.dir });
    const escaped = await pidIn(p, 'escaped.pid');
    const daemon = Number((await readLines(join(p.dir, 'daemon.pid')))[0]);
    strays.push(escaped, daemon);
    run.child.kill('SIGKILL');
    await run.result;
    await goneWithin(escaped, 10_000);
    expect(pidAlive(daemon)).toBe(true);
  });

  it('a SIGKILLed engine whose watcher is gone too: the next run ends the escapees by their marker', async () => {
    const p = await project(`version: 1
steps:
  - id: w
    run: |${ESCAPES}
    batch: { range: { from: 0, to: 1 } }
`);
    const run = startCli(['run'], { cwd: p.dir });
    const escaped = await pidIn(p, 'escaped.pid');
    strays.push(escaped);
    // Its watcher is the bash named checkpoint-watcher whose parent is the engine.
    const watcher = await waitFor(() => watcherOf(run.child.pid ?? -1), 10_000, 'the watcher');
    process.kill(watcher, 'SIGSTOP');
    strays.push(watcher);
    // The `spawned` record (with the marker) is durable with the next group commit.
    await waitFor(
      async () =>
        (await readFile(join(runFolder(p), 'journal.ndjson'), 'utf8')).includes('"marker"') || undefined,
      10_000,
      'the spawned record',
    );
    run.child.kill('SIGKILL');
    await run.result;
    expect(pidAlive(escaped)).toBe(true);
    const next = startCli(['run'], { cwd: p.dir });
    await waitFor(() => !pidAlive(escaped) || undefined, 20_000, 'the escapee to be ended by the next run');
    next.child.kill('SIGINT');
    expect((await next.result).code).toBe(75);
    expect(next.output()).toMatch(/ended unit w \[0, 1\) left running by attempt 1/);
  });
});

describe('bounded output and state', () => {
  it('a 100 MB line and 20 MB of random bytes: bounded engine memory, a log of at most 64 KiB', async () => {
    const p = await project(`version: 1
steps:
  - id: long-line
    run: head -c 100000000 /dev/zero | tr '\\0' a
  - id: noise
    run: |
      head -c 20000000 /dev/urandom
      exit 1
    retry: { attempts: 1 }
`);
    const run = startCli(['run'], { cwd: p.dir });
    let most = 0;
    const poll = setInterval(() => {
      try {
        const st = readFileSync(`/proc/${run.child.pid}/status`, 'utf8');
        const kb = Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0);
        most = Math.max(most, kb);
      } catch {
        // Ended.
      }
    }, 20);
    const r = await run.result;
    clearInterval(poll);
    expect(r.code).toBe(1);
    const log = join(runFolder(p), 'logs', 'noise', '0.log');
    expect(statSync(log).size).toBeLessThanOrEqual(64 * 1024);
    // The engine (Node, the loader, vitest's transform of the sources) sits near 100 MB on its own.
    expect(most).toBeLessThan(400 * 1024);
  });

  it('a finished run whose units all print keeps a few files: logs only of units that did not succeed', async () => {
    const p = await project(`version: 1
concurrency: 4
steps:
  - id: w
    run: echo "unit $CHECKPOINT_BATCH_INDEX says hello"
    batch: { range: { from: 0, to: 600 }, parallel: 4 }
`);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    const { files, bytes } = filesUnder(runFolder(p));
    expect(files).toBeLessThan(30);
    expect(bytes).toBeLessThan(1024 * 1024);
  });
});

describe('complete runs', () => {
  it('a run over a complete run is a no-op: exit 0 and one line; a changed step runs in that same run', async () => {
    const p = await project(`version: 1
steps:
  - id: a
    run: echo a >> effects.log
  - id: b
    run: echo b >> effects.log
`);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    const id = readFileSync(join(p.dir, '.checkpoints', 'latest'), 'utf8').trim();
    const again = await runCli(['run'], { cwd: p.dir });
    expect(again.code).toBe(0);
    const lines = again.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`run ${id} of plan .* is complete: nothing to do .*--new`));
    expect(await readLines(p.effects)).toEqual(['a', 'b']);
    const dry = await runCli(['run', '--dry-run'], { cwd: p.dir });
    expect(dry.stdout).toMatch(/is complete: nothing to do/);

    writeFileSync(p.plan, readFileSync(p.plan, 'utf8').replace('echo b >>', 'echo b2 >>'));
    const changed = await runCli(['run'], { cwd: p.dir });
    expect(changed.code).toBe(0);
    expect(readFileSync(join(p.dir, '.checkpoints', 'latest'), 'utf8').trim()).toBe(id);
    expect(await readLines(p.effects)).toEqual(['a', 'b', 'b2']);
  });
});

describe('set-up', () => {
  it('a signal while the items command hangs ends it, releases the lease and exits 75', async () => {
    const p = await project(`version: 1
steps:
  - id: w
    run: echo "$CHECKPOINT_ITEM"
    batch:
      items: { command: "echo $$ > items.pid; sleep 300" }
`);
    const run = startCli(['run'], { cwd: p.dir });
    const pid = await pidIn(p, 'items.pid');
    strays.push(pid);
    const t0 = Date.now();
    run.child.kill('SIGINT');
    const r = await run.result;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/received SIGINT during set-up; nothing ran/);
    await goneWithin(pid, 2000);
    writeFileSync(p.plan, readFileSync(p.plan, 'utf8').replace('sleep 300', 'echo x'));
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
  });
});
