// Moves the checkpoint between the local directory and the store: restore at the start of main, saves
// while the run goes on and at its end, and post's save when main could not. Store trouble is a warning
// (collected for the job summary); the local checkpoint is never touched by a failed save or a refused bundle.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Checkpoint } from '../journal/checkpoint.js';
import { errorCode } from '../journal/fsutil.js';
import type { Plan } from '../plan/types.js';
import { BundleRejected, installPaths, installRun, packBundle, unpackBundle } from '../stores/bundle.js';
import { EntryUnusable, type Store, StoreError, StoreThrottled } from '../stores/store.js';
import { entryName, entryPrefix } from './keys.js';
import type { MainContext } from './main-run.js';
import { MemoryStateProvider, type StateProvider } from './state.js';

export interface SyncLog {
  info(message: string): void;
  warning(message: string): void;
  /** Advice that is neither trouble nor progress (how to let the action prune old entries). */
  notice?(message: string): void;
}

export interface SyncOptions {
  store: Store;
  key: string;
  root: string;
  runId: string;
  planName: string;
  /** The plan that will run: a restored checkpoint must fit it (post, which runs nothing, has none). */
  plan?: Plan;
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
  /** A self-hosted runner keeps its workspace between jobs, so the local copy is worth mentioning. */
  selfHosted?: boolean;
  /** Set on main's SIGINT: no new save starts, a throttled save does not wait. */
  signal?: AbortSignal;
  /** Entries of the key kept by pruning after a successful save; 0 turns pruning off. */
  keepEntries?: number;
}

/** What a job's messages can truthfully say about its checkpoint. */
export interface SaveStatus {
  /** The newest entry saved for this job (by this attempt or an earlier step of it), if any. */
  entry?: string;
  /** The last save holds the progress as it stands now. */
  upToDate: boolean;
}

export interface RestoreOutcome {
  /** Where the run's checkpoint came from. */
  source: 'store' | 'local' | 'none';
  entry?: string;
  ms: number;
  /** Entries fetched and refused (digest, signature, schema, key), newest first. */
  refused?: string[];
}

/**
 * Entries downloaded at most by one restore: the newest and, when it is refused, the ones before it. Counted
 * in entries, never in seconds: a damaged artifact takes @actions/artifact 5 tries 5 s apart to give up on,
 * and that must not read as an outage that throws the older entries' progress away.
 */
export const MAX_CANDIDATES = 3;
/** Entries of a key kept after a successful save: the newest, and one before it should it be damaged. */
export const KEEP_ENTRIES = 2;
/**
 * A throttled save waits for its `Retry-After` only this long; a longer wait is left to the next periodic
 * save (or post), so the end of main is not held up.
 */
const MAX_THROTTLE_WAIT_MS = 30_000;

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
  /** Mirrors of state values this process also writes (the state provider reads only what main left). */
  #savedEntry: string;
  #pruneNoticeSaid: boolean;

  constructor(o: SyncOptions) {
    this.#o = o;
    this.#seq = Number(o.state.get('save-seq')) || 0;
    const saved = o.state.get('saved-progress');
    this.#savedProgress = saved === '' ? -1 : Number(saved);
    this.#savedEntry = o.state.get('saved-entry');
    this.#pruneNoticeSaid = o.state.get('prune-notice') === 'said';
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
    const noWrites = store.forbids?.('write');
    if (noWrites)
      this.#warn(
        `${noWrites}: no checkpoint of this job will be saved, so a later attempt cannot resume it (the work still runs)`,
      );
    const noReads = store.forbids?.('read');
    if (noReads) {
      this.#warn(
        `${noReads}: no saved checkpoint can be restored, so this attempt does not resume; continuing from ${fallback}`,
      );
      return { source: otherwise(), ms: ms(), refused: [] };
    }
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
        let entry: string | undefined;
        try {
          entry = (await store.restore(entryPrefix(key), dir, refused))?.name;
        } catch (err) {
          // Found but not fetched whole (damaged, cut off): the entry before it may be fine. However long
          // the library took to give up, it is one of MAX_CANDIDATES tries.
          if (err instanceof EntryUnusable) {
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
              `no older saved checkpoint for key ${key} could be found in the ${store.kind} store; continuing from ${fallback}`,
            );
          return { source: otherwise(), ms: ms(), refused: [...refused] };
        }
        try {
          const unpacked = await unpackBundle(dir, stage, {
            planName: this.#o.planName,
            ...(this.#o.plan !== undefined ? { plan: this.#o.plan } : {}),
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

  /** The newest saved entry and whether it holds `progress`: what a final message may claim. */
  status(progress: number | undefined): SaveStatus {
    const entry = this.#savedEntry;
    return {
      ...(entry ? { entry } : {}),
      upToDate: entry !== '' && progress !== undefined && !this.changedSince(progress),
    };
  }

  /** Where the checkpoint stands, as the end of a sentence ("the checkpoint is …"). */
  whereText(progress: number | undefined): string {
    const { store } = this.#o;
    const local = this.#o.selfHosted
      ? `kept in ${this.#o.root} on this self-hosted runner`
      : 'not kept: the runner discards the workspace after the job';
    if (store.kind === 'none') return `${local} (\`store: none\`)`;
    const st = this.status(progress);
    if (st.upToDate) return `saved as ${st.entry} in the ${store.kind} store`;
    if (st.entry) return `saved as ${st.entry} in the ${store.kind} store, without the latest progress`;
    return `not saved in the ${store.kind} store${this.#o.selfHosted ? `; it is ${local}` : ''}`;
  }

  /**
   * Saves the run's checkpoint as a new entry if its progress (event sequence) moved on since the last
   * save (`force`: a side file such as the continuation count changed). Saves run one at a time. Returns
   * false when nothing was saved (unchanged, forbidden, or the store failed).
   */
  save(progress: number, why: string, force = false): Promise<boolean> {
    const next = this.#chain.then(() => this.#save(progress, why, force));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** What a failed save leaves, said after its reason. */
  #lostText(): string {
    const entry = this.#savedEntry;
    const local = this.#o.selfHosted ? `; the local copy in ${this.#o.root} stays on this runner` : '';
    return entry
      ? `the newest saved checkpoint is still ${entry}${local}`
      : `no checkpoint of this job is saved yet${local}`;
  }

  #forbiddenSaid = false;

  async #save(progress: number, why: string, force: boolean): Promise<boolean> {
    const { store } = this.#o;
    if (store.kind === 'none' || (!force && !this.changedSince(progress))) return false;
    if (this.#o.signal?.aborted) return false;
    const forbidden = store.forbids?.('write');
    if (forbidden) {
      // Said once per step (restore said it already in main): every periodic save would repeat it.
      if (!this.#forbiddenSaid) this.#o.log.info(`not saved (${why}): ${forbidden}`);
      this.#forbiddenSaid = true;
      return false;
    }
    const t0 = performance.now();
    const dir = bundleDir(this.#o.workspace);
    this.#seq += 1;
    this.#o.state.set('save-seq', String(this.#seq));
    let name = entryName(this.#o.key, this.#o.ghRunId, this.#o.attempt, this.#seq);
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
      try {
        await store.save(name, dir);
      } catch (err) {
        if (!(err instanceof StoreThrottled) || err.retryAfterMs > MAX_THROTTLE_WAIT_MS) throw err;
        // Throttled (429): once more after the wait the service asked for, under a new name (the throttled
        // request may have reserved the first one).
        this.#o.log.info(`${err.message}; trying again in ${Math.ceil(err.retryAfterMs / 1000)} s`);
        await abortableSleep(err.retryAfterMs, this.#o.signal);
        if (this.#o.signal?.aborted) throw err;
        this.#seq += 1;
        this.#o.state.set('save-seq', String(this.#seq));
        name = entryName(this.#o.key, this.#o.ghRunId, this.#o.attempt, this.#seq);
        await store.save(name, dir);
      }
    } catch (err) {
      if (err instanceof StoreError) {
        this.#warn(`not saved (${why}): ${err.message}; ${this.#lostText()}`);
        return false;
      }
      // A run folder that vanished mid-pack (another process pruned it) is a failed save, not a crash.
      if (errorCode(err) === 'ENOENT') {
        this.#warn(
          `not saved (${why}): could not pack the checkpoint for ${name}: ${(err as Error).message}; ${this.#lostText()}`,
        );
        return false;
      }
      throw err;
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    this.#savedProgress = progress;
    this.#o.state.set('saved-progress', String(progress));
    this.#savedEntry = name;
    this.#o.state.set('saved-entry', name);
    this.#lastSaveMs = Math.round(performance.now() - t0);
    this.#o.log.info(`saved checkpoint as ${name} (${why}, ${this.#lastSaveMs} ms)`);
    await this.#prune();
    return true;
  }

  /**
   * Entries are immutable, so every save is a new one; left alone, a long job's entries crowd the
   * repository's cache quota and evict its other caches. Older ones beyond the newest few are deleted when
   * the token may; otherwise one notice per job says how to allow it. Never fails a save.
   */
  async #prune(): Promise<void> {
    const keep = this.#o.keepEntries ?? KEEP_ENTRIES;
    const { store } = this.#o;
    if (keep <= 0 || !store.prune || this.#o.signal?.aborted) return;
    try {
      const r = await store.prune(entryPrefix(this.#o.key), keep);
      if (r.deleted > 0)
        this.#o.log.info(
          `deleted ${r.deleted} older entr${r.deleted === 1 ? 'y' : 'ies'} of key ${this.#o.key}`,
        );
      if (r.denied && !this.#pruneNoticeSaid) {
        this.#pruneNoticeSaid = true;
        this.#o.state.set('prune-notice', 'said');
        (this.#o.log.notice ?? this.#o.log.info)(
          `older checkpoint entries of key ${this.#o.key} are kept: the token may not delete them; add \`permissions: actions: write\` to the job (and keep \`github-token\` at its default) to let the action keep only the newest ${keep}`,
        );
      }
    } catch (err) {
      this.#o.log.info(`older entries of key ${this.#o.key} were not pruned: ${(err as Error).message}`);
    }
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', done);
      clearTimeout(t);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A CheckpointSync for one key of the campaign (a shard's, the merge's), with a state of its own: its save
 * sequence and saved entry are not those of the job's own run.
 */
export function keySync(
  ctx: Pick<MainContext, 'root' | 'plan' | 'cfg' | 'inputs'>,
  store: Store,
  key: string,
  log: { info(message: string): void; warning(message: string): void },
  opts: { runOnly?: boolean; plan?: Plan } = {},
): CheckpointSync {
  return new CheckpointSync({
    store,
    key,
    root: ctx.root,
    runId: key,
    planName: ctx.plan.name,
    ...(opts.plan ? { plan: opts.plan } : {}),
    workspace: ctx.cfg.workspace,
    temp: ctx.cfg.temp,
    paths: [],
    ...(opts.runOnly ? { runOnly: true } : {}),
    ...(ctx.inputs.signingKey !== undefined ? { signingKey: ctx.inputs.signingKey } : {}),
    ghRunId: ctx.cfg.runId,
    attempt: ctx.cfg.runAttempt,
    state: new MemoryStateProvider(),
    log,
  });
}
