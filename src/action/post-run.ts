// The action's post step (runs always, also after a cancel or timeout): end any unit process group that
// outlived main, then save the checkpoint if main could not (it was cancelled, timed out or crashed).

import * as core from '@actions/core';
import { endOrphans } from '../engine/orphans.js';
import { Checkpoint } from '../journal/checkpoint.js';
import { acquireLease, LockedError } from '../journal/lock.js';
import { loadPlan } from '../plan/load.js';
import { type RunnerConfig, readConfig } from './config.js';
import { InputError, type Inputs, readInputs } from './inputs.js';
import { coreLog } from './log-groups.js';
import { publishReport } from './report.js';
import { CoreStateProvider, type StateProvider } from './state.js';
import { makeStore } from './store-factory.js';
import { CheckpointSync } from './sync.js';

/** Ends survivors and records them as interrupted; returns the checkpoint's progress afterwards. */
async function endSurvivors(root: string, runId: string): Promise<number | undefined> {
  if (!(await Checkpoint.exists(root, runId))) return undefined;
  let lease: Awaited<ReturnType<typeof acquireLease>> | undefined;
  try {
    lease = await acquireLease(`${root}/${runId}`, { runId, attempt: 0 });
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    // Main is somehow still alive and holds the run: leave its units alone, save what is on disk.
    core.warning(`the checkpoint is still held by pid ${err.holder?.pid ?? '?'}; not touching its units`);
    return (await Checkpoint.read(root, runId)).state.seq;
  }
  try {
    const ckpt = await Checkpoint.read(root, runId);
    await ckpt.openForWrite();
    try {
      const ended = await endOrphans(
        ckpt,
        (m) => core.info(m),
        (m) => core.warning(m),
      );
      if (ended > 0) core.info(`ended ${ended} unit process group(s) left running by main`);
      await ckpt.compact();
    } finally {
      await ckpt.close();
    }
    return ckpt.state.seq;
  } finally {
    await lease.release();
  }
}

/** The post step; never throws: a failure is a warning, since post only tidies up and saves. */
export async function run(state: StateProvider = new CoreStateProvider(core)): Promise<void> {
  try {
    await post(state);
  } catch (err) {
    core.warning(`checkpoint-action post: ${(err as Error).stack ?? String(err)}`);
  }
}

async function post(state: StateProvider): Promise<void> {
  const root = state.get('root');
  const runId = state.get('run-id');
  if (!root || !runId) {
    core.info('main ended before it had a checkpoint; nothing to save');
    return;
  }
  const cfg = readConfig();
  let inputs: Inputs;
  try {
    inputs = readInputs((n) => core.getInput(n, { trimWhitespace: false }), { workspace: cfg.workspace });
  } catch (err) {
    // Main read the same inputs successfully, so this cannot normally happen; say so rather than crash.
    if (!(err instanceof InputError)) throw err;
    core.warning(`post: ${err.message}`);
    return;
  }
  const progress = await endSurvivors(root, runId);
  if (progress === undefined) return;
  const sync = new CheckpointSync({
    store: makeStore(inputs, cfg),
    selfHosted: cfg.selfHosted,
    key: state.get('key'),
    root,
    runId,
    planName: state.get('plan-name'),
    workspace: cfg.workspace,
    temp: cfg.temp,
    paths: inputs.paths,
    ...(inputs.signingKey !== undefined ? { signingKey: inputs.signingKey } : {}),
    ghRunId: cfg.runId,
    attempt: cfg.runAttempt,
    state,
    log: coreLog,
  });
  if (!sync.changedSince(progress)) {
    core.info(
      state.get('main-ended') === 'true'
        ? 'main saved the checkpoint; nothing left to save'
        : `nothing left to save: the checkpoint is ${sync.whereText(progress)}`,
    );
  } else {
    await sync.save(progress, state.get('main-ended') === 'true' ? 'post' : 'post, after main was stopped');
  }
  if (state.get('summary-written') !== 'true') await summaryForMain(state, cfg, runId, root, sync, progress);
}

/**
 * The job summary main could not write (cancelled, timed out, crashed): the attempt a reader most wants to
 * understand. Written from the checkpoint as post left it, with the store's warnings of both steps' saves.
 */
async function summaryForMain(
  state: StateProvider,
  cfg: RunnerConfig,
  runId: string,
  root: string,
  sync: CheckpointSync,
  progress: number,
): Promise<void> {
  if (!cfg.summaryFile) return;
  const planFile = state.get('plan-file');
  if (!planFile) return;
  try {
    const plan = await loadPlan(planFile);
    const ckpt = await Checkpoint.read(root, runId);
    const warnings = [
      'main did not finish (cancelled, timed out or crashed); this summary is written by the post step',
      ...sync.warnings,
      `the checkpoint is ${sync.whereText(progress)}`,
    ];
    await publishReport(
      { plan, cfg, runId, sync: { warnings } },
      undefined,
      { source: state.get('resumed') === 'true' ? 'store' : 'none' },
      ckpt,
    );
  } catch (err) {
    core.warning(`post: the job summary could not be written: ${(err as Error).message}`);
  }
}
