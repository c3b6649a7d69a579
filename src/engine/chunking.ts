// Chunks sized by time (`batch.size: { target, min, max }`), like pt-online-schema-change's --chunk-time:
// each next chunk is sized from the step's measured rate (pace.ts) so that it takes about `target`.
//
// - The step's grid is `min`: a chunk is a whole multiple of it, [start, start + k·min), then cut to the gap it
//   starts in (done work, running or failed units, the end of the space). So CHECKPOINT_BATCH_INDEX, the
//   chunk's first grid cell, stays unique and logs/<step>/<index>.log keep working.
// - Before any chunk of the step finished (in any attempt), a chunk is `min`.
// - A chunk grows at most GROWTH times the last finished one per step: one fast chunk (an empty stretch of a
//   table) does not make the next one huge; it shrinks at once when chunks get slow.
// - With a time budget, a chunk is also cut to what fits in the time left, less a margin (a tenth of it, at
//   least a second: a chunk's start-up and recording are not in the rate, and weigh most in the last small
//   chunks); when not even `min` fits, the step starts no more chunks (the time budget's predictive stop).
import type { Pace } from '../journal/pace.js';
import { paceRate } from '../journal/pace.js';
import type { AdaptiveSize } from '../plan/types.js';

/** The most a chunk grows over the last finished one. */
export const GROWTH = 4;
/** Part of the time left that a chunk may plan to use: the rest is a margin for the estimate's error. */
export const BUDGET_SHARE = 0.9;
/** The margin is at least this long (ms). */
export const MIN_MARGIN_MS = 1000;

/** Of `remainingMs` left in the budget, the time a chunk may plan to take. */
export function usableMs(remainingMs: number): number {
  return Math.max(0, Math.min(remainingMs * BUDGET_SHARE, remainingMs - MIN_MARGIN_MS));
}

export interface ChunkInput {
  size: AdaptiveSize;
  /** The step's measured pace, if a chunk finished already. */
  pace: Pace | undefined;
  /** Items available from the chunk's start (the gap it starts in). */
  room: number;
  /** With a time budget: ms left until its deadline. */
  remainingMs?: number | undefined;
}

/** The largest chunk: `max` rounded down to a whole multiple of `min` (at least `min`). */
export function largestChunk(size: AdaptiveSize): number {
  return Math.max(1, Math.floor(size.max / size.min)) * size.min;
}

/**
 * The chunk size the rate alone asks for (no gap, no budget): rate × target, grown at most GROWTH times the
 * last chunk, in whole multiples of `min` within [min, max]. `min` before anything was measured.
 */
export function wantedChunk(size: AdaptiveSize, pace: Pace | undefined): number {
  const rate = paceRate(pace);
  if (rate === undefined || !pace) return size.min;
  let want = rate * size.targetMs;
  want = Math.min(want, Math.max(pace.lastSize, size.min) * GROWTH);
  return clampToGrid(size, want);
}

/** `want` as a whole multiple of `min` within [min, max]. */
function clampToGrid(size: AdaptiveSize, want: number): number {
  const k = Math.floor(want / size.min);
  return Math.min(largestChunk(size), Math.max(1, Number.isFinite(k) ? k : 1) * size.min);
}

/** The next chunk's size: `wantedChunk`, cut to the time left (when a budget is set) and to the room. */
export function nextChunkSize(input: ChunkInput): number {
  const { size, pace, room, remainingMs } = input;
  let chunk = wantedChunk(size, pace);
  const rate = paceRate(pace);
  if (remainingMs !== undefined && rate !== undefined) {
    const fits = rate * usableMs(remainingMs);
    if (fits < chunk) chunk = clampToGrid(size, fits);
  }
  return Math.max(1, Math.min(chunk, room));
}

/** How long `items` will take at the measured pace, ms; undefined before anything was measured. */
export function estimateMs(pace: Pace | undefined, items: number): number | undefined {
  const rate = paceRate(pace);
  return rate === undefined ? undefined : items / rate;
}

/** Whether a chunk estimated at `estMs` may start with `remainingMs` left (keeping the margin). */
export function fitsRemaining(estMs: number, remainingMs: number): boolean {
  return estMs <= usableMs(remainingMs);
}

/** The latest start (Unix ms) at which a chunk estimated at `estMs` still fits before `deadline`. */
export function latestStart(deadline: number, estMs: number): number {
  // fitsRemaining(est, deadline - start) ⇔ deadline - start >= max(est / BUDGET_SHARE, est + MIN_MARGIN_MS)
  return deadline - Math.max(estMs / BUDGET_SHARE, estMs + MIN_MARGIN_MS);
}

/** What `status` shows of a step's chunks sized by time. */
export interface ChunkInfo {
  /** From the plan; null when status runs without the plan. */
  targetMs: number | null;
  /** The grid: the checkpoint's `size`. */
  min: number;
  /** null: no limit, or no plan. */
  max: number | null;
  /** The last done chunk: its size and how long it took. */
  lastSize: number | null;
  lastMs: number | null;
  /** Items (or numbers) per second, exponentially weighted over the done chunks. */
  ratePerSecond: number | null;
  /** The size the next chunk gets from the rate (before a time budget cuts it); null without the plan. */
  nextSize: number | null;
  /** Done chunks measured, across attempts. */
  measured: number;
}

export function chunkInfo(
  rec: { size: number; pace?: Pace | undefined },
  size: AdaptiveSize | undefined,
): ChunkInfo {
  const rate = paceRate(rec.pace);
  return {
    targetMs: size ? size.targetMs : null,
    min: size ? size.min : rec.size,
    max: size && size.max < Number.MAX_SAFE_INTEGER ? size.max : null,
    lastSize: rec.pace ? rec.pace.lastSize : null,
    lastMs: rec.pace ? rec.pace.lastMs : null,
    ratePerSecond: rate === undefined ? null : Math.round(rate * 1000 * 10) / 10,
    nextSize: size ? wantedChunk(size, rec.pace) : null,
    measured: rec.pace?.chunks ?? 0,
  };
}
