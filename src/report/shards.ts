// `checkpoint report` and the action's `command: report`: several shards' checkpoints gathered into one
// report. Per step and per shard: units done, failed and remaining, ETA and failed ranges; across shards: is
// the union of the done work exactly the whole, and was no range done on two shards. Gathering and rendering
// are pure; the callers read the checkpoints (from directories, or restored from the store) and the logs.

import type { Checkpoint } from '../journal/checkpoint.js';
import { type Interval, IntervalSet } from '../journal/intervals.js';
import { isStepComplete, type StepRecord } from '../journal/state.js';
import { formatDuration } from '../plan/duration.js';
import { partOf, recordedPart, type Shard, type ShardMode, shardLabel } from '../plan/space.js';
import type { Plan, Step } from '../plan/types.js';
import { describeItems, type FrozenItems } from './items.js';
import { type StepStats, type StepStatus, stepStats } from './stats.js';
import {
  escapeCell,
  escapeMarkdown,
  failedRanges,
  failedSection,
  inlineCode,
  type LogTail,
  logKey,
  plural,
  readLogTails,
  STATE_ICON,
  warningBlock,
} from './summary.js';

/** One shard's checkpoint and where it came from (a directory, a cache entry). */
export interface ShardSource {
  source: string;
  ckpt: Checkpoint;
  /** The shard's frozen item lists (`loadFrozenItems`), so that failed units are named by their items. */
  frozen?: FrozenItems;
}

export type CellState = StepStatus | 'missing';

export interface Units {
  total: number;
  done: number;
  failed: number;
  remaining: number;
}

/** One step on one shard. */
export interface StepShardCell {
  index: number;
  state: CellState;
  /** The shard's part of the step, half-open; null when the step's space is not known yet. */
  part: Interval | null;
  units: Units;
  etaMs: number | undefined;
  done: Interval[];
  interrupted: Interval[];
  failed: StepStats['failed'];
  stats?: StepStats;
}

export interface StepReport {
  id: string;
  name: string;
  mode: ShardMode;
  batch: boolean;
  /** The step's whole space, half-open; null when no shard has recorded it and the plan cannot say. */
  whole: Interval | null;
  state: CellState;
  complete: boolean;
  units: Units;
  etaMs: number | undefined;
  /** `split` and `first` steps: pieces of the whole no shard has done (the first 100). */
  remaining: Interval[];
  shards: StepShardCell[];
}

export interface ShardSummary {
  index: number;
  present: boolean;
  source: string | null;
  runId: string | null;
  complete: boolean;
  units: Units;
  etaMs: number | undefined;
  attempts: number;
  updatedAt: number | undefined;
}

export interface ShardReport {
  plan: string;
  /** The shards started from a merged checkpoint (`report --merge`): its run id and the shards it held. */
  merge?: { run: string; total: number };
  /** N: how many shards the work is split into. */
  total: number;
  complete: boolean;
  /** No consistency error: every shard did only its own part, and no range was done on two shards. */
  consistent: boolean;
  errors: string[];
  warnings: string[];
  units: Units;
  etaMs: number | undefined;
  shards: ShardSummary[];
  steps: StepReport[];
}

export interface GatherOptions {
  sources: ShardSource[];
  /** The plan, for step names, order and the spaces of steps no shard has started. */
  plan?: Plan;
  /** N when the caller knows it (the action's `shard: N`); otherwise taken from the checkpoints. */
  total?: number;
  warnings?: string[];
}

const MAX_LISTED = 100;

function units(total: number, done: number, failed: number): Units {
  return { total, done, failed, remaining: Math.max(0, total - done) };
}

function addUnits(a: Units, b: Units): Units {
  return units(a.total + b.total, a.done + b.done, a.failed + b.failed);
}

function fmt([s, e]: Interval): string {
  return `[${s}, ${e})`;
}

function listRanges(list: Interval[], max = 5): string {
  const shown = list.slice(0, max).map(fmt);
  if (list.length > max) shown.push(`… ${list.length - max} more`);
  return shown.join(', ');
}

/** The pieces of [s, e) that `set` covers. */
function coveredPieces(set: IntervalSet, s: number, e: number): Interval[] {
  const out: Interval[] = [];
  let cur = s;
  for (const [gs, ge] of set.gaps(s, e)) {
    if (gs > cur) out.push([cur, gs]);
    cur = ge;
  }
  if (cur < e) out.push([cur, e]);
  return out;
}

function shardOf(ckpt: Checkpoint): Shard | undefined {
  return ckpt.state.shard;
}

interface StepShape {
  whole: Interval | null;
  mode: ShardMode;
  size: number;
  batch: boolean;
  /** Shards started from a merge: the cut points of the split of what remained (`remainderCuts`). */
  cuts?: number[];
}

/** How a step is shared: from the first shard that recorded it, else from the plan. */
function shapeOf(
  recs: Array<StepRecord | undefined>,
  step: Step | undefined,
  total: number,
): StepShape | undefined {
  for (const rec of recs) {
    if (!rec) continue;
    const span = rec.sharding ? rec.sharding.to - rec.sharding.from : rec.to - rec.from;
    const batch = step
      ? step.batch !== undefined
      : rec.sharding?.mode === 'split' || rec.size > 1 || rec.items !== undefined || span > 1;
    if (rec.sharding)
      return {
        whole: [rec.sharding.from, rec.sharding.to],
        mode: rec.sharding.mode,
        size: rec.size,
        batch,
        ...(rec.sharding.cuts ? { cuts: rec.sharding.cuts } : {}),
      };
    // An unsharded run (N = 1): its space is the whole.
    return { whole: [rec.from, rec.to], mode: batch ? 'split' : 'every', size: rec.size, batch };
  }
  if (!step) return undefined;
  const mode: ShardMode = step.shards === 'first' && total > 1 ? 'first' : step.batch ? 'split' : 'every';
  const b = step.batch;
  if (!b) return { whole: [0, 1], mode, size: 1, batch: false };
  if (b.space.kind === 'range') return { whole: [b.space.from, b.space.to], mode, size: b.size, batch: true };
  if (b.space.source.kind === 'list')
    return { whole: [0, b.space.source.items.length], mode, size: b.size, batch: true };
  return { whole: null, mode, size: b.size, batch: true };
}

function aggregateState(cells: StepShardCell[], complete: boolean): CellState {
  if (complete) return 'done';
  const states = cells.map((c) => c.state);
  if (states.includes('failed')) return 'failed';
  if (states.includes('running')) return 'running';
  if (states.includes('interrupted')) return 'interrupted';
  if (cells.some((c) => c.units.done > 0)) return 'partial';
  if (states.every((s) => s === 'missing')) return 'missing';
  return 'pending';
}

/**
 * Gathers the shards' checkpoints into one report. Consistency errors (the report is then not complete):
 * checkpoints of different plans or shard counts, two checkpoints for one shard, a shard whose recorded part
 * is not its part of the step, work done outside a shard's part, a range done on two shards, item lists
 * that differ between shards.
 */
export function gatherShards(o: GatherOptions): ShardReport {
  const errors: string[] = [];
  const warnings = [...(o.warnings ?? [])];
  const sources = o.sources;
  const names = [...new Set(sources.map((s) => s.ckpt.state.planName))];
  if (names.length > 1)
    errors.push(
      `the checkpoints belong to different plans (${sources.map((s) => `${s.source}: "${s.ckpt.state.planName}"`).join(', ')}); report the shards of one plan`,
    );
  const planName = names[0] ?? o.plan?.name ?? '';
  const plan = o.plan && o.plan.name === planName ? o.plan : undefined;

  // N: given, else what the checkpoints recorded (an unsharded run is the one shard of 1).
  const totals = [...new Set(sources.map((s) => shardOf(s.ckpt)?.total ?? 1))];
  const unsharded = sources.filter((s) => shardOf(s.ckpt) === undefined);
  if (unsharded.length > 0 && (sources.length > 1 || (o.total !== undefined && o.total > 1)))
    errors.push(
      `${unsharded.map((s) => `${s.source} (run ${s.ckpt.runId})`).join(', ')} ${unsharded.length === 1 ? 'is' : 'are'} not sharded (run without --shard); report only the checkpoints of \`checkpoint run --shard I/N\` runs`,
    );
  const total = o.total ?? Math.max(1, ...totals);
  const wrongTotal = sources.filter((s) => {
    const sh = shardOf(s.ckpt);
    return sh !== undefined && sh.total !== total;
  });
  if (wrongTotal.length > 0)
    errors.push(
      `the shard counts differ: ${sources.map((s) => `${s.source} is shard ${shardOf(s.ckpt) ? shardLabel(shardOf(s.ckpt) as Shard) : '(none)'}`).join(', ')}; every shard must be run with the same N`,
    );

  // Shards started from a merged checkpoint must all have started from the same one: their parts are cut
  // from what that merge left.
  const merges = [...new Set(sources.map((s) => s.ckpt.state.merge?.run ?? ''))];
  if (merges.length > 1)
    errors.push(
      `the shards started from different checkpoints (${sources.map((s) => `${s.source}: ${s.ckpt.state.merge ? `merge ${s.ckpt.state.merge.run}` : 'a fresh start'}`).join(', ')}); every shard of a matrix must start from the same merge (or none)`,
    );
  const mergeInfo = sources.find((s) => s.ckpt.state.merge)?.ckpt.state.merge;

  const byIndex = new Map<number, ShardSource>();
  for (const s of sources) {
    const sh = shardOf(s.ckpt) ?? { index: 0, total: 1 };
    if (sh.total !== total) continue;
    const prev = byIndex.get(sh.index);
    if (prev) {
      errors.push(
        `shard ${shardLabel(sh)} was given twice (${prev.source}, run ${prev.ckpt.runId}, and ${s.source}, run ${s.ckpt.runId}); pass one checkpoint per shard`,
      );
      continue;
    }
    byIndex.set(sh.index, s);
  }

  // Steps: the plan's, in its order; else every step any shard recorded, in first-seen order.
  const ids: string[] = plan ? plan.steps.map((s) => s.id) : [];
  if (!plan)
    for (const s of sources) for (const id of s.ckpt.state.steps.keys()) if (!ids.includes(id)) ids.push(id);
  const stepById = new Map(plan?.steps.map((s) => [s.id, s]) ?? []);

  const steps: StepReport[] = [];
  for (const id of ids) {
    const step = stepById.get(id);
    const recs = Array.from({ length: total }, (_, i) => byIndex.get(i)?.ckpt.state.steps.get(id));
    const shape = shapeOf(recs, step, total) ?? { whole: null, mode: 'split', size: 1, batch: false };
    const parallel = step?.batch ? (step.batch.order === 'sequential' ? 1 : step.batch.parallel) : 1;
    const cells: StepShardCell[] = [];
    const union = new IntervalSet();
    let itemsHash: { sha: string; index: number } | undefined;
    let definition: { hash: string; index: number } | undefined;
    for (let i = 0; i < total; i++) {
      const rec = recs[i];
      const shard = { index: i, total };
      const part: Interval | null = shape.whole
        ? shape.cuts
          ? recordedPart(
              { from: shape.whole[0], to: shape.whole[1], mode: shape.mode, cuts: shape.cuts },
              shape.mode,
              shard,
            )
          : partOf(shape.whole[0], shape.whole[1], shape.mode, shard)
        : null;
      if (!rec) {
        const n = part ? Math.ceil((part[1] - part[0]) / shape.size) : 0;
        cells.push({
          index: i,
          state: byIndex.has(i) ? 'pending' : 'missing',
          part,
          units: units(n, 0, 0),
          etaMs: n === 0 ? 0 : undefined,
          done: [],
          interrupted: [],
          failed: [],
        });
        continue;
      }
      const where = `step ${id} on shard ${shardLabel(shard)}`;
      const recWhole = rec.sharding ? [rec.sharding.from, rec.sharding.to] : [rec.from, rec.to];
      const recMode = rec.sharding?.mode ?? shape.mode;
      if (
        shape.whole &&
        (recWhole[0] !== shape.whole[0] ||
          recWhole[1] !== shape.whole[1] ||
          recMode !== shape.mode ||
          rec.size !== shape.size)
      ) {
        errors.push(
          `${where}: recorded the space ${fmt(recWhole as Interval)} (${recMode}, size ${rec.size}) but another shard recorded ${fmt(shape.whole)} (${shape.mode}, size ${shape.size}); the shards ran different plans — run them all from one commit (checkpoint run --new on each)`,
        );
      } else if (
        shape.cuts &&
        (rec.sharding?.cuts?.length !== shape.cuts.length ||
          rec.sharding.cuts.some((c, k) => c !== shape.cuts?.[k]))
      ) {
        errors.push(
          `${where}: split what the merge left at ${JSON.stringify(rec.sharding?.cuts ?? null)}, but another shard at ${JSON.stringify(shape.cuts)}; every shard must start from the same merged checkpoint with the same N`,
        );
      } else if (part && (rec.from !== part[0] || rec.to !== part[1])) {
        errors.push(
          `${where}: its part is ${fmt([rec.from, rec.to])}, but shard ${shardLabel(shard)} of ${fmt(shape.whole as Interval)} is ${fmt(part)}; run that shard again with --new`,
        );
      }
      if (!definition) definition = { hash: rec.fingerprint.hash, index: i };
      else if (definition.hash !== rec.fingerprint.hash)
        warnings.push(
          `step ${id}: shards ${definition.index} and ${i} ran different definitions of it (fingerprint ${definition.hash} and ${rec.fingerprint.hash}); run every shard from the same commit`,
        );
      if (rec.items) {
        if (!itemsHash) itemsHash = { sha: rec.items.sha256, index: i };
        else if (itemsHash.sha !== rec.items.sha256)
          errors.push(
            `step ${id}: shards ${itemsHash.index} and ${i} froze different item lists (${rec.items.source}); an item index means a different item on each — make the list the same on every shard and start over with --new`,
          );
      }
      const outside = [...rec.done.intervals()].flatMap(([s, e]): Interval[] => {
        if (rec.to <= rec.from) return [[s, e]];
        const out: Interval[] = [];
        if (s < rec.from) out.push([s, Math.min(e, rec.from)]);
        if (e > rec.to) out.push([Math.max(s, rec.to), e]);
        return out;
      });
      if (outside.length > 0)
        errors.push(
          `${where}: work outside its part ${fmt([rec.from, rec.to])} is recorded done: ${listRanges(outside)}`,
        );
      const frozen = byIndex.get(i)?.frozen?.get(id);
      const stats = stepStats(id, step?.name ?? id, rec, parallel, shape.batch, false, 0, frozen);
      // A sharded step that every shard runs is done on each; the others are shared out, never done twice.
      if (shape.mode !== 'every') {
        for (const [s, e] of rec.done.intervals()) {
          const twice = coveredPieces(union, s, e);
          if (twice.length > 0) {
            const others = cells
              .filter((c) => c.done.some(([cs, ce]) => twice.some(([ts, te]) => cs < te && ts < ce)))
              .map((c) => c.index);
            errors.push(
              `step ${id}: ${listRanges(twice)} done on shard ${i} and on shard ${others.join(', ') || '?'} (done twice)`,
            );
          }
          union.add(s, e);
        }
      }
      cells.push({
        index: i,
        state: stats.status,
        part: [rec.from, rec.to],
        units: units(stats.unitsTotal, stats.unitsDone, stats.unitsFailed),
        etaMs: stats.etaMs,
        done: stats.done,
        interrupted: stats.interrupted,
        failed: stats.failed,
        stats,
      });
    }
    let complete: boolean;
    let remaining: Interval[] = [];
    if (shape.mode === 'every') {
      complete = recs.every((r) => r !== undefined && isStepComplete(r));
    } else if (shape.whole) {
      // Split: the union of the shards' done work is the whole. First: shard 0 did it all (and recorded it).
      remaining = [...union.gaps(shape.whole[0], shape.whole[1])].slice(0, MAX_LISTED);
      complete = remaining.length === 0;
      if (shape.mode === 'first') complete = complete && recs[0] !== undefined && isStepComplete(recs[0]);
    } else complete = false;
    const stepUnits = cells.reduce((a, c) => addUnits(a, c.units), units(0, 0, 0));
    const etas = cells.map((c) => c.etaMs);
    steps.push({
      id,
      name: step?.name ?? id,
      mode: shape.mode,
      batch: shape.batch,
      whole: shape.whole,
      state: aggregateState(cells, complete),
      complete,
      units: stepUnits,
      // Shards run at once: the step is done when its slowest shard is.
      etaMs: complete
        ? 0
        : etas.some((e) => e === undefined)
          ? undefined
          : Math.max(0, ...(etas as number[])),
      remaining,
      shards: cells,
    });
  }

  const shards: ShardSummary[] = [];
  for (let i = 0; i < total; i++) {
    const src = byIndex.get(i);
    const cells = steps.map((s) => s.shards[i] as StepShardCell);
    const u = cells.reduce((a, c) => addUnits(a, c.units), units(0, 0, 0));
    const etas = cells.map((c) => c.etaMs);
    // Steps of one shard mostly run one after another: its ETA is the sum of theirs.
    const eta = etas.some((e) => e === undefined)
      ? undefined
      : etas.reduce((a: number, b) => a + (b ?? 0), 0);
    const complete = src !== undefined && cells.length > 0 && cells.every((c) => c.state === 'done');
    shards.push({
      index: i,
      present: src !== undefined,
      source: src?.source ?? null,
      runId: src?.ckpt.runId ?? null,
      complete,
      units: u,
      etaMs: complete ? 0 : eta,
      attempts: src?.ckpt.state.attempts.length ?? 0,
      updatedAt: src?.ckpt.state.updatedAt,
    });
  }
  const missing = shards.filter((s) => !s.present).map((s) => s.index);
  if (missing.length > 0 && sources.length > 0)
    warnings.push(
      `no checkpoint for shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${total}`).join(', ')}: ${missing.length > 1 ? 'their' : 'its'} work counts as remaining`,
    );
  const allUnits = shards.reduce((a, s) => addUnits(a, s.units), units(0, 0, 0));
  const shardEtas = shards.map((s) => s.etaMs);
  const consistent = errors.length === 0;
  const complete = consistent && missing.length === 0 && steps.length > 0 && steps.every((s) => s.complete);
  return {
    plan: planName,
    ...(mergeInfo ? { merge: { run: mergeInfo.run, total: mergeInfo.total } } : {}),
    total,
    complete,
    consistent,
    errors,
    warnings,
    units: allUnits,
    etaMs: complete
      ? 0
      : shardEtas.some((e) => e === undefined)
        ? undefined
        : Math.max(0, ...(shardEtas as number[])),
    shards,
    steps,
  };
}

/** Exit code of `checkpoint report`: 0 complete, 1 inconsistent or failed units, 75 incomplete. */
export function reportExitCode(r: ShardReport): number {
  if (!r.consistent || r.units.failed > 0) return 1;
  return r.complete ? 0 : 75;
}

// ---------------------------------------------------------------------------------------------------------
// JSON (docs/cli.md#report---json): fields are only ever added.

const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms / 1000));

export function reportJson(r: ShardReport): unknown {
  return {
    format: 1,
    plan: r.plan,
    total: r.total,
    complete: r.complete,
    consistent: r.consistent,
    errors: r.errors,
    warnings: r.warnings,
    units: r.units,
    etaSeconds: seconds(r.etaMs),
    shards: r.shards.map((s) => ({
      index: s.index,
      shard: `${s.index}/${r.total}`,
      present: s.present,
      source: s.source,
      runId: s.runId,
      complete: s.complete,
      units: s.units,
      etaSeconds: seconds(s.etaMs),
      attempts: s.attempts,
      updatedAt: s.updatedAt === undefined ? null : new Date(s.updatedAt).toISOString(),
    })),
    steps: r.steps.map((s) => ({
      id: s.id,
      name: s.name,
      mode: s.mode,
      whole: s.whole,
      state: s.state,
      complete: s.complete,
      units: s.units,
      etaSeconds: seconds(s.etaMs),
      remaining: s.remaining,
      shards: s.shards.map((c) => ({
        index: c.index,
        state: c.state,
        part: c.part,
        units: c.units,
        etaSeconds: seconds(c.etaMs),
        done: c.done,
        interrupted: c.interrupted,
        failed: c.failed,
      })),
    })),
    merge: r.merge ?? null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Text (stdout of `checkpoint report`)

function pct(u: Units): number {
  return u.total === 0 ? 100 : Math.floor((u.done / u.total) * 100);
}

function outcomeWord(r: ShardReport): string {
  if (!r.consistent) return 'inconsistent';
  if (r.complete) return 'complete';
  return r.units.failed > 0 ? 'failed' : 'incomplete';
}

export function renderReportText(r: ShardReport): string {
  const out: string[] = [];
  const eta = !r.complete && r.etaMs !== undefined ? ` · ETA ${formatDuration(r.etaMs)}` : '';
  out.push(
    `plan ${r.plan} · ${plural(r.total, 'shard')} · ${outcomeWord(r)} · ${r.units.done}/${r.units.total} units (${pct(r.units)}%)${r.units.failed ? ` · ${r.units.failed} failed` : ''}${eta}`,
  );
  if (r.merge)
    out.push(
      `started from merge ${r.merge.run} of ${plural(r.merge.total, 'shard')}: each shard's part is cut from what it left, and its merged work counts as done`,
    );
  for (const e of r.errors) out.push(`error: ${e}`);
  for (const w of r.warnings) out.push(`warning: ${w}`);
  out.push('');
  for (const s of r.shards) {
    const label = `shard ${s.index}/${r.total}`;
    if (!s.present) {
      out.push(`  ${label}  missing     ${s.units.total} units remaining`);
      continue;
    }
    const state = s.complete ? 'complete' : s.units.failed > 0 ? 'failed' : 'incomplete';
    const sEta = !s.complete && s.etaMs !== undefined ? `  ETA ${formatDuration(s.etaMs)}` : '';
    out.push(
      `  ${label}  ${state.padEnd(10)}  ${s.units.done}/${s.units.total} units${s.units.failed ? ` ✗${s.units.failed}` : ''}${sEta}  run ${s.runId} (${s.source})`,
    );
  }
  out.push('');
  const width = Math.max(4, ...r.steps.map((s) => s.id.length));
  out.push(
    `  ${'step'.padEnd(width)}  ${'shards'.padEnd(6)}  ${'state'.padEnd(11)} ${'units'.padStart(13)}  eta`,
  );
  for (const s of r.steps) {
    const mode = s.mode === 'split' ? 'split' : s.mode === 'first' ? 'first' : 'all';
    const u = `${s.units.done}/${s.units.total}${s.units.failed ? ` ✗${s.units.failed}` : ''}`;
    const e = s.complete ? '' : s.etaMs === undefined ? '?' : formatDuration(s.etaMs);
    out.push(`  ${s.id.padEnd(width)}  ${mode.padEnd(6)}  ${s.state.padEnd(11)} ${u.padStart(13)}  ${e}`);
    if (s.complete && r.total > 1 && s.mode !== 'split') continue;
    for (const c of s.shards) {
      if (s.complete && c.failed.length === 0) continue;
      const cu = `${c.units.done}/${c.units.total}${c.units.failed ? ` ✗${c.units.failed}` : ''}`;
      const ce = c.state === 'done' ? '' : c.etaMs === undefined ? '?' : formatDuration(c.etaMs);
      const part = c.part && s.mode === 'split' ? `part ${fmt(c.part)}` : '';
      out.push(
        `  ${' '.repeat(width)}  ${`${c.index}/${r.total}`.padEnd(6)}  ${c.state.padEnd(11)} ${cu.padStart(13)}  ${[ce, part].filter(Boolean).join('  ')}`.trimEnd(),
      );
      for (const f of failedRanges({ id: s.id, failed: c.failed }).slice(0, 5))
        out.push(
          `  ${' '.repeat(width)}    failed ${fmt([f.start, f.end])}${f.items && f.items.count > 0 ? ` ${describeItems(f.items)}` : ''}: ${f.reason} after ${plural(f.tries, 'try', 'tries')}`,
        );
    }
    if (!s.complete && s.remaining.length > 0 && s.mode !== 'every')
      out.push(`  ${' '.repeat(width)}  not done on any shard: ${listRanges(s.remaining)}`);
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// Markdown (the job summary)

/** Log tails of the first unit of every failed range, per shard: `shard → logKey → tail`. */
export async function readShardLogTails(
  r: ShardReport,
  sources: ShardSource[],
): Promise<Map<number, Map<string, LogTail>>> {
  const out = new Map<number, Map<string, LogTail>>();
  let budget = 50;
  for (const src of sources) {
    const index = src.ckpt.state.shard?.index ?? 0;
    if (r.shards[index]?.source !== src.source) continue;
    const steps = r.steps.flatMap((s) => {
      const stats = s.shards[index]?.stats;
      return stats && stats.failed.length > 0 ? [stats] : [];
    });
    if (steps.length === 0 || budget <= 0) continue;
    const stats = {
      runId: src.ckpt.runId,
      plan: r.plan,
      complete: false,
      unitsTotal: 0,
      unitsDone: 0,
      unitsFailed: 0,
      unitsRemaining: 0,
      etaMs: undefined,
      steps,
    };
    const tails = await readLogTails(src.ckpt, stats, { maxLogs: budget });
    budget -= tails.size;
    out.set(index, tails);
  }
  return out;
}

const MD_LIMIT = 1_000_000;

function iconOf(state: CellState): string {
  return state === 'missing' ? '❔' : STATE_ICON[state];
}

export interface MarkdownOptions {
  logs?: Map<number, Map<string, LogTail>>;
  maxBytes?: number;
}

export function renderReportMarkdown(r: ShardReport, opts: MarkdownOptions = {}): string {
  const maxBytes = opts.maxBytes ?? MD_LIMIT;
  const plan = escapeMarkdown(r.plan);
  const word = outcomeWord(r);
  const icon = word === 'complete' ? '✅' : word === 'incomplete' ? '⏸️' : '❌';
  const head: string[] = [`## ${icon} ${plan}: ${word} across ${plural(r.total, 'shard')}`, ''];
  const present = r.shards.filter((s) => s.present).length;
  const eta = !r.complete && r.etaMs !== undefined ? ` · ETA ${formatDuration(r.etaMs)}` : '';
  head.push(
    `${r.units.done} of ${r.units.total} units done (${pct(r.units)}%)${r.units.failed ? `, ${r.units.failed} failed` : ''} · checkpoints of ${present} of ${r.total} shards${eta}.`,
  );
  if (r.merge)
    head.push(
      '',
      `Started from merge ${inlineCode(r.merge.run)} of ${plural(r.merge.total, 'shard')}: each shard’s part is cut from what it left.`,
    );
  if (r.complete)
    head.push(
      '',
      'The union of the shards’ done work is the whole of every step, and no range was done twice.',
    );
  if (r.errors.length > 0) {
    head.push('', '> [!CAUTION]', '> The shards do not add up:');
    for (const e of r.errors) head.push(`> - ${escapeCell(e)}`);
  }
  const warn = warningBlock(r.warnings);
  if (warn.length > 0) head.push('', ...warn);

  const shardRows = [
    '',
    '### Shards',
    '',
    '| Shard | Run | State | Done | Failed | Remaining | Attempts | ETA |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const s of r.shards) {
    const state: CellState = !s.present
      ? 'missing'
      : s.complete
        ? 'done'
        : s.units.failed > 0
          ? 'failed'
          : 'partial';
    const e = s.complete ? '—' : s.etaMs === undefined ? '?' : formatDuration(s.etaMs);
    shardRows.push(
      `| ${s.index}/${r.total} | ${s.runId ? inlineCode(s.runId) : '—'} | ${iconOf(state)} ${state === 'done' ? 'complete' : state} | ${s.units.done} / ${s.units.total} | ${s.units.failed} | ${s.units.remaining} | ${s.attempts} | ${e} |`,
    );
  }

  const stepRows = [
    '',
    '### Steps by shard',
    '',
    '| Step | Shard | State | Done | Failed | Remaining | ETA | Failed ranges |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | --- |',
  ];
  let used = Buffer.byteLength(head.join('\n')) + Buffer.byteLength(shardRows.join('\n')) + 2000;
  let left = 0;
  for (const s of r.steps) {
    const name = s.name !== s.id ? `${escapeCell(s.name)} (${escapeCell(s.id)})` : escapeCell(s.id);
    const mode = s.mode === 'split' ? 'split' : s.mode === 'first' ? 'shards: first' : 'every shard';
    const e = s.complete ? '—' : s.etaMs === undefined ? '?' : formatDuration(s.etaMs);
    const rows = [
      `| **${name}** | ${mode} | ${iconOf(s.state)} ${s.state} | ${s.units.done} / ${s.units.total} | ${s.units.failed} | ${s.units.remaining} | ${e} | ${s.remaining.length && !s.complete && s.mode !== 'every' ? `not done anywhere: ${escapeCell(listRanges(s.remaining, 3))}` : ''} |`,
    ];
    for (const c of s.shards) {
      const ce = c.state === 'done' ? '—' : c.etaMs === undefined ? '?' : formatDuration(c.etaMs);
      const failed = failedRanges({ id: s.id, failed: c.failed });
      const fr = failed.length
        ? escapeCell(
            `${listRanges(
              failed.map((f) => [f.start, f.end] as Interval),
              3,
            )}: ${failed[0]?.reason ?? ''}`,
          )
        : '';
      rows.push(
        `|  | ${c.index}/${r.total}${c.part ? ` ${escapeCell(fmt(c.part))}` : ''} | ${iconOf(c.state)} ${c.state} | ${c.units.done} / ${c.units.total} | ${c.units.failed} | ${c.units.remaining} | ${ce} | ${fr} |`,
      );
    }
    const cost = Buffer.byteLength(rows.join('\n')) + 1;
    if (used + cost > maxBytes) {
      left += 1;
      continue;
    }
    used += cost;
    stepRows.push(...rows);
  }
  if (left > 0) stepRows.push('', `_${plural(left, 'more step')} not shown (summary size limit)._`);

  const sections: string[] = [];
  let cut = 0;
  for (const s of r.steps) {
    for (const c of s.shards) {
      if (!c.stats) continue;
      for (const range of failedRanges(c.stats)) {
        const tail = opts.logs?.get(c.index)?.get(logKey(s.id, range.index));
        const section = failedSection(
          { ...c.stats, id: `${s.id} · shard ${c.index}/${r.total}` },
          range,
          tail,
          20,
          sections.length === 0,
        );
        const cost = Buffer.byteLength(section) + 2;
        if (sections.length >= MAX_LISTED || used + cost > maxBytes) {
          cut += 1;
          continue;
        }
        used += cost;
        sections.push(section);
      }
    }
  }
  const failedText =
    sections.length + cut > 0
      ? [
          '',
          '### Failed units',
          '',
          sections.join('\n\n'),
          ...(cut > 0
            ? [
                '',
                `_${plural(cut, 'more failed range')} not shown; \`checkpoint report --json\` lists them all._`,
              ]
            : []),
        ]
      : [];
  return `${[...head, ...shardRows, ...stepRows, ...failedText].join('\n')}\n`;
}
