// The launcher protocol on its own (src/engine/launcher.ts): a request queued behind a running unit starts
// only when that unit exits 0, can be revoked, expires at its start-by time, and every output byte goes to
// the unit that wrote it. Units wait for files the test creates, so nothing depends on timing.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LauncherPool } from '../../src/engine/launcher.js';
import type { SpawnOptions, UnitBackend } from '../../src/engine/process.js';
import { UnitEnv } from '../../src/engine/unit-env.js';

let dir: string;
let pool: LauncherPool;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ckpt-launcher-'));
  pool = new LauncherPool({ ...process.env }, dir);
});

afterEach(async () => {
  pool.close();
  await rm(dir, { recursive: true, force: true });
});

function unit(script: string, cwd = dir): SpawnOptions {
  return { argv: ['bash', '-c', script], cwd, env: { ...process.env } };
}

/** Shell code that waits for `name` (in the test's directory) to exist. */
function waitFile(name: string): string {
  return `while [ ! -f ${JSON.stringify(join(dir, name))} ]; do sleep 0.01; done`;
}

async function touch(name: string): Promise<void> {
  await writeFile(join(dir, name), '');
}

function capture(b: UnitBackend): { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  b.setOutput((chunk, stream) => {
    out[stream] += chunk.toString('utf8');
  });
  return out;
}

describe('launcher pipelining', () => {
  it('starts a queued unit as soon as the one ahead exits 0; each stream goes to its own unit', async () => {
    const a = await pool.start(unit(`echo a-out; echo a-err >&2; ${waitFile('go')}; printf a-tail`), 0);
    const aOut = capture(a);
    expect(a.pid).toBeGreaterThan(0);
    expect(pool.canQueue(0)).toBe(true);
    let promoted = 0;
    const h = pool.queue(unit('echo b-out; echo b-err >&2; printf b-tail >&2'), 0, undefined, () => {
      promoted += 1;
    });
    expect(pool.canQueue(0)).toBe(false);
    await touch('go');
    const b = await h.started;
    expect(b?.pid).toBeGreaterThan(0);
    expect(b?.pid).not.toBe(a.pid);
    if (!b) return;
    const bOut = capture(b);
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await b.exited).toEqual({ code: 0, signal: null });
    expect(promoted).toBe(1);
    expect(aOut).toEqual({ stdout: 'a-out\na-tail', stderr: 'a-err\n' });
    expect(bOut).toEqual({ stdout: 'b-out\n', stderr: 'b-err\nb-tail' });
  });

  it('output stays with its unit over many rounds of queued starts (streams arrive in any interleaving)', async () => {
    for (let n = 0; n < 40; n++) {
      const a = await pool.start(unit(`echo a-out; echo a-err >&2; ${waitFile(`go${n}`)}; printf a-tail`), 0);
      const aOut = capture(a);
      const h = pool.queue(unit('echo b-out; echo b-err >&2; printf b-tail >&2'), 0, undefined, () => {});
      await touch(`go${n}`);
      const b = await h.started;
      if (!b) throw new Error(`round ${n}: the queued unit did not start`);
      const bOut = capture(b);
      await a.exited;
      await b.exited;
      expect({ round: n, a: aOut, b: bOut }).toEqual({
        round: n,
        a: { stdout: 'a-out\na-tail', stderr: 'a-err\n' },
        b: { stdout: 'b-out\n', stderr: 'b-err\nb-tail' },
      });
    }
  });

  it('does not start a queued unit when the one ahead fails; the launcher then takes new requests', async () => {
    const a = await pool.start(unit(`${waitFile('go')}; exit 3`), 0);
    let promoted = 0;
    const h = pool.queue(unit('touch b-ran'), 0, undefined, () => {
      promoted += 1;
    });
    await touch('go');
    expect(await h.started).toBeUndefined();
    expect(await a.exited).toEqual({ code: 3, signal: null });
    expect(promoted).toBe(0);
    const c = await pool.start(unit('echo c'), 0);
    const cOut = capture(c);
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(cOut.stdout).toBe('c\n');
    expect(existsSync(join(dir, 'b-ran'))).toBe(false);
  });

  it('a revoke that reaches the launcher before the unit ahead ends keeps the queued unit from starting', async () => {
    const a = await pool.start(unit(waitFile('go')), 0);
    const h = pool.queue(unit('touch b-ran'), 0, undefined, () => {});
    h.revoke();
    await touch('go');
    expect(await h.started).toBeUndefined();
    expect(await a.exited).toEqual({ code: 0, signal: null });
    const c = await pool.start(unit('echo c'), 0);
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(join(dir, 'b-ran'))).toBe(false);
  });

  it('a revoke that comes after the start is ignored, and does not affect the next request', async () => {
    const a = await pool.start(unit(waitFile('go')), 0);
    const h = pool.queue(unit(`${waitFile('go2')}; echo b`), 0, undefined, () => {});
    await touch('go');
    const b = await h.started;
    expect(b?.pid).toBeGreaterThan(0);
    if (!b) return;
    h.revoke();
    const bOut = capture(b);
    await touch('go2');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await b.exited).toEqual({ code: 0, signal: null });
    expect(bOut.stdout).toBe('b\n');
    // The late revoke byte is skipped, not taken for the next request's answer.
    const c = await pool.start(unit('echo c'), 0);
    const cOut = capture(c);
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(cOut.stdout).toBe('c\n');
  });

  it('a queued unit past its start-by time is not started; one within it is', async () => {
    const a = await pool.start(unit(waitFile('go')), 0);
    const late = pool.queue(unit('touch late-ran'), 0, (Date.now() - 1000) * 1000, () => {});
    await touch('go');
    expect(await late.started).toBeUndefined();
    await a.exited;
    const c = await pool.start(unit(waitFile('go2')), 0);
    const inTime = pool.queue(unit('echo in-time'), 0, (Date.now() + 600_000) * 1000, () => {});
    await touch('go2');
    const b = await inTime.started;
    expect(b?.pid).toBeGreaterThan(0);
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(await b?.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(join(dir, 'late-ran'))).toBe(false);
  });

  it('a queued unit that cannot start is reported as its own failure, not the failure of the unit ahead', async () => {
    const a = await pool.start(unit(waitFile('go')), 0);
    const h = pool.queue(unit('true', join(dir, 'missing')), 0, undefined, () => {});
    await touch('go');
    const b = await h.started;
    expect(await a.exited).toEqual({ code: 0, signal: null });
    const bExit = await b?.exited;
    expect(bExit?.spawnError).toMatch(/working directory does not exist/);
  });

  it('a step-wide environment with per-unit variables: values, removals and the cached prefix', async () => {
    const fixed: NodeJS.ProcessEnv = { ...process.env, FIXED: "it's \\ fixed\n" };
    delete fixed.HOME;
    const script = 'printf "%s|%s|%s\\n" "$FIXED" "$OWN" "$(printenv HOME || echo none)"';
    const outs: string[] = [];
    for (const own of ['one', 'two']) {
      const b = await pool.start(
        { argv: ['bash', '-c', script], cwd: dir, env: new UnitEnv(fixed, { OWN: own }) },
        0,
      );
      const o = capture(b);
      await b.exited;
      outs.push(o.stdout);
    }
    expect(outs).toEqual(["it's \\ fixed\n|one|none\n", "it's \\ fixed\n|two|none\n"]);
  });
});

describe('launcher availability', () => {
  it('needs bash 5 or later first on PATH; an older one (macOS /bin/bash is 3.2) means direct spawns', async () => {
    const old = await mkdtemp(join(tmpdir(), 'ckpt-old-bash-'));
    try {
      // The first check of this bash (the answer is kept): as the runner starts the action, with no SHLVL.
      // bash must not take itself for an rshd session and source ~/.bashrc, slow on CI runners.
      await writeFile(join(old, '.bashrc'), `echo sourced > ${JSON.stringify(join(old, 'bashrc-ran'))}\n`);
      const env: NodeJS.ProcessEnv = { ...process.env, HOME: old };
      delete env.SHLVL;
      expect(LauncherPool.available(env)).toBe(true);
      expect(existsSync(join(old, 'bashrc-ran'))).toBe(false);
      expect(LauncherPool.available(process.env)).toBe(true);
      await writeFile(join(old, 'bash'), '#!/bin/sh\necho 3\n', { mode: 0o755 });
      expect(LauncherPool.available({ PATH: `${old}:${process.env.PATH}` })).toBe(false);
      expect(LauncherPool.available({ PATH: '/nonexistent' })).toBe(false);
      expect(LauncherPool.available({ ...process.env, CHECKPOINT_LAUNCHER: '0' })).toBe(false);
    } finally {
      await rm(old, { recursive: true, force: true });
    }
  });
});
