// The `cache` store: the real @actions/cache, loaded only when used (it is most of the bundle's weight and
// the action's cold start matters). Entries are immutable, so every save gets a new key and restore asks for
// the newest key under the prefix.
import { relative } from 'node:path';
import { type Store, StoreError } from './store.js';

type CacheModule = typeof import('@actions/cache');

/**
 * @actions/cache never throws for service trouble: restoreCache warns and returns undefined (which reads like
 * a miss), saveCache logs and returns -1. To tell an outage from a miss, and to carry the reason into the job
 * summary, the `::warning` lines the library prints while it runs are collected (and still printed).
 */
async function watchingWarnings<T>(fn: () => Promise<T>): Promise<{ result: T; warnings: string[] }> {
  const warnings: string[] = [];
  const write = process.stdout.write;
  const patched = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
    for (const line of text.split('\n'))
      if (line.startsWith('::warning'))
        warnings.push(line.slice(line.indexOf('::', 2) + 2).replace(/%0A/g, ' '));
    // The rest are write's own optional arguments (encoding, callback), passed through untouched.
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  };
  process.stdout.write = patched as typeof process.stdout.write;
  try {
    return { result: await fn(), warnings };
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
    let warnings: string[];
    try {
      // No entry is ever called exactly `prefix`, so this is "the newest entry whose key starts with it".
      ({ result: key, warnings } = await watchingWarnings(() =>
        cache.restoreCache(this.#paths(dir), prefix, [prefix]),
      ));
    } catch (err) {
      throw new StoreError(`cache restore failed: ${(err as Error).message}`, { cause: err });
    }
    if (key === undefined && warnings.length > 0)
      throw new StoreError(`cache restore failed: ${warnings.join('; ')}`);
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
    let warnings: string[];
    try {
      ({ result: id, warnings } = await watchingWarnings(() => cache.saveCache(this.#paths(dir), name)));
    } catch (err) {
      throw new StoreError(`cache save of ${name} failed: ${(err as Error).message}`, { cause: err });
    }
    // saveCache logs its own reason (a warning, or only an info line for a throttled or refused reservation)
    // and returns -1 when the service refused or failed the save.
    if (id === -1)
      throw new StoreError(
        `cache save of ${name} failed${warnings.length > 0 ? `: ${warnings.join('; ')}` : ' (the service refused the entry; see the lines above)'}`,
      );
  }
}
