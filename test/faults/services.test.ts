// Campaign `services` (docs/reliability.md): the cache and artifact services misbehave while the action saves
// and restores — 500 (retried ~30 s by the libraries), connection reset, 429, silence (no answer at all), a
// connection cut in the middle of the upload or download, a download that ends short — and bad entries sit
// in the store (damaged inside a well-formed archive, damaged in storage). The action's own CheckpointSync,
// with the real @actions/cache / @actions/artifact behind CacheStore / ArtifactStore, runs in-process the way
// bench/action.mjs runs it (runner environment on process.env, working directory = GITHUB_WORKSPACE); one
// scenario runs the built action (dist/main, dist/post) as the runner does.
//
// What must hold, counted in the figures: a save never throws out of CheckpointSync.save and never fails a
// job whose work succeeded (a warning instead); the local checkpoint is byte-for-byte what it was; and the
// next restore installs the last GOOD entry — never a damaged one, never a partial one.
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryName } from '../../src/action/keys.js';
import { MemoryStateProvider } from '../../src/action/state.js';
import { bundleDir, CheckpointSync, type RestoreOutcome } from '../../src/action/sync.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { ArtifactStore } from '../../src/stores/artifact.js';
import { ARCHIVE, packBundle } from '../../src/stores/bundle.js';
import { CacheStore } from '../../src/stores/cache.js';
import type { Store } from '../../src/stores/store.js';
import { runCli } from '../support/cli.js';
import { Job } from '../support/runner.js';
import { snapshotTree } from '../support/services/fixtures.js';
import {
  type FaultMode,
  type Services,
  setEnv,
  startServices,
  withCoreLog,
} from '../support/services/index.js';
import { recordFigures } from './figures.js';

const KEY = 'svc-campaign';
const PLAN_NAME = 'services-campaign';
const RUN = 4242;
const STEPS = 12;
// Independent steps, so `--only sN` moves the checkpoint on by one step per call.
const PLAN = `version: 1
name: ${PLAN_NAME}
steps:
${Array.from({ length: STEPS }, (_, i) => `  - { id: s${i + 1}, run: "echo s${i + 1} > \\"$CHECKPOINT_STATE_DIR/out\\"", needs: [] }`).join('\n')}
`;
/** Short enough to keep the campaign fast, used only where the service is made to hang. */
const SHORT_IDLE_MS = 1_000;

interface Ws {
  dir: string;
  root: string;
  temp: string;
}

interface Log {
  infos: string[];
  warnings: string[];
}

const figures = {
  faults: 0,
  savesThatFailedTheRun: 0,
  localCheckpointsLost: 0,
  badEntriesAccepted: 0,
  fellBackToOlder: 0,
};

let services: Services;
let base: string;
let cwd0: string;
let restoreEnv: () => void;
let wsCount = 0;

async function workspace(withPlan = true): Promise<Ws> {
  const dir = join(base, `ws${++wsCount}`);
  await mkdir(dir, { recursive: true });
  if (withPlan) await writeFile(join(dir, 'checkpoint.yml'), PLAN);
  return { dir, root: join(dir, '.checkpoints'), temp: join(base, `temp${wsCount}`) };
}

/** The working directory and GITHUB_WORKSPACE of "this job": @actions/cache resolves and archives from there. */
function enter(ws: Ws): void {
  process.chdir(ws.dir);
  process.env.GITHUB_WORKSPACE = ws.dir;
}

function artifactStore(idleTimeoutMs?: number): ArtifactStore {
  return new ArtifactStore({
    token: services.githubToken,
    repository: services.repository.full,
    runId: RUN,
    scope: 'run',
    apiUrl: services.apiUrl,
    ...(idleTimeoutMs ? { idleTimeoutMs } : {}),
  });
}

function syncFor(ws: Ws, store: Store, attempt: number, state = new MemoryStateProvider()) {
  const log: Log = { infos: [], warnings: [] };
  const sync = new CheckpointSync({
    store,
    key: KEY,
    root: ws.root,
    runId: KEY,
    planName: PLAN_NAME,
    workspace: ws.dir,
    temp: ws.temp,
    paths: [],
    ghRunId: RUN,
    attempt,
    state,
    log: { info: (m) => log.infos.push(m), warning: (m) => log.warnings.push(m) },
  });
  return { sync, log, state };
}

/** One more step done in the workspace's checkpoint, by the real CLI; returns the checkpoint's progress. */
async function advance(ws: Ws, step: number): Promise<number> {
  const r = await runCli(['run', '--run', KEY, '--only', `s${step}`], { cwd: ws.dir });
  expect(r.code, r.stderr).toBe(0);
  return (await Checkpoint.read(ws.root, KEY)).state.seq;
}

function savedName(log: Log): string {
  const line = [...log.infos].reverse().find((l) => l.startsWith('saved checkpoint as '));
  if (!line) throw new Error(`no save in the log:\n${log.infos.join('\n')}\n${log.warnings.join('\n')}`);
  return (line.split(' ')[3] ?? '').trim();
}

/** A side that keeps saving one run's checkpoint (one attempt), remembering its last good entry. */
class Saver {
  readonly ws: Ws;
  readonly state = new MemoryStateProvider();
  readonly kind: 'cache' | 'artifact';
  #step = 0;
  good: { seq: number; entry: string } | undefined;

  constructor(ws: Ws, kind: 'cache' | 'artifact') {
    this.ws = ws;
    this.kind = kind;
  }

  store(idleTimeoutMs?: number): Store {
    if (this.kind === 'artifact') return artifactStore(idleTimeoutMs);
    return new CacheStore(idleTimeoutMs ? { idleTimeoutMs } : {});
  }

  /** A sync over the same state, so entry names keep counting up across stores with other timeouts. */
  sync(idleTimeoutMs?: number) {
    return syncFor(this.ws, this.store(idleTimeoutMs), 1, this.state);
  }

  async advance(): Promise<number> {
    this.#step += 1;
    return advance(this.ws, this.#step);
  }

  async saveGood(): Promise<void> {
    const seq = await this.advance();
    const { sync, log } = this.sync();
    const { result: ok } = await withCoreLog(() => sync.save(seq, 'good save'));
    expect(ok, log.warnings.join('\n')).toBe(true);
    this.good = { seq, entry: savedName(log) };
  }

  /** A save while the service misbehaves (`inject` sets the fault, the returned function clears it). */
  /** `capture: false` when the caller already captures stdout (captures must not overlap). */
  async faultySave(
    what: string,
    inject: () => () => void,
    o: { idleTimeoutMs?: number; capture?: boolean } = {},
  ): Promise<void> {
    const seq = await this.advance();
    const before = await snapshotTree(this.ws.root);
    const { sync, log } = this.sync(o.idleTimeoutMs);
    const clear = inject();
    figures.faults += 1;
    let ok: boolean | undefined;
    try {
      ok =
        o.capture === false
          ? await sync.save(seq, what)
          : (await withCoreLog(() => sync.save(seq, what))).result;
    } catch (err) {
      figures.savesThatFailedTheRun += 1;
      throw new Error(`${what}: the save threw: ${String(err)}`);
    } finally {
      clear();
    }
    const after = await snapshotTree(this.ws.root).catch(() => ({}));
    if (JSON.stringify(after) !== JSON.stringify(before)) figures.localCheckpointsLost += 1;
    expect(after, `${what}: the local checkpoint changed`).toEqual(before);
    expect(ok, `${what}: the save claimed success`).toBe(false);
    expect(log.warnings.join('\n'), `${what}: no warning`).toMatch(/failed|skipped|given up|could not/);
    expect(sync.warnings.length).toBeGreaterThan(0);
  }
}

/** A restore into a new, empty workspace (the next attempt's machine); `inject` optional as above. */
async function restoreFresh(
  kind: 'cache' | 'artifact',
  inject?: () => () => void,
  idleTimeoutMs?: number,
): Promise<{ outcome: RestoreOutcome; ws: Ws; log: Log; seq?: number }> {
  const ws = await workspace(false);
  const store =
    kind === 'cache' ? new CacheStore(idleTimeoutMs ? { idleTimeoutMs } : {}) : artifactStore(idleTimeoutMs);
  const { sync, log } = syncFor(ws, store, 2);
  const previous = process.cwd();
  const previousWs = process.env.GITHUB_WORKSPACE;
  enter(ws);
  const clear = inject?.();
  try {
    const { result: outcome } = await withCoreLog(() => sync.restore());
    const seq = (await Checkpoint.exists(ws.root, KEY))
      ? (await Checkpoint.read(ws.root, KEY)).state.seq
      : undefined;
    return { outcome, ws, log, ...(seq !== undefined ? { seq } : {}) };
  } finally {
    clear?.();
    process.chdir(previous);
    process.env.GITHUB_WORKSPACE = previousWs;
  }
}

/** The next restore must install exactly the saver's last good entry. */
async function expectLastGood(saver: Saver, why: string): Promise<RestoreOutcome> {
  const r = await restoreFresh(saver.kind);
  const good = saver.good;
  if (!good) throw new Error('no good entry yet');
  if (r.outcome.source !== 'store' || r.outcome.entry !== good.entry || r.seq !== good.seq)
    figures.badEntriesAccepted += 1;
  expect(
    { source: r.outcome.source, entry: r.outcome.entry, seq: r.seq },
    `${why}: ${r.log.warnings.join('\n')}`,
  ).toEqual({ source: 'store', entry: good.entry, seq: good.seq });
  return r.outcome;
}

const cacheFault = (mode: FaultMode, only: 'save' | 'restore') => (): (() => void) => {
  services.cache.setFault(mode, only);
  return () => services.cache.setFault('none');
};

let cacheSaver: Saver;
let artifactSaver: Saver;

beforeAll(async () => {
  cwd0 = process.cwd();
  services = await startServices({ runId: RUN });
  base = await mkdtemp(join(tmpdir(), 'faults-services-'));
  cacheSaver = new Saver(await workspace(), 'cache');
  artifactSaver = new Saver(await workspace(), 'artifact');
  restoreEnv = setEnv({
    ...services.envFor({ runId: RUN, runAttempt: 1 }),
    GITHUB_WORKSPACE: cacheSaver.ws.dir,
  });
  enter(cacheSaver.ws);
});

afterAll(async () => {
  process.chdir(cwd0);
  restoreEnv?.();
  await services?.stop();
  await rm(base, { recursive: true, force: true });
  // A run filtered to other tests (`-t`) skips this campaign: keep the figures of the last real run.
  if (figures.faults === 0) return;
  recordFigures(
    'services',
    [
      { name: 'faults injected', value: figures.faults },
      { name: 'saves that failed the run', value: figures.savesThatFailedTheRun, must: '= 0' },
      { name: 'local checkpoints lost', value: figures.localCheckpointsLost, must: '= 0' },
      { name: 'restores of a bad entry accepted', value: figures.badEntriesAccepted, must: '= 0' },
      { name: 'restores that fell back to the last good entry', value: figures.fellBackToOlder },
    ],
    'cache and artifact stores through CheckpointSync and the built action; 500 once, hangs cut at a 1 s idle timeout',
  );
});

describe('campaign: services', () => {
  it('a failed save is a warning, the local checkpoint is untouched, the next restore gets the last good entry', async () => {
    await cacheSaver.saveGood();
    await cacheSaver.faultySave('connection reset', cacheFault('unreachable', 'save'));
    await expectLastGood(cacheSaver, 'after a reset save');

    await cacheSaver.saveGood();
    await cacheSaver.faultySave('429', cacheFault('throttle', 'save'));
    await cacheSaver.faultySave('write denied', cacheFault('write-denied', 'save'));
    // Regression (watchdog.ts): a silent service held a save for ~15 minutes (3 min × 5 attempts).
    const t0 = Date.now();
    await cacheSaver.faultySave('no answer', cacheFault('hang', 'save'), { idleTimeoutMs: SHORT_IDLE_MS });
    expect(Date.now() - t0).toBeLessThan(15_000);
    await expectLastGood(cacheSaver, 'after 429, write-denied and hung saves');
  });

  it('a 500 outage (cache) and a connection cut mid-upload (artifact) at once: warnings, nothing lost', async () => {
    await cacheSaver.saveGood();
    await artifactSaver.saveGood();
    // The two stores share the process but not the service methods; the artifact side packs from its own
    // workspace by absolute path, so both saves can run while the libraries retry (~30 s and ~16 s).
    const { result: results } = await withCoreLog(() =>
      Promise.allSettled([
        cacheSaver.faultySave('500 outage', cacheFault('outage', 'save'), { capture: false }),
        artifactSaver.faultySave(
          'connection cut mid-upload',
          () => {
            services.artifact.setFault('cut', ['CreateArtifact']);
            return () => services.artifact.setFault('none');
          },
          { capture: false },
        ),
      ]),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    expect(services.blobProxy.broken()).toContain('cut upload');
    await expectLastGood(cacheSaver, 'after the outage');
    await expectLastGood(artifactSaver, 'after the cut upload');
  }, 120_000);

  it('a failing restore installs nothing; once the service is back the last good entry is restored', async () => {
    const modes: Array<[FaultMode, string]> = [
      ['unreachable', 'connection reset'],
      ['throttle', '429'],
      ['read-denied', 'read denied'],
      ['hang', 'no answer'],
      ['cut', 'download cut halfway'],
      ['truncate', 'download ends short'],
    ];
    for (const [mode, what] of modes) {
      figures.faults += 1;
      const t0 = Date.now();
      const r = await restoreFresh(
        'cache',
        cacheFault(mode, 'restore'),
        mode === 'hang' ? SHORT_IDLE_MS : undefined,
      );
      if (r.outcome.source !== 'none' || r.seq !== undefined) figures.badEntriesAccepted += 1;
      expect(r.outcome.source, `${what}: ${r.log.infos.join('\n')}`).toBe('none');
      expect(r.seq, `${what}: something was installed`).toBeUndefined();
      expect(r.log.warnings.length, what).toBeGreaterThan(0);
      // Nothing of the broken download is left in the workspace either.
      await expect(readFile(join(bundleDir(r.ws.dir), ARCHIVE))).rejects.toThrow();
      expect(Date.now() - t0, what).toBeLessThan(15_000);
    }
    expect(services.blobProxy.broken()).toEqual(
      expect.arrayContaining(['cut download', 'truncate download']),
    );
    await expectLastGood(cacheSaver, 'after the failed restores');
  });

  it('a damaged newest entry is refused and the entry before it is restored instead', async () => {
    const ws = cacheSaver.ws;
    const seq = (await Checkpoint.read(ws.root, KEY)).state.seq;
    // Damaged inside a well-formed archive: the library unpacks it, our sha256 check refuses it.
    const dir = bundleDir(ws.dir);
    await packBundle(dir, { root: ws.root, runId: KEY, planName: PLAN_NAME, seq, key: KEY });
    const archive = join(dir, ARCHIVE);
    await truncate(archive, Math.floor((await readFile(archive)).length / 2));
    const inner = entryName(KEY, RUN, 3, 1);
    await withCoreLog(() => new CacheStore().save(inner, dir));
    // Damaged in storage: the blob itself is cut short, so the library's own unpacking fails.
    await packBundle(dir, { root: ws.root, runId: KEY, planName: PLAN_NAME, seq, key: KEY });
    const stored = entryName(KEY, RUN, 3, 2);
    await withCoreLog(() => new CacheStore().save(stored, dir));
    await rm(dir, { recursive: true, force: true });
    const entry = services.cache.entries().find((e) => e.key === stored);
    if (!entry) throw new Error('planted entry missing');
    const blob = services.azurite.client
      .getContainerClient(services.cache.container)
      .getBlockBlobClient(entry.blob);
    const bytes = await blob.downloadToBuffer();
    const half = bytes.subarray(0, Math.floor(bytes.length / 2));
    await blob.upload(half, half.length);
    // The fake checks sizes only at finalize; keep its record consistent with the damaged blob.
    figures.faults += 2;

    const outcome = await expectLastGood(cacheSaver, 'with two damaged entries on top');
    expect(outcome.refused).toEqual([stored, inner]);
    figures.fellBackToOlder += 1;

    // The artifact store lists its entries, so it passes over a damaged one just as well.
    const aws = artifactSaver.ws;
    const aseq = (await Checkpoint.read(aws.root, KEY)).state.seq;
    const adir = bundleDir(aws.dir);
    await packBundle(adir, { root: aws.root, runId: KEY, planName: PLAN_NAME, seq: aseq, key: KEY });
    await truncate(join(adir, ARCHIVE), 100);
    const planted = entryName(KEY, RUN, 3, 1);
    await withCoreLog(() => artifactStore().save(planted, adir));
    await rm(adir, { recursive: true, force: true });
    figures.faults += 1;
    const aout = await expectLastGood(artifactSaver, 'artifact store with a damaged entry on top');
    expect(aout.refused).toEqual([planted]);
    figures.fellBackToOlder += 1;
  });

  it('the built action: a save that fails passes the job with a warning, and post saves once the service is back', async () => {
    const ws = await workspace();
    const job = new Job({
      workspace: ws.dir,
      temp: ws.temp,
      inputs: { store: 'cache' },
      env: services.envFor({ runId: 5555, runAttempt: 1 }),
    });
    services.cache.setFault('unreachable', 'save');
    figures.faults += 1;
    let main: Awaited<Awaited<ReturnType<Job['start']>>['result']>;
    try {
      main = await (await job.start('main')).result;
    } finally {
      services.cache.setFault('none');
    }
    if (main.code !== 0) figures.savesThatFailedTheRun += 1;
    expect(main.code, main.stdout).toBe(0);
    expect(main.outputs.complete).toBe('true');
    expect(main.warnings.join('\n')).toMatch(/cache save of checkpoint-v1-.* failed/);
    const runId = main.outputs['run-id'] ?? '';
    const ck = await Checkpoint.read(join(ws.dir, '.checkpoints'), runId).catch(() => undefined);
    if (!ck) figures.localCheckpointsLost += 1;
    expect(ck?.state.steps.size).toBe(STEPS);
    const post = await (await job.start('post')).result;
    expect(post.code, post.stdout).toBe(0);
    expect(post.stdout).toMatch(/saved checkpoint as checkpoint-v1-/);
  });
});
