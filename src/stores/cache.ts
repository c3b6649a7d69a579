// The `cache` store: the real @actions/cache, loaded only when used (it is most of the bundle's weight and
// the action's cold start matters). Entries are immutable, so every save gets a new key and restore asks for
// the newest key under the prefix.
import { relative } from 'node:path';
import { type CacheListing, deleteCache, listCaches, RestError, type RestOptions } from './rest.js';
import {
  EntryUnusable,
  isEntryOf,
  type PruneOutcome,
  type Store,
  StoreError,
  StoreThrottled,
} from './store.js';
import { DEFAULT_IDLE_MS, withIdleTimeout } from './watchdog.js';

type CacheModule = typeof import('@actions/cache');

/** What the library printed while one call ran, read back from its log lines. */
interface Watched<T> {
  result: T;
  /** `::warning` messages, decoded. */
  warnings: string[];
  /** The entry it found ("Cache hit for: K"), the only way to learn which entry a failed download was. */
  hit?: string;
  /**
   * Why a reservation failed. The library tells every failed CreateCacheEntry (a duplicate, a 500, a
   * refused connection, a 429) the same way in the log ("another job may be creating this cache"); the
   * real error is only on its `::debug` line, which the runner shows only with debug logging on.
   */
  reserveCause?: string;
  /** Seconds the service asked to wait ("your rate limit will reset in N seconds"). */
  rateLimitSecs?: number;
}

/**
 * @actions/cache never throws for service trouble: restoreCache warns and returns undefined (which reads like
 * a miss), saveCache logs and returns -1. To tell an outage from a miss, and to carry the reason into the job
 * summary, the lines the library prints while it runs are read (and still printed).
 */
async function watchingWarnings<T>(fn: () => Promise<T>): Promise<Watched<T>> {
  const out: Omit<Watched<T>, 'result'> = { warnings: [] };
  const write = process.stdout.write;
  const patched = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
    for (const line of text.split('\n')) {
      if (line.startsWith('::warning')) {
        const message = line.slice(line.indexOf('::', 2) + 2).replace(/%0A/g, ' ');
        out.warnings.push(message);
        const secs = /rate limit will reset in (\d+) seconds/.exec(message)?.[1];
        if (secs !== undefined) out.rateLimitSecs = Number(secs);
      }
      const cause = /^::debug::Failed to reserve cache: (.*)$/.exec(line)?.[1];
      if (cause !== undefined) out.reserveCause = cause.replace(/%0A/g, ' ').replace(/%25/g, '%');
      const hit = /^Cache hit for(?: restore-key)?: (\S+)$/.exec(line)?.[1];
      if (hit !== undefined) out.hit = hit;
    }
    // The rest are write's own optional arguments (encoding, callback), passed through untouched.
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  };
  process.stdout.write = patched as typeof process.stdout.write;
  try {
    return { result: await fn(), ...out };
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
  /**
   * The job's token and where to use it: the cache REST API lists a key's entries across workflow runs (a
   * restore past refused entries) and deletes old ones (pruning). Without it, restore reaches only the
   * entries of the refused entry's own run, and nothing is pruned.
   */
  rest?: RestOptions;
  /** GITHUB_REF: pruning deletes only this ref's entries (other branches' entries are theirs). */
  ref?: string;
}

/** How many refused entries' successors one lookup asks for (the library's limit is 10 keys). */
const LOOKUP_KEYS = MAX_KEYS;

export class CacheStore implements Store {
  readonly kind = 'cache' as const;
  #lib: CacheModule | undefined;
  readonly #idleMs: number;
  readonly #o: CacheStoreOptions;

  constructor(o: CacheStoreOptions = {}) {
    this.#o = o;
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

  forbids(op: 'read' | 'write'): string | undefined {
    const mode = process.env.ACTIONS_CACHE_MODE;
    if (cacheModeAllows(mode, op)) return undefined;
    return `the runner set ACTIONS_CACHE_MODE=${mode}, which does not permit cache ${op === 'read' ? 'reads' : 'writes'}`;
  }

  /**
   * After a refusal: older entries under `prefix` not yet refused, newest first. The REST API lists the
   * key's entries of every workflow run (an explicit key outlives runs, and a newer run's entry may be the
   * refused one); without a token, or when the listing fails, only the refused entry's own run is reachable.
   */
  async #candidates(prefix: string, refused: ReadonlySet<string>): Promise<string[]> {
    if (this.#o.rest?.token) {
      try {
        const listed = await listCaches(this.#o.rest, prefix);
        const names = [...new Set(listed.map((c) => c.key))].filter(
          (k) => isEntryOf(prefix, k) && !refused.has(k),
        );
        return names.slice(0, LOOKUP_KEYS);
      } catch {
        // Listing is a way to reach further back, not a condition for restoring: fall back to the names.
      }
    }
    return olderKeys(prefix, refused);
  }

  async restore(prefix: string, dir: string, refused: ReadonlySet<string> = new Set()) {
    const cache = await this.#cache();
    if (!cache.isFeatureAvailable())
      throw new StoreError(
        'the cache service is not available to this job (no ACTIONS_RESULTS_URL / ACTIONS_CACHE_URL)',
      );
    // No entry is ever called exactly `prefix`, so [prefix] asks for "the newest entry whose key starts
    // with it"; after a refusal, the older candidates are asked for instead (in order: the first visible
    // one wins, so an entry of a branch this job cannot read is passed over).
    const [first, ...rest] = refused.size === 0 ? [prefix] : await this.#candidates(prefix, refused);
    if (first === undefined) return undefined;
    let w: Watched<string | undefined>;
    let timedOut: boolean;
    try {
      ({ result: w, timedOut } = await withIdleTimeout(this.#idleMs, () =>
        watchingWarnings(() => cache.restoreCache(this.#paths(dir), first, rest.length ? rest : [first])),
      ));
    } catch (err) {
      throw new StoreError(`cache restore failed: ${(err as Error).message}`, { cause: err });
    }
    const key = w.result;
    if (key === undefined && w.warnings.length > 0) {
      const why = `${w.warnings.join('; ')}${this.#silence(timedOut)}`;
      // Found, then lost on the way (cut, truncated, not extractable): the entries before it may be whole.
      if (w.hit !== undefined) throw new EntryUnusable(w.hit, `cache restore of ${w.hit} failed: ${why}`);
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
    const forbidden = this.forbids('write');
    if (forbidden) throw new StoreError(`cache save of ${name} skipped: ${forbidden}`);
    let w: Watched<number>;
    let timedOut: boolean;
    try {
      ({ result: w, timedOut } = await withIdleTimeout(this.#idleMs, () =>
        watchingWarnings(() => cache.saveCache(this.#paths(dir), name)),
      ));
    } catch (err) {
      throw new StoreError(`cache save of ${name} failed: ${(err as Error).message}`, { cause: err });
    }
    if (w.result !== -1) return;
    // saveCache returned -1: refused or failed. Its own words for a failed reservation are the same for every
    // cause, so the cause is named from its debug line.
    const said = [...w.warnings];
    if (w.reserveCause !== undefined) said.push(`the reservation failed: ${w.reserveCause}`);
    const why = `${said.length > 0 ? `: ${said.join('; ')}` : ''}${this.#silence(timedOut)}`;
    if (w.rateLimitSecs !== undefined || /\b429\b|RateLimitError/.test(w.reserveCause ?? ''))
      throw new StoreThrottled(`cache save of ${name} was throttled${why}`, (w.rateLimitSecs ?? 60) * 1000);
    throw new StoreError(`cache save of ${name} failed${why || ' (the library gave no reason)'}`);
  }

  async prune(prefix: string, keep: number): Promise<PruneOutcome> {
    const restOpts = this.#o.rest;
    if (!restOpts?.token) return { deleted: 0, kept: 0, denied: true };
    let listed: CacheListing[];
    try {
      listed = await listCaches(restOpts, prefix);
    } catch (err) {
      if (err instanceof RestError && err.denied) return { deleted: 0, kept: 0, denied: true };
      throw new StoreError(`listing the cache entries of ${prefix}* failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    // Only this ref's entries: another branch's entries of the same key are that branch's checkpoint.
    const mine = listed.filter(
      (c) => isEntryOf(prefix, c.key) && (this.#o.ref === undefined || c.ref === this.#o.ref),
    );
    const old = mine.slice(keep);
    let deleted = 0;
    for (const [i, c] of old.entries()) {
      try {
        await deleteCache(restOpts, c.id);
        deleted += 1;
      } catch (err) {
        if (err instanceof RestError && err.denied) return { deleted, kept: old.length - i, denied: true };
        throw new StoreError(`deleting the cache entry ${c.key} failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    return { deleted, kept: 0, denied: false };
  }

  #silence(timedOut: boolean): string {
    return timedOut
      ? ` (the cache service did not answer for ${Math.round(this.#idleMs / 1000)} s; the connection was given up)`
      : '';
  }
}
