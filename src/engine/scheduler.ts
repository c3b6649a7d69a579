// The engine: runs the selected steps' units as a DAG under plan-wide and per-step limits, records every
// transition in the checkpoint, and stops cleanly on a signal, a lost lease or the time budget.

import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, unlinkSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TRACKING_VAR } from '../exec/ownership.js';
import { type Checkpoint, CheckpointCorruptError } from '../journal/checkpoint.js';
import type { UnitDoneEvent } from '../journal/events.js';
import { CheckpointWriteError } from '../journal/fsutil.js';
import { IntervalSet } from '../journal/intervals.js';
import { LockedError } from '../journal/lock.js';
import { approvalOf, isStepComplete, p90, type StepRecord, unitCount } from '../journal/state.js';
import { formatDuration } from '../plan/duration.js';
import type { Plan, Step } from '../plan/types.js';
import { estimateMs, fitsRemaining, latestStart, nextChunkSize, usableMs } from './chunking.js';
import { scrubEnv } from './env.js';
import { type Handoff, LauncherPool } from './launcher.js';
import { endOrphans } from './orphans.js';
import { OutputSyntaxError, parseOutputFile } from './outputs.js';
import { type Preparation, topoOrder } from './prepare.js';
import {
  MAX_TIMER_MS,
  resolveProgram,
  type SpawnOptions,
  type UnitBackend,
  type UnitExit,
  UnitProcess,
} from './process.js';
import { retryDelayMs } from './retry.js';
import { SlotFile } from './slot-file.js';
import { UnitEnv } from './unit-env.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INCOMPLETE = 75;

/** Ranges bigger than this get no CHECKPOINT_ITEMS_FILE: writing millions of numbers per unit helps nobody. */
const MAX_ITEMS_FILE_NUMBERS = 1_000_000;

// A unit's `done` record waits one turn of the event loop (setImmediate) to be written together with those
// of the units whose ends arrived in the same turn; their fsyncs are grouped by the journal writer. Short
// pipelined units end every fraction of a millisecond and got a write and an fsync each. The slot waits for
// the write (not the fsync) before it takes a new request, so the wait is kept to one turn (it was a 2 ms
// timer); the unit its launcher queued behind this one already runs.

/** Read once: `os.hostname()` is a system call, and the spawned record of every unit carries it. */
const HOST = hostname();

/** Variables each unit sets for itself; taken out of the step's fixed environment (a nested run has them). */
const UNIT_VARS = [
  'CHECKPOINT_TRY',
  'CHECKPOINT_OUTPUT',
  'CHECKPOINT_BATCH_INDEX',
  'CHECKPOINT_BATCH_START',
  'CHECKPOINT_BATCH_END',
  'CHECKPOINT_ITEMS_FILE',
  'CHECKPOINT_ITEM',
  TRACKING_VAR,
];

export interface Unit {
  step: string;
  start: number;
  end: number;
  index: number;
}

export type EngineEvent =
  | { type: 'unit-start'; unit: Unit; try: number }
  | {
      type: 'unit-end';
      unit: Unit;
      result: 'done' | 'failed' | 'retry' | 'yielded' | 'interrupted';
      ms: number;
      detail?: string;
      tail?: string;
      /** The process's exit code (null when a signal ended it, or it never started); failed tries only. */
      exit?: number | null;
      /** The signal that ended the process; failed tries only. */
      signal?: string | null;
    }
  | { type: 'step-state'; step: string; state: StepRunState; detail?: string }
  | { type: 'notice'; message: string };

export type StepRunState = 'waiting' | 'running' | 'done' | 'failed' | 'blocked' | 'stopped';

export interface EngineOptions {
  /** Most units at once across the plan (overrides the plan's `concurrency`). */
  concurrency?: number;
  /** Unix ms of the budget's end. */
  deadline?: number;
  stopGraceMs?: number;
  timeoutGraceMs?: number;
  deadlineGraceMs?: number;
  onEvent?: (ev: EngineEvent) => void;
  /** A line of a unit's output; `label` is `step` or `step#index`. */
  onOutput?: (label: string, line: string, stream: 'stdout' | 'stderr') => void;
  env?: NodeJS.ProcessEnv;
  random?: () => number;
  /** Start units through bash launchers (default when bash is on PATH); false: Node's spawn for each. */
  launcher?: boolean;
}

export interface RunResult {
  exitCode: number;
  /** Why the run ended the way it did, for the last log line and the summary. */
  reason: string;
  complete: boolean;
  resumed: boolean;
  stepsDone: number;
  stepsRemaining: number;
  unitsDone: number;
  unitsRemaining: number;
  unitsFailed: number;
  attempt: number;
  /**
   * Steps with `approval: true` that held the run: their needs are done and they wait for
   * `checkpoint approve` (or the action's `approve` input). Absent when none did.
   */
  waitingForApproval?: string[];
}

interface QueuedUnit extends Unit {
  notBefore: number;
}

/** A step's throttle check (`batch.throttle`) in this attempt. */
interface ThrottleState {
  /** Unix ms: the last check passed, and holds until then. */
  okUntil: number;
  /** Unix ms: the last check failed; the next runs then. */
  blockedUntil: number;
  /** The check running now. */
  proc: UnitProcess | undefined;
  /** Why units are held back, while they are (recorded in the journal on each change). */
  held: string | undefined;
}

/** A throttle check that hangs holds units back no longer than this; it then counts as failed. */
const THROTTLE_CHECK_TIMEOUT_MS = 60_000;

/** One selected step's bookkeeping for this attempt. */
class StepRun {
  readonly step: Step;
  readonly #ckpt: Checkpoint;
  /** Work done before now plus every unit handed out in this attempt; only grows. */
  taken = new IntervalSet();
  cursor: number;
  retryQueue: QueuedUnit[] = [];
  tries = new Map<number, number>();
  /** Units started and not yet recorded as ended (the step is complete only at 0). */
  running = 0;
  /** Unit processes alive (bounded by `parallel`). */
  active = 0;
  failedFinal = 0;
  failedFinalStarts = new Set<number>();
  stoppedByFailures = false;
  budgetBlocked = false;
  completedThisAttempt = false;
  /** `approval: true` and not approved: no unit of it starts in this attempt (reported once). */
  awaitingApproval = false;
  ranThisAttempt = false;
  state: StepRunState = 'waiting';
  items: string[] | undefined;
  /** argv and the fixed part of the environment, the same for every unit of this attempt (built on first use). */
  template: { argv: string[]; env: NodeJS.ProcessEnv } | undefined;
  throttle: ThrottleState | undefined;
  /** The time budget's deadline (Unix ms), if any: chunks sized by time are cut to fit before it. */
  deadline: number | undefined;
  /** Chunks sized by time: interrupted work of earlier attempts, handed out first, in chunks sized anew. */
  #resume: IntervalSet | undefined;

  constructor(step: Step, ckpt: Checkpoint) {
    this.step = step;
    this.#ckpt = ckpt;
    const rec = this.rec;
    this.cursor = rec.from;
    this.taken = rec.done.clone();
    // Failed and interrupted units of earlier attempts go first.
    const first: QueuedUnit[] = [];
    for (const f of [...rec.failed.values()].sort((a, b) => a.start - b.start)) {
      first.push({ step: step.id, start: f.start, end: f.end, index: f.index, notBefore: 0 });
      this.taken.add(f.start, f.end);
    }
    for (const [s, e] of rec.interrupted.intervals()) {
      if (step.batch?.adaptive) {
        this.#resume ??= new IntervalSet();
        this.#resume.add(s, e);
        continue;
      }
      for (const u of this.cut(s, e)) {
        first.push({ ...u, notBefore: 0 });
        this.taken.add(u.start, u.end);
      }
    }
    this.retryQueue = first;
    if (step.batch?.throttle)
      this.throttle = { okUntil: 0, blockedUntil: 0, proc: undefined, held: undefined };
  }

  get rec(): StepRecord {
    const r = this.#ckpt.state.steps.get(this.step.id);
    if (!r) throw new Error(`internal: step ${this.step.id} has no record`);
    return r;
  }

  get parallel(): number {
    return this.step.batch ? (this.step.batch.order === 'sequential' ? 1 : this.step.batch.parallel) : 1;
  }

  get complete(): boolean {
    return isStepComplete(this.rec) && this.running === 0;
  }

  get maxFailures(): number {
    const mf = this.step.batch?.maxFailures;
    if (!mf) return 0;
    if (mf.kind === 'count') return mf.count;
    return Math.floor((mf.percent / 100) * unitCount(this.rec));
  }

  /** Grid-aligned units covering [s, e): a unit never spans two chunks of the step's grid. */
  *cut(s: number, e: number): Generator<Unit> {
    const { from, size } = this.rec;
    let p = s;
    while (p < e) {
      const index = Math.floor((p - from) / size);
      const end = Math.min(from + (index + 1) * size, e);
      yield { step: this.step.id, start: p, end, index };
      p = end;
    }
  }

  /** The unit at the start of [s, e) (what `cut` yields first, without a generator per unit). */
  #unitAt(s: number, e: number): Unit {
    const { from, size } = this.rec;
    const index = Math.floor((s - from) / size);
    return { step: this.step.id, start: s, end: Math.min(from + (index + 1) * size, e), index };
  }

  /** The next unit to start now, or the time to look again, or nothing left in this attempt. */
  next(now: number): Unit | { wakeAt: number } | undefined {
    if (this.stoppedByFailures) return undefined;
    if (this.step.batch?.order === 'sequential') return this.#nextSequential(now);
    let wakeAt = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.retryQueue.length; i++) {
      const q = this.retryQueue[i] as QueuedUnit;
      if (q.notBefore <= now) {
        this.retryQueue.splice(i, 1);
        // A plain unit: its fields are spread into journal records.
        return { step: q.step, start: q.start, end: q.end, index: q.index };
      }
      wakeAt = Math.min(wakeAt, q.notBefore);
    }
    if (this.step.batch?.adaptive) {
      const chunk = this.#nextChunk(now);
      if (chunk) return chunk;
      return Number.isFinite(wakeAt) ? { wakeAt } : undefined;
    }
    const gap = this.taken.firstGap(this.cursor, this.rec.to);
    if (gap) {
      const u = this.#unitAt(gap[0], gap[1]);
      this.taken.add(u.start, u.end);
      this.cursor = u.end;
      return u;
    }
    this.cursor = this.rec.to;
    return Number.isFinite(wakeAt) ? { wakeAt } : undefined;
  }

  /**
   * Chunks sized by time (chunking.ts): the next chunk from the first pending gap, interrupted work of
   * earlier attempts first. A retry never comes here: it keeps its unit's exact [start, end).
   */
  #nextChunk(now: number): Unit | undefined {
    const rec = this.rec;
    let gap: [number, number] | undefined;
    if (this.#resume) {
      for (const [s, e] of this.#resume.intervals()) {
        gap = this.taken.firstGap(s, e);
        if (gap) break;
      }
      if (!gap) this.#resume = undefined;
    }
    const resumed = gap !== undefined;
    gap ??= this.taken.firstGap(this.cursor, rec.to);
    if (!gap) {
      this.cursor = rec.to;
      return undefined;
    }
    const u = this.#chunkAt(gap[0], gap[1], now);
    this.taken.add(u.start, u.end);
    if (!resumed) this.cursor = u.end;
    return u;
  }

  /** A chunk sized by time starting at `s`, within [s, e); its index is its first cell of the `min` grid. */
  #chunkAt(s: number, e: number, now: number): Unit {
    const rec = this.rec;
    const adaptive = this.step.batch?.adaptive;
    const size = adaptive
      ? nextChunkSize({
          size: adaptive,
          pace: rec.pace,
          room: e - s,
          remainingMs: this.deadline === undefined ? undefined : this.deadline - now,
        })
      : e - s;
    return { step: this.step.id, start: s, end: s + size, index: Math.floor((s - rec.from) / rec.size) };
  }

  #nextSequential(now: number): Unit | { wakeAt: number } | undefined {
    if (this.running > 0) return undefined;
    const rec = this.rec;
    const gap = rec.done.firstGap(rec.from, rec.to);
    if (!gap) return undefined;
    if (this.step.batch?.adaptive) return this.#nextSequentialChunk(gap, now);
    const u = this.#unitAt(gap[0], gap[1]);
    if (this.failedFinalStarts.has(u.start)) return undefined;
    const q = this.retryQueue.findIndex((x) => x.start === u.start);
    if (q >= 0) {
      const item = this.retryQueue[q] as QueuedUnit;
      if (item.notBefore > now) return { wakeAt: item.notBefore };
      this.retryQueue.splice(q, 1);
    }
    return u;
  }

  /** `order: sequential` with chunks sized by time: a retry keeps its exact range; else a new chunk. */
  #nextSequentialChunk(gap: [number, number], now: number): Unit | { wakeAt: number } | undefined {
    const [s, e] = gap;
    if (this.failedFinalStarts.has(s)) return undefined;
    const q = this.retryQueue.findIndex((x) => x.start === s);
    if (q >= 0) {
      const item = this.retryQueue[q] as QueuedUnit;
      if (item.notBefore > now) return { wakeAt: item.notBefore };
      this.retryQueue.splice(q, 1);
      return { step: item.step, start: item.start, end: item.end, index: item.index };
    }
    // A new chunk stops where a unit waiting for its retry begins.
    let end = e;
    for (const x of this.retryQueue) if (x.start > s && x.start < end) end = x.start;
    return this.#chunkAt(s, end, now);
  }

  requeue(u: Unit, notBefore: number): void {
    this.retryQueue.push({ ...u, notBefore });
  }

  /**
   * A unit handed out that never started goes back, its try unused: to the front of the queue, as it was;
   * with chunks sized by time, a new chunk (not a retry) goes back to the pending work instead, to be sized
   * anew (the time left may be shorter by now).
   */
  giveBack(u: Unit): void {
    const retry = (this.tries.get(u.start) ?? 0) > 0 || this.rec.failed.has(u.start);
    if (!this.step.batch?.adaptive || retry) {
      this.requeue(u, 0);
      return;
    }
    this.taken.remove(u.start, u.end);
    if (u.start < this.cursor) this.cursor = u.start;
  }

  get hasQueued(): boolean {
    return this.retryQueue.length > 0 || this.taken.firstGap(this.cursor, this.rec.to) !== undefined;
  }
}

interface Live {
  unit: Unit;
  run: StepRun;
  slot: Slot;
  /** Set once the process started; until then the unit only holds its place within the limits. */
  proc: UnitProcess | undefined;
}

/** A unit's scratch files: CHECKPOINT_OUTPUT, and CHECKPOINT_ITEMS_FILE (opened on first use). */
interface Scratch {
  out: string;
  itemsPath: string;
  items: SlotFile | undefined;
}

/** A slot: one unit running at once, with its launcher and scratch files. */
interface Slot {
  readonly id: number;
  /** Units holding it: the one running or being recorded, and one queued behind it. Free at 0. */
  users: number;
  /** The scratch files the next unit gets: they alternate, so a queued unit never overwrites the running one's. */
  phase: 0 | 1;
  readonly scratch: [Scratch, Scratch];
  /** The unit whose process runs in it: the one a request may be queued behind. */
  current: Live | undefined;
  /** The request queued behind `current`, until the launcher started or dropped it. */
  queued: Queued | undefined;
}

/** A unit handed to a launcher behind the running one (see `#mayQueueAhead`). */
interface Queued {
  readonly live: Live;
  readonly tryNo: number;
  /** Unix µs: the launcher does not start it later (the time budget's last useful start). */
  readonly startBy: number | undefined;
  /** Counted in the limits (the unit ahead exited 0, so the launcher is starting it). */
  counted: boolean;
  handoff: Handoff | undefined;
}

export class Engine {
  readonly #plan: Plan;
  readonly #ckpt: Checkpoint;
  readonly #prep: Preparation;
  readonly #opts: EngineOptions;
  readonly #runs = new Map<string, StepRun>();
  readonly #live = new Set<Live>();
  readonly #pending = new Set<Promise<void>>();
  #stopping: { reason: string; graceMs: number } | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #finish: (() => void) | undefined;
  #attempt = 0;
  #resumed = false;
  /** Marks this attempt's unit processes (CHECKPOINT_TRACKING_ID=<it>-<step>-<start>: exec/ownership.ts). */
  readonly #tracking = randomBytes(8).toString('hex');
  #yieldedLeft = false;
  #fatal: Error | undefined;
  #baseEnv: NodeJS.ProcessEnv = {};
  #pool: LauncherPool | undefined;
  readonly #slots: Slot[] = [];
  readonly #freeSlots: Slot[] = [];
  readonly #programs = new Map<string, string>();
  #concurrency: number;
  /** `done` records of the current event-loop turn, and when they are durable. */
  #doneBatch: { events: { ev: UnitDoneEvent; onWritten: () => void }[]; durable: Promise<void> } | undefined;

  constructor(plan: Plan, ckpt: Checkpoint, prep: Preparation, opts: EngineOptions = {}) {
    this.#plan = plan;
    this.#ckpt = ckpt;
    this.#prep = prep;
    this.#opts = opts;
    this.#concurrency = Math.max(1, opts.concurrency ?? plan.concurrency);
  }

  get attempt(): number {
    return this.#attempt;
  }

  /** Stops starting units and ends running ones: SIGTERM to each group, SIGKILL after the grace. */
  stop(reason: string, graceMs = this.#opts.stopGraceMs ?? 3000): void {
    if (this.#stopping && graceMs >= this.#stopping.graceMs) return;
    this.#stopping = { reason: this.#stopping?.reason ?? reason, graceMs };
    this.#emit({
      type: 'notice',
      message: `stopping (${reason}): ending ${this.#live.size} running unit(s)`,
    });
    // Revoked before any unit is signalled: a unit that exits 0 on SIGTERM must not let its launcher start
    // the request queued behind it, so the revoke is in the launcher's input before that unit can end.
    this.#revokeQueued();
    for (const l of this.#live) l.proc?.terminate(graceMs, 'stop');
    for (const r of this.#runs.values()) r.throttle?.proc?.terminate(graceMs, 'stop');
    this.#pump();
  }

  #stopInfo(): { reason: string; graceMs: number } | undefined {
    return this.#stopping;
  }

  #emit(ev: EngineEvent): void {
    this.#opts.onEvent?.(ev);
  }

  async run(): Promise<RunResult> {
    const ckpt = this.#ckpt;
    const state = ckpt.state;
    // Resumed: this attempt starts from recorded progress, not from nothing.
    this.#resumed = [...state.steps.values()].some(
      (r) => r.unitsDone > 0 || r.failed.size > 0 || r.interrupted.count > 0,
    );
    this.#attempt = (state.attempts[state.attempts.length - 1]?.attempt ?? 0) + 1;
    ckpt.recordLater({
      type: 'attempt',
      attempt: this.#attempt,
      plan: this.#plan.name,
      pid: process.pid,
      host: hostname(),
      resumed: this.#resumed,
      ...(state.shard ? { shard: state.shard } : {}),
    });
    for (const id of this.#prep.replaced) await ckpt.clearStepFiles(id);
    // The frozen lists go to disk before the records that point at them: a run cut off (or failing to
    // write) in between then leaves no record whose list is missing, and the next run expands again.
    for (const [id, list] of this.#prep.items) await ckpt.writeItems(id, list);
    for (const ev of this.#prep.events) ckpt.recordLater(ev);
    await this.#endOrphans();
    await ckpt.flush();
    await ckpt.syncMarkers();

    this.#baseEnv = scrubEnv(this.#opts.env ?? process.env);
    if (this.#opts.launcher !== false && LauncherPool.available(this.#baseEnv)) {
      // The launchers' own environment: the base without our variables, which each unit sets for itself.
      const launcherEnv = Object.fromEntries(
        Object.entries(this.#baseEnv).filter(([k]) => !k.startsWith('CHECKPOINT_')),
      );
      // A forked-shell unit's /proc/<pid>/environ is its launcher's: the launcher carries the attempt's marker.
      launcherEnv[TRACKING_VAR] = this.#tracking;
      this.#pool = new LauncherPool(launcherEnv, join(ckpt.dir, 'tmp'), this.#baseEnv.CHECKPOINT_LAUNCHER);
    }
    // Dependency order, so one pass of the pump settles a chain of steps that are already done.
    const selected = new Set(this.#prep.selected.map((s) => s.id));
    for (const step of topoOrder(this.#plan).filter((s) => selected.has(s.id))) {
      const run = new StepRun(step, ckpt);
      run.deadline = this.#opts.deadline;
      if (step.batch?.space.kind === 'items' && run.rec.to > run.rec.from)
        run.items = await ckpt.readItems(step.id);
      this.#runs.set(step.id, run);
      await ckpt.ensureStateDir(step.id);
    }
    const deadline = this.#opts.deadline;
    if (deadline !== undefined && deadline - Date.now() < MAX_TIMER_MS) {
      const ms = Math.max(0, deadline - Date.now());
      this.#deadlineTimer = setTimeout(
        () => this.stop(`time budget reached`, this.#opts.deadlineGraceMs ?? 10_000),
        ms,
      );
    }
    await new Promise<void>((resolve) => {
      this.#finish = resolve;
      this.#pump();
    });
    await Promise.all([...this.#pending]);
    this.#pool?.close();
    for (const slot of this.#slots) for (const f of slot.scratch) f.items?.close();
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    const result = this.#result();
    // After a failed journal write nothing more can be recorded; the error is the result.
    if (this.#fatal) throw this.#fatal;
    // Time held back by a throttle is counted per attempt: an attempt that ends held closes its span.
    for (const run of this.#runs.values())
      if (run.throttle?.held !== undefined)
        ckpt.recordLater({ type: 'throttle', step: run.step.id, held: false, reason: 'the attempt ended' });
    ckpt.recordLater({
      type: 'attempt-end',
      attempt: this.#attempt,
      exit: result.exitCode,
      reason: result.reason,
    });
    await ckpt.writeOutputsFile();
    await ckpt.compact();
    return result;
  }

  /** Units recorded running by an attempt that died: end any survivor on this host, then mark them interrupted. */
  async #endOrphans(): Promise<void> {
    await endOrphans(this.#ckpt, (m) => this.#emit({ type: 'notice', message: m }));
    // Outputs a unit of a dead attempt left behind would otherwise be read as the next unit's in that slot.
    const tmp = join(this.#ckpt.dir, 'tmp');
    for (const f of await readdir(tmp).catch(() => [] as string[]))
      if (f.startsWith('slot-') && f.endsWith('.out')) await rm(join(tmp, f), { force: true });
  }

  #depsSatisfied(run: StepRun): 'yes' | 'wait' | 'never' {
    for (const d of run.step.needs) {
      const dep = this.#runs.get(d);
      if (!dep) {
        // Not selected (`--only`): it must already be complete.
        const rec = this.#ckpt.state.steps.get(d);
        if (!rec || !isStepComplete(rec)) return 'never';
        continue;
      }
      if (dep.completedThisAttempt) continue;
      if (dep.state === 'failed' || dep.state === 'blocked') return 'never';
      return 'wait';
    }
    return 'yes';
  }

  #totalRunning(): number {
    return this.#live.size;
  }

  #pump(): void {
    if (this.#wakeTimer) {
      clearTimeout(this.#wakeTimer);
      this.#wakeTimer = undefined;
    }
    if (this.#finish === undefined) return;
    const now = Date.now();
    let wakeAt = Number.POSITIVE_INFINITY;
    // A step earlier in dependency order that waits for a slot: later steps queue nothing ahead, so they
    // don't keep slots it would otherwise get.
    let starvedBefore = false;
    for (const run of this.#runs.values()) {
      if (run.completedThisAttempt || run.state === 'failed' || run.state === 'blocked') continue;
      const deps = this.#depsSatisfied(run);
      if (deps === 'never') {
        run.state = 'blocked';
        this.#emit({
          type: 'step-state',
          step: run.step.id,
          state: 'blocked',
          detail: 'a step it needs failed',
        });
        continue;
      }
      if (deps === 'wait') continue;
      if (run.complete) {
        this.#completeStep(run);
        continue;
      }
      // A manual intervention point: nothing of it starts until it is approved; its dependents wait with it
      // and independent steps go on. Approvals are recorded between attempts (under the lease), never now.
      if (run.step.approval && !approvalOf(this.#ckpt.state, run.step.id)) {
        if (!run.awaitingApproval) {
          run.awaitingApproval = true;
          this.#emit({
            type: 'step-state',
            step: run.step.id,
            state: 'waiting',
            detail: `waiting for approval (checkpoint approve ${run.step.id})`,
          });
        }
        continue;
      }
      if (run.throttle && this.#wouldStart(run) && !this.#throttleOpen(run, run.throttle, now)) {
        if (!run.throttle.proc) wakeAt = Math.min(wakeAt, run.throttle.blockedUntil);
        this.#settleStep(run);
        continue;
      }
      while (!this.#stopping && this.#totalRunning() < this.#concurrency && run.active < run.parallel) {
        const nx = run.next(now);
        if (nx === undefined) break;
        if ('wakeAt' in nx) {
          wakeAt = Math.min(wakeAt, nx.wakeAt);
          break;
        }
        if (!this.#fitsBudget(run, nx, now)) break;
        this.#startUnit(run, nx);
      }
      if (!starvedBefore) wakeAt = Math.min(wakeAt, this.#queueAhead(run, now));
      starvedBefore ||= this.#starved(run);
      this.#settleStep(run);
    }
    if (this.#totalRunning() === 0 && this.#pending.size === 0) {
      const canProgress =
        !this.#stopping &&
        Number.isFinite(wakeAt) &&
        [...this.#runs.values()].some((r) => r.state !== 'failed' && r.state !== 'blocked');
      if (!canProgress) {
        const f = this.#finish;
        this.#finish = undefined;
        f();
        return;
      }
    }
    if (Number.isFinite(wakeAt) && !this.#stopping) {
      this.#wakeTimer = setTimeout(
        () => this.#pump(),
        Math.min(MAX_TIMER_MS, Math.max(0, wakeAt - Date.now())),
      );
    }
  }

  /** Whether `run` has room and work for a unit now (before its throttle is asked). */
  #wouldStart(run: StepRun): boolean {
    return (
      !this.#stopping &&
      this.#totalRunning() < this.#concurrency &&
      run.active < run.parallel &&
      !run.stoppedByFailures &&
      !run.budgetBlocked &&
      run.hasQueued
    );
  }

  /**
   * THE THROTTLE (`batch.throttle`): units of the step start only while its check passes. A passing check
   * holds for `every`; a failing one holds units back for `backoff`, then the check runs again. The check
   * runs only when a unit could start, with the plan's shell in the step's directory and environment.
   */
  #throttleOpen(run: StepRun, t: ThrottleState, now: number): boolean {
    if (t.okUntil > now) return true;
    if (t.proc || t.blockedUntil > now) return false;
    const spec = run.step.batch?.throttle;
    if (!spec) return true;
    const tpl = this.#template(run);
    const proc = new UnitProcess({
      argv: [...this.#shellArgv(run.step), spec.command],
      cwd: run.step.workingDirectory,
      env: tpl.env,
      timeoutMs: THROTTLE_CHECK_TIMEOUT_MS,
      timeoutGraceMs: 3000,
      tailBytes: 2048,
    });
    t.proc = proc;
    this.#track(
      proc.exited.then(async (exit) => {
        t.proc = undefined;
        const at = Date.now();
        if (exit.code === 0 && !exit.spawnError) {
          t.okUntil = at + spec.everyMs;
          if (t.held !== undefined) {
            t.held = undefined;
            await this.#ckpt.record({ type: 'throttle', step: run.step.id, held: false });
            this.#emit({
              type: 'notice',
              message: `${run.step.id}: throttle check passes: starting units again`,
            });
          }
          return;
        }
        if (exit.endedBy === 'stop') return;
        t.blockedUntil = at + spec.backoffMs;
        const why = exit.spawnError
          ? exit.spawnError
          : exit.endedBy === 'timeout'
            ? `timed out after ${formatDuration(THROTTLE_CHECK_TIMEOUT_MS)}`
            : exit.signal
              ? `killed by ${exit.signal}`
              : `exit code ${exit.code}`;
        const said = lastLine(proc.tail());
        const reason = `throttled: ${spec.command}: ${why}${said ? ` (${said})` : ''}`;
        if (reason !== t.held) {
          t.held = reason;
          await this.#ckpt.record({ type: 'throttle', step: run.step.id, held: true, reason });
        }
        this.#emit({
          type: 'notice',
          message: `${run.step.id}: ${reason}; no new unit starts, checking again in ${formatDuration(spec.backoffMs)}`,
        });
      }),
    );
    return false;
  }

  /** Predictive stop: skip a unit whose p90 duration would run past the deadline. */
  #fitsBudget(run: StepRun, u: Unit, now: number): boolean {
    const deadline = this.#opts.deadline;
    if (deadline === undefined) return true;
    if (run.step.batch?.adaptive) return this.#chunkFitsBudget(run, u, now, deadline);
    const est = p90(run.rec.durations);
    if (est === undefined || now + est <= deadline) return true;
    return this.#holdBackForBudget(
      run,
      u,
      () =>
        `p90 ${formatDuration(est)} would end after the time budget (${formatDuration(Math.max(0, deadline - now))} left)`,
    );
  }

  /** Hands `u` back (pending for the next attempt) and stops the step starting more; says why once. */
  #holdBackForBudget(run: StepRun, u: Unit, why: () => string): false {
    run.requeue(u, Number.POSITIVE_INFINITY);
    if (!run.budgetBlocked) {
      run.budgetBlocked = true;
      this.#revokeQueued(run);
      this.#emit({ type: 'notice', message: `${run.step.id}: not starting more units: ${why()}` });
    }
    return false;
  }

  /**
   * The predictive stop for chunks sized by time: a chunk's estimate is its size at the step's measured rate
   * (chunking.ts). The chunk was already cut to the time left, so only a chunk of `min` (or a retry, which
   * keeps its range) can be too long; then the step starts no more units, as with the p90.
   */
  #chunkFitsBudget(run: StepRun, u: Unit, now: number, deadline: number): boolean {
    const est = estimateMs(run.rec.pace, u.end - u.start);
    if (est === undefined || fitsRemaining(est, deadline - now)) return true;
    return this.#holdBackForBudget(
      run,
      u,
      () =>
        `a chunk of ${u.end - u.start} would take about ${formatDuration(Math.round(est))}, more than fits in the time budget (${formatDuration(Math.max(0, deadline - now))} left, less a margin of ${formatDuration(Math.max(0, deadline - now) - usableMs(deadline - now))})`,
    );
  }

  /** After a unit ends or a step runs dry: decide whether the step is failed/stopped for this attempt. */
  #settleStep(run: StepRun): void {
    if (run.completedThisAttempt || run.running > 0) return;
    if (run.complete) {
      this.#completeStep(run);
      return;
    }
    const now = Date.now();
    const waitingRetry = run.retryQueue.some((q) => Number.isFinite(q.notBefore) && q.notBefore > now);
    const moreToStart = !run.stoppedByFailures && run.hasQueued && !run.budgetBlocked;
    if (run.failedFinal > 0 && !waitingRetry && (!moreToStart || this.#stopping)) {
      if (run.state !== 'failed') {
        run.state = 'failed';
        this.#emit({
          type: 'step-state',
          step: run.step.id,
          state: 'failed',
          detail: `${run.failedFinal} unit(s) failed`,
        });
      }
    }
  }

  /**
   * Called once the step's work is complete and everything it needs is complete in this attempt — so a done
   * step behind an `always` step waits for it, and so do its dependents.
   */
  #completeStep(run: StepRun): void {
    if (run.completedThisAttempt) return;
    run.completedThisAttempt = true;
    run.state = 'done';
    if (!run.ranThisAttempt && run.rec.completedAt !== undefined) {
      this.#emit({
        type: 'step-state',
        step: run.step.id,
        state: 'done',
        detail: 'done in an earlier attempt',
      });
      return;
    }
    const ckpt = this.#ckpt;
    const p = (async () => {
      await ckpt.record({ type: 'step-complete', step: run.step.id });
      await ckpt.writeMarker(run.step.id);
    })();
    this.#track(p);
    this.#emit({ type: 'step-state', step: run.step.id, state: 'done' });
  }

  #track(p: Promise<void>): void {
    const wrapped = p
      .catch((err: unknown) => this.#onFatal(err))
      .finally(() => {
        this.#pending.delete(wrapped);
        this.#pump();
      });
    this.#pending.add(wrapped);
  }

  /** A journal write failed: nothing more can be recorded, so stop everything and report it. */
  #onFatal(err: unknown): void {
    if (!this.#fatal) this.#fatal = err instanceof Error ? err : new Error(String(err));
    this.stop(`cannot record progress: ${this.#fatal.message}`, 0);
  }

  /** The step's argv and fixed environment, built once per attempt (units differ only in `#ownEnv`). */
  #template(run: StepRun): { argv: string[]; env: NodeJS.ProcessEnv } {
    if (run.template) return run.template;
    const env: NodeJS.ProcessEnv = { ...this.#baseEnv, ...run.step.env };
    env.CHECKPOINT_RUN_ID = this.#ckpt.runId;
    env.CHECKPOINT_STEP = run.step.id;
    env.CHECKPOINT_RESUMED = this.#resumed ? 'true' : 'false';
    if (this.#opts.deadline !== undefined)
      env.CHECKPOINT_DEADLINE = String(Math.floor(this.#opts.deadline / 1000));
    else delete env.CHECKPOINT_DEADLINE;
    env.CHECKPOINT_STATE_DIR = this.#ckpt.stateDir(run.step.id);
    env.CHECKPOINT_OUTPUTS = this.#ckpt.outputsPath();
    for (const k of UNIT_VARS) delete env[k];
    run.template = { argv: [...this.#shellArgv(run.step), run.step.run], env };
    return run.template;
  }

  #ownEnv(run: StepRun, u: Unit, tryNo: number, scratch: Scratch, items: boolean): Record<string, string> {
    const own: Record<string, string> = {
      CHECKPOINT_TRY: String(tryNo),
      CHECKPOINT_OUTPUT: scratch.out,
      [TRACKING_VAR]: this.#markerOf(u),
    };
    const batch = run.step.batch;
    if (batch) {
      own.CHECKPOINT_BATCH_INDEX = String(u.index);
      own.CHECKPOINT_BATCH_START = String(u.start);
      own.CHECKPOINT_BATCH_END = String(u.end);
      if (items) own.CHECKPOINT_ITEMS_FILE = scratch.itemsPath;
      if (batch.size === 1 && !batch.adaptive)
        own.CHECKPOINT_ITEM = run.items ? (run.items[u.start] ?? '') : String(u.start);
    }
    return own;
  }

  #markerOf(u: Unit): string {
    return `${this.#tracking}-${u.step}-${u.start}`;
  }

  /** Takes the slot's next scratch files for `u` and writes its CHECKPOINT_ITEMS_FILE. */
  #claimScratch(slot: Slot, run: StepRun, u: Unit): { scratch: Scratch; items: boolean } {
    const scratch = slot.scratch[slot.phase];
    slot.phase = slot.phase === 0 ? 1 : 0;
    if (!run.step.batch || (!run.items && u.end - u.start > MAX_ITEMS_FILE_NUMBERS))
      return { scratch, items: false };
    const lines: string[] = [];
    for (let i = u.start; i < u.end; i++) lines.push(run.items ? (run.items[i] ?? '') : String(i));
    scratch.items ??= new SlotFile(scratch.itemsPath);
    scratch.items.set(`${lines.join('\n')}\n`);
    return { scratch, items: true };
  }

  #spawnOptions(live: Live, tryNo: number, claim: { scratch: Scratch; items: boolean }): SpawnOptions {
    const { run, unit: u } = live;
    const step = run.step;
    const t = this.#template(run);
    const opts: SpawnOptions = {
      argv: t.argv,
      cwd: step.workingDirectory,
      env: new UnitEnv(t.env, this.#ownEnv(run, u, tryNo, claim.scratch, claim.items)),
      timeoutGraceMs: this.#opts.timeoutGraceMs ?? 10_000,
    };
    if (step.timeoutMs !== undefined) opts.timeoutMs = step.timeoutMs;
    const onOutput = this.#opts.onOutput;
    const label = step.batch ? `${step.id}#${u.index}` : step.id;
    if (onOutput) opts.onLine = (line, stream) => onOutput(label, line, stream);
    return opts;
  }

  /** Counts a try of `u` (the caller starts it). */
  #nextTry(run: StepRun, u: Unit): number {
    const tryNo = (run.tries.get(u.start) ?? 0) + 1;
    run.tries.set(u.start, tryNo);
    run.ranThisAttempt = true;
    if (run.state !== 'running') {
      run.state = 'running';
      this.#emit({ type: 'step-state', step: run.step.id, state: 'running' });
    }
    return tryNo;
  }

  #startUnit(run: StepRun, u: Unit): void {
    const tryNo = this.#nextTry(run, u);
    run.running += 1;
    run.active += 1;
    const live: Live = { unit: u, run, slot: this.#takeSlot(), proc: undefined };
    // Counted as running at once so the pump respects limits while the async start proceeds.
    this.#live.add(live);
    this.#track(this.#runUnit(live, tryNo));
  }

  /** The shell's argv with its program resolved once (unless the step sets its own PATH). */
  #shellArgv(step: Step): string[] {
    const [prog, ...rest] = this.#plan.shell.argv;
    if (prog === undefined || step.env.PATH !== undefined) return this.#plan.shell.argv;
    let resolved = this.#programs.get(prog);
    if (resolved === undefined) {
      resolved = resolveProgram(prog, this.#baseEnv.PATH);
      this.#programs.set(prog, resolved);
    }
    return [resolved, ...rest];
  }

  /** A free slot (numbered 0, 1, ...: the number names its launcher and scratch files), now held once more. */
  #takeSlot(): Slot {
    let slot = this.#freeSlots.pop();
    if (!slot) {
      const id = this.#slots.length;
      const scratch = (phase: number): Scratch => {
        const base = join(this.#ckpt.dir, 'tmp', `slot-${id}.${phase}`);
        return { out: `${base}.out`, itemsPath: `${base}.items`, items: undefined };
      };
      slot = {
        id,
        users: 0,
        phase: 0,
        scratch: [scratch(0), scratch(1)],
        current: undefined,
        queued: undefined,
      };
      this.#slots.push(slot);
    }
    slot.users += 1;
    return slot;
  }

  #releaseSlot(slot: Slot): void {
    slot.users -= 1;
    if (slot.users === 0) this.#freeSlots.push(slot);
  }

  /** A unit the engine starts itself: recorded running, then handed to a launcher (or spawned). */
  async #runUnit(live: Live, tryNo: number): Promise<void> {
    const { run, unit: u, slot } = live;
    const ckpt = this.#ckpt;
    let handedOver = false;
    try {
      const claim = this.#claimScratch(slot, run, u);
      await ckpt.writeOutputsFile();
      // Recorded running before the process exists; durable with the next group commit.
      ckpt.recordLater({ type: 'start', ...u, try: tryNo, attempt: this.#attempt });
      if (this.#stopping) {
        ckpt.recordLater({ type: 'interrupt', ...u, ms: 0, reason: this.#stopping.reason });
        run.requeue(u, 0);
        return;
      }
      this.#emit({ type: 'unit-start', unit: u, try: tryNo });
      const opts = this.#spawnOptions(live, tryNo, claim);
      const backend = this.#pool ? await this.#pool.start(opts, slot.id) : undefined;
      handedOver = true;
      await this.#supervise(live, tryNo, opts, backend, claim.scratch.out);
    } finally {
      if (!handedOver) {
        this.#live.delete(live);
        run.active -= 1;
        this.#releaseSlot(slot);
        run.running -= 1;
      }
    }
  }

  /**
   * THE PIPELINING RULE (launcher.ts has the protocol). The next unit of a step is queued behind a running
   * unit of the same step, in its slot, only when
   *   - units start through launchers (not with CHECKPOINT_LAUNCHER=0 or without bash),
   *   - the run is not stopping (signal, time budget reached, lost lease, journal failure),
   *   - the step is a batch with independent units: never for `order: sequential`, whose next unit
   *     depends on the previous one's recorded end,
   *   - the step has no throttle (each of its units asks the throttle when it starts),
   *   - the step has not stopped for max-failures and is not held back by the time budget's prediction,
   *   - no step earlier in dependency order waits for a slot (`#starved`), and the slot's running unit is
   *     its only holder (the unit before it is fully recorded, so the alternate scratch files are free).
   * The unit is one `next()` hands out now: a retry only once its backoff has passed. Its request carries
   * the last start time at which it still fits the budget (deadline minus the step's p90) and the launcher
   * starts it only if the running unit exits 0 — after a failure the engine decides, as without
   * pipelining. A stop, max-failures or the budget revokes queued requests; a request the launcher had
   * already started is a started unit like any other (recorded, and ended if the run is stopping).
   */
  #mayQueueAhead(run: StepRun): boolean {
    return (
      this.#pool !== undefined &&
      !this.#stopping &&
      run.step.batch !== undefined &&
      run.step.batch.order !== 'sequential' &&
      // A queued unit would start without asking the throttle; throttled steps start each unit themselves.
      run.step.batch.throttle === undefined &&
      !run.stoppedByFailures &&
      !run.budgetBlocked
    );
  }

  /** A step that could start a unit but every slot is taken. */
  #starved(run: StepRun): boolean {
    return (
      !this.#stopping &&
      run.active < run.parallel &&
      this.#totalRunning() >= this.#concurrency &&
      !run.stoppedByFailures &&
      !run.budgetBlocked &&
      run.hasQueued
    );
  }

  /** Queues the next unit of `run` behind each of its running units that has none; returns a wake-up time. */
  #queueAhead(run: StepRun, now: number): number {
    const pool = this.#pool;
    if (!pool || !this.#mayQueueAhead(run)) return Number.POSITIVE_INFINITY;
    for (const slot of this.#slots) {
      if (slot.current?.run !== run || slot.queued || slot.users !== 1 || !pool.canQueue(slot.id)) continue;
      let startBy = this.#startBy(run, now);
      if (startBy === false) break;
      const nx = run.next(now);
      if (nx === undefined) break;
      if ('wakeAt' in nx) return nx.wakeAt;
      if (run.step.batch?.adaptive) {
        // A chunk's last useful start depends on its size.
        startBy = this.#chunkStartBy(run, nx);
        if (startBy !== undefined && startBy <= now * 1000) {
          run.giveBack(nx);
          break;
        }
      }
      this.#queueUnit(run, nx, slot, startBy, pool);
    }
    return Number.POSITIVE_INFINITY;
  }

  /**
   * The latest start (Unix µs) at which a unit of `run` still ends within the budget; false: queue nothing
   * now — none fits, or the step has no finished unit to predict from yet (the engine starts those itself,
   * judging each with the durations known by then).
   */
  #startBy(run: StepRun, now: number): number | undefined | false {
    const deadline = this.#opts.deadline;
    if (deadline === undefined) return undefined;
    if (run.step.batch?.adaptive) {
      // Chunks sized by time: whether a chunk of `min` still fits (each chunk then gets its own, below).
      const est = estimateMs(run.rec.pace, run.rec.size);
      if (est === undefined || latestStart(deadline, est) <= now) return false;
      return latestStart(deadline, est) * 1000;
    }
    const est = p90(run.rec.durations);
    if (est === undefined || deadline - est <= now) return false;
    return (deadline - est) * 1000;
  }

  /** Chunks sized by time: the latest start (Unix µs) at which chunk `u` still fits the budget. */
  #chunkStartBy(run: StepRun, u: Unit): number | undefined {
    const deadline = this.#opts.deadline;
    const est = estimateMs(run.rec.pace, u.end - u.start);
    if (deadline === undefined || est === undefined) return undefined;
    return latestStart(deadline, est) * 1000;
  }

  /** A longer p90 moves the last useful start earlier: queued units now past it are taken back. */
  #recheckBudget(run: StepRun): void {
    const deadline = this.#opts.deadline;
    if (deadline === undefined) return;
    const by = (deadline - (p90(run.rec.durations) ?? 0)) * 1000;
    for (const slot of this.#slots) {
      const q = slot.queued;
      if (q?.live.run !== run || q.startBy === undefined) continue;
      // Chunks sized by time: a slower rate moves each queued chunk's last useful start by its own size.
      const chunkBy = run.step.batch?.adaptive ? this.#chunkStartBy(run, q.live.unit) : undefined;
      if (q.startBy > (chunkBy ?? by)) q.handoff?.revoke();
    }
  }

  /**
   * Hands `u` to the launcher of `slot`, behind its running unit. No outputs.json rewrite first (unlike
   * `#runUnit`): the step already runs, so the file holds every output its units may rely on, those of the
   * steps it needs.
   */
  #queueUnit(run: StepRun, u: Unit, slot: Slot, startBy: number | undefined, pool: LauncherPool): void {
    const tryNo = this.#nextTry(run, u);
    run.running += 1;
    slot.users += 1;
    const q: Queued = {
      live: { unit: u, run, slot, proc: undefined },
      tryNo,
      startBy,
      counted: false,
      handoff: undefined,
    };
    try {
      const claim = this.#claimScratch(slot, run, u);
      const opts = this.#spawnOptions(q.live, tryNo, claim);
      q.handoff = pool.queue(opts, slot.id, startBy, () => this.#countQueued(q));
      slot.queued = q;
      this.#track(this.#runQueued(q, opts, claim.scratch.out));
    } catch (err) {
      this.#giveBack(q);
      this.#track(Promise.reject(err));
    }
  }

  /** The unit ahead exited 0: the launcher is starting this one, so it takes its place in the limits. */
  #countQueued(q: Queued): void {
    if (q.counted) return;
    q.counted = true;
    this.#live.add(q.live);
    q.live.run.active += 1;
  }

  /** A queued unit that never started goes back to the front of its step's queue, its try unused. */
  #giveBack(q: Queued): void {
    const { run, unit: u, slot } = q.live;
    if (slot.queued === q) slot.queued = undefined;
    if (q.counted) {
      this.#live.delete(q.live);
      run.active -= 1;
    }
    this.#releaseSlot(slot);
    if (run.tries.get(u.start) === q.tryNo) run.tries.set(u.start, q.tryNo - 1);
    run.giveBack(u);
    run.running -= 1;
  }

  /** Takes back the requests queued behind running units (of one step, or all). */
  #revokeQueued(run?: StepRun): void {
    for (const slot of this.#slots) if (!run || slot.queued?.live.run === run) slot.queued?.handoff?.revoke();
  }

  /**
   * A queued unit is recorded running only once the launcher reports it started: it may never start.
   * Until then it holds a place in its slot and, once the unit ahead exited 0, in the limits.
   */
  async #runQueued(q: Queued, opts: SpawnOptions, outFile: string): Promise<void> {
    const { unit: u, slot } = q.live;
    const backend = await q.handoff?.started;
    if (slot.queued === q) slot.queued = undefined;
    if (!backend) {
      this.#giveBack(q);
      return;
    }
    this.#countQueued(q);
    this.#ckpt.recordLater({ type: 'start', ...u, try: q.tryNo, attempt: this.#attempt });
    this.#emit({ type: 'unit-start', unit: u, try: q.tryNo });
    await this.#supervise(q.live, q.tryNo, opts, backend, outFile);
  }

  /** A started unit, from its process to its recorded end; frees its place in the limits and its slot. */
  async #supervise(
    live: Live,
    tryNo: number,
    opts: SpawnOptions,
    backend: UnitBackend | undefined,
    outFile: string,
  ): Promise<void> {
    const { run, unit: u, slot } = live;
    const ckpt = this.#ckpt;
    let vacated = false;
    // A unit counts against the concurrency until its end is written, not just until its process exits:
    // otherwise new units start while ends wait to be written, and a kill redoes more than `concurrency`.
    const vacate = () => {
      if (vacated) return;
      vacated = true;
      this.#live.delete(live);
      run.active -= 1;
      this.#releaseSlot(slot);
    };
    try {
      const proc = new UnitProcess(opts, backend);
      live.proc = proc;
      slot.current = live;
      // A stop may have begun while the process was being set up.
      const stopping = this.#stopInfo();
      if (stopping) proc.terminate(stopping.graceMs, 'stop');
      if (proc.pid !== undefined) {
        const ev = { type: 'spawned' as const, ...u, pid: proc.pid, host: HOST, marker: this.#markerOf(u) };
        ckpt.recordLater(proc.startTime === undefined ? ev : { ...ev, startTime: proc.startTime });
      }
      // The next unit can be queued behind this one now, unless the one before still holds the slot (its
      // release pumps then).
      if (slot.users === 1 && this.#mayQueueAhead(run)) this.#pump();
      const exit = await proc.exited;
      if (slot.current === live) slot.current = undefined;
      // Outputs are taken before the slot (and its scratch files) goes to the next unit.
      const outText = takeFile(outFile);
      // A success frees the slot for the next unit once its `done` line is written, before the fsync: a
      // SIGKILL from then on does not lose it, so a kill redoes at most the units holding slots (one per
      // slot, and the unit its launcher started behind it). A failure frees it only after its record: it
      // may exceed max-failures, and no unit may start before that is known.
      const onDoneWritten = () => {
        vacate();
        this.#pump();
      };
      await this.#recordExit(run, u, tryNo, exit, proc, outText, onDoneWritten);
    } finally {
      if (slot.current === live) slot.current = undefined;
      if (!vacated) {
        takeFile(outFile);
        vacate();
      }
      // Released only now, after the unit's end is durable: a step is complete only when nothing is in flight.
      run.running -= 1;
    }
  }

  async #recordExit(
    run: StepRun,
    u: Unit,
    tryNo: number,
    exit: UnitExit,
    proc: UnitProcess,
    outText: string | undefined,
    onDoneWritten: () => void,
  ): Promise<void> {
    const ckpt = this.#ckpt;
    const step = run.step;
    const tail = proc.tail();
    if (proc.hasOutput) await this.#writeLog(step.id, u.index, tail);
    if (exit.code === 0 && !exit.spawnError) {
      let outputs: Record<string, string> | undefined;
      try {
        if (outText !== undefined && outText.length > 0) {
          outputs = parseOutputFile(outText, `CHECKPOINT_OUTPUT of ${step.id}`);
        }
      } catch (err) {
        if (!(err instanceof OutputSyntaxError)) throw err;
        return this.#recordFailure(run, u, tryNo, { ...exit, code: 1 }, err.message, tail);
      }
      await this.#recordDone(
        { type: 'done', ...u, ms: exit.ms, ...(outputs ? { outputs } : {}) },
        onDoneWritten,
      );
      // A longer p90 may take back units queued with the old one.
      this.#recheckBudget(run);
      this.#emit({ type: 'unit-end', unit: u, result: 'done', ms: exit.ms });
      return;
    }
    if (exit.endedBy === 'stop') {
      await ckpt.record({
        type: 'interrupt',
        ...u,
        ms: exit.ms,
        reason: this.#stopping?.reason ?? 'stopped',
      });
      run.requeue(u, Number.POSITIVE_INFINITY);
      this.#emit({
        type: 'unit-end',
        unit: u,
        result: 'interrupted',
        ms: exit.ms,
        detail: this.#stopping?.reason,
      });
      return;
    }
    if (exit.code === EXIT_INCOMPLETE && !exit.endedBy) {
      ckpt.recordLater({ type: 'yield', ...u, ms: exit.ms });
      // A yield is progress, not a failure: run it again now (no try used) unless the run is stopping.
      run.tries.set(u.start, tryNo - 1);
      run.requeue(u, this.#stopping ? Number.POSITIVE_INFINITY : 0);
      if (this.#stopping) this.#yieldedLeft = true;
      this.#emit({ type: 'unit-end', unit: u, result: 'yielded', ms: exit.ms });
      return;
    }
    let reason: string;
    if (exit.spawnError) reason = exit.spawnError;
    else if (exit.endedBy === 'timeout') reason = `timed out after ${formatDuration(step.timeoutMs ?? 0)}`;
    else if (exit.signal) reason = `killed by ${exit.signal}`;
    else reason = `exit code ${exit.code}`;
    await this.#recordFailure(run, u, tryNo, exit, reason, tail);
  }

  /**
   * Records a `done` with the others of its commit window: one write and one fsync for all, and no line in
   * the journal before its fsync (the same promise as `record`). Resolves once durable.
   */
  #recordDone(ev: UnitDoneEvent, onWritten: () => void): Promise<void> {
    let batch = this.#doneBatch;
    if (!batch) {
      const events: { ev: UnitDoneEvent; onWritten: () => void }[] = [];
      const durable = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.#doneBatch = undefined;
        // Appended in one tick: the journal writes them together and fsyncs them together.
        await Promise.all(events.map((e) => this.#ckpt.record(e.ev, e.onWritten)));
      });
      batch = { events, durable };
      this.#doneBatch = batch;
    }
    batch.events.push({ ev, onWritten });
    return batch.durable;
  }

  async #recordFailure(
    run: StepRun,
    u: Unit,
    tryNo: number,
    exit: UnitExit,
    reason: string,
    tail: string,
  ): Promise<void> {
    const step = run.step;
    const final = tryNo >= step.retry.attempts || this.#stopping !== undefined;
    const cmd = step.batch ? `${step.id} [${u.start}, ${u.end})` : step.id;
    const detail = `${cmd}: ${reason} (try ${tryNo} of ${step.retry.attempts})`;
    await this.#ckpt.record({
      type: 'fail',
      ...u,
      try: tryNo,
      ms: exit.ms,
      exit: exit.code,
      signal: exit.signal,
      final,
      reason,
    });
    if (!final) {
      const delay = retryDelayMs(step.retry, tryNo + 1, this.#opts.random);
      run.requeue(u, Date.now() + delay);
      this.#emit({
        type: 'unit-end',
        unit: u,
        result: 'retry',
        ms: exit.ms,
        detail: `${detail}; retrying in ${formatDuration(delay)}`,
        tail,
        exit: exit.code,
        signal: exit.signal,
      });
      return;
    }
    run.failedFinal += 1;
    run.failedFinalStarts.add(u.start);
    if (run.failedFinal > run.maxFailures && !run.stoppedByFailures) {
      run.stoppedByFailures = true;
      this.#revokeQueued(run);
      if (step.batch)
        this.#emit({
          type: 'notice',
          message: `${step.id}: ${run.failedFinal} unit(s) failed, more than max-failures (${run.maxFailures}); not starting more units of this step`,
        });
    }
    this.#emit({
      type: 'unit-end',
      unit: u,
      result: 'failed',
      ms: exit.ms,
      detail,
      tail,
      exit: exit.code,
      signal: exit.signal,
    });
  }

  async #writeLog(step: string, index: number, tail: string): Promise<void> {
    const path = this.#ckpt.logPath(step, index);
    try {
      // No links followed below the run folder (DESIGN §4); fenced by the lease like every checkpoint write.
      await this.#ckpt.writeLog(step, index, tail);
    } catch (err) {
      if (err instanceof CheckpointCorruptError || err instanceof LockedError) throw err;
      // Node's error for a failed write() names no file.
      throw new CheckpointWriteError(path, err);
    }
  }

  #result(): RunResult {
    let stepsDone = 0;
    let unitsDone = 0;
    let unitsTotal = 0;
    let unitsFailed = 0;
    let anyFailed = false;
    for (const run of this.#runs.values()) {
      const rec = run.rec;
      const total = unitCount(rec);
      unitsTotal += total;
      unitsDone += Math.min(total, rec.unitsDone);
      unitsFailed += run.failedFinal;
      if (run.failedFinal > 0) anyFailed = true;
      if (isStepComplete(rec) && (run.completedThisAttempt || !run.step.always)) stepsDone += 1;
    }
    const stepsTotal = this.#runs.size;
    const complete = stepsDone === stepsTotal && !anyFailed;
    const waitingForApproval = [...this.#runs.values()]
      .filter((r) => r.awaitingApproval && !r.completedThisAttempt)
      .map((r) => r.step.id);
    let exitCode: number;
    let reason: string;
    if (this.#fatal) {
      exitCode = EXIT_FAILED;
      reason = this.#fatal.message;
    } else if (anyFailed) {
      exitCode = EXIT_FAILED;
      const failedSteps = [...this.#runs.values()].filter((r) => r.failedFinal > 0).map((r) => r.step.id);
      reason = `${unitsFailed} unit(s) failed in ${failedSteps.join(', ')}`;
    } else if (complete) {
      exitCode = EXIT_OK;
      reason = 'complete';
    } else {
      exitCode = EXIT_INCOMPLETE;
      if (this.#stopping) reason = `stopped early: ${this.#stopping.reason}`;
      else if ([...this.#runs.values()].some((r) => r.budgetBlocked))
        reason = 'stopped early: the next units would not finish within the time budget';
      else if (this.#yieldedLeft) reason = 'stopped early: a unit yielded';
      else if (waitingForApproval.length > 0)
        reason = `waiting for approval: ${waitingForApproval.join(', ')}`;
      else reason = 'stopped early';
    }
    return {
      exitCode,
      reason,
      complete,
      resumed: this.#resumed,
      stepsDone,
      stepsRemaining: stepsTotal - stepsDone,
      unitsDone,
      unitsRemaining: Math.max(0, unitsTotal - unitsDone),
      unitsFailed,
      attempt: this.#attempt,
      ...(waitingForApproval.length > 0 ? { waitingForApproval } : {}),
    };
  }
}

/** Reads and removes a unit's CHECKPOINT_OUTPUT file; undefined when the unit wrote none. */
/** The last non-empty line of a command's output, shortened for one log line. */
function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const l = (lines[lines.length - 1] ?? '').trim();
  return l.length > 200 ? `${l.slice(0, 197)}...` : l;
}

function takeFile(path: string): string | undefined {
  // Most units write no outputs: a stat that doesn't throw is cheaper than a failed open's exception.
  if (!statSync(path, { throwIfNoEntry: false })) return undefined;
  try {
    const text = readFileSync(path, 'utf8');
    unlinkSync(path);
    return text;
  } catch {
    return undefined;
  }
}
