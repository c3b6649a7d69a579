// How fast a step with chunks sized by time (`batch.size: { target, min, max }`) gets through its items,
// kept in its checkpoint record so that a resumed attempt sizes its first chunks from what earlier attempts
// measured. Like pt-online-schema-change's --chunk-time: an exponentially weighted average of the items and
// of the time of the finished chunks, whose ratio is the rate. A ratio of weighted sums (rather than a
// weighted mean of per-chunk rates) lets a big chunk count for more than a tiny one.

/** Weight of the history against each new chunk (pt-online-schema-change uses the same). */
export const PACE_WEIGHT = 0.75;

export interface Pace {
  /** Exponentially weighted sum of the items (or numbers) of the step's done chunks. */
  items: number;
  /** Exponentially weighted sum of their durations, ms. */
  ms: number;
  /** The last done chunk: its size and how long it took (ms). */
  lastSize: number;
  lastMs: number;
  /** Done chunks measured (across attempts). */
  chunks: number;
}

/** `pace` with one more done chunk of `size` items that took `ms`. */
export function updatePace(pace: Pace | undefined, size: number, ms: number): Pace {
  // A chunk never takes less than a millisecond: a 0 would make an infinite rate.
  const t = Math.max(1, ms);
  if (!pace) return { items: size, ms: t, lastSize: size, lastMs: ms, chunks: 1 };
  return {
    items: pace.items * PACE_WEIGHT + size,
    ms: pace.ms * PACE_WEIGHT + t,
    lastSize: size,
    lastMs: ms,
    chunks: pace.chunks + 1,
  };
}

/** Items per millisecond; undefined before the first done chunk. */
export function paceRate(pace: Pace | undefined): number | undefined {
  if (!pace || !(pace.ms > 0) || !(pace.items > 0)) return undefined;
  return pace.items / pace.ms;
}
