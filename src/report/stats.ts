// Per-step figures shared by `status`, the live progress view and (later) the job summary.

import { itemsOfRanges } from '../engine/refresh.js';
import type { Checkpoint } from '../journal/checkpoint.js';
import type { ItemList } from '../journal/item-list.js';
import { paceRate } from '../journal/pace.js';
import {
  approvalOf,
  type CheckpointState,
  countDoneUnits,
  isStepComplete,
  type StepRecord,
  unitCount,
} from '../journal/state.js';
import type { Plan, Step } from '../plan/types.js';
import { emptyItemsWarning, type FrozenItems, ITEMS_LISTED, type UnitItems, unitItems } from './items.js';

/** `waiting`: `approval: true`, not approved, and every step it needs is done: the run stops before it. */
export type StepStatus = 'done' | 'pending' | 'running' | 'partial' | 'failed' | 'interrupted' | 'waiting';

/** A step's approval: `required` (`approval: true`), and who approved it and when (Unix ms) once approved. */
export type StepApproval =
  | { required: true; approved: false }
  | { required: true; approved: true; by: string; at: number };

export interface StepStats {
  id: string;
  name: string;
  status: StepStatus;
  unitsTotal: number;
  unitsDone: number;
  unitsFailed: number;
  unitsRemaining: number;
  /** Run time across attempts, ms. */
  timeMs: number;
  /** Estimated time to finish the remaining units, ms (mean unit duration × remaining / parallel). */
  etaMs: number | undefined;
  done: Array<[number, number]>;
  interrupted: Array<[number, number]>;
  /** `interrupted` with the items of each range named (when the frozen list was given). */
  interruptedUnits: Array<{ start: number; end: number; items?: UnitItems }>;
  failed: Array<{
    start: number;
    end: number;
    index: number;
    exit: number | null;
    reason: string;
    tries: number;
    /** The unit's items, the first ten, for a step over an item list (when the frozen list was given). */
    items?: UnitItems;
  }>;
  items?: { count: number; source: string };
  /**
   * `refresh: true`: items that left the source before they ran (not run), with the first ten named when
   * the frozen list was given.
   */
  gone?: { count: number; ranges: Array<[number, number]>; first: string[] };
  /**
   * Ranges marked done by hand (`checkpoint mark-done`): who (absent in older checkpoints) and when, with
   * their items named when the frozen list was given. Absent when no unit was.
   */
  manual?: Array<{ start: number; end: number; by?: string; at: number; items?: UnitItems }>;
  /** The steps it needs, when the plan is known: what a step left pending is waiting on. */
  needs?: string[];
  /** Things worth a reader's attention that did not fail the step, e.g. an item source that gave nothing. */
  warnings: string[];
  outputs: Record<string, string>;
  completedAt?: number;
  parallel: number;
  batch: boolean;
  /** Steps with `approval: true` (or, without the plan, with an approval recorded). */
  approval?: StepApproval;
  /** `batch.throttle`: held back now (and why), how often and how long, across attempts. */
  throttle?: { held: boolean; reason: string | undefined; count: number; heldMs: number };
}

/** Units a step will have before its record exists: known for plain steps, ranges and inline lists. */
export function plannedUnits(step: Step): number {
  const b = step.batch;
  if (!b) return 1;
  if (b.space.kind === 'range') return Math.ceil((b.space.to - b.space.from) / b.size);
  if (b.space.source.kind === 'list') return Math.ceil(b.space.source.items.length / b.size);
  return 0;
}

export function stepStats(
  id: string,
  name: string,
  rec: StepRecord | undefined,
  parallel: number,
  batch: boolean,
  live = false,
  planned = 0,
  frozen?: ItemList,
): StepStats {
  if (!rec) {
    return {
      id,
      name,
      status: 'pending',
      unitsTotal: planned,
      unitsDone: 0,
      unitsFailed: 0,
      unitsRemaining: planned,
      timeMs: 0,
      etaMs: undefined,
      done: [],
      interrupted: [],
      interruptedUnits: [],
      failed: [],
      warnings: [],
      outputs: {},
      parallel,
      batch,
    };
  }
  const total = unitCount(rec);
  const done = Math.min(total, countDoneUnits(rec));
  const complete = isStepComplete(rec);
  let status: StepStatus;
  if (complete) status = 'done';
  else if (rec.running.size > 0) status = live ? 'running' : 'interrupted';
  else if (rec.failed.size > 0) status = 'failed';
  else if (rec.interrupted.count > 0) status = 'interrupted';
  else if (done > 0) status = 'partial';
  else status = 'pending';
  const remaining = total - done;
  let mean =
    rec.durations.length > 0 ? rec.durations.reduce((a, b) => a + b, 0) / rec.durations.length : undefined;
  // Chunks sized by time: done chunks are of any size; the time per grid cell comes from the measured rate.
  const rate = rec.adaptive ? paceRate(rec.pace) : undefined;
  if (rate !== undefined) mean = rec.size / rate;
  const s: StepStats = {
    id,
    name,
    status,
    unitsTotal: total,
    unitsDone: done,
    unitsFailed: rec.failed.size,
    unitsRemaining: remaining,
    timeMs: rec.timeMs,
    etaMs: remaining === 0 ? 0 : mean === undefined ? undefined : (mean * remaining) / Math.max(1, parallel),
    done: rec.done.toJSON(),
    interrupted: rec.interrupted.toJSON(),
    interruptedUnits: rec.interrupted.toJSON().map(([start, end]) => {
      const items = unitItems(frozen, start, end);
      return items ? { start, end, items } : { start, end };
    }),
    failed: [...rec.failed.values()].map((f) => {
      const items = unitItems(frozen, f.start, f.end);
      return {
        start: f.start,
        end: f.end,
        index: f.index,
        exit: f.exit,
        reason: f.reason,
        tries: f.tries,
        ...(items ? { items } : {}),
      };
    }),
    // A list that refreshes may well be empty for now: its items come later.
    warnings:
      rec.items && rec.items.count === 0 && !rec.items.refresh
        ? [emptyItemsWarning(id, rec.items.source)]
        : [],
    outputs: rec.outputs,
    parallel,
    batch,
  };
  if (rec.items) s.items = { count: rec.items.count, source: rec.items.source };
  if (rec.gone && !rec.gone.isEmpty) {
    const ranges = rec.gone.toJSON();
    s.gone = {
      count: rec.gone.size,
      ranges,
      first: frozen ? itemsOfRanges(frozen, ranges, ITEMS_LISTED) : [],
    };
  }
  if (rec.manual && rec.manual.length > 0) {
    s.manual = rec.manual.map((m) => {
      const items = unitItems(frozen, m.start, m.end);
      return { ...m, ...(items ? { items } : {}) };
    });
  }
  if (rec.completedAt !== undefined) s.completedAt = rec.completedAt;
  if (rec.throttle) {
    const t = rec.throttle;
    // A hold still open counts up to now only while this process watches it (`live`).
    const open = t.held && live && t.since !== undefined ? Date.now() - t.since : 0;
    s.throttle = { held: t.held, reason: t.reason, count: t.count, heldMs: t.heldMs + open };
  }
  return s;
}

/** Stats for every step of the plan (in plan order), or of the checkpoint alone when the plan is unknown. */
export function allStepStats(
  state: CheckpointState,
  plan: Plan | undefined,
  live = false,
  frozen?: FrozenItems,
): StepStats[] {
  if (plan) {
    return plan.steps.map((s) => {
      const st = withApproval(
        state,
        s,
        stepStats(
          s.id,
          s.name,
          state.steps.get(s.id),
          s.batch ? (s.batch.order === 'sequential' ? 1 : s.batch.parallel) : 1,
          s.batch !== undefined,
          live,
          plannedUnits(s),
          frozen?.get(s.id),
        ),
      );
      st.needs = [...s.needs];
      return st;
    });
  }
  return [...state.steps].map(([id, rec]) => {
    const st = stepStats(id, id, rec, 1, unitCount(rec) > 1, live, 0, frozen?.get(id));
    const a = approvalOf(state, id);
    if (a) st.approval = { required: true, approved: true, by: a.by, at: a.at };
    return st;
  });
}

/** `approval: true`: who approved it, or — unapproved, not done and its needs done — `waiting`. */
function withApproval(state: CheckpointState, step: Step, st: StepStats): StepStats {
  if (!step.approval) return st;
  const a = approvalOf(state, step.id);
  if (a) {
    st.approval = { required: true, approved: true, by: a.by, at: a.at };
    return st;
  }
  st.approval = { required: true, approved: false };
  const needsDone = step.needs.every((d) => {
    const rec = state.steps.get(d);
    return rec !== undefined && isStepComplete(rec);
  });
  if (needsDone && st.status !== 'done' && st.status !== 'running') st.status = 'waiting';
  return st;
}

export interface RunStats {
  runId: string;
  plan: string;
  complete: boolean;
  unitsTotal: number;
  unitsDone: number;
  unitsFailed: number;
  unitsRemaining: number;
  etaMs: number | undefined;
  steps: StepStats[];
}

/** `frozen`: the frozen item lists (`loadFrozenItems`), so that units of item lists are named. */
export function runStats(
  ckpt: Checkpoint,
  plan: Plan | undefined,
  live = false,
  frozen?: FrozenItems,
): RunStats {
  const steps = allStepStats(ckpt.state, plan, live, frozen);
  const sum = (f: (s: StepStats) => number) => steps.reduce((a, s) => a + f(s), 0);
  const etas = steps.map((s) => s.etaMs);
  return {
    runId: ckpt.runId,
    plan: ckpt.state.planName,
    complete: steps.length > 0 && steps.every((s) => s.status === 'done'),
    unitsTotal: sum((s) => s.unitsTotal),
    unitsDone: sum((s) => s.unitsDone),
    unitsFailed: sum((s) => s.unitsFailed),
    unitsRemaining: sum((s) => s.unitsRemaining),
    // Steps mostly run one after another, so the run's ETA is the sum of theirs.
    etaMs: etas.some((e) => e === undefined) ? undefined : etas.reduce((a: number, b) => a + (b ?? 0), 0),
    steps,
  };
}

/**
 * Steps held behind others: those that need (directly or through others) a failed step, which must pass
 * on a later attempt first, or one waiting for approval. Steps come in plan order, so a step's needs are
 * decided before it.
 */
export function blockedSteps(steps: readonly StepStats[]): Set<string> {
  const status = new Map(steps.map((s) => [s.id, s.status]));
  const blocked = new Set<string>();
  for (const s of steps) {
    if (s.status === 'done') continue;
    const stuck = (d: string) => status.get(d) === 'failed' || status.get(d) === 'waiting' || blocked.has(d);
    if ((s.needs ?? []).some(stuck)) blocked.add(s.id);
  }
  return blocked;
}

/**
 * No pace can tell when the step finishes: failed (its failed units run again only on a next attempt, and
 * whether they pass is not a matter of pace), waiting for approval (a person decides when), or blocked
 * behind a step that is one of these. The summary and `status` show no ETA for it.
 */
export function etaUnknowable(s: StepStats, blocked: boolean): boolean {
  return s.status === 'failed' || s.status === 'waiting' || blocked;
}
