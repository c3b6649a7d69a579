import { parseShardText, type Shard, shardLabel } from '../plan/space.js';
import { UsageError } from './context.js';

export type { Shard } from '../plan/space.js';

/** `I/N` with 0 <= I < N (matrix `strategy.job-index` / `strategy.job-total`). */
export function parseShard(text: string): Shard {
  const shard = parseShardText(text);
  if (!shard) throw new UsageError(`--shard: expected I/N with 0 <= I < N (e.g. 0/4), got "${text}"`);
  return shard;
}

/**
 * A run is bound to the shard it was started with: resuming it as another shard (or unsharded) would do
 * another shard's work or the whole step. Refused before anything is written, naming both and the way out.
 */
export function checkRunShard(
  runId: string,
  recorded: Shard | undefined,
  requested: Shard | undefined,
  /** The merged run this run started from, if any: starting again from it is the way to another shard. */
  mergeRun?: string,
): void {
  if (recorded === undefined && requested === undefined) return;
  if (recorded && requested && recorded.index === requested.index && recorded.total === requested.total)
    return;
  if (recorded === undefined && requested) {
    throw new UsageError(
      `--shard ${shardLabel(requested)}: run ${runId} is not sharded (it was started without --shard); ` +
        `run without --shard to resume it, or add --new to start a fresh run as shard ${shardLabel(requested)}`,
    );
  }
  const rec = recorded as Shard;
  if (requested === undefined) {
    throw new UsageError(
      `run ${runId} is shard ${shardLabel(rec)}, but no --shard was given; ` +
        `pass --shard ${shardLabel(rec)} to resume it, or --new to start a fresh, unsharded run`,
    );
  }
  const fromMerge =
    mergeRun !== undefined && mergeRun !== runId
      ? `, or --run ${mergeRun} to start shard ${shardLabel(requested)} from the merge it came from`
      : '';
  throw new UsageError(
    `--shard ${shardLabel(requested)}: run ${runId} is shard ${shardLabel(rec)}; ` +
      `pass --shard ${shardLabel(rec)} to resume it, or add --new to start a fresh run as shard ${shardLabel(requested)}${fromMerge}`,
  );
}
