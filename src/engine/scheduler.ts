// The engine: runs the selected steps' units as a DAG under plan-wide and per-step limits, records every
// transition in the checkpoint, and stops cleanly on a signal, a lost lease or the time budget. Which unit
// comes next is the work queue's (work-queue.ts), whether it fits the budget budget.ts's, what a process end
// means recorder.ts's, the throttle throttle.ts's; processes are started by src/exec. This file is the pump
// that ties them together.
import { readFileSync, statSync, unlinkSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK } from '../errors.js';
import { Markers, TRACKING_VAR } from '../exec/marker.js';
import {
  MAX_TIMER_MS,
  ManagedProcess,
  type ProcessExit,
  resolveProgram,
  type SpawnOptions,
} from '../exec/process.js';
import { Watcher } from '../exec/watcher.js';
import type { Checkpoint } from '../journal/checkpoint.js';
import type { ItemList } from '../journal/item-list.js';
import { approvalOf, isResumed, isStepComplete, type StepRecord, unitCount } from '../journal/state.js';
import { formatDuration } from '../plan/duration.js';
import type { Plan, Step } from '../plan/types.js';
import { wouldOverrun } from './budget.js';
import { monoNow, wallOf } from './clock.js';
import { scrubEnv } from './env.js';
import { describeUnitItems } from './item-names.js';
import { endOrphans } from './orphans.js';
import { OutputSyntaxError, parseOutputFile } from './outputs.js';
import { type Preparation, topoOrder } from './prepare.js';
import { classifyExit, Recorder } from './recorder.js';
import { failureHint, failureOf, mayRetry, retryDelayMs } from './retry.js';
import { SlotFile } from './slot-file.js';
import { THROTTLE_CHECK_TIMEOUT_MS, Throttle } from './throttle.js';
import { type Unit, WorkQueue } from './work-queue.js';

export { EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE } from '../errors.js';
export type { Unit } from './work-queue.js';

/** Ranges bigger than this get no CHECKPOINT_ITEMS_FILE: writing millions of numbers per unit helps nobody. */
const MAX_ITEMS_FILE_NUMBERS = 1_000_000;

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
  /** The budget's end on the monotonic clock (`monoNow()` + the budget; see clock.ts). */
  deadline?: number;
  stopGraceMs?: number;
  timeoutGraceMs?: number;
  deadlineGraceMs?: number;
  onEvent?: (ev: EngineEvent) => void;
  /** A line of a unit's output; `label` is `step` or `step#index`. */
  onOutput?: (label: string, line: string, stream: 'stdout' | 'stderr') => void;
  env?: NodeJS.ProcessEnv;
  random?: () => number;
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

/** One selected step in this attempt: its queue and what of it runs now. */
class StepRun {
  readonly step: Step;
  readonly queue: WorkQueue;
  readonly #ckpt: Checkpoint;
  /** Units started and not yet recorded as ended (the step is complete only at 0). */
  running = 0;
  /** Units holding a place in the limits (bounded by `parallel`): from start until their end is written. */
  active = 0;
  completedThisAttempt = false;
  /** `approval: true` and not approved: no unit of it starts in this attempt (reported once). */
  awaitingApproval = false;
  ranThisAttempt = false;
  state: StepRunState = 'waiting';
  /** Indexed, not parsed, when read back (item-list.ts): a unit decodes only its own items. */
  items: ItemList | undefined;
  /** argv and the fixed part of the environment, the same for every unit of this attempt (built on first use). */
  template: { argv: string[]; env: NodeJS.ProcessEnv } | undefined;
  throttle: Throttle | undefined;

  constructor(step: Step, ckpt: Checkpoint) {
    this.step = step;
    this.#ckpt = ckpt;
    this.queue = new WorkQueue(step, () => this.rec);
  }

  get rec(): StepRecord {
    const r = this.#ckpt.state.steps.get(this.step.id);
    if (!r) throw new Error(`internal: step ${this.step.id} has no record`);
    return r;
  }

  get complete(): boolean {
    return isStepComplete(this.rec) && this.running === 0;
  }
}

interface Live {
  unit: Unit;
  run: StepRun;
  slot: Slot;
  /** Set once the process started; until then the unit only holds its place within the limits. */
  proc: ManagedProcess | undefined;
}

/** A slot: one unit at a time, with its scratch files (CHECKPOINT_OUTPUT, CHECKPOINT_ITEMS_FILE). */
interface Slot {
  readonly id: number;
  readonly out: string;
  readonly itemsPath: string;
  items: SlotFile | undefined;
}

export class Engine {
  readonly #plan: Plan;
  readonly #ckpt: Checkpoint;
  readonly #prep: Preparation;
  readonly #opts: EngineOptions;
  readonly #runs = new Map<string, StepRun>();
  readonly #live = new Set<Live>();
  readonly #pending = new Set<Promise<void>>();
  readonly #recorder: Recorder;
  #stopping: { reason: string; graceMs: number } | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #finish: (() => void) | undefined;
  #attempt = 0;
  #resumed = false;
  #yieldedLeft = false;
  #fatal: Error | undefined;
  #baseEnv: NodeJS.ProcessEnv = {};
  #markers: Markers | undefined;
  #watcher: Watcher | undefined;
  readonly #slots: Slot[] = [];
  readonly #freeSlots: Slot[] = [];
  readonly #programs = new Map<string, string>();
  readonly #concurrency: number;
  readonly #startedMono = monoNow();

  constructor(plan: Plan, ckpt: Checkpoint, prep: Preparation, opts: EngineOptions = {}) {
    this.#plan = plan;
    this.#ckpt = ckpt;
    this.#prep = prep;
    this.#opts = opts;
    this.#concurrency = Math.max(1, opts.concurrency ?? plan.concurrency);
    this.#recorder = new Recorder(ckpt);
  }

  get attempt(): number {
    return this.#attempt;
  }

  /** Stops starting units and ends running ones: SIGTERM to each unit and what it started, SIGKILL after the grace. */
  stop(reason: string, graceMs = this.#opts.stopGraceMs ?? 3000): void {
    if (this.#stopping && graceMs >= this.#stopping.graceMs) return;
    this.#stopping = { reason: this.#stopping?.reason ?? reason, graceMs };
    this.#emit({
      type: 'notice',
      message: `stopping (${reason}): ending ${this.#live.size} running unit(s)`,
    });
    for (const l of this.#live) l.proc?.terminate(graceMs, 'stop');
    for (const r of this.#runs.values()) r.throttle?.terminate(graceMs);
    this.#pump();
  }

  #emit(ev: EngineEvent): void {
    this.#opts.onEvent?.(ev);
  }

  async run(): Promise<RunResult> {
    const ckpt = this.#ckpt;
    const state = ckpt.state;
    this.#resumed = isResumed(state);
    this.#attempt = (state.attempts[state.attempts.length - 1]?.attempt ?? 0) + 1;
    ckpt.recordLater({
      type: 'attempt',
      attempt: this.#attempt,
      plan: this.#plan.name,
      pid: process.pid,
      host: HOST,
      resumed: this.#resumed,
      ...(state.shard ? { shard: state.shard } : {}),
    });
    for (const id of this.#prep.replaced) await ckpt.clearStepFiles(id);
    // The frozen lists go to disk before the records that point at them: a run cut off (or failing to
    // write) in between then leaves no record whose list is missing, and the next run expands again.
    // The lists are used from then on as indexed over the text written (item-list.ts), not as arrays.
    const frozen = new Map<string, ItemList>();
    for (const [id, list] of this.#prep.items) frozen.set(id, await ckpt.writeItems(id, list));
    this.#prep.items.clear();
    for (const ev of this.#prep.events) ckpt.recordLater(ev);
    await this.#endOrphans();
    await ckpt.flush();
    await ckpt.syncMarkers();

    this.#baseEnv = scrubEnv(this.#opts.env ?? process.env);
    // A nested run's own marker is its parent unit's: its units get their own.
    delete this.#baseEnv[TRACKING_VAR];
    this.#markers = new Markers(ckpt.runId, this.#attempt);
    this.#watcher = new Watcher(this.#markers.prefix, this.#baseEnv);
    // Dependency order, so one pass of the pump settles a chain of steps that are already done.
    const selected = new Set(this.#prep.selected.map((s) => s.id));
    const deadline = this.#opts.deadline;
    for (const step of topoOrder(this.#plan).filter((s) => selected.has(s.id))) {
      const run = new StepRun(step, ckpt);
      run.queue.deadline = deadline;
      // A list expanded by this attempt is used as it is; only a list frozen earlier is read back.
      if (step.batch?.space.kind === 'items' && run.rec.to > run.rec.from)
        run.items = frozen.get(step.id) ?? (await ckpt.readItemList(step.id));
      if (step.batch?.throttle) run.throttle = this.#throttleOf(run, step.batch.throttle);
      this.#runs.set(step.id, run);
      await ckpt.ensureStateDir(step.id);
    }
    if (deadline !== undefined && deadline - monoNow() < MAX_TIMER_MS) {
      this.#deadlineTimer = setTimeout(
        () => this.stop(`time budget reached`, this.#opts.deadlineGraceMs ?? 10_000),
        Math.max(0, deadline - monoNow()),
      );
    }
    try {
      await new Promise<void>((resolve) => {
        this.#finish = resolve;
        this.#pump();
      });
      await Promise.all([...this.#pending]);
    } finally {
      // Every unit's end is recorded (or recording failed and everything was ended): nothing to watch.
      this.#watcher.close();
      for (const slot of this.#slots) slot.items?.close();
      if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
      if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    }
    const result = this.#result();
    // After a failed journal write nothing more can be recorded; the error is the result.
    if (this.#fatal) throw this.#fatal;
    // Time held back by a throttle is counted per attempt: an attempt that ends held closes its span.
    for (const run of this.#runs.values())
      if (run.throttle?.held)
        ckpt.recordLater({ type: 'throttle', step: run.step.id, held: false, reason: 'the attempt ended' });
    ckpt.recordLater({
      type: 'attempt-end',
      attempt: this.#attempt,
      exit: result.exitCode,
      reason: result.reason,
      ms: Math.round(monoNow() - this.#startedMono),
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

  /**
   * THE PUMP: starts every unit the limits allow (plan `concurrency`, step `parallel`, dependencies,
   * approvals, the throttle, the time budget) and settles steps; runs again whenever a unit ends, a step's
   * record is written, or a retry's backoff or a throttle's wait is over.
   */
  #pump(): void {
    if (this.#wakeTimer) {
      clearTimeout(this.#wakeTimer);
      this.#wakeTimer = undefined;
    }
    if (this.#finish === undefined) return;
    const now = monoNow();
    let wakeAt = Number.POSITIVE_INFINITY;
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
      if (run.throttle && this.#wouldStart(run) && !run.throttle.open(now)) {
        wakeAt = Math.min(wakeAt, run.throttle.wakeAt);
        this.#settleStep(run);
        continue;
      }
      while (!this.#stopping && this.#live.size < this.#concurrency && run.active < run.queue.parallel) {
        const nx = run.queue.next(now);
        if (nx === undefined) break;
        if ('wakeAt' in nx) {
          wakeAt = Math.min(wakeAt, nx.wakeAt);
          break;
        }
        const overrun = wouldOverrun(run.step, run.rec, nx, now, this.#opts.deadline);
        if (overrun !== undefined) {
          if (run.queue.holdBack(nx))
            this.#emit({ type: 'notice', message: `${run.step.id}: not starting more units: ${overrun}` });
          break;
        }
        this.#startUnit(run, nx);
      }
      this.#settleStep(run);
    }
    if (this.#live.size === 0 && this.#pending.size === 0) {
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
        Math.min(MAX_TIMER_MS, Math.max(0, wakeAt - monoNow())),
      );
    }
  }

  /** Whether `run` has room and work for a unit now (before its throttle is asked). */
  #wouldStart(run: StepRun): boolean {
    return (
      !this.#stopping &&
      this.#live.size < this.#concurrency &&
      run.active < run.queue.parallel &&
      run.queue.hasQueued
    );
  }

  #throttleOf(run: StepRun, spec: NonNullable<NonNullable<Step['batch']>['throttle']>): Throttle {
    return new Throttle(run.step.id, spec, {
      spawn: (command) =>
        new ManagedProcess({
          argv: [...this.#shellArgv(run.step), command],
          cwd: run.step.workingDirectory,
          env: this.#template(run).env,
          marker: this.#markers?.next(),
          timeoutMs: THROTTLE_CHECK_TIMEOUT_MS,
          timeoutGraceMs: 3000,
          tailBytes: 2048,
        }),
      record: (held, reason) =>
        this.#ckpt.record({
          type: 'throttle',
          step: run.step.id,
          held,
          ...(reason !== undefined ? { reason } : {}),
        }),
      notice: (message) => this.#emit({ type: 'notice', message }),
      track: (p) => this.#track(p),
    });
  }

  /** After a unit ends or a step runs dry: decide whether the step is failed/stopped for this attempt. */
  #settleStep(run: StepRun): void {
    if (run.completedThisAttempt || run.running > 0) return;
    if (run.complete) {
      this.#completeStep(run);
      return;
    }
    const q = run.queue;
    const waitingRetry = q.waitingRetry(monoNow());
    const moreToStart = q.hasQueued;
    if (q.failedFinal > 0 && !waitingRetry && (!moreToStart || this.#stopping)) {
      if (run.state !== 'failed') {
        run.state = 'failed';
        this.#emit({
          type: 'step-state',
          step: run.step.id,
          state: 'failed',
          detail: `${q.failedFinal} unit(s) failed`,
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
    const deadline = this.#opts.deadline;
    if (deadline !== undefined) env.CHECKPOINT_DEADLINE = String(Math.floor(wallOf(deadline) / 1000));
    else delete env.CHECKPOINT_DEADLINE;
    env.CHECKPOINT_STATE_DIR = this.#ckpt.stateDir(run.step.id);
    env.CHECKPOINT_OUTPUTS = this.#ckpt.outputsPath();
    for (const k of UNIT_VARS) delete env[k];
    run.template = { argv: [...this.#shellArgv(run.step), run.step.run], env };
    return run.template;
  }

  /** The unit's whole environment: the step's fixed part and its own variables. */
  #unitEnv(run: StepRun, u: Unit, tryNo: number, slot: Slot, items: boolean): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...this.#template(run).env };
    env.CHECKPOINT_TRY = String(tryNo);
    env.CHECKPOINT_OUTPUT = slot.out;
    const batch = run.step.batch;
    if (batch) {
      env.CHECKPOINT_BATCH_INDEX = String(u.index);
      env.CHECKPOINT_BATCH_START = String(u.start);
      env.CHECKPOINT_BATCH_END = String(u.end);
      if (items) env.CHECKPOINT_ITEMS_FILE = slot.itemsPath;
      if (batch.size === 1 && !batch.adaptive)
        env.CHECKPOINT_ITEM = run.items ? (run.items.slice(u.start, u.start + 1)[0] ?? '') : String(u.start);
    }
    return env;
  }

  /** Writes the unit's CHECKPOINT_ITEMS_FILE into its slot; false when the unit gets none. */
  #writeItemsFile(slot: Slot, run: StepRun, u: Unit): boolean {
    if (!run.step.batch || (!run.items && u.end - u.start > MAX_ITEMS_FILE_NUMBERS)) return false;
    const lines: string[] = run.items ? run.items.slice(u.start, u.end) : [];
    if (!run.items) for (let i = u.start; i < u.end; i++) lines.push(String(i));
    slot.items ??= new SlotFile(slot.itemsPath);
    slot.items.set(`${lines.join('\n')}\n`);
    return true;
  }

  #startUnit(run: StepRun, u: Unit): void {
    const tryNo = run.queue.startTry(u);
    run.ranThisAttempt = true;
    if (run.state !== 'running') {
      run.state = 'running';
      this.#emit({ type: 'step-state', step: run.step.id, state: 'running' });
    }
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

  /** A free slot (numbered 0, 1, ...: the number names its scratch files). */
  #takeSlot(): Slot {
    const free = this.#freeSlots.pop();
    if (free) return free;
    const id = this.#slots.length;
    const base = join(this.#ckpt.dir, 'tmp', `slot-${id}`);
    const slot: Slot = { id, out: `${base}.out`, itemsPath: `${base}.items`, items: undefined };
    this.#slots.push(slot);
    return slot;
  }

  /** A unit from its `start` record to its recorded end; frees its place in the limits and its slot. */
  async #runUnit(live: Live, tryNo: number): Promise<void> {
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
      this.#freeSlots.push(slot);
    };
    let marker: string | undefined;
    try {
      const items = this.#writeItemsFile(slot, run, u);
      await ckpt.writeOutputsFile();
      // Recorded running before the process exists; durable with the next group commit.
      ckpt.recordLater({ type: 'start', ...u, try: tryNo, attempt: this.#attempt });
      if (this.#stopping) {
        ckpt.recordLater({ type: 'interrupt', ...u, ms: 0, reason: this.#stopping.reason });
        run.queue.interrupted(u);
        return;
      }
      this.#emit({ type: 'unit-start', unit: u, try: tryNo });
      marker = this.#markers?.next();
      const opts = this.#spawnOptions(run, u, tryNo, slot, items, marker);
      if (marker !== undefined) this.#watcher?.starting(marker);
      const proc = new ManagedProcess(opts);
      live.proc = proc;
      if (proc.pid !== undefined) {
        if (marker !== undefined) this.#watcher?.started(marker, proc.pid);
        ckpt.recordLater({
          type: 'spawned',
          ...u,
          pid: proc.pid,
          host: HOST,
          ...(proc.startTime !== undefined ? { startTime: proc.startTime } : {}),
          marker: proc.marker,
        });
      }
      const exit = await proc.exited;
      // Outputs are taken before the slot (and its scratch files) goes to the next unit.
      const outText = takeFile(slot.out);
      // A success frees the slot for the next unit once its `done` line is written, before the fsync: a
      // SIGKILL from then on does not lose it, so a kill redoes at most the units holding slots. A failure
      // frees it only after its record: it may exceed max-failures, and no unit may start before that is
      // known.
      const onDoneWritten = () => {
        vacate();
        this.#pump();
      };
      await this.#recordExit(run, u, tryNo, exit, proc, outText, onDoneWritten);
    } finally {
      if (marker !== undefined) this.#watcher?.ended(marker);
      if (!vacated) {
        takeFile(slot.out);
        vacate();
      }
      // Released only now, after the unit's end is durable: a step is complete only when nothing is in flight.
      run.running -= 1;
    }
  }

  #spawnOptions(
    run: StepRun,
    u: Unit,
    tryNo: number,
    slot: Slot,
    items: boolean,
    marker: string | undefined,
  ): SpawnOptions {
    const step = run.step;
    const opts: SpawnOptions = {
      argv: this.#template(run).argv,
      cwd: step.workingDirectory,
      env: this.#unitEnv(run, u, tryNo, slot, items),
      timeoutGraceMs: this.#opts.timeoutGraceMs ?? 10_000,
    };
    if (marker !== undefined) opts.marker = marker;
    if (step.timeoutMs !== undefined) opts.timeoutMs = step.timeoutMs;
    const onOutput = this.#opts.onOutput;
    const label = step.batch ? `${step.id}#${u.index}` : step.id;
    if (onOutput) opts.onLine = (line, stream) => onOutput(label, line, stream);
    return opts;
  }

  async #recordExit(
    run: StepRun,
    u: Unit,
    tryNo: number,
    exit: ProcessExit,
    proc: ManagedProcess,
    outText: string | undefined,
    onDoneWritten: () => void,
  ): Promise<void> {
    const ckpt = this.#ckpt;
    const step = run.step;
    const verdict = classifyExit(exit, step.timeoutMs);
    if (verdict.kind === 'done') {
      let outputs: Record<string, string> | undefined;
      try {
        if (outText !== undefined && outText.length > 0) {
          outputs = parseOutputFile(outText, `CHECKPOINT_OUTPUT of ${step.id}`);
        }
      } catch (err) {
        if (!(err instanceof OutputSyntaxError)) throw err;
        return this.#recordFailure(run, u, tryNo, { ...exit, code: 1 }, err.message, proc);
      }
      await this.#recorder.dropLog(step.id, u.index);
      await this.#recorder.done(
        { type: 'done', ...u, ms: exit.ms, ...(outputs ? { outputs } : {}) },
        onDoneWritten,
      );
      run.queue.done(u);
      this.#emit({ type: 'unit-end', unit: u, result: 'done', ms: exit.ms });
      return;
    }
    if (verdict.kind === 'yielded') {
      ckpt.recordLater({ type: 'yield', ...u, ms: exit.ms });
      // A yield is progress, not a failure: run it again now (no try used) unless the run is stopping.
      run.queue.yielded(u, !this.#stopping);
      if (this.#stopping) this.#yieldedLeft = true;
      this.#emit({ type: 'unit-end', unit: u, result: 'yielded', ms: exit.ms });
      return;
    }
    if (verdict.kind === 'interrupted') {
      await this.#recorder.keepLog(step.id, u.index, proc.tailBytes());
      await ckpt.record({
        type: 'interrupt',
        ...u,
        ms: exit.ms,
        reason: this.#stopping?.reason ?? 'stopped',
      });
      run.queue.interrupted(u);
      this.#emit({
        type: 'unit-end',
        unit: u,
        result: 'interrupted',
        ms: exit.ms,
        detail: this.#stopping?.reason,
      });
      return;
    }
    await this.#recordFailure(run, u, tryNo, exit, verdict.reason, proc);
  }

  async #recordFailure(
    run: StepRun,
    u: Unit,
    tryNo: number,
    exit: ProcessExit,
    reason: string,
    proc: ManagedProcess,
  ): Promise<void> {
    const step = run.step;
    const tail = proc.tail();
    const failure = failureOf(exit);
    const verdict = mayRetry(step.retry.on, failure);
    const hint = failureHint(failure, {
      command: step.run,
      workingDirectory: step.workingDirectoryRel,
      path: this.#template(run).env.PATH,
      tail,
    });
    if (hint) reason = `${reason}: ${hint}`;
    const refused = !verdict.retry && tryNo < step.retry.attempts;
    const final = tryNo >= step.retry.attempts || this.#stopping !== undefined || refused;
    const cmd = describeUnitItems(step, u, run.items);
    const detail = `${cmd}: ${reason} (try ${tryNo} of ${step.retry.attempts}${refused ? `; not retried: ${verdict.why}` : ''})`;
    // A final failure stops the step at once when it passes max-failures, before its record is durable: the
    // pump runs while the record is written, and must not start units the failure rules out.
    const pastMaxFailures = final ? run.queue.failed(u) : false;
    await this.#recorder.keepLog(step.id, u.index, proc.tailBytes());
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
      run.queue.retry(u, monoNow() + delay);
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
    if (pastMaxFailures && step.batch)
      this.#emit({
        type: 'notice',
        message: `${step.id}: ${run.queue.failedFinal} unit(s) failed, more than max-failures (${run.queue.maxFailures}); not starting more units of this step`,
      });
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
      unitsFailed += run.queue.failedFinal;
      if (run.queue.failedFinal > 0) anyFailed = true;
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
      const failedSteps = [...this.#runs.values()]
        .filter((r) => r.queue.failedFinal > 0)
        .map((r) => r.step.id);
      reason = `${unitsFailed} unit(s) failed in ${failedSteps.join(', ')}`;
    } else if (complete) {
      exitCode = EXIT_OK;
      reason = 'complete';
    } else {
      exitCode = EXIT_INCOMPLETE;
      if (this.#stopping) reason = `stopped early: ${this.#stopping.reason}`;
      else if ([...this.#runs.values()].some((r) => r.queue.heldForBudget))
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
