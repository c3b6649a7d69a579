// The engine where there is no /proc (as on macOS), on Linux: each engine runs in a mount namespace whose
// /proc is an empty tmpfs (root, `unshare`; skipped with the reason otherwise).
//  - With the real procps `ps`, which itself needs /proc and fails: the safe degradation. An orphan pass
//    signals nothing it cannot prove (the units of a SIGKILLed attempt keep running), says so in a warning,
//    the run goes on, and the engine still ends its own units' process groups.
//  - With a `ps` on PATH that runs the real one over the real /proc in a namespace of its own (so the engine
//    sees no /proc and asks `ps`, as on macOS): the whole ps path. The next run ends what a SIGKILLed
//    attempt left, found by its marker in the environment, never a process that has it in its arguments;
//    ownership is proven from ps's wall start time and never from a start time of the other kind.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TRACKING_VAR } from '../../src/exec/marker.js';
import {
  type Project,
  pidAlive,
  readLines,
  repoRoot,
  useProjects,
  waitFor,
  watcherOf,
} from '../support/cli.js';

const register = join(repoRoot, 'test/support/register.mjs');
const entry = join(repoRoot, 'src/cli/index.ts');

/** Why /proc cannot be hidden here, or undefined when it can. */
function cannotHide(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (mounting over /proc needs it)';
  const r = spawnSync(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      'mount -t tmpfs none /proc && ! test -e /proc/self/stat',
    ],
    { stdio: 'ignore' },
  );
  if (r.error) return `no unshare (${r.error.message})`;
  if (r.status !== 0) return `unshare --mount cannot hide /proc here (exit ${r.status})`;
  return undefined;
}

const skip = cannotHide();
if (skip !== undefined) console.warn(`test/exec/no-proc.test.ts skipped: ${skip}`);

const realPs =
  skip === undefined ? execFileSync('sh', ['-c', 'command -v ps'], { encoding: 'utf8' }).trim() : '';

type Mode = 'ps-fails' | 'ps-works';

/**
 * A `ps` that runs the real one over the real /proc: the engine's namespace bind-mounts /proc at `<dir>/proc`
 * before hiding it, and this `ps` mounts that back in a namespace of its own.
 */
function fakePs(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  mkdirSync(join(dir, 'proc'), { recursive: true });
  writeFileSync(
    join(bin, 'ps'),
    `#!/bin/sh\nexec unshare --mount --propagation private -- sh -c 'mount --bind "$0" /proc && exec ${realPs} "$@"' ${join(dir, 'proc')} "$@"\n`,
    { mode: 0o755 },
  );
  return bin;
}

/** `argv` (a node command) in a namespace with /proc hidden; `ps-works` puts the replaying ps first on PATH. */
function hidden(argv: string[], opts: { cwd: string; mode: Mode; dir: string }): ChildProcess {
  let setup = 'mount -t tmpfs none /proc';
  let path = process.env.PATH ?? '/usr/bin:/bin';
  if (opts.mode === 'ps-works') {
    path = `${fakePs(opts.dir)}:${path}`;
    setup = `mount --rbind /proc ${join(opts.dir, 'proc')} && ${setup}`;
  }
  // `exec`: the pid spawned here ends up being node's, as the engine's watcher sees it (its parent).
  return spawn(
    'unshare',
    ['--mount', '--propagation', 'private', '--', 'sh', '-c', `${setup} && exec "$@"`, 'sh', ...argv],
    {
      cwd: opts.cwd,
      env: { ...process.env, PATH: path, CI: 'true', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

interface Run {
  child: ChildProcess;
  output(): string;
  result: Promise<{ code: number | null; output: string }>;
  waitForOutput(re: RegExp, ms?: number): Promise<void>;
}

function hiddenCli(args: string[], p: Project, mode: Mode): Run {
  const child = hidden([process.execPath, '--no-warnings', '--import', register, entry, ...args], {
    cwd: p.dir,
    mode,
    dir: p.dir,
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const result = new Promise<{ code: number | null; output: string }>((res) =>
    child.on('close', (code) => res({ code, output: out })),
  );
  let ended = false;
  void result.then(() => {
    ended = true;
  });
  return {
    child,
    output: () => out,
    result,
    waitForOutput: (re, ms = 30_000) =>
      waitFor(
        () => re.test(out) || (ended ? Promise.reject(new Error(`ended before ${re}:\n${out}`)) : undefined),
        ms,
        `${re} in:\n${out}`,
      ).then(() => undefined),
  };
}

const project = useProjects();
const strays: number[] = [];
afterEach(() => {
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
});

async function pidIn(p: Project, file: string, not?: number): Promise<number> {
  return waitFor(
    async () => {
      const n = Number((await readLines(join(p.dir, file)))[0]);
      return Number.isSafeInteger(n) && n > 0 && n !== not ? n : undefined;
    },
    30_000,
    `${file} to be written`,
  );
}

const PLAN = `version: 1
steps:
  - id: w
    run: |
      setsid sleep 300 &
      echo $! > escaped.pid
      echo $$ > leader.pid
      sleep 300
    batch: { range: { from: 0, to: 1 } }
`;

/**
 * Attempt 1 in a hidden-/proc namespace, SIGKILLed with its watcher stopped first: its unit (leader, and a
 * `setsid` escapee) is left running, as after a host-level kill. Returns their pids and the unit's marker.
 */
async function killedAttempt(
  p: Project,
  mode: Mode,
): Promise<{ leader: number; escaped: number; marker: string }> {
  const run = hiddenCli(['run'], p, mode);
  const escaped = await pidIn(p, 'escaped.pid');
  const leader = await pidIn(p, 'leader.pid');
  strays.push(escaped, leader);
  const watcher = await waitFor(() => watcherOf(run.child.pid ?? -1), 10_000, 'the watcher');
  process.kill(watcher, 'SIGSTOP');
  strays.push(watcher);
  const journal = join(
    p.dir,
    '.checkpoints',
    readFileSync(join(p.dir, '.checkpoints', 'latest'), 'utf8').trim(),
    'journal.ndjson',
  );
  const spawned = await waitFor(
    async () => (await readFile(journal, 'utf8')).split('\n').find((l) => l.includes('"spawned"')),
    10_000,
    'the spawned record',
  );
  run.child.kill('SIGKILL');
  await run.result;
  const record = JSON.parse(spawned) as { marker: string; startTime?: number };
  // Without /proc a unit's start is never worth a ps call: it is found by its marker.
  expect(record.startTime).toBeUndefined();
  expect(pidAlive(escaped) && pidAlive(leader)).toBe(true);
  return { leader, escaped, marker: record.marker };
}

describe.skipIf(skip !== undefined)('without /proc', () => {
  it('ps failing: nothing unprovable is signalled, a warning says so, own groups are still ended', async () => {
    const p = await project(PLAN);
    const first = await killedAttempt(p, 'ps-fails');
    const next = hiddenCli(['run'], p, 'ps-fails');
    await next.waitForOutput(
      /could not look for processes left running by 1 unit\(s\) of an earlier attempt/,
    );
    expect(next.output()).toMatch(/\/proc is not readable here and `ps -A [^`]*` failed \(exit \d+\)/);
    expect(next.output()).toMatch(/none of them was signalled/);
    const leader = await pidIn(p, 'leader.pid', first.leader);
    strays.push(await pidIn(p, 'escaped.pid', first.escaped));
    // Attempt 1's unit could not be proven ours: still running.
    expect(pidAlive(first.leader) && pidAlive(first.escaped)).toBe(true);
    next.child.kill('SIGINT');
    const r = await next.result;
    expect(r.code, r.output).toBe(75);
    // Its own unit's group the engine ends without asking anyone.
    expect(pidAlive(leader)).toBe(false);
    expect(r.output).not.toMatch(/internal error|TypeError|at .*\.ts:\d+/);
  });

  it('ps working: the next run ends what the attempt left by its marker, never a process naming it in its arguments', async () => {
    const p = await project(PLAN);
    const first = await killedAttempt(p, 'ps-works');
    // Not ours: the marker is among its arguments, not in its environment.
    const poser = spawn('sh', ['-c', 'sleep 300; :', `${TRACKING_VAR}=${first.marker}`], {
      detached: true,
      stdio: 'ignore',
    });
    strays.push(poser.pid as number);
    const next = hiddenCli(['run'], p, 'ps-works');
    await next.waitForOutput(
      /ended unit w \[0, 1\) left running by attempt 1 \(\d+ process\(es\) it started\)/,
    );
    await waitFor(
      () => (!pidAlive(first.escaped) && !pidAlive(first.leader)) || undefined,
      10_000,
      'attempt 1 to be ended',
    );
    const leader = await pidIn(p, 'leader.pid', first.leader);
    const escaped = await pidIn(p, 'escaped.pid', first.escaped);
    strays.push(escaped);
    next.child.kill('SIGINT');
    const r = await next.result;
    expect(r.code, r.output).toBe(75);
    // Its own unit ends with everything carrying its marker, found through ps too.
    expect(pidAlive(leader)).toBe(false);
    expect(pidAlive(escaped)).toBe(false);
    expect(pidAlive(poser.pid as number)).toBe(true);
    expect(r.output).not.toMatch(/could not look/);
  });

  it.each<Mode>([
    'ps-works',
    'ps-fails',
  ])('ownership through ps (%s): proven by a ps start time only', async (mode) => {
    const p = await project(PLAN);
    const script = `
      import { spawn } from 'node:child_process';
      import { hostname } from 'node:os';
      import { whyNotOurs } from ${JSON.stringify(join(repoRoot, 'src/exec/ownership.ts'))};
      import { processStartTime, acquireLease } from ${JSON.stringify(join(repoRoot, 'src/journal/lock.ts'))};
      import { processSource } from ${JSON.stringify(join(repoRoot, 'src/exec/ps.ts'))};
      const c = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { ...process.env, ${TRACKING_VAR}: 'm.1' } });
      await new Promise((r) => c.once('spawn', r));
      const host = hostname();
      const start = processStartTime(c.pid, { ps: true });
      const out = {
        source: processSource().kind,
        cheap: processStartTime(c.pid) ?? null,
        start: start ?? null,
        ours: whyNotOurs({ pid: c.pid, host, startTime: start, marker: 'm.1' }) ?? null,
        ticks: whyNotOurs({ pid: c.pid, host, startTime: 12345, marker: 'm.1' }) ?? null,
        other: whyNotOurs({ pid: c.pid, host, startTime: start, marker: 'm.2' }) ?? null,
        self: whyNotOurs({ pid: process.pid, host, startTime: processStartTime(process.pid, { ps: true }), marker: 'm.1' }) ?? null,
      };
      const lease = await acquireLease(${JSON.stringify(join(p.dir, 'run'))}, { runId: 'r', attempt: 1 });
      out.lease = JSON.parse((await import('node:fs')).readFileSync(${JSON.stringify(join(p.dir, 'run', 'lock'))}, 'utf8')).startTime ?? null;
      await lease.release();
      c.kill('SIGKILL');
      process.stdout.write(JSON.stringify(out));`;
    const child = hidden(
      [process.execPath, '--no-warnings', '--import', register, '--input-type=module', '-e', script],
      {
        cwd: p.dir,
        mode,
        dir: p.dir,
      },
    );
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise((r) => child.on('close', r));
    expect(code, err).toBe(0);
    const r = JSON.parse(out) as Record<string, string | number | null>;
    expect(r.source).toBe('ps');
    expect(r.cheap).toBeNull();
    if (mode === 'ps-works') {
      expect(r.start).toBeGreaterThan(2 ** 52);
      expect(r.ours).toBeNull();
      expect(r.ticks).toMatch(/cannot be compared/);
      expect(r.other).toMatch(/does not carry this unit's/);
      expect(r.self).toMatch(/this process/);
      expect(r.lease).toBeGreaterThan(2 ** 52);
    } else {
      expect(r.start).toBeNull();
      expect(r.ours).toMatch(/no start time was recorded/);
      expect(r.ticks).toMatch(/cannot be checked: \/proc is not readable here and `ps/);
      expect(r.lease).toBeNull();
    }
  });
});
