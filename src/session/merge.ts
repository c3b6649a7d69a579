// Matrices that change size (DESIGN §7). `checkpoint report --merge DIR` (and the action's `command:
// report`) writes the union of the shards' done work as one run folder: an ordinary unsharded run, written
// through the journal like any other (a `merge` event naming the shards, then per step a `step-init` of the
// whole space and a `merge-done` with the done work and outputs). A later `checkpoint run --shard I/M` over a
// directory whose latest run is that merge starts a run of its own from it: each step's part is cut from what
// remained (`remainderCuts`, the same on every shard), and the merged work inside the part is inherited.

import { Checkpoint } from '../journal/checkpoint.js';
import type { CheckpointEvent } from '../journal/events.js';
import { ensureDir } from '../journal/fsutil.js';
import { type Interval, IntervalSet } from '../journal/intervals.js';
import { acquireLease } from '../journal/lock.js';
import { type CheckpointState, isStepComplete, type MergeRecord, type StepRecord } from '../journal/state.js';
import { partOf, remainderCuts, type Shard, type Sharding, shardLabel, shardModeOf } from '../plan/space.js';
import type { Plan } from '../plan/types.js';
import type { ShardReport, ShardSource } from '../report/shards.js';
import { UsageError } from './context.js';

/** The same merge: a campaign's merges share the merged run's id (the action's key), so the time tells. */
export function sameMerge(a: MergeRecord | undefined, b: MergeRecord | undefined): boolean {
  return a !== undefined && b !== undefined && a.run === b.run && a.at === b.at;
}

/** The merge's own record is its run: a run that is a merge and not yet bound to a shard. */
export function isUnboundMerge(state: CheckpointState): boolean {
  return state.merge !== undefined && state.merge.run === state.runId && state.shard === undefined;
}

export interface MergedStep {
  id: string;
  units: number;
  done: number;
}

export interface MergeResult {
  runId: string;
  dir: string;
  total: number;
  steps: MergedStep[];
  /** Things the merge did not carry over (failed units count as not done, cut-off shards). */
  notes: string[];
}

function fmt([s, e]: Interval): string {
  return `[${s}, ${e})`;
}

/**
 * Why these shards cannot be merged, or nothing. The report's consistency errors (overlapping done work,
 * other plans or shard counts, parts that are not the shard's), a missing shard (its work, if any, would be
 * done again), and one step run with different definitions on different shards.
 */
export function mergeProblems(report: ShardReport, sources: ShardSource[]): string[] {
  const problems = [...report.errors];
  const missing = report.shards.filter((s) => !s.present).map((s) => `${s.index}/${report.total}`);
  if (missing.length > 0)
    problems.push(
      `no checkpoint for shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: work it may have done would be done again; pass every shard's checkpoint directory (or run the missing shard with the same N first)`,
    );
  for (const step of report.steps) {
    const recs = sources.flatMap((s) => {
      const rec = s.ckpt.state.steps.get(step.id);
      return rec ? [{ source: s.source, rec }] : [];
    });
    const hashes = [...new Set(recs.map((r) => r.rec.fingerprint.hash))];
    if (hashes.length > 1)
      problems.push(
        `step ${step.id}: the shards ran different definitions of it (${recs.map((r) => `${r.source}: ${r.rec.fingerprint.hash.slice(0, 12)}`).join(', ')}); run every shard from the same commit before merging`,
      );
  }
  return problems;
}

/** The merged work of one step: split steps the union, `first` shard 0's, `every` whole when done on all. */
function mergedDone(report: ShardReport, stepIdx: number, bySource: Map<number, ShardSource>): IntervalSet {
  const step = report.steps[stepIdx] as ShardReport['steps'][number];
  const out = new IntervalSet();
  const recs = step.shards.map((c) => bySource.get(c.index)?.ckpt.state.steps.get(step.id));
  if (step.mode === 'every') {
    if (
      step.whole &&
      recs.every((r) => r !== undefined && isStepComplete(r)) &&
      step.whole[1] > step.whole[0]
    )
      out.add(step.whole[0], step.whole[1]);
    return out;
  }
  const from = step.mode === 'first' ? recs.slice(0, 1) : recs;
  for (const r of from) for (const [s, e] of r?.done.intervals() ?? []) out.add(s, e);
  return out;
}

/**
 * Writes the merged checkpoint of the gathered shards as run `runId` in `root` (which must not hold that run
 * yet). Throws a UsageError (exit 2, nothing written) when `mergeProblems` finds any.
 */
export async function writeMerge(
  report: ShardReport,
  sources: ShardSource[],
  root: string,
  runId: string,
): Promise<MergeResult> {
  const problems = mergeProblems(report, sources);
  if (problems.length > 0)
    throw new UsageError(
      `report --merge: the shards cannot be merged, nothing was written:\n  - ${problems.join('\n  - ')}`,
    );
  if (await Checkpoint.exists(root, runId))
    throw new UsageError(
      `report --merge: run ${runId} already exists in ${root}; merge into another directory`,
    );
  const bySource = new Map<number, ShardSource>();
  for (const s of sources) bySource.set(s.ckpt.state.shard?.index ?? 0, s);
  const notes: string[] = [];
  const events: CheckpointEvent[] = [
    {
      type: 'merge',
      run: runId,
      total: report.total,
      runs: Array.from({ length: report.total }, (_, i) => bySource.get(i)?.ckpt.runId ?? ''),
      at: Date.now(),
    },
  ];
  const items = new Map<string, string[]>();
  const steps: MergedStep[] = [];
  for (let i = 0; i < report.steps.length; i++) {
    const step = report.steps[i] as ShardReport['steps'][number];
    // The first shard that recorded the step gives its definition (all agree: mergeProblems).
    let first: { rec: StepRecord; src: ShardSource } | undefined;
    for (const c of step.shards) {
      const src = bySource.get(c.index);
      const rec = src?.ckpt.state.steps.get(step.id);
      if (src && rec) {
        first = { rec, src };
        break;
      }
    }
    if (!first || !step.whole) continue;
    const { rec } = first;
    if (rec.items) {
      // Every shard froze the same list (the report checks the hashes): one copy is the merge's.
      items.set(step.id, await first.src.ckpt.readItems(step.id));
    }
    const done = mergedDone(report, i, bySource);
    const outputs: Record<string, string> = {};
    for (const c of step.mode === 'split' ? step.shards : step.shards.slice(0, 1)) {
      const o = bySource.get(c.index)?.ckpt.state.steps.get(step.id)?.outputs ?? {};
      for (const [k, v] of Object.entries(o)) outputs[k] ??= v;
    }
    const failed = step.shards.reduce((n, c) => n + c.failed.length, 0);
    const running = step.shards.reduce(
      (n, c) => n + (bySource.get(c.index)?.ckpt.state.steps.get(step.id)?.running.size ?? 0),
      0,
    );
    if (failed > 0)
      notes.push(`step ${step.id}: ${failed} failed unit(s) count as not done; they are tried afresh`);
    if (running > 0)
      notes.push(
        `step ${step.id}: ${running} unit(s) were still recorded running (a shard was cut off); they count as not done and run again — make sure no shard of the old matrix is still running`,
      );
    events.push({
      type: 'step-init',
      step: step.id,
      fingerprint: rec.fingerprint,
      from: step.whole[0],
      to: step.whole[1],
      size: rec.size,
      ...(rec.items ? { items: rec.items } : {}),
      ...(rec.adaptive ? { adaptive: true as const } : {}),
      reason: `merged from ${report.total} shards`,
    });
    const spans = [...done.intervals()].map(([s, e]): [number, number] => [s, e]);
    events.push({
      type: 'merge-done',
      step: step.id,
      done: spans,
      ...(Object.keys(outputs).length > 0 ? { outputs } : {}),
    });
    const units = Math.ceil((step.whole[1] - step.whole[0]) / rec.size);
    steps.push({ id: step.id, units, done: 0 });
  }
  const ckpt = Checkpoint.blank(root, runId, report.plan);
  await ensureDir(`${root}/${runId}`);
  const lease = await acquireLease(`${root}/${runId}`, { runId, attempt: 0 });
  try {
    await ckpt.openForWrite({ lease });
    for (const [id, list] of items) await ckpt.writeItems(id, list);
    for (const ev of events) ckpt.recordLater(ev);
    await ckpt.flush();
    await ckpt.syncMarkers();
    await ckpt.writeOutputsFile();
    await ckpt.compact();
    await ckpt.close();
  } finally {
    await lease.release();
  }
  for (const s of steps) s.done = ckpt.state.steps.get(s.id)?.unitsDone ?? 0;
  return { runId, dir: ckpt.dir, total: report.total, steps, notes };
}

export interface Seed {
  /** The merged run the shard starts from and how many shards it gathered. */
  from: { run: string; total: number };
  /** Events that start the shard's run from the merge, before the attempt's own. */
  events: CheckpointEvent[];
  /** Frozen item lists the run inherits (step id → items). */
  items: Map<string, string[]>;
  /** Per split step: this shard's part and what remains in it, for the log. */
  parts: Array<{ step: string; part: Interval; todo: number }>;
}

/**
 * The start of shard `shard`'s run from the merged run `merged`: the merge named, and per step of the plan
 * that the merge holds, this shard's part (split steps: cut from what remained, `remainderCuts`; others as
 * for any sharded run) with the merged done work inside it and the step's outputs.
 */
export async function seedFromMerge(merged: Checkpoint, plan: Plan, shard: Shard): Promise<Seed> {
  const m = merged.state.merge;
  if (!m) throw new Error(`internal: run ${merged.runId} is not a merge`);
  const events: CheckpointEvent[] = [
    { type: 'merge', run: m.run, total: m.total, runs: [...m.runs], at: m.at },
  ];
  const items = new Map<string, string[]>();
  const parts: Seed['parts'] = [];
  for (const step of plan.steps) {
    const rec = merged.state.steps.get(step.id);
    if (!rec) continue;
    const mode = shardModeOf(step);
    const done = [...rec.done.intervals()];
    const sharding: Sharding = { from: rec.from, to: rec.to, mode, merge: m.run };
    let part: [number, number];
    if (mode === 'split') {
      sharding.cuts = remainderCuts(rec.from, rec.to, done, shard.total);
      part = [sharding.cuts[shard.index] as number, sharding.cuts[shard.index + 1] as number];
    } else part = partOf(rec.from, rec.to, mode, shard);
    if (rec.items) items.set(step.id, await merged.readItems(step.id));
    const mine = done
      .map(([s, e]): [number, number] => [Math.max(s, part[0]), Math.min(e, part[1])])
      .filter(([s, e]) => s < e);
    const todo = part[1] - part[0] - mine.reduce((n, [s, e]) => n + (e - s), 0);
    if (mode === 'split') parts.push({ step: step.id, part, todo });
    events.push({
      type: 'step-init',
      step: step.id,
      fingerprint: rec.fingerprint,
      from: part[0],
      to: part[1],
      size: rec.size,
      ...(rec.items ? { items: rec.items } : {}),
      sharding,
      ...(rec.adaptive ? { adaptive: true as const } : {}),
      reason: `from merge ${m.run} (shard ${shardLabel(shard)}: part ${fmt(part)}, ${todo} left in it)`,
    });
    events.push({
      type: 'merge-done',
      step: step.id,
      done: mine,
      ...(Object.keys(rec.outputs).length > 0 ? { outputs: { ...rec.outputs } } : {}),
    });
  }
  return { events, items, parts, from: { run: merged.runId, total: m.total } };
}

/** The log line of a shard run started from a merge: each split step's part and what is left in it. */
export function seedLine(seed: Seed): string {
  const parts = seed.parts.map((p) => `${p.step} part [${p.part[0]}, ${p.part[1]}) with ${p.todo} left`);
  return `from merge ${seed.from.run} of ${seed.from.total} shards: ${parts.join('; ') || 'no batch step left to share'}`;
}

/**
 * Writes the seed into `ckpt` (a blank shard run, open for writing under its lease) before anything else
 * touches the run: the run then exists with the merged work in it, so what comes next (the action's
 * `reset` and `approve` inputs, the engine's attempt) finds it as it finds any run it resumes, and the
 * attempt knows it continues earlier work. The snapshot goes first: it holds the shard (the journal names it
 * only in an attempt), so a run cut off here is still bound to its shard and holds the seed or nothing of it.
 */
export async function applySeed(ckpt: Checkpoint, seed: Seed): Promise<void> {
  await ckpt.compact();
  // The frozen lists go to disk before the records that point at them.
  for (const [id, list] of seed.items) await ckpt.writeItems(id, list);
  for (const ev of seed.events) ckpt.recordLater(ev);
  await ckpt.flush();
  await ckpt.syncMarkers();
  await ckpt.writeOutputsFile();
  await ckpt.compact();
}

/**
 * A new run `runId` of shard `shard` in `root`, started from the merged run `merged` (the action: before its
 * `reset` and `approve` inputs apply, so they apply to the seeded run). Returns the seed, for the log.
 */
export async function startFromMerge(
  merged: Checkpoint,
  plan: Plan,
  shard: Shard,
  root: string,
  runId: string,
): Promise<Seed> {
  const dir = `${root}/${runId}`;
  await ensureDir(dir);
  const lease = await acquireLease(dir, { runId, attempt: 0 });
  try {
    if (await Checkpoint.exists(root, runId))
      throw new Error(`internal: run ${runId} exists already; it cannot start from merge ${merged.runId}`);
    const seed = await seedFromMerge(merged, plan, shard);
    const ckpt = Checkpoint.blank(root, runId, plan.name, shard);
    await ckpt.openForWrite({ lease });
    try {
      await applySeed(ckpt, seed);
    } finally {
      await ckpt.close();
    }
    return seed;
  } finally {
    await lease.release();
  }
}
