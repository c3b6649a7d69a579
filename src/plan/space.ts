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
