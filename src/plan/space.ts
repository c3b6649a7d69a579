// Sharding (DESIGN §7): `--shard I/N` gives this job part I of N of every batch step. Parts are contiguous
// and disjoint and together exactly the whole: shard i of N gets [from + ⌊i·len/N⌋, from + ⌊(i+1)·len/N⌋)
// of a range, and the same split of an item list's indices. Inside its part a shard chunks by `size` as an
// unsharded run chunks the whole. Pure functions: the engine, `status` and `report` all use these.
import type { Step } from '../plan/types.js';

export interface Shard {
  /** 0-based: `strategy.job-index`. */
  index: number;
  /** At least 1: `strategy.job-total`. */
  total: number;
}

/**
 * How a step is shared among the shards of a sharded run:
 * - `split`: a batch step; shard i does part i of its space.
 * - `every`: a plain step (`shards: all`, the default); every shard runs it.
 * - `first`: `shards: first`; shard 0 does the whole step, the others nothing (it counts as done there).
 */
export type ShardMode = 'split' | 'every' | 'first';

/** A sharded step record's whole space (its own `from`/`to` are this shard's part) and how it is shared. */
export interface Sharding {
  from: number;
  to: number;
  mode: ShardMode;
  /**
   * A run started from a merged checkpoint (`checkpoint report --merge`): the merged run's id, and the cut
   * points of the split of what remained (`remainderCuts`): part i is [cuts[i], cuts[i+1]).
   */
  merge?: string;
  cuts?: number[];
}

export function shardLabel(s: Shard): string {
  return `${s.index}/${s.total}`;
}

/** `I/N` with 0 <= I < N; undefined when the text is not that. */
export function parseShardText(text: string): Shard | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) return undefined;
  const index = Number(m[1]);
  const total = Number(m[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(total) || total < 1 || index >= total)
    return undefined;
  return { index, total };
}

export function sameShard(a: Shard | undefined, b: Shard | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.index === b.index && a.total === b.total;
}

/** `⌊i·len/N⌋` without losing precision for spaces past 2^53 / N. */
function cut(i: number, len: number, total: number): number {
  if (i === 0) return 0;
  if (i === total) return len;
  const exact = i * len;
  if (Number.isSafeInteger(exact)) return Math.floor(exact / total);
  return Number((BigInt(i) * BigInt(len)) / BigInt(total));
}

/** Part `index` of `total` of the half-open space [from, to): contiguous, possibly empty. */
export function shardPart(from: number, to: number, shard: Shard): [number, number] {
  const len = Math.max(0, to - from);
  return [from + cut(shard.index, len, shard.total), from + cut(shard.index + 1, len, shard.total)];
}

/** A step's done work, as sorted, disjoint half-open intervals (what `IntervalSet.intervals()` yields). */
export type Spans = ReadonlyArray<readonly [number, number]>;

/** `done` clipped to [from, to), sorted and merged: the input need not be tidy. */
function tidy(from: number, to: number, done: Spans): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const sorted = done
    .map(([s, e]): [number, number] => [Math.max(s, from), Math.min(e, to)])
    .filter(([s, e]) => s < e)
    .sort((a, b) => a[0] - b[0]);
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** The pieces of [from, to) that `done` does not cover. */
export function remainderOf(from: number, to: number, done: Spans): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let cur = from;
  for (const [s, e] of tidy(from, to, done)) {
    if (s > cur) out.push([cur, s]);
    cur = e;
  }
  if (cur < to) out.push([cur, to]);
  return out;
}

/**
 * Re-sharding after a merge (DESIGN §7): the cut points `[from = c0 ≤ c1 ≤ … ≤ cM = to]` that split what
 * remains of [from, to) (the whole minus `done`) among `total` shards as `shardPart` splits a fresh space:
 * part k holds the remaining positions of rank ⌊k·R/M⌋ to ⌊(k+1)·R/M⌋ (R remaining in all). Each part is
 * one contiguous range of the whole, so a shard's record keeps its usual shape (`from`/`to` its part, the
 * merged done work inside it recorded done); a cut sits on a remaining position, so done work before it
 * belongs to the part before. Everything done: the plain split (there is nothing left to share). Every
 * shard computes this from the same merged checkpoint, so the parts agree without talking to each other.
 */
export function remainderCuts(from: number, to: number, done: Spans, total: number): number[] {
  const rest = remainderOf(from, to, done);
  const remaining = rest.reduce((n, [s, e]) => n + (e - s), 0);
  const cuts = [from];
  if (remaining === 0) {
    for (let k = 1; k < total; k++) cuts.push(shardPart(from, to, { index: k, total })[0]);
  } else {
    let piece = 0;
    let before = 0;
    for (let k = 1; k < total; k++) {
      const rank = cut(k, remaining, total);
      for (;;) {
        const [s, e] = rest[piece] as [number, number];
        if (rank < before + (e - s)) {
          cuts.push(s + (rank - before));
          break;
        }
        before += e - s;
        piece += 1;
      }
    }
  }
  if (total >= 1) cuts.push(to);
  return cuts;
}

export interface RemainderPart {
  /** The shard's contiguous part of the whole, half-open: done work inside it is inherited. */
  range: [number, number];
  /** What remains inside it: the shard's part of what remains. */
  todo: Array<[number, number]>;
}

/** Every shard's part of what remains of [from, to) after `done` (see `remainderCuts`). */
export function remainderSplit(from: number, to: number, done: Spans, total: number): RemainderPart[] {
  const cuts = remainderCuts(from, to, done, total);
  const out: RemainderPart[] = [];
  for (let i = 0; i < total; i++) {
    const range: [number, number] = [cuts[i] as number, cuts[i + 1] as number];
    out.push({ range, todo: remainderOf(range[0], range[1], done) });
  }
  return out;
}

/**
 * This shard's part of a step's whole space as recorded: the cut points of a run started from a merged
 * checkpoint when they fit this shard count and mode, else the plain split (`partOf`).
 */
export function recordedPart(sharding: Sharding, mode: ShardMode, shard: Shard): [number, number] {
  const c = sharding.cuts;
  if (c && sharding.mode === mode && c.length === shard.total + 1)
    return [c[shard.index] as number, c[shard.index + 1] as number];
  return partOf(sharding.from, sharding.to, mode, shard);
}

export function shardModeOf(step: Pick<Step, 'batch' | 'shards'>): ShardMode {
  if (step.shards === 'first') return 'first';
  return step.batch ? 'split' : 'every';
}

/** This shard's part of a step's whole space [from, to) under `mode`. */
export function partOf(from: number, to: number, mode: ShardMode, shard: Shard): [number, number] {
  if (mode === 'split') return shardPart(from, to, shard);
  if (mode === 'first' && shard.index > 0) return [from, from];
  return [from, to];
}

/** The units (chunks of `size`) of the half-open part [from, to), as the engine hands them out. */
export function unitsOf(from: number, to: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let s = from; s < to; s += size) out.push([s, Math.min(s + size, to)]);
  return out;
}
