// The committed bundle, run the way users run it: `node dist/cli/index.js`, on the quickstart example.
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/cli.js';

const cli = join(repoRoot, 'dist/cli/index.js');
let work: string | undefined;

function run(args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd,
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('close', (code) => resolve({ code, out }));
  });
}

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('dist/cli/index.js', () => {
  it('runs the quickstart to completion, interrupted once and resumed', async () => {
    work = await mkdtemp(join(tmpdir(), 'ckpt-e2e-'));
    await cp(join(repoRoot, 'examples/quickstart/checkpoint.yml'), join(work, 'checkpoint.yml'));
    const first = spawn(process.execPath, [cli, 'run'], {
      cwd: work,
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const interrupted = new Promise<number | null>((resolve) => {
      first.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      first.on('close', (code) => resolve(code));
    });
    // Interrupt once some chunks are written.
    for (;;) {
      const parts = await readdir(join(work, 'out')).catch(() => [] as string[]);
      if (parts.length >= 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGINT');
    expect(await interrupted).toBe(75);
    expect(out).toMatch(/stopped early: received SIGINT/);
    const second = await run(['run'], work);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/resuming run quickstart-/);
    expect(second.out).toMatch(/summed 2000 rows in 20 chunks: total 1000711/);
    const status = await run(['status', '--json'], work);
    const doc = JSON.parse(status.out);
    expect(doc.complete).toBe(true);
    expect(doc.attempts.length).toBe(2);
    expect(
      JSON.parse(await readFile(join(work, '.checkpoints', doc.runId, 'outputs.json'), 'utf8')).report.total,
    ).toBe('1000711');
  });

  it('prints its version and help', async () => {
    const v = await run(['--version'], repoRoot);
    expect(v.code).toBe(0);
    expect(v.out.trim()).toBe(JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')).version);
    const h = await run(['--help'], repoRoot);
    expect(h.out).toMatch(/run \[options\]/);
    expect(h.out).toMatch(/mark-done/);
  });

  it('stops writing quietly when its reader has gone (`checkpoint --help | head -1`), no stack trace', async () => {
    const child = spawn(process.execPath, [cli, '--help'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Our end of stdout is closed before the child can have started Node: every write it makes gets EPIPE.
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(err).toBe('');
    expect(code).toBe(0);
  });
});
