// Moves the checkpoint between the local directory and the store: restore at the start of main, saves
// while the run goes on and at its end, and post's save when main could not. Store trouble is a warning
// (collected for the job summary); the local checkpoint is never touched by a failed save or a refused bundle.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Checkpoint } from '../journal/checkpoint.js';
import { errorCode } from '../journal/fsutil.js';
import { BundleRejected, installPaths, installRun, packBundle, unpackBundle } from '../stores/bundle.js';
import { EntryUnusable, type Store, StoreError } from '../stores/store.js';
import { entryName, entryPrefix } from './keys.js';
import type { StateProvider } from './state.js';

export interface SyncLog {
  info(message: string): void;
  warning(message: string): void;
}

export interface SyncOptions {
  store: Store;
  key: string;
  root: string;
  runId: string;
  planName: string;
  workspace: string;
  temp: string;
  paths: string[];
  /** Restore the run folder only, not the `paths` a bundle carries (`command: report` gathering shards). */
  runOnly?: boolean;
  signingKey?: string;
  ghRunId: number;
  attempt: number;
  state: StateProvider;
  log: SyncLog;
}

export interface RestoreOutcome {
  /** Where the run's checkpoint came from. */
  source: 'store' | 'local' | 'none';
  entry?: string;
  ms: number;
  /** Entries fetched and refused (digest, signature, schema, key), newest first. */
  refused?: string[];
}

/** Entries downloaded at most by one restore: the newest and, when it is refused, the ones before it. */
export const MAX_CANDIDATES = 3;
/** A failed download that took longer than this is not followed by downloads of older entries. */
const SLOW_FAILURE_MS = 20_000;

/** The bundle folder, relative to the workspace the same way every time (the cache hashes the path). */
export function bundleDir(workspace: string): string {
  return join(workspace, '.checkpoint-action', 'bundle');
}

export class CheckpointSync {
  readonly #o: SyncOptions;
  readonly warnings: string[] = [];
  #seq: number;
  #savedProgress: number;
  #chain: Promise<unknown> = Promise.resolve();
  #lastSaveMs: number | undefined;

  constructor(o: SyncOptions) {
    this.#o = o;
    this.#seq = Number(o.state.get('save-seq')) || 0;
    const saved = o.state.get('saved-progress');
    this.#savedProgress = saved === '' ? -1 : Number(saved);
  }

  get lastSaveMs(): number | undefined {
    return this.#lastSaveMs;
  }

  #warn(message: string): void {
    this.warnings.push(message);
    this.#o.log.warning(message);
  }

  async #localSeq(): Promise<number | undefined> {
    try {
      if (!(await Checkpoint.exists(this.#o.root, this.#o.runId))) return undefined;
      return (await Checkpoint.read(this.#o.root, this.#o.runId)).state.seq;
    } catch {
      // A local copy that cannot be read loses to any valid restored one.
      return -1;
    }
  }

  /**
   * Fetches the newest entry for the key and installs it unless the local copy is as new or newer. An entry
   * that fails its checks (digest, signature, schema, key) or that the store found but could not fetch whole
   * is refused and the one before it is tried, up to MAX_CANDIDATES downloads: one bad entry, damaged or
   * planted, does not throw away the progress that the entries before it carry.
   */
  async restore(): Promise<RestoreOutcome> {
    const t0 = performance.now();
    const { store, key } = this.#o;
    const local = await this.#localSeq();
    const ms = () => Math.round(performance.now() - t0);
    const fallback = local === undefined ? 'a fresh start' : 'the local checkpoint';
    const otherwise = (): RestoreOutcome['source'] => (local === undefined ? 'none' : 'local');
    if (store.kind === 'none') return { source: otherwise(), ms: ms(), refused: [] };
    const dir = bundleDir(this.#o.workspace);
    const stage = join(this.#o.temp, 'checkpoint-action', 'unpack');
    const refused = new Set<string>();
    const refuse = (entry: string, why: string, tries: number) => {
      refused.add(entry);
      this.#warn(
        `${why}; ${tries < MAX_CANDIDATES ? 'trying the entry before it' : `continuing from ${fallback}`}`,
      );
    };
    try {
      for (let tries = 1; tries <= MAX_CANDIDATES; tries++) {
        // A refused entry's files must not mix with the next one's.
        await rm(dir, { recursive: true, force: true });
        const tryStart = performance.now();
        let entry: string | undefined;
        try {
          entry = (await store.restore(entryPrefix(key), dir, refused))?.name;
        } catch (err) {
          // A download that failed after the libraries' long retries (a blob service outage, ~25 s to
          // minutes) would fail the same way for the older entries: only a quick failure is worth them.
          if (err instanceof EntryUnusable && performance.now() - tryStart < SLOW_FAILURE_MS) {
            refuse(err.entry, err.message, tries);
            continue;
          }
          if (!(err instanceof StoreError)) throw err;
          this.#warn(`${err.message}; continuing from ${fallback}`);
          return { source: otherwise(), ms: ms(), refused: [...refused] };
        }
        if (entry === undefined) {
          if (refused.size === 0)
            this.#o.log.info(`no saved checkpoint for key ${key} in the ${store.kind} store`);
          else
            this.#warn(
              `no older saved checkpoint for key ${key} could be found; continuing from ${fallback}`,
            );
          return { source: otherwise(), ms: ms(), refused: [...refused] };
        }
        try {
          const unpacked = await unpackBundle(dir, stage, {
            planName: this.#o.planName,
            ...(this.#o.signingKey !== undefined ? { signingKey: this.#o.signingKey } : {}),
          });
          if (unpacked.manifest.key !== key || unpacked.manifest.runId !== this.#o.runId)
            throw new BundleRejected(
              `it was saved for key "${unpacked.manifest.key}", not "${key}" (one key is a prefix of the other; choose keys that are not)`,
            );
          if (local !== undefined && local >= unpacked.checkpoint.state.seq) {
            this.#o.log.info(`the local checkpoint is as new as ${entry} or newer; keeping it`);
            return { source: 'local', entry, ms: ms(), refused: [...refused] };
          }
          // Paths first: they can still refuse the bundle (a link in the workspace), and a refusal must
          // leave the local checkpoint as it was.
          const placed = this.#o.runOnly ? [] : await installPaths(unpacked, this.#o.workspace);
          await installRun(unpacked, this.#o.root);
          this.#o.log.info(
            `restored ${entry} (${unpacked.manifest.files} files${placed.length ? `, ${placed.length} from \`paths\`` : ''})`,
          );
          return { source: 'store', entry, ms: ms(), refused: [...refused] };
        } catch (err) {
          if (!(err instanceof BundleRejected)) throw err;
          refuse(entry, `the saved checkpoint ${entry} was refused: ${err.message}`, tries);
        }
      }
      return { source: otherwise(), ms: ms(), refused: [...refused] };
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      await rm(stage, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** True when the checkpoint moved on since the last successful save. */
  changedSince(progress: number): boolean {
    return progress !== this.#savedProgress;
  }

  /**
   * Saves the run's checkpoint as a new entry if its progress (event sequence) moved on since the last
   * save (`force`: a side file such as the continuation count changed). Saves run one at a time. Returns false when nothing was saved (unchanged, or the store failed).
   */
  save(progress: number, why: string, force = false): Promise<boolean> {
    const next = this.#chain.then(() => this.#save(progress, why, force));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #save(progress: number, why: string, force: boolean): Promise<boolean> {
    const { store } = this.#o;
    if (store.kind === 'none' || (!force && !this.changedSince(progress))) return false;
    const t0 = performance.now();
    const dir = bundleDir(this.#o.workspace);
    this.#seq += 1;
    this.#o.state.set('save-seq', String(this.#seq));
    const name = entryName(this.#o.key, this.#o.ghRunId, this.#o.attempt, this.#seq);
    try {
      await packBundle(dir, {
        root: this.#o.root,
        runId: this.#o.runId,
        planName: this.#o.planName,
        seq: progress,
        key: this.#o.key,
        paths: this.#o.paths,
        workspace: this.#o.workspace,
        ...(this.#o.signingKey !== undefined ? { signingKey: this.#o.signingKey } : {}),
      });
      await store.save(name, dir);
    } catch (err) {
      if (err instanceof StoreError) {
        this.#warn(`${err.message} (${why}); the checkpoint is safe in the local directory`);
        return false;
      }
      // A run folder that vanished mid-pack (another process pruned it) is a failed save, not a crash.
      if (errorCode(err) === 'ENOENT') {
        this.#warn(`could not pack the checkpoint for ${name} (${why}): ${(err as Error).message}`);
        return false;
      }
      throw err;
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    this.#savedProgress = progress;
    this.#o.state.set('saved-progress', String(progress));
    this.#lastSaveMs = Math.round(performance.now() - t0);
    this.#o.log.info(`saved checkpoint as ${name} (${why}, ${this.#lastSaveMs} ms)`);
    return true;
  }
}
