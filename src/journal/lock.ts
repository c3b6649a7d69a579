// The run's lease: `<runDir>/lock` says which process on which host is working on this checkpoint. It is a
// lease, not a plain lock file: it is void once its holder's process is gone (same host) or its heartbeat
// is older than the TTL (any host, e.g. a lock restored from a cache saved on another runner).
//
// Creation is atomic: the record is written to a temp file which is then link()ed to `lock` (fails with
// EEXIST if any lock exists). Replacing a stale lock is serialised by a short-lived `lock.takeover` guard
// (created the same way), so that several contenders judging the same stale lock cannot each remove
// the lock another one has just installed. Whoever holds the guard moves the stale lock aside with
// rename(), checks it moved the lock it judged (same nonce and heartbeat), and links its own; if it moved
// a different one, or the holder beat meanwhile, it links that back.
//
// A live holder on this host (its pid alive with the recorded start time) is never taken over, whatever
// its heartbeat says: heartbeats judge holders on other hosts only, whose processes cannot be seen (clock
// skew or a stalled process must not hand a live run's checkpoint to a second writer).
//
// Heartbeat and takeover are atomic against each other by construction: the heartbeat opens `lock`,
// checks the nonce in that very file, rewrites it in place (same inode, same length) and then checks that
// the name `lock` still is that inode. A takeover replaces the inode (rename aside, link a new file), so a
// heartbeat can only ever write into its own lease's file, never over a new holder's; and a holder whose
// inode was moved away learns it at that check. Fencing: the checkpoint writer asks `assertHeld()` before
// every write; once the lease is lost it throws, and when the last verified heartbeat is older than half
// the TTL (the process was stalled: SIGSTOP, a frozen VM) it verifies the lock file first, synchronously,
// so a stalled writer that wakes up after a takeover writes nothing.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { link, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { CheckpointError, EXIT_INCOMPLETE } from '../errors.js';
import { compareStarts, processSource, procRow, rowOf } from '../exec/ps.js';
import { ensureDir, errorCode, FILE_MODE, openNoFollow, refuseLink, tempPath } from './fsutil.js';

export const LOCK_FILE = 'lock';
const GUARD_FILE = 'lock.takeover';
/** An unparsable lock younger than this may be in the middle of being written by a foreign tool: respect it. */
const UNPARSABLE_GRACE_MS = 5_000;
/** A takeover takes milliseconds; a guard this old was left by a contender that died mid-takeover. */
const GUARD_STALE_MS = 10_000;
/** How long acquireLease keeps retrying while other contenders create, replace or guard the lock. */
const ACQUIRE_PATIENCE_MS = GUARD_STALE_MS + 10_000;

export interface LeaseRecord {
  pid: number;
  host: string;
  runId: string;
  attempt: number;
  /** Start time of the holder process (clock ticks from /proc, or ps's wall time: exec/ps.ts), to detect pid reuse. */
  startTime?: number;
  /** Last heartbeat, ms since the epoch. */
  heartbeat: number;
  /** The holder's TTL in ms, so other processes judge the lease by the holder's own setting. */
  ttlMs?: number;
  /** Random id of this lease: identifies it across heartbeats and takeovers. */
  nonce: string;
}

export interface LeaseOptions {
  /** A lease whose heartbeat is older than this is stale. Default 30 s. */
  ttlMs?: number;
  /** How often the heartbeat is refreshed. Default 5 s. */
  heartbeatMs?: number;
  /** Called (once) when the lease turns out to be lost: replaced by another process, or not refreshable. */
  onLost?: (reason: string) => void;
  /** The host recorded in the lease (default: this host's name). Tests stand in for another runner with it. */
  host?: string;
}

export interface Lease {
  readonly info: LeaseRecord;
  /** Set when acquiring replaced a stale lease: whose, and why it was judged stale. */
  readonly tookOver: { holder: LeaseRecord | undefined; reason: string } | undefined;
  /** Stops the heartbeat and removes the lock if it is still ours. */
  release(): Promise<void>;
  stopHeartbeat(): void;
  /**
   * Fencing: throws LeaseLostError unless this process still holds the lease. Cheap while heartbeats keep
   * it fresh; after a stall it reads the lock file first (synchronously). Call it before every write.
   */
  assertHeld(): void;
  /**
   * Adds a listener called (once) when the lease is lost; same as the `onLost` option. Registered after
   * the loss, it is called on the next microtask.
   */
  onLost(listener: (reason: string) => void): void;
}

export class LockedError extends CheckpointError {
  override readonly name: string = 'LockedError';
  readonly exitCode = EXIT_INCOMPLETE;
  /** The live holder; undefined when the lock file could not be parsed (and is too young to be judged stale). */
  readonly holder: LeaseRecord | undefined;
  readonly lockPath: string;

  constructor(message: string, lockPath: string, holder: LeaseRecord | undefined) {
    super(message);
    this.lockPath = lockPath;
    this.holder = holder;
  }
}

/**
 * A write was refused because this process no longer holds the run's lease (fencing). A LockedError: the
 * checkpoint is another process's now.
 */
export class LeaseLostError extends LockedError {
  override readonly name: string = 'LeaseLostError';

  constructor(lockPath: string, reason: string) {
    super(
      `this process no longer holds the lease on ${lockPath} (${reason}), so it writes nothing more to the ` +
        'checkpoint; the process that holds it now carries the run on',
      lockPath,
      undefined,
    );
  }
}

const DEFAULT_TTL_MS = 30_000;
const DEFAULT_HEARTBEAT_MS = 5_000;

/**
 * Start time of process `pid`, as recorded in leases and `spawned` records: /proc's clock ticks since boot.
 * Where there is no /proc, undefined, unless `ps` is allowed (a lease: once per run), then ps's wall time
 * to the second, stored so that its kind shows (exec/ps.ts: a start time of the other kind proves nothing).
 * Units start by the thousand, so their records never pay for a `ps` call; they are found by their marker.
 */
export function processStartTime(pid: number, opts: { ps?: boolean } = {}): number | undefined {
  const source = processSource();
  if (source.kind === 'proc') return procRow(pid)?.start;
  if (source.kind === 'none' || opts.ps !== true) return undefined;
  return rowOf(pid)?.start;
}

/**
 * Whether process `pid` exists on this host (a zombie counts as gone). With `startTime`, a process whose
 * start time proves it is another one (the pid was reused) counts as gone too; one whose start time cannot
 * be compared (another kind, or ps failing) counts as alive.
 */
export function isProcessAlive(pid: number, startTime?: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    if (errorCode(error) !== 'EPERM') return false;
  }
  const row = rowOf(pid);
  // Unreadable, gone between kill(0) and the read, or unknown (ps failed): kill(0) said it exists.
  if (!row) return true;
  if (row.state === 'Z' || row.state === 'X') return false;
  return compareStarts(startTime, row.start) !== 'other';
}

function parseRecord(text: string): LeaseRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    !Number.isSafeInteger(v.pid) ||
    typeof v.host !== 'string' ||
    typeof v.runId !== 'string' ||
    !Number.isSafeInteger(v.attempt) ||
    typeof v.heartbeat !== 'number' ||
    !Number.isFinite(v.heartbeat) ||
    typeof v.nonce !== 'string' ||
    v.nonce === ''
  ) {
    return undefined;
  }
  const record: LeaseRecord = {
    pid: v.pid as number,
    host: v.host,
    runId: v.runId,
    attempt: v.attempt as number,
    heartbeat: v.heartbeat,
    nonce: v.nonce,
  };
  if (Number.isSafeInteger(v.startTime)) record.startTime = v.startTime as number;
  if (typeof v.ttlMs === 'number' && Number.isFinite(v.ttlMs) && v.ttlMs > 0) record.ttlMs = v.ttlMs;
  return record;
}

interface LockFileState {
  text: string;
  record: LeaseRecord | undefined;
  mtimeMs: number;
}

async function readLockFile(path: string): Promise<LockFileState | undefined> {
  try {
    // Not through a link: a lock is a file the runner made (DESIGN §4, no symlinks in a run folder).
    const handle = await openNoFollow(path, 'r');
    try {
      const [text, info] = await Promise.all([handle.readFile('utf8'), handle.stat()]);
      return { text, record: parseRecord(text), mtimeMs: info.mtimeMs };
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * What identifies one version of a lock file across a rename: its nonce and heartbeat (a holder that beat
 * after it was judged is not the one judged), or its text if unparsable.
 */
function identity(state: LockFileState): string {
  return state.record ? `nonce:${state.record.nonce}@${state.record.heartbeat}` : `text:${state.text}`;
}

interface Verdict {
  stale: boolean;
  reason: string;
}

function judge(state: LockFileState, ttlMs: number, now: number): Verdict {
  const record = state.record;
  if (record === undefined) {
    const age = now - state.mtimeMs;
    return age > UNPARSABLE_GRACE_MS
      ? { stale: true, reason: `the lock file is unreadable and ${formatAge(age)} old` }
      : { stale: false, reason: `the lock file is unreadable but only ${formatAge(age)} old` };
  }
  if (record.host === hostname()) {
    if (!isProcessAlive(record.pid)) {
      return { stale: true, reason: `process ${record.pid} on this host is gone` };
    }
    if (record.startTime !== undefined) {
      const same = compareStarts(record.startTime, processStartTime(record.pid, { ps: true }));
      if (same === 'other') {
        return {
          stale: true,
          reason: `process ${record.pid} is gone (its pid now belongs to another process)`,
        };
      }
      // The holder is alive and is the process that took the lease: its heartbeat does not matter (a
      // clock set differently or a stalled process makes it look old; it is not). A start time that cannot
      // be compared (ps's wall time after a clock change, ps failing) leaves it to the heartbeat.
      if (same === 'same') return { stale: false, reason: 'alive' };
    }
  }
  const ttl = record.ttlMs ?? ttlMs;
  const age = now - record.heartbeat;
  if (age > ttl) {
    return {
      stale: true,
      reason: `its last heartbeat was ${formatAge(age)} ago (lease expires after ${formatAge(ttl)})`,
    };
  }
  return { stale: false, reason: 'alive' };
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m}m` : `${Math.round(m / 60)}h`;
}

function displayDir(runDir: string): string {
  const rel = relative(process.cwd(), runDir);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : runDir;
}

function lockedError(
  runDir: string,
  lockPath: string,
  state: LockFileState,
  ttlMs: number,
  now: number,
): LockedError {
  const record = state.record;
  if (record === undefined) {
    return new LockedError(
      `checkpoint ${displayDir(runDir)} is locked: ${lockPath} was written ${formatAge(now - state.mtimeMs)} ago ` +
        `but cannot be read. Wait a few seconds and try again; if it stays unreadable it is ignored once it is ` +
        `${UNPARSABLE_GRACE_MS / 1000}s old.`,
      lockPath,
      undefined,
    );
  }
  const ttl = record.ttlMs ?? ttlMs;
  return new LockedError(
    `checkpoint ${displayDir(runDir)} is locked by pid ${record.pid} on host ${record.host} ` +
      `(attempt ${record.attempt}, heartbeat ${formatAge(now - record.heartbeat)} ago); wait for that run to ` +
      `finish, or stop it. If it is gone, its lease expires ${formatAge(ttl)} after its last heartbeat.`,
    lockPath,
    record,
  );
}

async function tryLink(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Moves `path` aside if it still is the version `expected` identifies, then deletes it. Returns false when
 * the file there was another version (it is put back) or was already gone.
 */
async function removeIfSame(path: string, expected: string, nonce: string): Promise<boolean> {
  const aside = `${path}.stale-${nonce}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
  const moved = await readLockFile(aside);
  if (moved !== undefined && identity(moved) !== expected) {
    // We moved a newer file than the one judged: put it back unless someone created another meanwhile.
    await tryLink(aside, path);
    await unlink(aside).catch(() => undefined);
    return false;
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

/** Takes the takeover guard (returns its identity), clearing a guard abandoned by a contender that died. */
async function takeGuard(guardPath: string, nonce: string): Promise<string | undefined> {
  const text = JSON.stringify({ pid: process.pid, host: hostname(), nonce });
  const tmp = tempPath(guardPath);
  await writeFile(tmp, text, { mode: FILE_MODE, flag: 'wx' });
  try {
    if (await tryLink(tmp, guardPath)) return `text:${text}`;
    const guard = await readLockFile(guardPath);
    if (guard !== undefined && Date.now() - guard.mtimeMs > GUARD_STALE_MS) {
      await removeIfSame(guardPath, identity(guard), nonce);
    }
    return undefined;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * Acquires the lease on `runDir`, replacing a stale one. Throws LockedError when a live process holds it.
 * The heartbeat timer is unref'd: it never keeps the process alive.
 */
export async function acquireLease(
  runDir: string,
  info: { runId: string; attempt: number },
  opts: LeaseOptions = {},
): Promise<Lease> {
  const ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS;
  const heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  if (!(ttlMs > 0) || !(heartbeatMs > 0)) {
    throw new RangeError(`acquireLease: ttlMs and heartbeatMs must be > 0, got ${ttlMs} and ${heartbeatMs}`);
  }
  await ensureDir(runDir);
  // A run folder that is a link would put the lock (and then the checkpoint) elsewhere (DESIGN §4).
  await refuseLink(runDir);
  const lockPath = join(runDir, LOCK_FILE);
  const guardPath = join(runDir, GUARD_FILE);
  const nonce = randomBytes(12).toString('hex');
  const record: LeaseRecord = {
    pid: process.pid,
    host: opts.host ?? hostname(),
    runId: info.runId,
    attempt: info.attempt,
    heartbeat: Date.now(),
    ttlMs,
    nonce,
  };
  const startTime = processStartTime(process.pid, { ps: true });
  if (startTime !== undefined) record.startTime = startTime;

  let tookOver: Lease['tookOver'];
  const tmp = tempPath(lockPath);
  await writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: FILE_MODE, flag: 'wx' });
  const giveUpAt = Date.now() + ACQUIRE_PATIENCE_MS;
  try {
    while (Date.now() < giveUpAt) {
      if (await tryLink(tmp, lockPath)) {
        return startLease(runDir, lockPath, record, tookOver, ttlMs, heartbeatMs, opts.onLost);
      }
      const holder = await readLockFile(lockPath);
      if (holder === undefined) continue; // released meanwhile: try again
      const now = Date.now();
      const verdict = judge(holder, ttlMs, now);
      if (!verdict.stale) throw lockedError(runDir, lockPath, holder, ttlMs, now);

      const guard = await takeGuard(guardPath, nonce);
      if (guard === undefined) {
        // Another contender is replacing the stale lock; see what it ends up with.
        await pause(5 + Math.random() * 20);
        continue;
      }
      try {
        const current = await readLockFile(lockPath);
        if (current !== undefined && identity(current) === identity(holder)) {
          if (await removeIfSame(lockPath, identity(holder), nonce)) {
            tookOver = { holder: holder.record, reason: verdict.reason };
          }
        }
        // Link under the guard; if someone without the guard linked first, the next round judges them.
        if (await tryLink(tmp, lockPath)) {
          return startLease(runDir, lockPath, record, tookOver, ttlMs, heartbeatMs, opts.onLost);
        }
      } finally {
        await removeIfSame(guardPath, guard, nonce).catch(() => undefined);
      }
    }
    throw new Error(
      `could not acquire ${lockPath} within ${ACQUIRE_PATIENCE_MS / 1000}s: other processes keep creating and replacing it. ` +
        'Make sure only one `checkpoint run` works on this checkpoint at a time.',
    );
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

function startLease(
  runDir: string,
  lockPath: string,
  record: LeaseRecord,
  tookOver: Lease['tookOver'],
  ttlMs: number,
  heartbeatMs: number,
  onLost: ((reason: string) => void) | undefined,
): Lease {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let released = false;
  /** When the lock file was last seen to be ours (Date.now()). */
  let lastVerified = record.heartbeat;
  let lostReason: string | undefined;
  const listeners: ((reason: string) => void)[] = onLost ? [onLost] : [];

  const lose = (reason: string): void => {
    if (lostReason !== undefined) return;
    stop();
    lostReason = reason;
    for (const listener of listeners) listener(reason);
  };

  // Synchronous on purpose: assertHeld() calls it on the write path after a stall, and a few small local
  // file operations every few seconds cost less than the bookkeeping of doing them asynchronously.
  const beat = (): void => {
    if (lostReason !== undefined || released) return;
    let fd: number;
    try {
      fd = openSync(lockPath, fsConstants.O_RDWR | (fsConstants.O_NOFOLLOW ?? 0));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') lose(`the lock file ${lockPath} was removed by another process`);
      else trouble(error);
      return;
    }
    try {
      const text = readFileSync(fd, 'utf8');
      const current = parseRecord(text);
      if (current?.nonce !== record.nonce) {
        const by = current ? `pid ${current.pid} on host ${current.host}` : 'another process';
        lose(`the lease on ${lockPath} was taken over by ${by}`);
        return;
      }
      const next: LeaseRecord = { ...record, heartbeat: Date.now() };
      const bytes = Buffer.from(`${JSON.stringify(next)}\n`);
      // In place, into the inode just checked: never over a new holder's file. No fsync: a heartbeat lost
      // in a power cut only makes the lease look older, which is harmless.
      writeSync(fd, bytes, 0, bytes.length, 0);
      if (bytes.length < Buffer.byteLength(text)) ftruncateSync(fd, bytes.length);
      const mine = fstatSync(fd);
      let there: ReturnType<typeof lstatSync> | undefined;
      try {
        there = lstatSync(lockPath);
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
      }
      if (there === undefined || there.ino !== mine.ino || there.dev !== mine.dev) {
        lose(`the lease on ${lockPath} was taken over while it was being refreshed`);
        return;
      }
      record.heartbeat = next.heartbeat;
      lastVerified = next.heartbeat;
    } catch (error) {
      trouble(error);
    } finally {
      closeSync(fd);
    }
  };

  // Transient trouble (disk full...) is retried on the next tick; give up once the lease has expired.
  const trouble = (error: unknown): void => {
    if (Date.now() - lastVerified > ttlMs)
      lose(`could not refresh the lease on ${lockPath} for ${formatAge(ttlMs)}: ${String(error)}`);
  };

  const stop = (): void => {
    stopped = true;
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };

  timer = setInterval(() => {
    if (!stopped) beat();
  }, heartbeatMs);
  timer.unref();

  // Best effort: remove temp and aside files that crashed contenders left behind.
  void sweepLeftovers(runDir);

  return {
    info: record,
    tookOver,
    stopHeartbeat: stop,
    assertHeld(): void {
      if (released) throw new LeaseLostError(lockPath, 'it was released');
      // Younger than half the TTL: no contender can have judged it stale yet, even with some clock skew.
      if (lostReason === undefined && Date.now() - lastVerified > ttlMs / 2) {
        beat();
        if (lostReason === undefined && Date.now() - lastVerified > ttlMs / 2)
          lose(`the lease on ${lockPath} could not be verified`);
      }
      if (lostReason !== undefined) throw new LeaseLostError(lockPath, lostReason);
    },
    onLost(listener: (reason: string) => void): void {
      const reason = lostReason;
      if (reason === undefined) listeners.push(listener);
      else queueMicrotask(() => listener(reason));
    },
    async release(): Promise<void> {
      stop();
      released = true;
      // Best effort: a lock that cannot be removed (a read-only or full disk, the very fault that may have
      // ended the run) expires by itself once this process is gone, and failing here would hide that fault.
      try {
        const current = await readLockFile(lockPath);
        if (lostReason === undefined && current?.record?.nonce === record.nonce) await unlink(lockPath);
      } catch {
        // See above.
      }
    },
  };
}

async function sweepLeftovers(runDir: string): Promise<void> {
  try {
    const cutoff = Date.now() - 60_000;
    for (const name of await readdir(runDir)) {
      if (!/^lock(\.takeover)?\.(tmp|stale)-/.test(name)) continue;
      const path = join(runDir, name);
      const info = await stat(path);
      if (info.mtimeMs < cutoff) await unlink(path);
    }
  } catch {
    // Leftovers are harmless; never fail over them.
  }
}

export interface LeaseStatus {
  /** The holder, or undefined when the lock file cannot be parsed. */
  holder: LeaseRecord | undefined;
  /** Age of the last heartbeat (or of the file, when unparsable), in ms. */
  ageMs: number;
  stale: boolean;
  /** Why it is stale, or 'alive'. */
  reason: string;
}

/** The lease record in `runDir`'s lock file; undefined when there is no lock (or it cannot be parsed). */
export async function readLease(runDir: string): Promise<LeaseRecord | undefined> {
  return (await readLockFile(join(runDir, LOCK_FILE)))?.record;
}

/** The lease on `runDir` as acquireLease would judge it (live or stale, and why); undefined without a lock. */
export async function inspectLease(
  runDir: string,
  opts: { ttlMs?: number } = {},
): Promise<LeaseStatus | undefined> {
  const state = await readLockFile(join(runDir, LOCK_FILE));
  if (state === undefined) return undefined;
  const now = Date.now();
  const verdict = judge(state, opts.ttlMs ?? DEFAULT_TTL_MS, now);
  return {
    holder: state.record,
    ageMs: now - (state.record?.heartbeat ?? state.mtimeMs),
    stale: verdict.stale,
    reason: verdict.reason,
  };
}
