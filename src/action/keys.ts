// Cache keys and artifact names. Entries are immutable, so each save is a new entry
// `checkpoint-v1-<key>-<run_id>-<run_attempt>-<seq>`, and restore takes the newest under `checkpoint-v1-<key>-`.

const UNSAFE = /[^A-Za-z0-9._-]+/g;

function clean(s: string): string {
  return s.replace(UNSAFE, '_').replace(/^[._-]+/, '') || 'x';
}

/**
 * The explicit `key`, else `<workflow>-<job>[-shard]-<run_id>`: attempts of one run resume each other. A
 * shard is always part of the key (`<key>-shardIofN` with an explicit key), so the shards of a matrix never
 * share a checkpoint.
 */
export function baseKey(o: {
  key?: string;
  workflow: string;
  job: string;
  shard?: string;
  runId: number;
}): string {
  const shard = o.shard ? `-shard${o.shard.replace('/', 'of')}` : '';
  if (o.key) return `${o.key}${shard}`;
  return `${clean(o.workflow)}-${clean(o.job)}${shard}-${o.runId}`;
}

/** The keys of the N shards of a matrix job (what each shard's `baseKey` was), for `command: report`. */
export function shardKeys(
  o: { key?: string; workflow: string; job: string; runId: number },
  total: number,
): string[] {
  return Array.from({ length: total }, (_, i) => baseKey({ ...o, shard: `${i}/${total}` }));
}

/**
 * The campaign's merged checkpoint (`command: report`): the key without the shard, plus `-merged`. Not the
 * bare key: restore goes by prefix, and `checkpoint-v1-<key>-` would also find every shard's entries.
 */
export function mergedKey(o: { key?: string; workflow: string; job: string; runId: number }): string {
  return `${baseKey(o)}-merged`;
}

export function entryPrefix(key: string): string {
  return `checkpoint-v1-${key}-`;
}

export function entryName(key: string, runId: number, attempt: number, seq: number): string {
  return `${entryPrefix(key)}${runId}-${attempt}-${seq}`;
}
