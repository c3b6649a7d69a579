import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  acquireLease,
  inspectLease,
  isProcessAlive,
  type LeaseRecord,
  LockedError,
  processStartTime,
  readLease,
} from '../../src/journal/lock.js';
import { compileJournalModules, deadPid, JsonChild, makeTempDir, removeDir, waitFor } from './support.js';

let childDir: string;
let runDir: string;
const children: JsonChild[] = [];

beforeAll(async () => {
  childDir = await compileJournalModules(await makeTempDir('lock-child'));
  // A contender: (optionally waits for "go"), tries to acquire, reports, holds until stdin closes.
  await writeFile(
    join(childDir, 'contender.mjs'),
    `import { createInterface } from 'node:readline';
import { acquireLease } from './journal/lock.js';
const [runDir, mode] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const send = (message) => process.stdout.write(JSON.stringify(message) + '\\n');
if (mode === 'race') {
  send({ ready: true });
  await lines.next();
}
try {
  const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 2 }, { heartbeatMs: 200 });
  send({ ok: true, pid: process.pid, tookOver: lease.tookOver?.reason ?? null });
} catch (error) {
  send({ ok: false, name: error.name, message: error.message, holderPid: error.holder?.pid ?? null });
}
await lines.next();
process.exit(0);
`,
  );
});
afterAll(async () => {
  await removeDir(childDir);
});
beforeEach(async () => {
  runDir = await makeTempDir('lock');
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.process.kill('SIGKILL');
    await child.exited;
  }
  await removeDir(runDir);
});

function contender(mode: 'hold' | 'race' = 'hold'): JsonChild {
  const child = new JsonChild(process.execPath, [join(childDir, 'contender.mjs'), runDir, mode]);
  children.push(child);
  return child;
}

function record(overrides: Partial<LeaseRecord>): LeaseRecord {
  return {
    pid: 4242,
    host: 'runner-1',
    runId: 'nightly',
    attempt: 2,
    heartbeat: Date.now(),
    nonce: 'their-nonce',
    ...overrides,
  };
}

async function writeLock(value: LeaseRecord | string): Promise<void> {
  await writeFile(join(runDir, 'lock'), typeof value === 'string' ? value : JSON.stringify(value));
}

async function lockedBy(): Promise<unknown> {
  return acquireLease(runDir, { runId: 'nightly', attempt: 3 }).then(
    async (lease) => {
      await lease.release();
      throw new Error('expected LockedError, but the lease was acquired');
    },
    (error: unknown) => error,
  );
}

describe('process helpers', () => {
  it('isProcessAlive and processStartTime', async () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(isProcessAlive(await deadPid())).toBe(false);
    expect(isProcessAlive(0)).toBe(false);
    expect(isProcessAlive(-1)).toBe(false);
    const start = processStartTime(process.pid);
    if (process.platform === 'linux') {
      expect(start).toBeTypeOf('number');
      expect(isProcessAlive(process.pid, start)).toBe(true);
      expect(isProcessAlive(process.pid, (start as number) + 1)).toBe(false);
    } else {
      expect(start).toBeUndefined();
    }
  });
});

describe('acquireLease', () => {
  it('writes a 0600 lock with our identity and removes it on release', async () => {
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 1 });
    expect(lease.tookOver).toBeUndefined();
    const onDisk = JSON.parse(await readFile(join(runDir, 'lock'), 'utf8')) as LeaseRecord;
    expect(onDisk).toMatchObject({ pid: process.pid, host: hostname(), runId: 'nightly', attempt: 1 });
    expect(onDisk.nonce).toBe(lease.info.nonce);
    expect(onDisk.startTime).toBe(processStartTime(process.pid));
    expect((await stat(join(runDir, 'lock'))).mode & 0o777).toBe(0o600);
    expect(await readLease(runDir)).toEqual(onDisk);
    expect(await inspectLease(runDir)).toMatchObject({ stale: false, reason: 'alive' });

    // Not re-entrant: a second acquire in the same (live) process is refused.
    const error = await lockedBy();
    expect(error).toBeInstanceOf(LockedError);

    await lease.release();
    expect(await readdir(runDir)).toEqual([]);
    expect(await readLease(runDir)).toBeUndefined();
    const again = await acquireLease(runDir, { runId: 'nightly', attempt: 2 });
    await again.release();
  });

  it('refuses while a live child process holds it, naming its pid', async () => {
    const holder = contender();
    expect(await holder.next()).toMatchObject({ ok: true, pid: holder.pid });
    const error = await lockedBy();
    expect(error).toBeInstanceOf(LockedError);
    const locked = error as LockedError;
    expect(locked.name).toBe('LockedError');
    expect(locked.holder?.pid).toBe(holder.pid);
    expect(locked.message).toMatch(
      new RegExp(
        `^checkpoint .+ is locked by pid ${holder.pid} on host ${hostname()} \\(attempt 2, heartbeat \\d+s ago\\); ` +
          'wait for that run to finish, or stop it\\. If it is gone, its lease expires 30s after its last heartbeat\\.$',
      ),
    );
  });

  it('takes over the lock of a SIGKILLed holder', async () => {
    const holder = contender();
    expect(await holder.next()).toMatchObject({ ok: true });
    holder.process.kill('SIGKILL');
    await holder.exited;
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 3 });
    expect(lease.tookOver?.holder?.pid).toBe(holder.pid);
    expect(lease.tookOver?.reason).toBe(`process ${holder.pid} on this host is gone`);
    expect((await readLease(runDir))?.nonce).toBe(lease.info.nonce);
    await lease.release();
    expect(await readdir(runDir)).toEqual([]);
  });

  it('takes over a lock whose pid now belongs to another process', async () => {
    const start = processStartTime(process.pid);
    if (start === undefined) return; // needs /proc (Linux)
    await writeLock(record({ host: hostname(), pid: process.pid, startTime: start - 1 }));
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 3 });
    expect(lease.tookOver?.reason).toMatch(/its pid now belongs to another process/);
    await lease.release();
  });

  it('refuses a lock from another host with a fresh heartbeat, takes over a stale one', async () => {
    await writeLock(record({ heartbeat: Date.now() - 3_000 }));
    const error = await lockedBy();
    expect(error).toBeInstanceOf(LockedError);
    expect((error as LockedError).message).toMatch(
      /is locked by pid 4242 on host runner-1 \(attempt 2, heartbeat 3s ago\); wait for that run to finish/,
    );

    await writeLock(record({ heartbeat: Date.now() - 31_000 }));
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 3 });
    expect(lease.tookOver?.holder?.host).toBe('runner-1');
    expect(lease.tookOver?.reason).toBe('its last heartbeat was 31s ago (lease expires after 30s)');
    await lease.release();
  });

  it("judges a heartbeat by the holder's recorded ttl", async () => {
    await writeLock(record({ heartbeat: Date.now() - 40_000, ttlMs: 60_000 }));
    expect(await lockedBy()).toBeInstanceOf(LockedError);
    await writeLock(record({ heartbeat: Date.now() - 2_000 }));
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 3 }, { ttlMs: 1_000 });
    expect(lease.tookOver).toBeDefined();
    await lease.release();
  });

  it('respects a young unreadable lock and replaces an old one', async () => {
    await writeLock('{"pid": 12');
    const error = await lockedBy();
    expect(error).toBeInstanceOf(LockedError);
    expect((error as LockedError).holder).toBeUndefined();
    expect((error as LockedError).message).toMatch(/cannot be read/);
    const old = new Date(Date.now() - 10_000);
    await utimes(join(runDir, 'lock'), old, old);
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 3 });
    expect(lease.tookOver?.reason).toMatch(/unreadable and 10s old/);
    await lease.release();
  });

  it('clears a takeover guard abandoned by a contender that died mid-takeover', async () => {
    await writeLock(record({ heartbeat: Date.now() - 60_000 }));
    const guard = join(runDir, 'lock.takeover');
    await writeFile(guard, JSON.stringify({ pid: 1, host: 'runner-1', nonce: 'dead' }));
    const old = new Date(Date.now() - 20_000);
    await utimes(guard, old, old);
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 3 });
    expect(lease.tookOver?.holder?.nonce).toBe('their-nonce');
    await lease.release();
    expect(await readdir(runDir)).toEqual([]);
  });

  it('lets exactly one of 5 racing processes win, on an empty or a stale lock', async () => {
    const scenarios: (() => Promise<void>)[] = [
      async () => undefined,
      async () => writeLock(record({ host: hostname(), pid: await deadPid() })),
      async () => writeLock(record({ heartbeat: Date.now() - 60_000 })),
    ];
    for (const setup of scenarios) {
      for (let round = 0; round < 2; round++) {
        await setup();
        const racers = Array.from({ length: 5 }, () => contender('race'));
        for (const racer of racers) expect(await racer.next()).toEqual({ ready: true });
        for (const racer of racers) racer.send('go');
        const results = await Promise.all(
          racers.map((r) => r.next<{ ok: boolean; pid?: number; name?: string; holderPid?: number }>()),
        );
        const winners = results.filter((r) => r.ok);
        expect(winners, JSON.stringify(results)).toHaveLength(1);
        const winner = winners[0]?.pid;
        for (const loser of results.filter((r) => !r.ok)) {
          expect(loser.name).toBe('LockedError');
          expect(loser.holderPid).toBe(winner);
        }
        expect((await readLease(runDir))?.pid).toBe(winner);
        for (const racer of racers) await racer.end();
        children.splice(0);
        await removeDir(runDir);
        runDir = await makeTempDir('lock');
      }
    }
  });
});

describe('heartbeat', () => {
  it('refreshes the heartbeat in the lock file', async () => {
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 1 }, { heartbeatMs: 20 });
    const first = (await readLease(runDir))?.heartbeat ?? 0;
    await waitFor(async () => ((await readLease(runDir))?.heartbeat ?? 0) > first);
    expect((await readLease(runDir))?.nonce).toBe(lease.info.nonce);
    await lease.release();
    expect(await readdir(runDir)).toEqual([]);
  });

  it('reports a lost lease through onLost and then leaves the new holder alone', async () => {
    let lostReason: string | undefined;
    const lost = new Promise<string>((resolve) => {
      void acquireLease(
        runDir,
        { runId: 'nightly', attempt: 1 },
        {
          heartbeatMs: 20,
          onLost: (reason) => {
            lostReason = reason;
            resolve(reason);
          },
        },
      ).then(async (lease) => {
        const later = new Promise<string>((r) => lease.onLost(r));
        await writeLock(record({ pid: 777, host: 'runner-9' }));
        expect(await later).toMatch(/taken over by pid 777 on host runner-9/);
        await lease.release(); // must not remove runner-9's lock
      });
    });
    expect(await lost).toMatch(/^the lease on .*lock was taken over by pid 777 on host runner-9$/);
    await waitFor(() => lostReason !== undefined);
    await waitFor(async () => (await readdir(runDir)).length === 1);
    expect((await readLease(runDir))?.nonce).toBe('their-nonce');
  });

  it('onLost registered after the loss is still called', async () => {
    const lease = await acquireLease(runDir, { runId: 'nightly', attempt: 1 }, { heartbeatMs: 20 });
    await writeLock(record({}));
    await waitFor(async () => {
      let called = false;
      lease.onLost(() => {
        called = true;
      });
      await Promise.resolve();
      await Promise.resolve();
      return called;
    });
    await lease.release();
    expect((await readLease(runDir))?.nonce).toBe('their-nonce');
  });
});
