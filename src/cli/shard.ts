import { UsageError } from './context.js';

export interface Shard {
  index: number;
  total: number;
}

/** `I/N` with 0 <= I < N (matrix `strategy.job-index` / `strategy.job-total`). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(m?.[1]);
  const total = Number(m?.[2]);
  if (!m || total < 1 || index >= total) {
    throw new UsageError(`--shard: expected I/N with 0 <= I < N (e.g. 0/4), got "${text}"`);
  }
  // Splitting batch work across matrix jobs is its own feature (issue 5); refusing beats silently running all.
  throw new UsageError(`--shard ${text}: sharding is not available in this version yet; run without --shard`);
}
