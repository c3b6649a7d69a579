// The journal's event vocabulary. Every line of journal.ndjson is one of these plus `seq`, `t` (ms epoch)
// and `crc`. docs/format.md documents each field; keep the two in step.

import type { Fingerprint } from '../plan/fingerprint.js';
import type { Shard, Sharding } from '../plan/space.js';

export interface ItemsInfo {
  count: number;
  sha256: string;
  /** Where the list came from, for `status`/`explain`: `file ids.txt`, `glob data/*.csv`, ... */
  source: string;
  /** `refresh: true`: the list is expanded again at every attempt and may grow (`items-refresh`). */
  refresh?: true;
}

/**
 * `refresh: true`: the source was expanded again at the start of an attempt. The frozen list is now `count`
 * items long (it only grows: new items are appended) with this `sha256`; `gone` are the index ranges of
 * items that left the source before they were done, in full (not a change): they are handed to no unit.
 * `refresh: false` (the plan dropped `refresh`): the list stays as it is and nothing is gone any more.
 */
export interface ItemsRefreshEvent {
  type: 'items-refresh';
  step: string;
  count: number;
  sha256: string;
  gone: Array<[number, number]>;
  refresh: boolean;
}

export interface StepInitEvent {
  type: 'step-init';
  step: string;
  fingerprint: Fingerprint;
  from: number;
  to: number;
  size: number;
  items?: ItemsInfo;
  /** Sharded runs: the whole space and how it is shared; `from`/`to` above are this shard's part. */
  sharding?: Sharding;
  /** Chunks sized by time (`size: { target, min, max }`): `size` is `min`, and done chunks are measured. */
  adaptive?: true;
  /** Why the step's record was (re)created: `new`, `fingerprint changed: run`, `dependency x changed`... */
  reason: string;
}

/** `on-change: keep`: the definition changed, completed work stays. */
export interface StepRedefineEvent {
  type: 'step-redefine';
  step: string;
  fingerprint: Fingerprint;
  from: number;
  to: number;
  size: number;
  sharding?: Sharding;
  /** As in `step-init`; absent: the step's chunks are of the fixed `size`. */
  adaptive?: true;
  reason: string;
}

export interface AttemptEvent {
  type: 'attempt';
  attempt: number;
  /** The plan's name: a checkpoint is bound to it. */
  plan: string;
  pid: number;
  host: string;
  resumed: boolean;
  /** `--shard I/N`: the run is bound to this shard (recorded by every attempt of a sharded run). */
  shard?: Shard;
}

export interface AttemptEndEvent {
  type: 'attempt-end';
  attempt: number;
  exit: number;
  reason: string;
  /** How long the attempt took on the monotonic clock (a wall clock that jumped does not shorten it). */
  ms?: number;
}

interface UnitBase {
  step: string;
  start: number;
  end: number;
  index: number;
}

export interface UnitStartEvent extends UnitBase {
  type: 'start';
  try: number;
  attempt: number;
}

export interface UnitSpawnedEvent extends UnitBase {
  type: 'spawned';
  pid: number;
  /** Process start time (clock ticks since boot, /proc/PID/stat field 22) so a reused pid is never killed. */
  startTime?: number;
  host: string;
  /**
   * The value of CHECKPOINT_TRACKING_ID in the unit's environment: only a process carrying it is ever
   * signalled as this run's orphan (src/exec/ownership.ts). Absent in older checkpoints: never signalled.
   */
  marker?: string;
}

export interface UnitDoneEvent extends UnitBase {
  type: 'done';
  ms: number;
  outputs?: Record<string, string>;
}

export interface UnitFailEvent extends UnitBase {
  type: 'fail';
  try: number;
  ms: number;
  exit: number | null;
  signal: string | null;
  /** Tries exhausted: the unit is failed for this attempt. */
  final: boolean;
  reason: string;
}

export interface UnitYieldEvent extends UnitBase {
  type: 'yield';
  ms: number;
}

export interface UnitInterruptEvent extends UnitBase {
  type: 'interrupt';
  ms: number;
  reason: string;
}

export interface StepCompleteEvent {
  type: 'step-complete';
  step: string;
}

export interface ResetEvent {
  type: 'reset';
  step: string;
  /** Only failed units are made pending; done work stays. */
  failedOnly: boolean;
  reason: string;
  /** Drop the record entirely (`checkpoint reset`): the next run starts the step afresh and re-expands items. */
  forget?: boolean;
  /**
   * `checkpoint reset STEP --unit N / --item NAME`: only these ranges of the step's space (whole units, in
   * order, disjoint) are made pending again; the rest of its work stays. Absent: the whole step.
   */
  ranges?: Array<[number, number]>;
  /** Who reset it by hand (`--by`, else $GITHUB_ACTOR, else $USER); absent for resets the engine makes. */
  by?: string;
}

/** `batch.throttle`: units of the step were held back (`held`, with the check's answer) or start again. */
export interface ThrottleEvent {
  type: 'throttle';
  step: string;
  held: boolean;
  reason?: string;
}

/** `checkpoint mark-done`: work accepted as done by hand (time: `t`). */
export interface MarkDoneEvent {
  type: 'mark-done';
  step: string;
  /** `--unit N / --item NAME`: only these ranges (whole units, in order, disjoint); absent: the whole step. */
  ranges?: Array<[number, number]>;
  /** Who marked it: `--by`, else $GITHUB_ACTOR, else $USER; absent in checkpoints written before it was. */
  by?: string;
}

/** `checkpoint approve` / the action's `approve` input: a step with `approval: true` may start (time: `t`). */
export interface ApproveEvent {
  type: 'approve';
  step: string;
  /** Who approved: `--by`, else $GITHUB_ACTOR, else $USER, else `unknown`. */
  by: string;
}

/**
 * `checkpoint report --merge`: this run holds (or, in a run started from one, started from) the union of the
 * done work of the `total` shards named by their run ids in `runs` (index order; `""` for none); `run` is
 * the merged run's id.
 */
export interface MergeEvent {
  type: 'merge';
  run: string;
  total: number;
  runs: string[];
  /** When the merge was written (Unix ms): with `run`, which merge (a campaign's merges share a run id). */
  at?: number;
}

/** Done work carried over by a merge (half-open ranges inside the step's space), with the step's outputs. */
export interface MergeDoneEvent {
  type: 'merge-done';
  step: string;
  done: Array<[number, number]>;
  outputs?: Record<string, string>;
}

export type CheckpointEvent =
  | MergeEvent
  | MergeDoneEvent
  | ThrottleEvent
  | StepInitEvent
  | StepRedefineEvent
  | AttemptEvent
  | AttemptEndEvent
  | UnitStartEvent
  | UnitSpawnedEvent
  | UnitDoneEvent
  | UnitFailEvent
  | UnitYieldEvent
  | UnitInterruptEvent
  | StepCompleteEvent
  | ResetEvent
  | MarkDoneEvent
  | ApproveEvent
  | ItemsRefreshEvent;

export type Stamped<E extends CheckpointEvent = CheckpointEvent> = E & { seq: number; t: number };
