// provablyOurs against real processes: a detached `sleep` with the marker in its environment is ours; the
// same without the marker, with another marker, on another host, with another start time, pid 1, this
// process, its group and its ancestors never are.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { provablyOurs, TRACKING_VAR, whyNotOurs } from '../../src/exec/ownership.js';
import { processStartTime } from '../../src/journal/lock.js';
import { repoRoot } from '../support/cli.js';

const children: ChildProcess[] = [];
const register = join(repoRoot, 'test/support/register.mjs');
const ownershipModule = join(repoRoot, 'src/exec/ownership.ts');
const lockModule = join(repoRoot, 'src/journal/lock.ts');

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A detached `sleep` (its own process group, as units are), with `env` added; resolves once it has exec'd. */
async function sleeper(env: Record<string, string> = {}): Promise<{ pid: number; startTime: number }> {
  const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { ...process.env, ...env } });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pid = child.pid as number;
  // 'spawn' fires after exec succeeded, so /proc/<pid>/environ is sleep's own.
  const startTime = processStartTime(pid);
  if (startTime === undefined) throw new Error(`no start time for ${pid}`);
  return { pid, startTime };
}

function pgrpOfSelf(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[2]);
}

describe.runIf(process.platform === 'linux')('provablyOurs', () => {
  const host = hostname();

  it('is true for a process carrying the recorded marker, with host and start time matching', async () => {
    const p = await sleeper({ [TRACKING_VAR]: 'abc-work-7' });
    expect(whyNotOurs({ pid: p.pid, host, startTime: p.startTime, marker: 'abc-work-7' })).toBeUndefined();
    expect(provablyOurs({ pid: p.pid, host, startTime: p.startTime, marker: 'abc-work-7' })).toBe(true);
  });

  it('is false for a process carrying only part of the marker', async () => {
    const p = await sleeper({ [TRACKING_VAR]: 'abc' });
    expect(provablyOurs({ pid: p.pid, host, startTime: p.startTime, marker: 'abc-work-7' })).toBe(false);
    expect(provablyOurs({ pid: p.pid, host, startTime: p.startTime, marker: 'ab' })).toBe(false);
  });

  it('is false without the marker, with another marker, or with none recorded', async () => {
    const bare = await sleeper();
    expect(provablyOurs({ pid: bare.pid, host, startTime: bare.startTime, marker: 'abc-work-7' })).toBe(
      false,
    );
    expect(whyNotOurs({ pid: bare.pid, host, startTime: bare.startTime, marker: 'abc-work-7' })).toMatch(
      /does not carry/,
    );
    const other = await sleeper({ [TRACKING_VAR]: 'abc-work-70' });
    // A prefix of the value is not the value.
    expect(provablyOurs({ pid: other.pid, host, startTime: other.startTime, marker: 'abc-work-7' })).toBe(
      false,
    );
    // An older checkpoint records no marker: never ours, even for a process that has one.
    expect(provablyOurs({ pid: other.pid, host, startTime: other.startTime })).toBe(false);
    expect(provablyOurs({ pid: other.pid, host, startTime: other.startTime, marker: '' })).toBe(false);
  });

  it('is false on another host or with another start time', async () => {
    const p = await sleeper({ [TRACKING_VAR]: 'm1' });
    expect(
      provablyOurs({ pid: p.pid, host: `${host}-elsewhere`, startTime: p.startTime, marker: 'm1' }),
    ).toBe(false);
    expect(provablyOurs({ pid: p.pid, host, startTime: p.startTime + 1, marker: 'm1' })).toBe(false);
    expect(provablyOurs({ pid: p.pid, host, marker: 'm1' })).toBe(false);
  });

  it('is false for a process that does not lead its own group', async () => {
    // Not detached: it stays in this process's group.
    const child = spawn('sleep', ['300'], { stdio: 'ignore', env: { ...process.env, [TRACKING_VAR]: 'm2' } });
    children.push(child);
    await new Promise((resolve) => child.once('spawn', resolve));
    const pid = child.pid as number;
    const startTime = processStartTime(pid);
    expect(whyNotOurs({ pid, host, startTime, marker: 'm2' })).toMatch(/process group/);
  });

  it('never names pid 0, 1 or a negative pid, this process, its group or an ancestor', () => {
    const self = process.pid;
    const selfStart = processStartTime(self);
    // This process has the marker in its environment for the length of the test: still never ours.
    for (const pid of [0, 1, -1, self, pgrpOfSelf(), process.ppid]) {
      const startTime = processStartTime(pid);
      expect(provablyOurs({ pid, host, startTime, marker: 'x' }), `pid ${pid}`).toBe(false);
    }
    expect(whyNotOurs({ pid: self, host, startTime: selfStart, marker: 'x' })).toMatch(/this process/);
    expect(whyNotOurs({ pid: 1, host, startTime: processStartTime(1), marker: 'x' })).toMatch(/never/);
    expect(provablyOurs({ pid: Number.NaN, host, startTime: 1, marker: 'x' })).toBe(false);
    expect(provablyOurs({ pid: 2 ** 60, host, startTime: 1, marker: 'x' })).toBe(false);
  });

  it('never names an ancestor, even a group leader carrying the marker', async () => {
    // P: a detached node with the marker; it starts G, detached too, which asks about P, its parent.
    const g = `const { spawnSync } = require('node:child_process');
      const r = spawnSync(process.execPath, ['--no-warnings', '--import', ${JSON.stringify(register)}, '--input-type=module', '-e',
        ${JSON.stringify(`import { whyNotOurs } from ${JSON.stringify(ownershipModule)};
          import { processStartTime } from ${JSON.stringify(lockModule)};
          import { hostname } from 'node:os';
import { join } from 'node:path';
          const pid = process.ppid;
          process.stdout.write(String(whyNotOurs({ pid, host: hostname(), startTime: processStartTime(pid), marker: 'anc' })));`)}],
        { detached: true, encoding: 'utf8' });
      process.stdout.write(r.stdout + r.stderr);`;
    const child = spawn(process.execPath, ['-e', g], {
      detached: true,
      env: { ...process.env, [TRACKING_VAR]: 'anc' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await new Promise((resolve) => child.once('close', resolve));
    expect(out).toMatch(/is an ancestor of this process/);
  });

  it('is false once the process is gone', async () => {
    const p = await sleeper({ [TRACKING_VAR]: 'm3' });
    const child = children[children.length - 1] as ChildProcess;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(provablyOurs({ pid: p.pid, host, startTime: p.startTime, marker: 'm3' })).toBe(false);
  });
});
