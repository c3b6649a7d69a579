// From a unit's process end to what the journal says of it. A unit's record comes from its exit status and
// nothing else (DESIGN §3): `classifyExit` is that rule, pure. The rest keeps what the checkpoint carries
// bounded however many units run: `done` records share a write and an fsync with the others of their
// event-loop turn, and a kept log is written only for a unit that failed, timed out or was interrupted, at
// most LOGS_PER_STEP per step (the summary shows the first failed ranges; successful units' output went to
// the live log as it came).
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProcessExit } from '../exec/process.js';
import { type Checkpoint, CheckpointCorruptError } from '../journal/checkpoint.js';
import type { UnitDoneEvent } from '../journal/events.js';
import { CheckpointLinkError, CheckpointWriteError } from '../journal/fsutil.js';
import { LockedError } from '../journal/lock.js';
import { formatDuration } from '../plan/duration.js';

/** Exit code of a unit that stopped itself at a safe point (DESIGN §3, cooperative units). */
export const EXIT_YIELDED = 75;

/** Kept logs per step: the folder stays small whatever a step's failures come to. */
export const LOGS_PER_STEP = 100;

export type ExitVerdict =
  | { kind: 'done' }
  | { kind: 'interrupted' }
  | { kind: 'yielded' }
  | { kind: 'failed'; reason: string; cause: 'exit' | 'timeout' | 'signal' | 'spawn' };

/** What a process end means for its unit: by its exit status and who ended it, never by its output. */
export function classifyExit(exit: ProcessExit, timeoutMs: number | undefined): ExitVerdict {
  if (exit.spawnError) return { kind: 'failed', reason: exit.spawnError, cause: 'spawn' };
  if (exit.endedBy === 'timeout')
    return { kind: 'failed', reason: `timed out after ${formatDuration(timeoutMs ?? 0)}`, cause: 'timeout' };
  // Exit 0 is done even when the engine had asked the unit to stop: it finished (it was on its last line, or
  // it ignores SIGTERM), and running it again would repeat finished work. Only a unit the stop ended
  // otherwise is interrupted. (A unit past its timeout has failed by the plan's own rule, whatever it exits.)
  if (exit.code === 0) return { kind: 'done' };
  if (exit.endedBy === 'stop') return { kind: 'interrupted' };
  if (exit.code === EXIT_YIELDED) return { kind: 'yielded' };
  if (exit.signal) return { kind: 'failed', reason: `killed by ${exit.signal}`, cause: 'signal' };
  return { kind: 'failed', reason: `exit code ${exit.code}`, cause: 'exit' };
}

export class Recorder {
  readonly #ckpt: Checkpoint;
  /** `done` records of the current event-loop turn, and when they are durable. */
  #doneBatch: { events: { ev: UnitDoneEvent; onWritten: () => void }[]; durable: Promise<void> } | undefined;
  /** Kept logs per step (counted once from disk, then as they are written). */
  readonly #logs = new Map<string, Promise<Set<number>>>();

  constructor(ckpt: Checkpoint) {
    this.#ckpt = ckpt;
  }

  /**
   * Records a `done` with the others of its event-loop turn: one write and one fsync for all, and no line
   * in the journal before its fsync (the same promise as `record`). Resolves once durable; `onWritten` runs
   * once the line is written (a SIGKILL from then on does not lose it).
   */
  done(ev: UnitDoneEvent, onWritten: () => void): Promise<void> {
    let batch = this.#doneBatch;
    if (!batch) {
      const events: { ev: UnitDoneEvent; onWritten: () => void }[] = [];
      const durable = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.#doneBatch = undefined;
        await Promise.all(events.map((e) => this.#ckpt.record(e.ev, e.onWritten)));
      });
      batch = { events, durable };
      this.#doneBatch = batch;
    }
    batch.events.push({ ev, onWritten });
    return batch.durable;
  }

  /** Keeps the tail of a unit that did not succeed (within the step's cap). */
  async keepLog(step: string, index: number, bytes: Buffer): Promise<void> {
    if (bytes.length === 0) return;
    const kept = await this.#kept(step);
    if (!kept.has(index) && kept.size >= LOGS_PER_STEP) return;
    const path = this.#ckpt.logPath(step, index);
    try {
      // No links followed below the run folder (DESIGN §4); fenced by the lease like every checkpoint write.
      await this.#ckpt.writeLog(step, index, bytes);
      kept.add(index);
    } catch (err) {
      if (err instanceof CheckpointCorruptError || err instanceof LockedError) throw err;
      // Node's error for a failed write() names no file.
      throw new CheckpointWriteError(path, err);
    }
  }

  /** A unit that succeeded after a failed try: its old log no longer describes it. */
  async dropLog(step: string, index: number): Promise<void> {
    const kept = await this.#kept(step);
    if (!kept.has(index)) return;
    kept.delete(index);
    const path = this.#ckpt.logPath(step, index);
    // A link where the log was is damage, named; never a file of ours silently removed or followed.
    if ((await lstat(path).catch(() => undefined))?.isSymbolicLink())
      throw new CheckpointLinkError(path, 'is a symbolic link');
    await rm(path, { force: true });
  }

  #kept(step: string): Promise<Set<number>> {
    let kept = this.#logs.get(step);
    if (!kept) {
      kept = readdir(join(this.#ckpt.dir, 'logs', step))
        .catch(() => [] as string[])
        .then((files) => {
          const set = new Set<number>();
          for (const f of files) {
            const n = Number(f.replace(/\.log$/, ''));
            if (f.endsWith('.log') && Number.isSafeInteger(n)) set.add(n);
          }
          return set;
        });
      this.#logs.set(step, kept);
    }
    return kept;
  }
}
