// The `cache` store: the real @actions/cache, loaded only when used (it is most of the bundle's weight and
// the action's cold start matters). Entries are immutable, so every save gets a new key and restore asks for
// the newest key under the prefix.
import { relative } from 'node:path';
import { EntryUnusable, type Store, StoreError } from './store.js';
import { DEFAULT_IDLE_MS, withIdleTimeout } from './watchdog.js';

type CacheModule = typeof import('@actions/cache');

/**
 * @actions/cache never throws for service trouble: restoreCache warns and returns undefined (which reads like
 * a miss), saveCache logs and returns -1. To tell an outage from a miss, and to carry the reason into the job
 * summary, the `::warning` lines the library prints while it runs are collected (and still printed). So is
 * the entry it found ("Cache hit for: K"), the only way to learn which entry a failed download was.
 */
async function watchingWarnings<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; warnings: string[]; hit?: string }> {
  const warnings: string[] = [];
  let hit: string | undefined;
  const write = process.stdout.write;
  const patched = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
    for (const line of text.split('\n')) {
      if (line.startsWith('::warning'))
        warnings.push(line.slice(line.indexOf('::', 2) + 2).replace(/%0A/g, ' '));
      hit = /^Cache hit for(?: restore-key)?: (\S+)$/.exec(line)?.[1] ?? hit;
    }
    // The rest are write's own optional arguments (encoding, callback), passed through untouched.
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  };
  process.stdout.write = patched as typeof process.stdout.write;
  try {
    const result = await fn();
    return hit === undefined ? { result, warnings } : { result, warnings, hit };
  } finally {
    process.stdout.write = write;
  }
}

/** The runner's ACTIONS_CACHE_MODE lattice (as @actions/cache reads it): unset or unknown allows both. */
export function cacheModeAllows(mode: string | undefined, op: 'read' | 'write'): boolean {
  const m = (mode ?? '').trim().toLowerCase();
  if (!['none', 'read', 'write', 'write-only'].includes(m)) return true;
  return op === 'read' ? m === 'read' || m === 'write' : m === 'write' || m === 'write-only';
}

/** The cache answers at most 10 keys per lookup (the library refuses more). */
const MAX_KEYS = 10;

/**
 * Older entries to ask for once the newest ones were refused. The cache can only be asked for "the newest
 * entry under a prefix" (for up to 10 keys at once, first match wins), never to list, so the candidates come
 * from the refused names, `<prefix><run>-<attempt>-<seq>`: the earlier saves of the same attempt by exact
 * name, newest first, then the newest entry of each earlier attempt of that run. Entries of earlier workflow
 * runs (an explicit `key`) cannot be reached this way.
 */
export function olderKeys(prefix: string, refused: ReadonlySet<string>): string[] {
  let oldest: [number, number, number] | undefined;
  for (const name of refused) {
    const m = name.startsWith(prefix) ? /^(\d+)-(\d+)-(\d+)$/.exec(name.slice(prefix.length)) : null;
    if (!m) continue;
    const at: [number, number, number] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (!oldest || at[1] < oldest[1] || (at[1] === oldest[1] && at[2] < oldest[2])) oldest = at;
  }
  if (!oldest) return [];
  const [run, attempt, seq] = oldest;
  const keys: string[] = [];
  for (let s = seq - 1; s >= 1 && keys.length < MAX_KEYS / 2; s--)
    keys.push(`${prefix}${run}-${attempt}-${s}`);
  for (let a = attempt - 1; a >= 1 && keys.length < MAX_KEYS; a--) keys.push(`${prefix}${run}-${a}-`);
  return keys.filter((k) => !refused.has(k));
}

export interface CacheStoreOptions {
  /** How long a connection to the service may stay silent before it is given up (see watchdog.ts). */
  idleTimeoutMs?: number;
}

export class CacheStore implements Store {
  readonly kind = 'cache' as const;
  #lib: CacheModule | undefined;
  readonly #idleMs: number;

  constructor(o: CacheStoreOptions = {}) {
    this.#idleMs = o.idleTimeoutMs ?? DEFAULT_IDLE_MS;
  }

  async #cache(): Promise<CacheModule> {
    this.#lib ??= await import('@actions/cache');
    return this.#lib;
  }

  /** The library hashes the path strings into the entry's version, so they must read the same every time. */
  #paths(dir: string): string[] {
    return [relative(process.cwd(), dir) || '.'];
  }

  async restore(prefix: string, dir: string, refused: ReadonlySet<string> = new Set()) {
    const cache = await this.#cache();
    if (!cache.isFeatureAvailable())
      throw new StoreError(
        'the cache service is not available to this job (no ACTIONS_RESULTS_URL / ACTIONS_CACHE_URL)',
      );
    // No entry is ever called exactly `prefix`, so [prefix] asks for "the newest entry whose key starts
    // with it"; after a refusal, the older candidates are asked for instead.
    const [first, ...rest] = refused.size === 0 ? [prefix] : olderKeys(prefix, refused);
    if (first === undefined) return undefined;
    let key: string | undefined;
    let warnings: string[];
    let hit: string | undefined;
    let timedOut: boolean;
    try {
      ({
        result: { result: key, warnings, hit },
        timedOut,
      } = await withIdleTimeout(this.#idleMs, () =>
        watchingWarnings(() => cache.restoreCache(this.#paths(dir), first, rest.length ? rest : [first])),
      ));
    } catch (err) {
      throw new StoreError(`cache restore failed: ${(err as Error).message}`, { cause: err });
    }
    if (key === undefined && warnings.length > 0) {
      const why = `${warnings.join('; ')}${this.#silence(timedOut)}`;
      // Found, then lost on the way (cut, truncated, not extractable): the entries before it may be whole.
      if (hit !== undefined) throw new EntryUnusable(hit, `cache restore of ${hit} failed: ${why}`);
      throw new StoreError(`cache restore failed: ${why}`);
    }
    // A refused entry found again (a name the candidates could not tell apart) is no candidate.
    return key === undefined || refused.has(key) ? undefined : { name: key };
  }

  async save(name: string, dir: string): Promise<void> {
    const cache = await this.#cache();
    if (!cache.isFeatureAvailable())
      throw new StoreError(
        'the cache service is not available to this job (no ACTIONS_RESULTS_URL / ACTIONS_CACHE_URL)',
      );
    if (!cacheModeAllows(process.env.ACTIONS_CACHE_MODE, 'write'))
      throw new StoreError(
        `cache save of ${name} skipped: ACTIONS_CACHE_MODE=${process.env.ACTIONS_CACHE_MODE} does not permit writes; the checkpoint stays in the local directory only`,
      );
    let id: number;
    let warnings: string[];
    let timedOut: boolean;
    try {
      ({
        result: { result: id, warnings },
        timedOut,
      } = await withIdleTimeout(this.#idleMs, () =>
        watchingWarnings(() => cache.saveCache(this.#paths(dir), name)),
      ));
    } catch (err) {
      throw new StoreError(`cache save of ${name} failed: ${(err as Error).message}`, { cause: err });
    }
    // saveCache logs its own reason (a warning, or only an info line for a throttled or refused reservation)
    // and returns -1 when the service refused or failed the save.
    if (id === -1)
      throw new StoreError(
        `cache save of ${name} failed${warnings.length > 0 ? `: ${warnings.join('; ')}` : timedOut ? '' : ' (the service refused the entry; see the lines above)'}${this.#silence(timedOut)}`,
      );
  }

  #silence(timedOut: boolean): string {
    return timedOut
      ? ` (the cache service did not answer for ${Math.round(this.#idleMs / 1000)} s; the connection was given up)`
      : '';
  }
}
