// Decides, before anything is written, what an attempt will do with each step: create its record, keep it,
// invalidate it (changed fingerprint or changed dependency), or leave it done. Item lists are expanded here,
// so a failing items command is reported like a plan error and the checkpoint stays untouched.

import { itemsHash } from '../journal/checkpoint.js';
import type { CheckpointEvent, ItemsInfo, ItemsRefreshEvent } from '../journal/events.js';
import { checkAgainstPlan } from '../journal/plan-check.js';
import type { CheckpointState, StepRecord } from '../journal/state.js';
import { applyEvent, approvalOf, emptyState, isStepComplete } from '../journal/state.js';
import { ItemsError, PlanError } from '../plan/errors.js';
import { diffFingerprints, type Fingerprint, fingerprintStep } from '../plan/fingerprint.js';
import { expandItems, type ItemsCommandRunner } from '../plan/items.js';
import { displayFile } from '../plan/load.js';
import {
  partOf,
  recordedPart,
  type Shard,
  type Sharding,
  type ShardMode,
  shardLabel,
  shardModeOf,
} from '../plan/space.js';
import type { ItemsSource, Plan, Step } from '../plan/types.js';
import { type ChunkInfo, chunkInfo } from './chunking.js';
import { scrubEnv } from './env.js';
import { ITEMS_IN_LINE, itemsDriftNote, nameItems } from './item-names.js';
import { runItemsCommand } from './items-command.js';
import { itemsOfRanges, refreshItems, sameRanges } from './refresh.js';

export interface StepPlanInfo {
  step: Step;
  fingerprint: Fingerprint;
  /** `run`, `skip`, `partial` (some units left). */
  action: 'run' | 'skip' | 'partial';
  why: string;
  unitsTotal: number;
  unitsDone: number;
  /** Item source changed since the list was frozen (informational; `checkpoint reset STEP` re-expands). */
  itemsDrift?: string;
  /** `refresh: true`: what this attempt's expansion appends and which items are gone (log, `explain`). */
  refresh?: string;
  /** Chunks sized by time: the target and what was measured (for `explain`). */
  chunks?: ChunkInfo;
}

export interface Preparation {
  events: CheckpointEvent[];
  /** Item lists to freeze (step id → items), for steps (re)initialised in this attempt. */
  items: Map<string, string[]>;
  /** Steps whose records are replaced: their markers and frozen lists are removed first. */
  replaced: Set<string>;
  info: Map<string, StepPlanInfo>;
  /** The selected steps (all, or `--only` plus what they need that isn't done), in plan order. */
  selected: Step[];
}

/** Runs a step's items command through the one spawner, bounded by the step's timeout. */
function itemsRunner(step: Step): ItemsCommandRunner {
  return (command, cwd, env) => runItemsCommand(command, { cwd, env, timeoutMs: step.timeoutMs });
}

export function describeSource(src: ItemsSource): string {
  switch (src.kind) {
    case 'list':
      return `list of ${src.items.length}`;
    case 'file':
      return `file ${src.file}`;
    case 'glob':
      return `glob ${src.glob}`;
    case 'command':
      return `command ${src.command}`;
  }
}

/** Steps in dependency order (the plan is validated acyclic). */
export function topoOrder(plan: Plan): Step[] {
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const out: Step[] = [];
  const seen = new Set<string>();
  const visit = (s: Step) => {
    if (seen.has(s.id)) return;
    seen.add(s.id);
    for (const d of s.needs) {
      const dep = byId.get(d);
      if (dep) visit(dep);
    }
    out.push(s);
  };
  for (const s of plan.steps) visit(s);
  return out;
}

export function dependentsOf(plan: Plan, ids: Iterable<string>): Set<string> {
  const out = new Set(ids);
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of plan.steps) {
      if (!out.has(s.id) && s.needs.some((d) => out.has(d))) {
        out.add(s.id);
        grew = true;
      }
    }
  }
  return out;
}

export interface PrepareOptions {
  only?: string[];
  /** Expand item lists of steps that need (re)initialising (default true). */
  expand?: boolean;
  /** Re-expand frozen item sources and report a change (`explain`, `run --dry-run`). */
  checkDrift?: boolean;
  /**
   * The frozen list of a step, so that a changed source is told by name (`checkDrift`). Also what lets
   * `refresh: true` sources be expanded again and appended to: without it (`reset`, `mark-done`) they are not.
   */
  frozenItems?: (step: string) => Promise<readonly string[]>;
  env?: NodeJS.ProcessEnv;
}

export async function prepare(
  plan: Plan,
  state: CheckpointState,
  opts: PrepareOptions = {},
): Promise<Preparation> {
  const expand = opts.expand ?? true;
  const env = opts.env ?? process.env;
  const order = topoOrder(plan);
  const events: CheckpointEvent[] = [];
  const items = new Map<string, string[]>();
  const replaced = new Set<string>();
  const info = new Map<string, StepPlanInfo>();
  const invalidated = new Map<string, string>();
  const records = new Map<string, StepRecord | undefined>();
  // A sharded run does its part of every step; the shard is the run's, so every command agrees on it.
  const shard = state.shard;

  for (const step of order) {
    const fp = await fingerprintStep(plan, step);
    const rec = state.steps.get(step.id);
    // The plan defines the step's space; a record that says otherwise with the same fingerprint is damage.
    if (rec) checkAgainstPlan(plan, step, rec, fp);
    const mode = shard ? shardModeOf(step) : undefined;
    const source = step.batch?.space.kind === 'items' ? step.batch.space.source : undefined;
    if (source?.refresh && shard && mode === 'split') {
      // Each shard's part is a cut of the whole list: a longer list moves every cut, so done items would
      // change shards and run twice.
      throw new PlanError(
        `${displayFile(plan.file)}: steps[${step.index}].batch.items.refresh: a list that refreshes cannot be split among shards (--shard ${shardLabel(shard)}); add "shards: first" to step "${step.id}" so that shard 0 runs it whole, or run it without --shard`,
      );
    }
    // Chunks sized by time: recorded on the step's record, which then measures its done chunks.
    const adaptive = step.batch?.adaptive ? { adaptive: true as const } : {};
    let view: { from: number; to: number; size: number; rec: StepRecord | undefined; note?: string } = rec
      ? { from: rec.from, to: rec.to, size: rec.size, rec }
      : { from: 0, to: 0, size: 1, rec: undefined };
    let reason: string | undefined;
    if (!rec) reason = 'new';
    else if (rec.fingerprint.hash !== fp.hash) {
      const diff = diffFingerprints(rec.fingerprint, fp);
      const why = `fingerprint changed: ${diff.join('; ') || 'definition'}`;
      if (step.onChange === 'rerun') reason = why;
      else {
        const space = shardSpace(await spaceOf(plan, step, rec, false, env), mode, shard, rec.sharding);
        view = { ...space.range, rec, note: `${why}; done units kept (on-change: keep)` };
        events.push({
          type: 'step-redefine',
          step: step.id,
          fingerprint: fp,
          ...space,
          ...adaptive,
          reason: `${why} (kept)`,
        });
      }
    } else {
      const changedDep = step.needs.find((d) => invalidated.has(d));
      // Chunks sized by time: `min` is the step's grid and not part of the fingerprint (done work is kept
      // as intervals), so a changed one is recorded with the done work kept.
      const size = step.batch?.adaptive ? step.batch.size : rec.size;
      const sizeWhy = size !== rec.size ? `batch.size.min changed: ${rec.size} → ${size}` : undefined;
      if (changedDep && step.onChange === 'rerun') reason = `dependency ${changedDep} will run again`;
      else if (shard && mode) {
        // `shards:` is not part of the fingerprint: a changed one moves this shard's part, done work kept.
        const whole = rec.sharding ?? { from: rec.from, to: rec.to, mode };
        // A run started from a merged checkpoint keeps the part cut from what remained (its `cuts`).
        const [from, to] = recordedPart(whole, mode, shard);
        const moved = rec.sharding?.mode !== mode || rec.from !== from || rec.to !== to;
        if (moved || sizeWhy !== undefined) {
          const why = [
            moved ? `shards changed: ${shardsWord(rec.sharding?.mode)} → ${shardsWord(mode)}` : undefined,
            sizeWhy,
          ]
            .filter((w) => w !== undefined)
            .join('; ');
          const sharding: Sharding = { ...whole, mode };
          if (!whole.cuts || whole.mode !== mode) {
            delete sharding.cuts;
            delete sharding.merge;
          }
          events.push({
            type: 'step-redefine',
            step: step.id,
            fingerprint: fp,
            from,
            to,
            size,
            sharding,
            ...adaptive,
            reason: why,
          });
          view = { from, to, size, rec, note: why };
        }
      } else if (sizeWhy !== undefined) {
        events.push({
          type: 'step-redefine',
          step: step.id,
          fingerprint: fp,
          from: rec.from,
          to: rec.to,
          size,
          ...(rec.sharding ? { sharding: rec.sharding } : {}),
          ...adaptive,
          reason: sizeWhy,
        });
        view = { from: rec.from, to: rec.to, size, rec, note: `${sizeWhy}; done work kept` };
      }
    }
    if (reason !== undefined) {
      if (rec) {
        invalidated.set(step.id, reason);
        replaced.add(step.id);
      }
      const space = shardSpace(await spaceOf(plan, step, undefined, expand, env), mode, shard);
      const ev: CheckpointEvent = {
        type: 'step-init',
        step: step.id,
        fingerprint: fp,
        ...space.range,
        reason,
      };
      if (space.items) ev.items = space.items;
      if (space.sharding) ev.sharding = space.sharding;
      if (adaptive.adaptive) ev.adaptive = true;
      if (space.list) items.set(step.id, space.list);
      events.push(ev);
      records.set(step.id, undefined);
      view = { ...space.range, rec: undefined, note: reason };
    } else {
      records.set(step.id, rec);
    }
    let refreshNote: string | undefined;
    if (reason === undefined && rec && source && !(mode === 'first' && shard && shard.index > 0)) {
      const r = await refreshOf(plan, step, source, rec, opts, env);
      refreshNote = r?.note;
      if (r?.event) {
        events.push(r.event);
        if (r.list) items.set(step.id, r.list);
        // The record as it will be once the refresh is applied.
        const after = withEvent(step.id, view.rec ?? rec, r.event);
        view = { ...view, to: after.to, rec: after };
      }
    }
    // What the step will look like once the events above are applied.
    const cur = view.rec;
    const total = Math.ceil((view.to - view.from) / view.size);
    const done = cur ? Math.min(total, cur.unitsDone) : 0;
    const complete =
      cur !== undefined &&
      (view.to <= view.from ||
        (cur.gone && !cur.gone.isEmpty ? isStepComplete(cur) : cur.done.covers(view.from, view.to)));
    let action: StepPlanInfo['action'] = 'run';
    let why = view.note ?? '';
    if (cur && complete) {
      if (step.always) {
        action = 'run';
        why = 'always: runs on every attempt';
      } else {
        action = 'skip';
        why = 'done';
      }
    } else if (cur) {
      action = done > 0 || cur.failed.size > 0 || cur.interrupted.size > 0 ? 'partial' : 'run';
      const parts: string[] = [];
      if (done > 0) parts.push(`${done} of ${total} units done`);
      if (cur.failed.size > 0) parts.push(`${cur.failed.size} failed (retried first)`);
      if (cur.interrupted.count > 0) parts.push('interrupted units will run again');
      if (view.note) parts.unshift(view.note);
      why = parts.join(', ') || 'not started';
    }
    if (mode === 'first' && shard && shard.index > 0) {
      action = 'skip';
      why = `shards: first: runs on shard 0 only (this is shard ${shardLabel(shard)})`;
    }
    if (step.approval && action !== 'skip' && !approvalOf(state, step.id))
      why = `${why ? `${why}; ` : ''}waits for approval (checkpoint approve ${step.id})`;
    const pi: StepPlanInfo = {
      step,
      fingerprint: fp,
      action,
      why,
      unitsTotal: total,
      unitsDone: done,
    };
    if (step.batch?.adaptive) pi.chunks = chunkInfo(cur ?? { size: view.size }, step.batch.adaptive);
    if (refreshNote) pi.refresh = refreshNote;
    // A list that refreshes follows its source: what changed is the refresh note, not drift.
    if (opts.checkDrift && cur?.items && !source?.refresh) {
      const frozen = await opts.frozenItems?.(step.id).catch(() => undefined);
      const note = await itemsDriftNote(plan, step, frozen, cur.items, env, itemsRunner(step));
      if (note) pi.itemsDrift = note;
    }
    info.set(step.id, pi);
  }

  // Always steps run again each attempt: their done work is made pending, their dependents stay done.
  for (const step of order) {
    const rec = records.get(step.id);
    if (step.always && rec && (isStepComplete(rec) || rec.unitsDone > 0)) {
      events.push({ type: 'reset', step: step.id, failedOnly: false, reason: 'always' });
    }
  }

  const selected = selectSteps(plan, opts.only, (id) => {
    const i = info.get(id);
    return i?.action === 'skip';
  });
  return { events, items, replaced, info, selected };
}

/** `--only a b`: those steps plus every step they need, transitively, that is not already done. */
export function selectSteps(plan: Plan, only: string[] | undefined, isDone: (id: string) => boolean): Step[] {
  if (!only || only.length === 0) return plan.steps;
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const want = new Set<string>();
  const add = (id: string) => {
    if (want.has(id)) return;
    want.add(id);
    for (const d of byId.get(id)?.needs ?? []) if (!isDone(d)) add(d);
  };
  for (const id of only) add(id);
  return plan.steps.filter((s) => want.has(s.id));
}

/** `shards:` as the plan says it. */
function shardsWord(mode: ShardMode | undefined): string {
  return mode === undefined ? 'unsharded' : mode === 'first' ? 'first' : 'all';
}

/** This shard's part of a step's space: `range` becomes the part, `sharding` keeps the whole. */
function shardSpace<S extends Space & { from: number; to: number; size: number }>(
  space: S,
  mode: ShardMode | undefined,
  shard: Shard | undefined,
  recorded?: Sharding,
): S & { sharding?: Sharding } {
  if (!shard || !mode) return space;
  const whole = space.range;
  // A part cut from what a merge left stays that part while the whole is the same.
  const kept =
    recorded?.cuts && recorded.from === whole.from && recorded.to === whole.to ? recorded : undefined;
  const sharding: Sharding = kept ? { ...kept, mode } : { from: whole.from, to: whole.to, mode };
  const [from, to] = kept ? recordedPart(sharding, mode, shard) : partOf(whole.from, whole.to, mode, shard);
  if (kept && kept.mode !== mode) {
    delete sharding.cuts;
    delete sharding.merge;
  }
  return {
    ...space,
    range: { from, to, size: whole.size },
    from,
    to,
    sharding,
  };
}

interface Space {
  range: { from: number; to: number; size: number };
  items?: ItemsInfo;
  list?: string[];
}

async function spaceOf(
  plan: Plan,
  step: Step,
  keepFrom: StepRecord | undefined,
  expand: boolean,
  env: NodeJS.ProcessEnv,
): Promise<Space & { from: number; to: number; size: number }> {
  const b = step.batch;
  if (!b) return { range: { from: 0, to: 1, size: 1 }, from: 0, to: 1, size: 1 };
  if (b.space.kind === 'range') {
    const range = { from: b.space.from, to: b.space.to, size: b.size };
    return { range, ...range };
  }
  if (keepFrom?.items) {
    // on-change: keep holds on to the frozen list; only `checkpoint reset` re-expands it.
    const range = { from: 0, to: keepFrom.items.count, size: b.size };
    return { range, ...range };
  }
  if (!expand) {
    const range = { from: 0, to: 0, size: b.size };
    return { range, ...range };
  }
  const list = await expandStep(plan, step, b.space.source, env);
  const range = { from: 0, to: list.length, size: b.size };
  return {
    range,
    ...range,
    list,
    items: {
      count: list.length,
      sha256: itemsHash(list),
      source: describeSource(b.space.source),
      ...(b.space.source.refresh ? { refresh: true as const } : {}),
    },
  };
}

/** A step's items as its source gives them now; a failing source is reported like a plan error. */
async function expandStep(
  plan: Plan,
  step: Step,
  source: ItemsSource,
  env: NodeJS.ProcessEnv,
): Promise<string[]> {
  try {
    // Items commands are user commands too: the runner's secrets never reach them.
    return await expandItems(source, plan.dir, scrubEnv({ ...env, ...step.env }), itemsRunner(step));
  } catch (err) {
    if (err instanceof ItemsError) {
      throw new ItemsError(`${displayFile(plan.file)}: steps[${step.index}].batch.items: ${err.message}`);
    }
    throw err;
  }
}

/**
 * `refresh: true` on a kept record: the source expanded again, the new items appended and the gone ones
 * found (refresh.ts), as an `items-refresh` event when anything changed, and a note naming them. A plan
 * that dropped `refresh` gets an event that keeps the list and gives its gone items back. Explain and dry
 * runs (`checkDrift`) report a source or a list that cannot be read as a note instead of failing.
 */
async function refreshOf(
  plan: Plan,
  step: Step,
  source: ItemsSource,
  rec: StepRecord,
  opts: PrepareOptions,
  env: NodeJS.ProcessEnv,
): Promise<{ event?: ItemsRefreshEvent; list?: string[]; note?: string } | undefined> {
  const info = rec.items;
  if (!info || !opts.frozenItems) return undefined;
  if (!source.refresh) {
    if (!info.refresh && (!rec.gone || rec.gone.isEmpty)) return undefined;
    const back = rec.gone?.size ?? 0;
    return {
      event: {
        type: 'items-refresh',
        step: step.id,
        count: info.count,
        sha256: info.sha256,
        gone: [],
        refresh: false,
      },
      ...(back > 0
        ? { note: `refresh is off: the frozen list is kept, and its ${back} gone item(s) are pending again` }
        : {}),
    };
  }
  let frozen: readonly string[];
  let now: string[];
  try {
    frozen = await opts.frozenItems(step.id);
    now = await expandStep(plan, step, source, env);
  } catch (err) {
    if (!opts.checkDrift) throw err;
    return {
      note: `refresh: cannot expand the items now: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  const r = refreshItems(frozen, now, rec.done);
  const changed = r.added.length > 0 || !sameRanges(r.gone, rec.gone?.toJSON() ?? []) || !info.refresh;
  const parts: string[] = [];
  if (r.added.length > 0) parts.push(`${r.added.length} new item(s) appended (${nameItems(r.added)})`);
  if (r.goneCount > 0) {
    const names = itemsOfRanges(frozen, r.gone, ITEMS_IN_LINE);
    parts.push(
      `${r.goneCount} gone (${nameItems(names, r.goneCount)}): left the source before they ran, not run`,
    );
  }
  const note = parts.length > 0 ? `refresh: ${parts.join('; ')}` : undefined;
  if (!changed) return note ? { note } : undefined;
  const event: ItemsRefreshEvent = {
    type: 'items-refresh',
    step: step.id,
    count: r.list.length,
    sha256: r.added.length > 0 ? itemsHash(r.list) : info.sha256,
    gone: r.gone,
    refresh: true,
  };
  return { event, ...(r.added.length > 0 ? { list: r.list } : {}), ...(note ? { note } : {}) };
}

/** A copy of `rec` with `ev` applied: what `explain` and the unit counts see before the engine records it. */
function withEvent(id: string, rec: StepRecord, ev: CheckpointEvent): StepRecord {
  const copy: StepRecord = {
    ...rec,
    done: rec.done.clone(),
    interrupted: rec.interrupted.clone(),
    failed: new Map(rec.failed),
    running: new Map(rec.running),
  };
  if (rec.gone) copy.gone = rec.gone.clone();
  if (rec.items) copy.items = { ...rec.items };
  if (rec.sharding) copy.sharding = { ...rec.sharding };
  const scratch = emptyState('', '');
  scratch.steps.set(id, copy);
  applyEvent(scratch, { ...ev, seq: 1, t: Date.now() });
  return copy;
}
