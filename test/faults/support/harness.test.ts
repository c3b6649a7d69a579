// The campaigns' wait on a running CLI: it must end as soon as the run has, yet never miss what the run did
// just before it ended (torn-files once waited 180 s on a unit an earlier attempt had already run).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliResult } from '../../support/cli.js';
import { type RunningCli, waitWhileRunning } from './harness.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faults-harness-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function bash(script: string): RunningCli & { kill(): void } {
  const child = spawn('bash', ['-c', script], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const result = new Promise<CliResult>((res) => {
    child.on('close', (code, signal) => res({ code, signal, stdout: out, stderr: '' }));
  });
  return { result, output: () => out, kill: () => child.kill('SIGKILL') };
}

describe('waitWhileRunning', () => {
  it('sees what the run did just before it ended', async () => {
    const run = bash('exit 0');
    await run.result;
    // The event becomes visible only to the second look, taken once the end is known (a journal line
    // written just before the exit, read by a look that started before it).
    let looks = 0;
    const seen = () => (++looks >= 2 ? 'seen' : undefined);
    await expect(waitWhileRunning(run, seen, 60_000, 'the record')).resolves.toBe('seen');
    expect(looks).toBe(2);
  });

  it('gives up at once, with the exit and output, when the run ended without it', async () => {
    const run = bash('echo "step failed early"; exit 3');
    const t0 = performance.now();
    await expect(waitWhileRunning(run, () => undefined, 60_000, 'a unit to start')).rejects.toThrow(
      /the run ended \(exit 3, signal null\) before a unit to start:\nstep failed early/,
    );
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('times out while the run still runs, with its output so far', async () => {
    const run = bash('echo working; exec sleep 60');
    try {
      await waitWhileRunning(run, () => run.output().includes('working') || undefined, 30_000, 'output');
      await expect(waitWhileRunning(run, () => false, 300, 'the end state')).rejects.toThrow(
        /timed out after 300 ms waiting for the end state:\nworking/,
      );
    } finally {
      run.kill();
      await run.result;
    }
  });
});
