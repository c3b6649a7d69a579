// The checkpoint's in-memory model and the one function that changes it (`applyEvent`). The snapshot
// (checkpoint.json) is this model serialised; the journal is the list of events applied since.

import type { Fingerprint } from '../plan/fingerprint.js';
import type { Shard, Sharding } from '../plan/space.js';
import type { CheckpointEvent, ItemsInfo, ItemsRefreshEvent, Stamped } from './events.js';
import { IntervalSet } from './intervals.js';
import { type Pace, updatePace } from './pace.js';

export const FORMAT_VERSION = 1;
/** Durations kept per step for the p90 estimate: recent ones matter most and the snapshot stays small. */
const DURATION_SAMPLES = 256;

export interface FailedUnit {
  start: number;
  end: number;
  index: number;
  exit: number | null;
  signal: string | null;
  tries: number;
  reason: string;
  attempt: number;
  t: number;
}

export interface RunningUnit {
  start: number;
  end: number;
  index: number;
  attempt: number;
  try: number;
  t: number;
  pid?: number;
  startTime?: number;
  host?: string;
  /** CHECKPOINT_TRACKING_ID of the unit's process (see UnitSpawnedEvent). */
  marker?: string;
}

export interface StepRecord {
  fingerprint: Fingerprint;
  from: number;
  to: number;
  size: number;
  items?: ItemsInfo;
  /** Sharded runs: the step's whole space and how it is shared; `from`/`to` are this shard's part. */
  sharding?: Sharding;
  /** Chunks sized by time: `size` is the grid (`min`); units are whole multiples of it. */
  adaptive?: boolean;
  /** Chunks sized by time: how fast done chunks went, across attempts (see pace.ts). */
  pace?: Pace;
  done: IntervalSet;
  /** Units whose last try failed, keyed by start. They are pending and retried first. */
  failed: Map<number, FailedUnit>;
  /** Units that were running when an attempt stopped or died. Pending. */
  interrupted: IntervalSet;
  /**
   * `refresh: true`: items that left the source before they were done (never overlapping `done`). They are
   * handed to no unit, and count as settled: a step is complete when every item is done or gone.
   */
  gone?: IntervalSet;
  running: Map<number, RunningUnit>;
  outputs: Record<string, string>;
  durations: number[];
  /** Sum of unit run times across attempts, ms. */
  timeMs: number;
  unitsDone: number;
  completedAt?: number;
  /** When a unit of the step was last recorded done (or the step marked done): `rollback` goes newest first. */
  lastDoneAt?: number;
  reason: string;
  /** `batch.throttle` history: held back now (since, why), how often and how long across attempts. */
  throttle?: ThrottleRecord;
  /**
   * Done work that no unit ran: ranges accepted by `checkpoint mark-done` (who, when), in the order marked.
   * Only what was not done already counts; a reset of the range (or of the step) takes it out again.
   */
  manual?: ManualMark[];
}

/** A range of a step's space marked done by hand: by whom (absent in older checkpoints) and when (Unix ms). */
export interface ManualMark {
  start: number;
  end: number;
  by?: string;
  at: number;
}

export interface ThrottleRecord {
  held: boolean;
  reason?: string;
  since?: number;
  count: number;
  heldMs: number;
}

export interface AttemptRecord {
  attempt: number;
  pid: number;
  host: string;
  resumed: boolean;
  startedAt: number;
  endedAt?: number;
  exit?: number;
  reason?: string;
  unitsDone: number;
}

export interface CheckpointState {
  format: number;
  runId: string;
  planName: string;
  createdAt: number;
  updatedAt: number;
  seq: number;
  attempts: AttemptRecord[];
  steps: Map<string, StepRecord>;
  /** `--shard I/N`: the shard this run does; a run is never resumed as another shard or unsharded. */
  shard?: Shard;
  /** The run is a merge of shards' checkpoints, or was started from one (`merge` event). */
  merge?: MergeRecord;
  /** Steps with `approval: true` that were approved (`approve` events), until a reset or rollback clears them. */
  approvals?: Map<string, Approval>;
}

/** Which merge a run is or came from: the merged run's id and the shards it gathered (run ids by index). */
export interface MergeRecord {
  run: string;
  total: number;
  runs: string[];
  at: number;
}

/** Who approved a step and when (Unix ms). */
export interface Approval {
  by: string;
  at: number;
}

/** The approval recorded for `step`, if any. */
export function approvalOf(state: CheckpointState, step: string): Approval | undefined {
  return state.approvals?.get(step);
}

export function emptyState(runId: string, planName: string, now = Date.now()): CheckpointState {
  return {
    format: FORMAT_VERSION,
    runId,
    planName,
    createdAt: now,
    updatedAt: now,
    seq: 0,
    attempts: [],
    steps: new Map(),
  };
}

export function unitCount(rec: Pick<StepRecord, 'from' | 'to' | 'size'>): number {
  return Math.ceil((rec.to - rec.from) / rec.size);
}

export function isStepComplete(rec: StepRecord): boolean {
  if (rec.to <= rec.from) return true;
  if (!rec.gone || rec.gone.isEmpty) return rec.done.covers(rec.from, rec.to);
  return settledIn(rec, rec.from, rec.to);
}

/** Every item of [s, e) is done or gone. */
function settledIn(rec: StepRecord, s: number, e: number): boolean {
  for (const gap of rec.done.gaps(s, e)) if (!rec.gone?.covers(gap[0], gap[1])) return false;
  return true;
}

/**
 * The first pending piece of [from, to) at or after `after`: not done and not gone (`refresh: true`). What
 * `order: sequential` starts next.
 */
export function firstPendingGap(
  rec: Pick<StepRecord, 'done' | 'gone'>,
  from: number,
  to: number,
  after = from,
): [number, number] | undefined {
  let p = Math.max(from, after);
  for (;;) {
    const gap = rec.done.firstGap(from, to, p);
    if (!gap || !rec.gone || rec.gone.isEmpty) return gap;
    const open = rec.gone.firstGap(gap[0], gap[1]);
    if (open) return open;
    p = gap[1];
  }
}

function newRecord(
  e: {
    fingerprint: Fingerprint;
    from: number;
    to: number;
    size: number;
    items?: ItemsInfo;
    sharding?: Sharding;
    adaptive?: true;
  },
  reason: string,
): StepRecord {
  const rec: StepRecord = {
    fingerprint: e.fingerprint,
    from: e.from,
    to: e.to,
    size: e.size,
    done: new IntervalSet(),
    failed: new Map(),
    interrupted: new IntervalSet(),
    running: new Map(),
    outputs: {},
    durations: [],
    timeMs: 0,
    unitsDone: 0,
    reason,
  };
  if (e.items) rec.items = e.items;
  if (e.sharding) rec.sharding = { ...e.sharding };
  if (e.adaptive) rec.adaptive = true;
  return rec;
}

/**
 * Grid cells (units of `size`) wholly inside [s, e); the last cell ends at `to`. A done chunk sized by time
 * counts as the cells it covers, so that unit counts and progress stay in one measure.
 */
function cellsIn(rec: StepRecord, s: number, e: number): number {
  const first = Math.ceil((s - rec.from) / rec.size);
  const lastEnd = e >= rec.to ? unitCount(rec) : Math.floor((e - rec.from) / rec.size);
  return Math.max(0, lastEnd - first);
}

/**
 * Units counted from intervals: a unit is done when its whole range is. Gone items (`refresh: true`) count
 * as settled, so a unit whose items are all done or gone is done.
 */
export function countDoneUnits(rec: StepRecord): number {
  let settled = rec.done;
  if (rec.gone && !rec.gone.isEmpty) {
    settled = rec.done.clone();
    for (const [s, e] of rec.gone.intervals()) settled.add(s, e);
  }
  if (rec.size === 1) return settled.size;
  let n = 0;
  for (const [s, e] of settled.intervals()) {
    // Whole grid cells inside [s, e).
    const first = Math.ceil((s - rec.from) / rec.size);
    const lastEnd = e >= rec.to ? unitCount(rec) : Math.floor((e - rec.from) / rec.size);
    if (lastEnd > first) n += lastEnd - first;
  }
  return n;
}

/** Takes [s, e) out of the step's hand-marked ranges (reset, or a unit that ran there after all). */
function unmark(rec: StepRecord, s: number, e: number): void {
  if (!rec.manual) return;
  const out: ManualMark[] = [];
  for (const m of rec.manual) {
    if (m.end <= s || m.start >= e) out.push(m);
    else {
      if (m.start < s) out.push({ ...m, end: s });
      if (m.end > e) out.push({ ...m, start: e });
    }
  }
  if (out.length > 0) rec.manual = out;
  else delete rec.manual;
}

/** The ranges of an event cut to the step's space (a plain or empty step has [from, to) as its one unit). */
function rangesIn(
  rec: StepRecord,
  ranges: ReadonlyArray<readonly [number, number]>,
): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [s, e] of ranges) {
    const a = Math.max(s, rec.from);
    const b = Math.min(e, rec.to);
    if (a < b) out.push([a, b]);
  }
  return out;
}

/** Failed units that start in [s, e) are dropped (done by hand, or pending again with fresh tries). */
function dropFailed(rec: StepRecord, s: number, e: number): void {
  for (const start of rec.failed.keys()) if (start >= s && start < e) rec.failed.delete(start);
}

function pushDuration(rec: StepRecord, ms: number): void {
  rec.durations.push(ms);
  if (rec.durations.length > DURATION_SAMPLES)
    rec.durations.splice(0, rec.durations.length - DURATION_SAMPLES);
}

/**
 * Applies one event. Unknown steps are ignored rather than fatal: a journal may name a step that a later
 * plan removed, and losing that history is harmless.
 */
export function applyEvent(state: CheckpointState, ev: Stamped): void {
  state.seq = ev.seq;
  state.updatedAt = ev.t;
  const e = ev as Stamped<CheckpointEvent>;
  switch (e.type) {
    case 'attempt':
      if (state.planName === '') state.planName = e.plan;
      if (e.shard && !state.shard) state.shard = { index: e.shard.index, total: e.shard.total };
      if (state.attempts.length === 0 && state.seq === ev.seq && state.createdAt > ev.t)
        state.createdAt = ev.t;
      state.attempts.push({
        attempt: e.attempt,
        pid: e.pid,
        host: e.host,
        resumed: e.resumed,
        startedAt: e.t,
        unitsDone: 0,
      });
      return;
    case 'attempt-end': {
      const a = state.attempts.find((x) => x.attempt === e.attempt);
      if (a) {
        // The attempt's length as measured, not the wall clock's difference (which may even be negative).
        a.endedAt = e.ms !== undefined && Number.isFinite(e.ms) && e.ms >= 0 ? a.startedAt + e.ms : e.t;
        a.exit = e.exit;
        a.reason = e.reason;
      }
      return;
    }
    case 'step-init':
      state.steps.set(e.step, newRecord(e, e.reason));
      return;
    case 'step-redefine': {
      const rec = state.steps.get(e.step);
      if (!rec) {
        state.steps.set(e.step, newRecord(e, e.reason));
        return;
      }
      rec.fingerprint = e.fingerprint;
      rec.from = e.from;
      rec.to = e.to;
      rec.size = e.size;
      if (e.sharding) rec.sharding = { ...e.sharding };
      else delete rec.sharding;
      if (e.adaptive) rec.adaptive = true;
      else {
        delete rec.adaptive;
        delete rec.pace;
      }
      rec.reason = e.reason;
      fitToSpace(rec);
      rec.completedAt = isStepComplete(rec) ? (rec.completedAt ?? e.t) : undefined;
      return;
    }
    case 'merge':
      state.merge = { run: e.run, total: e.total, runs: [...e.runs], at: e.at ?? e.t };
      return;
    case 'approve':
      if (!state.approvals) state.approvals = new Map();
      state.approvals.set(e.step, { by: e.by, at: e.t });
      return;
    case 'reset':
      // Throwing the step's work away by hand (`checkpoint reset`, rollback) also takes back its approval;
      // `--failed` and the reset of `always` steps at each attempt do not. Cleared before the record lookup:
      // a step approved before its record existed has none.
      if (!e.failedOnly && e.reason !== 'always') state.approvals?.delete(e.step);
      break;
    default:
      break;
  }
  const rec = state.steps.get(e.step);
  if (!rec) return;
  switch (e.type) {
    case 'start':
      rec.running.set(e.start, {
        start: e.start,
        end: e.end,
        index: e.index,
        attempt: e.attempt,
        try: e.try,
        t: e.t,
      });
      rec.interrupted.remove(e.start, e.end);
      return;
    case 'spawned': {
      const r = rec.running.get(e.start);
      if (r) {
        r.pid = e.pid;
        if (e.startTime !== undefined) r.startTime = e.startTime;
        r.host = e.host;
        if (e.marker !== undefined) r.marker = e.marker;
      }
      return;
    }
    case 'done': {
      rec.running.delete(e.start);
      rec.failed.delete(e.start);
      rec.interrupted.remove(e.start, e.end);
      unmark(rec, e.start, e.end);
      if (!rec.done.covers(e.start, e.end)) {
        // A chunk sized by time counts as the grid cells it covers (at least one, as any unit does).
        let n = rec.adaptive ? Math.max(1, cellsIn(rec, e.start, e.end)) : 1;
        rec.done.add(e.start, e.end);
        // A list that refreshes has pieces of cells (the rest of a cell done before the list grew, items
        // around gone ones): a fixed-size unit counts when it settles its whole cell, and only then.
        if (rec.items?.refresh && !rec.adaptive) {
          const cs = rec.from + e.index * rec.size;
          n = settledIn(rec, cs, Math.min(cs + rec.size, rec.to)) ? 1 : 0;
        }
        // Two pieces of one cell (an interrupted unit cut anew) are two ends: never count past the total.
        const room = Math.max(0, unitCount(rec) - rec.unitsDone);
        rec.unitsDone += Math.min(n, room);
        const a = state.attempts[state.attempts.length - 1];
        if (a) a.unitsDone += Math.min(n, room);
      }
      rec.timeMs += e.ms;
      rec.lastDoneAt = e.t;
      pushDuration(rec, e.ms);
      if (rec.adaptive) rec.pace = updatePace(rec.pace, e.end - e.start, e.ms);
      if (e.outputs) Object.assign(rec.outputs, e.outputs);
      return;
    }
    case 'fail': {
      rec.running.delete(e.start);
      rec.timeMs += e.ms;
      const prev = rec.failed.get(e.start);
      rec.failed.set(e.start, {
        start: e.start,
        end: e.end,
        index: e.index,
        exit: e.exit,
        signal: e.signal,
        tries: (prev?.tries ?? 0) + 1,
        reason: e.reason,
        attempt: state.attempts[state.attempts.length - 1]?.attempt ?? 0,
        t: e.t,
      });
      return;
    }
    case 'yield':
      rec.running.delete(e.start);
      rec.timeMs += e.ms;
      return;
    case 'interrupt':
      rec.running.delete(e.start);
      rec.timeMs += e.ms;
      // A unit left running before its step was redefined may lie outside the space it has now.
      rec.interrupted.add(Math.max(e.start, rec.from), Math.min(e.end, rec.to));
      return;
    case 'step-complete':
      rec.completedAt = e.t;
      return;
    case 'reset':
      if (e.forget) {
        state.steps.delete(e.step);
        return;
      }
      if (e.ranges && !e.failedOnly) {
        // `reset --unit`: only these units are pending again, with fresh tries; the rest of the work stays.
        for (const [s, end] of rangesIn(rec, e.ranges)) {
          rec.done.remove(s, end);
          dropFailed(rec, s, end);
          unmark(rec, s, end);
        }
        rec.unitsDone = Math.min(unitCount(rec), countDoneUnits(rec));
        if (!isStepComplete(rec)) rec.completedAt = undefined;
        if (rec.done.isEmpty) delete rec.lastDoneAt;
        return;
      }
      rec.failed.clear();
      if (!e.failedOnly) {
        delete rec.manual;
        rec.done = new IntervalSet();
        rec.interrupted = new IntervalSet();
        rec.outputs = {};
        rec.unitsDone = 0;
        rec.completedAt = undefined;
        delete rec.lastDoneAt;
        rec.reason = e.reason;
      }
      return;
    case 'throttle': {
      if (!rec.throttle) rec.throttle = { held: false, count: 0, heldMs: 0 };
      const t = rec.throttle;
      if (e.held) {
        if (!t.held) {
          t.count += 1;
          t.since = e.t;
        }
        t.held = true;
        if (e.reason !== undefined) t.reason = e.reason;
      } else if (t.held) {
        t.heldMs += Math.max(0, e.t - (t.since ?? e.t));
        t.held = false;
        delete t.since;
      }
      return;
    }
    case 'merge-done': {
      for (const [s, end] of e.done) {
        const a = Math.max(s, rec.from);
        const b = Math.min(end, rec.to);
        if (a < b) {
          rec.done.add(a, b);
          rec.failed.delete(a);
          rec.interrupted.remove(a, b);
        }
      }
      rec.unitsDone = Math.min(unitCount(rec), countDoneUnits(rec));
      if (e.done.length > 0) rec.lastDoneAt = e.t;
      if (e.outputs) Object.assign(rec.outputs, e.outputs);
      if (isStepComplete(rec)) rec.completedAt ??= e.t;
      return;
    }
    case 'mark-done': {
      const whole = e.ranges === undefined;
      const ranges = rangesIn(rec, e.ranges ?? [[rec.from, rec.to]]);
      for (const [s, end] of ranges) {
        // What ran stays work that ran: only the parts not done yet are marked as done by hand.
        const marks = [...rec.done.gaps(s, end)].map(([gs, ge]) => manualMark(gs, ge, e));
        if (marks.length > 0) rec.manual = [...(rec.manual ?? []), ...marks];
        rec.done.add(s, end);
        rec.interrupted.remove(s, end);
        // A done item is never gone (refresh: true).
        rec.gone?.remove(s, end);
        dropFailed(rec, s, end);
      }
      if (rec.gone?.isEmpty) delete rec.gone;
      if (whole) {
        rec.failed.clear();
        rec.interrupted = new IntervalSet();
        rec.unitsDone = unitCount(rec);
        rec.completedAt = e.t;
      } else {
        rec.unitsDone = Math.min(unitCount(rec), countDoneUnits(rec));
        if (isStepComplete(rec)) rec.completedAt = rec.completedAt ?? e.t;
      }
      rec.lastDoneAt = e.t;
      return;
    }
    case 'items-refresh':
      applyRefresh(rec, e);
      return;
  }
}

function manualMark(start: number, end: number, e: { by?: string; t: number }): ManualMark {
  return e.by === undefined ? { start, end, at: e.t } : { start, end, by: e.by, at: e.t };
}

/**
 * `items-refresh`: the list grew to `count` (appended at the end, so every recorded range keeps its
 * meaning) and `gone` replaces the gone set. Pending work is cut around gone items: interrupted ranges lose
 * them, and a failed unit holding one becomes interrupted work of what is left (cut anew when handed out),
 * so no unit ever gets a gone item. A list that grew is pending again; the done count follows the grid.
 */
function applyRefresh(rec: StepRecord, e: Stamped<ItemsRefreshEvent>): void {
  rec.items = {
    count: e.count,
    sha256: e.sha256,
    source: rec.items?.source ?? '',
    ...(e.refresh ? { refresh: true as const } : {}),
  };
  // Validated: unsharded, or the whole of a `shards: first` step on shard 0 (its part is the whole).
  if (rec.sharding) rec.sharding = { ...rec.sharding, to: e.count };
  rec.to = e.count;
  const gone = IntervalSet.from(e.gone);
  if (gone.isEmpty) delete rec.gone;
  else rec.gone = gone;
  for (const [start, f] of rec.failed) {
    if (!gone.overlaps(f.start, f.end)) continue;
    rec.failed.delete(start);
    rec.interrupted.add(f.start, f.end);
  }
  for (const [s, end] of gone.intervals()) rec.interrupted.remove(s, end);
  rec.unitsDone = Math.min(unitCount(rec), countDoneUnits(rec));
  // Completion is the scheduler's to record (`step-complete`, the marker); a list that grew is open again.
  if (!isStepComplete(rec)) rec.completedAt = undefined;
}

/**
 * After a redefinition (`on-change: keep`, a changed shard or chunk size) the record's work must lie in its
 * new space and on its new grid: done and interrupted ranges are cut to the space, a failed unit that no
 * longer fits the grid becomes interrupted work (cut anew when handed out), and the done count follows.
 * Units still recorded running stay (they may be ended as orphans, and their interrupt is clipped).
 */
function fitToSpace(rec: StepRecord): void {
  const clip = (set: IntervalSet): IntervalSet => {
    const out = new IntervalSet();
    for (const [s, e] of set.intervals()) out.add(Math.max(s, rec.from), Math.min(e, rec.to));
    return out;
  };
  const doneBefore = rec.done.size;
  rec.done = clip(rec.done);
  rec.interrupted = clip(rec.interrupted);
  if (rec.manual) {
    const kept = rec.manual
      .map((m) => ({ ...m, start: Math.max(m.start, rec.from), end: Math.min(m.end, rec.to) }))
      .filter((m) => m.start < m.end);
    if (kept.length > 0) rec.manual = kept;
    else delete rec.manual;
  }
  for (const [start, f] of rec.failed) {
    const cell = Math.floor((f.start - rec.from) / rec.size);
    const fits =
      f.start >= rec.from &&
      f.end <= rec.to &&
      f.index === cell &&
      (rec.adaptive === true || f.end <= rec.from + (cell + 1) * rec.size);
    if (fits) continue;
    rec.failed.delete(start);
    rec.interrupted.add(Math.max(f.start, rec.from), Math.min(f.end, rec.to));
  }
  const total = unitCount(rec);
  if (rec.done.size !== doneBefore) rec.unitsDone = countDoneUnits(rec);
  rec.unitsDone = Math.max(0, Math.min(total, rec.unitsDone));
}

/**
 * Running units survive in the model only when an attempt died without recording their end. Loading turns
 * them into interrupted units; the engine first ends any such process still alive (see engine/orphans.ts).
 */
export function orphanedUnits(state: CheckpointState): Array<{ step: string; unit: RunningUnit }> {
  const out: Array<{ step: string; unit: RunningUnit }> = [];
  for (const [step, rec] of state.steps) for (const unit of rec.running.values()) out.push({ step, unit });
  return out;
}

export function p90(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

/**
 * Whether an attempt over `state` resumes (CHECKPOINT_RESUMED, the trace's `resumed`): it starts from
 * recorded progress, not from nothing. A run started from a merge continues the campaign's earlier work,
 * even where its own part has none.
 */
export function isResumed(state: CheckpointState): boolean {
  return (
    state.merge !== undefined ||
    [...state.steps.values()].some((r) => r.unitsDone > 0 || r.failed.size > 0 || r.interrupted.count > 0)
  );
}
