// The `cache` store: the real @actions/cache, loaded only when used (it is most of the bundle's weight and
// the action's cold start matters). Entries are immutable, so every save gets a new key and restore asks for
// the newest key under the prefix.
import { relative } from 'node:path';
import { type Store, StoreError } from './store.js';

type CacheModule = typeof import('@actions/cache');

/**
 * @actions/cache reports a 5xx during save as `core.error`, an error annotation on the job. For us a cache
 * outage is a warning (the checkpoint is safe on disk, the work succeeded), so while the library runs its
 * `::error` workflow commands are passed on as `::warning`.
 */
async function withErrorsAsWarnings<T>(fn: () => Promise<T>): Promise<T> {
  const write = process.stdout.write;
  const patched = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    const text =
      typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : undefined;
    const out = text?.startsWith('::error') ? `::warning${text.slice('::error'.length)}` : chunk;
    // The rest are write's own optional arguments (encoding, callback), passed through untouched.
    return (write as (...a: unknown[]) => boolean).call(this, out, ...rest);
  };
  process.stdout.write = patched as typeof process.stdout.write;
  try {
    return await fn();
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

export class CacheStore implements Store {
  readonly kind = 'cache' as const;
  #lib: CacheModule | undefined;

  async #cache(): Promise<CacheModule> {
    this.#lib ??= await import('@actions/cache');
    return this.#lib;
  }

  /** The library hashes the path strings into the entry's version, so they must read the same every time. */
  #paths(dir: string): string[] {
    return [relative(process.cwd(), dir) || '.'];
  }

  async restore(prefix: string, dir: string) {
    const cache = await this.#cache();
    if (!cache.isFeatureAvailable())
      throw new StoreError(
        'the cache service is not available to this job (no ACTIONS_RESULTS_URL / ACTIONS_CACHE_URL)',
      );
    let key: string | undefined;
    try {
      // No entry is ever called exactly `prefix`, so this is "the newest entry whose key starts with it".
      key = await withErrorsAsWarnings(() => cache.restoreCache(this.#paths(dir), prefix, [prefix]));
    } catch (err) {
      throw new StoreError(`cache restore failed: ${(err as Error).message}`, { cause: err });
    }
    return key === undefined ? undefined : { name: key };
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
    try {
      id = await withErrorsAsWarnings(() => cache.saveCache(this.#paths(dir), name));
    } catch (err) {
      throw new StoreError(`cache save of ${name} failed: ${(err as Error).message}`, { cause: err });
    }
    // saveCache logs its own reason and returns -1 when the service refused or failed the save.
    if (id === -1) throw new StoreError(`cache save of ${name} failed (see the message above)`);
  }
}
