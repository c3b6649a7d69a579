// CheckpointSync against stores that answer the way the real ones do when things go wrong: damaged entries
// that take long to give up on, runner modes that forbid reads or writes, failed and throttled saves, and
// pruning with and without the permission. The checkpoints are real (written by the real CLI).
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStateProvider } from '../../src/action/state.js';
import { CheckpointSync } from '../../src/action/sync.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { CacheStore } from '../../src/stores/cache.js';
import {
  EntryUnusable,
  type PruneOutcome,
  type Store,
  StoreError,
  StoreThrottled,
} from '../../src/stores/store.js';
import { runCli, useProjects } from '../support/cli.js';
import { setEnv } from '../support/services/index.js';

const PLAN = `version: 1
name: synced
steps:
  - id: a
    run: "true"
    batch: { range: { from: 0, to: 6 }, size: 2, parallel: 2 }
`;

const project = useProjects();

/** A finished run under the key `k` (the run folder is named after the key, as the action names it). */
async function finishedRun() {
  const p = await project(PLAN);
  const r = await runCli(['run', '--run', 'k'], { cwd: p.dir });
  expect(r.code, r.stderr).toBe(0);
  const root = join(p.dir, '.checkpoints');
  return { dir: p.dir, root, seq: (await Checkpoint.read(root, 'k')).state.seq };
}

interface Logged {
  info: string[];
  warning: string[];
  notice: string[];
}

function syncFor(store: Store, dir: string, root: string, state = new MemoryStateProvider()) {
  const log: Logged = { info: [], warning: [], notice: [] };
  const sync = new CheckpointSync({
    store,
    key: 'k',
    root,
    runId: 'k',
    planName: 'synced',
    workspace: dir,
    temp: join(dir, 'temp'),
    paths: [],
    ghRunId: 7,
    attempt: 1,
    state,
    log: {
      info: (m) => log.info.push(m),
      warning: (m) => log.warning.push(m),
      notice: (m) => log.notice.push(m),
    },
  });
  return { sync, log, state };
}

/** A store that keeps bundles in a folder, with hooks to make its answers go wrong. */
class FolderStore implements Store {
  readonly kind = 'artifact' as const;
  readonly saved: string[] = [];
  readonly restores: string[][] = [];
  readonly dir: string;
  readonly hooks: {
    damaged?: Set<string>;
    save?: (name: string) => void;
    prune?: () => PruneOutcome;
  };
  constructor(dir: string, hooks: FolderStore['hooks'] = {}) {
    this.dir = dir;
    this.hooks = hooks;
  }
  async restore(_prefix: string, dest: string, refused: ReadonlySet<string> = new Set()) {
    this.restores.push([...refused]);
    const name = [...this.saved].reverse().find((n) => !refused.has(n));
    if (!name) return undefined;
    if (this.hooks.damaged?.has(name))
      throw new EntryUnusable(name, `artifact download of ${name} failed: bad zip`);
    await cp(join(this.dir, name), dest, { recursive: true });
    return { name };
  }
  async save(name: string, src: string) {
    this.hooks.save?.(name);
    await cp(src, join(this.dir, name), { recursive: true });
    this.saved.push(name);
  }
  async prune(): Promise<PruneOutcome> {
    return this.hooks.prune?.() ?? { deleted: 0, kept: 0, denied: false };
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('restore over damaged entries', () => {
  it('counts entries, not seconds: two damaged entries that each took the library 25 s are passed over', async () => {
    const run = await finishedRun();
    const storeDir = await mkdtemp(join(tmpdir(), 'folder-store-'));
    const store = new FolderStore(storeDir);
    const first = syncFor(store, run.dir, run.root);
    expect(await first.sync.save(run.seq, 'test')).toBe(true);
    // Two newer entries that cannot be fetched whole.
    store.saved.push('checkpoint-v1-k-7-1-8', 'checkpoint-v1-k-7-1-9');
    store.hooks.damaged = new Set(['checkpoint-v1-k-7-1-8', 'checkpoint-v1-k-7-1-9']);
    // Every clock reading 25 s after the one before: each failed download "took" 25 s, as a damaged artifact
    // takes @actions/artifact (5 tries, 5 s apart) to give up on.
    let t = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => (t += 25_000));
    const fresh = await mkdtemp(join(tmpdir(), 'fresh-ws-'));
    const second = syncFor(store, fresh, join(fresh, '.checkpoints'));
    const r = await second.sync.restore();
    expect(r.source).toBe('store');
    expect(r.entry).toBe(store.saved[0]);
    expect(r.refused).toEqual(['checkpoint-v1-k-7-1-9', 'checkpoint-v1-k-7-1-8']);
    expect(second.log.warning.join('\n')).toMatch(/bad zip; trying the entry before it/);
    expect((await Checkpoint.read(join(fresh, '.checkpoints'), 'k')).state.seq).toBe(run.seq);
  });
});

describe('ACTIONS_CACHE_MODE', () => {
  it.each([
    [
      'write-only',
      /does not permit cache reads: no saved checkpoint can be restored, so this attempt does not resume/,
    ],
    [
      'none',
      /does not permit cache reads: no saved checkpoint can be restored, so this attempt does not resume/,
    ],
    [
      'read',
      /does not permit cache writes: no checkpoint of this job will be saved, so a later attempt cannot resume it/,
    ],
  ])('%s is a warning that says what follows', async (mode, said) => {
    const run = await finishedRun();
    const restoreEnv = setEnv({ ACTIONS_CACHE_MODE: mode });
    try {
      const { sync, log } = syncFor(new CacheStore(), run.dir, run.root);
      await sync.restore();
      expect(log.warning.join('\n')).toMatch(said);
      if (mode !== 'write-only') {
        expect(await sync.save(run.seq + 1, 'test')).toBe(false);
      }
    } finally {
      restoreEnv();
    }
  });
});

describe('what a save says', () => {
  it('a failed save says what is saved instead, never that the checkpoint is safe locally', async () => {
    const run = await finishedRun();
    const storeDir = await mkdtemp(join(tmpdir(), 'folder-store-'));
    let fail = true;
    const store = new FolderStore(storeDir, {
      save: () => {
        if (fail) throw new StoreError('cache save of X failed: HTTP 500');
      },
    });
    const { sync, log } = syncFor(store, run.dir, run.root);
    expect(await sync.save(run.seq, 'every 300s')).toBe(false);
    expect(log.warning.at(-1)).toMatch(
      /^not saved \(every 300s\): cache save of X failed: HTTP 500; no checkpoint of this job is saved yet$/,
    );
    expect(sync.whereText(run.seq)).toBe('not saved in the artifact store');
    fail = false;
    expect(await sync.save(run.seq, 'every 300s')).toBe(true);
    expect(sync.whereText(run.seq)).toMatch(/^saved as checkpoint-v1-k-7-1-\d+ in the artifact store$/);
    fail = true;
    expect(await sync.save(run.seq + 1, 'end of main')).toBe(false);
    expect(log.warning.at(-1)).toMatch(/the newest saved checkpoint is still checkpoint-v1-k-7-1-\d+$/);
    expect(sync.whereText(run.seq + 1)).toMatch(/without the latest progress/);
    expect([...log.warning, ...log.info].join('\n')).not.toMatch(/safe in the local directory/);
  });

  it('a throttled save is tried again after its Retry-After, under a new name', async () => {
    const run = await finishedRun();
    const storeDir = await mkdtemp(join(tmpdir(), 'folder-store-'));
    const tried: string[] = [];
    const store = new FolderStore(storeDir, {
      save: (name) => {
        tried.push(name);
        if (tried.length === 1) throw new StoreThrottled(`cache save of ${name} was throttled`, 200);
      },
    });
    const { sync } = syncFor(store, run.dir, run.root);
    const t0 = Date.now();
    expect(await sync.save(run.seq, 'test')).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(tried).toEqual(['checkpoint-v1-k-7-1-1', 'checkpoint-v1-k-7-1-2']);
    expect(store.saved).toEqual(['checkpoint-v1-k-7-1-2']);
  });
});

describe('pruning', () => {
  it('runs after each successful save; without the permission one notice says how to allow it', async () => {
    const run = await finishedRun();
    const storeDir = await mkdtemp(join(tmpdir(), 'folder-store-'));
    let prunes = 0;
    const store = new FolderStore(storeDir, {
      prune: () => {
        prunes += 1;
        return { deleted: 0, kept: 3, denied: true };
      },
    });
    const state = new MemoryStateProvider();
    const { sync, log } = syncFor(store, run.dir, run.root, state);
    await sync.save(run.seq, 'a');
    await sync.save(run.seq + 1, 'b', true);
    expect(prunes).toBe(2);
    expect(log.notice).toHaveLength(1);
    expect(log.notice[0]).toMatch(/add `permissions: actions: write` to the job/);
    // post is another process: the notice given in main is not given again.
    const post = syncFor(store, run.dir, run.root, state);
    await post.sync.save(run.seq + 2, 'post', true);
    expect(post.log.notice).toEqual([]);
  });

  it('a store that cannot prune does not fail the save', async () => {
    const run = await finishedRun();
    const storeDir = await mkdtemp(join(tmpdir(), 'folder-store-'));
    const store = new FolderStore(storeDir, {
      prune: () => {
        throw new StoreError('listing failed: HTTP 500');
      },
    });
    const { sync, log } = syncFor(store, run.dir, run.root);
    expect(await sync.save(run.seq, 'a')).toBe(true);
    expect(log.info.join('\n')).toMatch(/were not pruned: listing failed: HTTP 500/);
  });
});
