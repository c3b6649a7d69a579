// Where checkpoint bundles live between attempts. The action only ever asks a Store for the newest bundle
// under a key prefix and to keep a new one; how and where is the store's business.
import { CheckpointError, EXIT_FAILED } from '../errors.js';

export type StoreKind = 'cache' | 'artifact' | 'none';

export interface RestoredEntry {
  /** The entry's name in the store (cache key or artifact name). */
  name: string;
}

export interface Store {
  readonly kind: StoreKind;
  /**
   * Fetches the newest bundle whose name starts with `prefix` into `dir` (a bundle folder, see bundle.ts);
   * undefined when there is none. `refused` names entries already fetched and found unusable: the newest
   * entry older than those is fetched instead (undefined when the store cannot find one). Throws StoreError
   * when the store could not be asked.
   */
  restore(prefix: string, dir: string, refused?: ReadonlySet<string>): Promise<RestoredEntry | undefined>;
  /** Keeps the bundle in `dir` as a new, immutable entry called `name`. Throws StoreError on failure. */
  save(name: string, dir: string): Promise<void>;
  /**
   * Why the runner forbids this job to read or write the store (ACTIONS_CACHE_MODE), as a sentence; undefined
   * when it may.
   */
  forbids?(op: 'read' | 'write'): string | undefined;
  /**
   * Deletes the entries under `prefix` older than the newest `keep`. `denied` when the token may not delete
   * (the caller says once how to allow it). Throws StoreError when the store could not be asked.
   */
  prune?(prefix: string, keep: number): Promise<PruneOutcome>;
}

export interface PruneOutcome {
  deleted: number;
  /** Entries left that the token may not delete (0 unless `denied`). */
  kept: number;
  denied: boolean;
}

/** `name` is one of the entries `<prefix><run_id>-<attempt>-<seq>`, not of a key that merely starts alike. */
export function isEntryOf(prefix: string, name: string): boolean {
  return name.startsWith(prefix) && /^\d+-\d+-\d+$/.test(name.slice(prefix.length));
}

/**
 * A store that could not do what was asked: an outage, a refused write, a throttled request. Never fatal:
 * the local checkpoint is intact, and the job's result is decided by its work, so callers log a warning.
 */
export class StoreError extends CheckpointError {
  override name = 'StoreError';
  readonly exitCode = EXIT_FAILED;
}

/** The store asked to be left alone for a while (HTTP 429 with `Retry-After`). */
export class StoreThrottled extends StoreError {
  override name = 'StoreThrottled';
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: ErrorOptions) {
    super(message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The store found the entry but could not fetch it whole (the download broke off, came back truncated or
 * would not unpack). Unlike other StoreErrors the store was reachable, so the entries before it are worth
 * trying; `entry` is the one to pass over.
 */
export class EntryUnusable extends StoreError {
  override name = 'EntryUnusable';
  readonly entry: string;
  constructor(entry: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.entry = entry;
  }
}

/** The local directory only: on a self-hosted runner with a persistent workspace it is the checkpoint. */
export class NoStore implements Store {
  readonly kind = 'none' as const;
  async restore(): Promise<undefined> {
    return undefined;
  }
  async save(): Promise<void> {}
}
