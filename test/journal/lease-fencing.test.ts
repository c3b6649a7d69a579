// Leases and fencing with real processes (DESIGN §4): a live holder on this host is never taken over,
// whatever its heartbeat says (a clock 10 minutes off, a holder stopped past its TTL); a stalled holder on
// another host is taken over once its heartbeat is stale, and once it wakes it writes nothing more — not a
// journal line, not a heartbeat over the new holder's lock.
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { JournalWriter, readJournal } from '../../src/journal/journal-file.js';
import {
  acquireLease,
  inspectLease,
  LeaseLostError,
  LockedError,
  readLease,
} from '../../src/journal/lock.js';
import { runCli, startCli, tempProject, waitFor as waitForCli } from '../support/cli.js';
import { compileJournalModules, JsonChild, makeTempDir, removeDir, waitFor } from './support.js';

let childDir: string;
let runDir: string;
const children: JsonChild[] = [];
const TTL = 1000;

beforeAll(async () => {
  childDir = await compileJournalModules(await makeTempDir('fence-child'));
  // A holder: takes the lease (as `host`), opens the journal fenced by it, and appends on request.
  await writeFile(
    join(childDir, 'holder.mjs'),
    `import { createInterface } from 'node:readline';
import { acquireLease } from './journal/lock.js';
import { JournalWriter } from './journal/journal-file.js';
const [runDir, host, ttl] = process.argv.slice(2);
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
let lease;
try {
  lease = await acquireLease(runDir, { runId: 'r', attempt: 1 }, { host, ttlMs: Number(ttl), heartbeatMs: 100 });
} catch (error) {
  send({ ok: false, name: error.name, message: error.message });
  process.exit(0);
}
const writer = await JournalWriter.open(runDir + '/journal.ndjson', { fence: () => lease.assertHeld() });
send({ ok: true, pid: process.pid, heartbeat: lease.info.heartbeat });
for await (const line of createInterface({ input: process.stdin })) {
  const n = Number(line);
  try {
    await writer.append({ type: 'x', seq: n, by: 'holder' });
    send({ appended: n });
  } catch (error) {
    send({ refused: n, name: error.cause?.name ?? error.name, message: error.message });
  }
}
process.exit(0);
`,
  );
});
afterAll(async () => {
  await removeDir(childDir);
});
beforeEach(async () => {
  runDir = await makeTempDir('fence');
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.process.kill('SIGCONT');
    child.process.kill('SIGKILL');
    await child.exited;
  }
  await removeDir(runDir);
});

/** A holder child; `skew` runs it under faketime (`+10m`, `-10m`). */
function holder(host: string, skew?: string): JsonChild {
  const script = [join(childDir, 'holder.mjs'), runDir, host, String(TTL)];
  const child = skew
    ? new JsonChild('faketime', ['-f', skew, process.execPath, ...script])
    : new JsonChild(process.execPath, script);
  children.push(child);
  return child;
}

async function refusedHere(): Promise<unknown> {
  return acquireLease(runDir, { runId: 'r', attempt: 2 }, { ttlMs: TTL }).then(
    async (lease) => {
      await lease.release();
      return undefined;
    },
    (error: unknown) => error,
  );
}

async function journalBy(): Promise<string[]> {
  return (await readJournal(join(runDir, 'journal.ndjson'))).events.map((e) => `${e.by}:${e.seq}`);
}

describe('a live holder on this host', () => {
  it('is never taken over when its clock is 10 minutes behind (its heartbeats look 10 minutes old)', async () => {
    const h = holder(hostname(), '-10m');
    const hello = await h.next<{ ok: boolean; heartbeat: number }>();
    expect(hello.ok).toBe(true);
    expect(Date.now() - hello.heartbeat).toBeGreaterThan(9 * 60_000);
    expect((await inspectLease(runDir))?.stale).toBe(false);
    expect(await refusedHere()).toBeInstanceOf(LockedError);
    h.send('1');
    expect(await h.next()).toEqual({ appended: 1 });
  });

  it('is never taken over by a contender whose clock is 10 minutes ahead', async () => {
    const h = holder(hostname());
    expect(await h.next()).toMatchObject({ ok: true });
    const contender = holder(hostname(), '+10m');
    expect(await contender.next()).toMatchObject({ ok: false, name: 'LockedError' });
    h.send('1');
    expect(await h.next()).toEqual({ appended: 1 });
  });

  it('is never taken over while stopped past its TTL, and writes on once continued', async () => {
    const h = holder(hostname());
    expect(await h.next()).toMatchObject({ ok: true });
    h.process.kill('SIGSTOP');
    await waitFor(
      async () => Date.now() - ((await readLease(runDir))?.heartbeat ?? Date.now()) > 2 * TTL,
      10_000,
    );
    expect(await refusedHere()).toBeInstanceOf(LockedError);
    h.process.kill('SIGCONT');
    h.send('1');
    expect(await h.next()).toEqual({ appended: 1 });
    expect(await journalBy()).toEqual(['holder:1']);
  });
});

describe('a stalled holder on another host', () => {
  it('is taken over once stale; woken, it writes no line and no heartbeat over the new lock', async () => {
    const h = holder('other-runner');
    expect(await h.next()).toMatchObject({ ok: true });
    h.send('1');
    expect(await h.next()).toEqual({ appended: 1 });
    h.process.kill('SIGSTOP');
    await waitFor(async () => (await inspectLease(runDir))?.stale === true, 10_000);
    const lease = await acquireLease(runDir, { runId: 'r', attempt: 2 }, { ttlMs: 60_000, heartbeatMs: 50 });
    expect(lease.tookOver?.holder?.host).toBe('other-runner');
    const mine = await JournalWriter.open(join(runDir, 'journal.ndjson'), {
      fence: () => lease.assertHeld(),
    });
    await mine.append({ type: 'x', seq: 2, by: 'new' });
    // Queued while it is stopped: the first thing it tries once continued.
    h.send('3');
    h.process.kill('SIGCONT');
    const answer = await h.next<{ refused?: number; name?: string; message?: string }>();
    expect(answer).toMatchObject({ refused: 3, name: 'LeaseLostError' });
    expect(answer.message).toMatch(/no longer holds the lease/);
    // It keeps refusing, and its heartbeat never came back over the new holder's lock.
    h.send('4');
    expect(await h.next()).toMatchObject({ refused: 4 });
    await mine.append({ type: 'x', seq: 5, by: 'new' });
    expect((await readLease(runDir))?.nonce).toBe(lease.info.nonce);
    expect(() => lease.assertHeld()).not.toThrow();
    await mine.close();
    expect(await journalBy()).toEqual(['holder:1', 'new:2', 'new:5']);
    await lease.release();
  });
});

describe('fencing a checkpoint', () => {
  it('refuses journal lines, compaction, outputs.json, markers and item lists once the lease is lost', async () => {
    const ckpt = Checkpoint.blank(runDir, 'run-1', 'plan');
    let lost = false;
    await ckpt.openForWrite({
      lease: {
        assertHeld: () => {
          if (lost) throw new LeaseLostError(join(runDir, 'run-1', 'lock'), 'taken over by a test');
        },
      },
    });
    await ckpt.record({ type: 'approve', step: 'a', by: 'me' });
    const snapshot = await readFile(ckpt.snapshotPath, 'utf8');
    const journal = await readFile(ckpt.journalPath, 'utf8');
    lost = true;
    await expect(ckpt.record({ type: 'approve', step: 'b', by: 'me' })).rejects.toThrow(/no longer holds/);
    await expect(ckpt.compact(true)).rejects.toThrow();
    await expect(ckpt.writeOutputsFile()).rejects.toBeInstanceOf(LeaseLostError);
    await expect(ckpt.writeItems('a', ['x'])).rejects.toBeInstanceOf(LeaseLostError);
    await expect(ckpt.clearStepFiles('a')).rejects.toBeInstanceOf(LeaseLostError);
    await ckpt.close().catch(() => undefined);
    expect(await readFile(ckpt.snapshotPath, 'utf8')).toBe(snapshot);
    expect(await readFile(ckpt.journalPath, 'utf8')).toBe(journal);
  });
});

describe('the CLI with a skewed clock', () => {
  it('a second run 10 minutes ahead is refused; the first finishes and no unit runs twice', async () => {
    const p = await tempProject(`version: 1
name: skew
steps:
  - id: w
    run: |
      echo "w $CHECKPOINT_BATCH_INDEX" >> effects.log
      if [ "$CHECKPOINT_BATCH_INDEX" = 1 ]; then while [ ! -e go ]; do sleep 0.05; done; fi
    batch: { range: { from: 0, to: 3 }, size: 1, order: sequential }
`);
    try {
      const a = startCli(['run', '--run', 'shared'], { cwd: p.dir });
      await waitForCli(async () => (await readFile(p.effects, 'utf8').catch(() => '')).includes('w 1'));
      const b = await runCli(['run', '--run', 'shared'], {
        cwd: p.dir,
        env: {
          LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
          FAKETIME: '+10m',
          FAKETIME_DONT_RESET: '1',
        },
      });
      expect(b.code).toBe(75);
      expect(b.stderr).toMatch(/is locked by pid/);
      expect(b.stdout + b.stderr).not.toContain('left running');
      await writeFile(join(p.dir, 'go'), '');
      const r = await a.result;
      expect(r.code, r.stderr).toBe(0);
      expect((await readFile(p.effects, 'utf8')).split('\n').filter(Boolean)).toEqual(['w 0', 'w 1', 'w 2']);
    } finally {
      await p.cleanup();
    }
  });
});
