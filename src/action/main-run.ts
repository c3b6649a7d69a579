// The action's main step: read inputs, restore the newest checkpoint for the key, run the engine (saving
// every `save-every` while progress changes), save once more, write the job summary and outputs, and end
// the job the way `on-incomplete` says.
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as core from '@actions/core';
import { stringify } from 'yaml';
import { classify, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK } from '../errors.js';
import { Checkpoint } from '../journal/checkpoint.js';
import { loadPlan } from '../plan/load.js';
import { parseShardText } from '../plan/space.js';
import type { Plan } from '../plan/types.js';
import { isUnboundMerge, sameMerge, seedLine, startFromMerge } from '../session/merge.js';
import { executeRun, type Io, type RunHooks, type RunOutcome } from '../session/run.js';
import { startTracing } from '../trace/index.js';
import { type RunnerConfig, readConfig } from './config.js';
import { dispatchWorkflow, readContinuations, writeContinuations } from './continuation.js';
import { InputError, type Inputs, parseResetEntries, readInputs } from './inputs.js';
import { baseKey, mergedKey } from './keys.js';
import { actionLog, coreLog, StepGroups } from './log-groups.js';
import { publishReport, readRun, setRunOutputs } from './report.js';
import { maskSecrets, secretValues } from './secrets.js';
import { CoreStateProvider, type StateProvider } from './state.js';
import { makeStore } from './store-factory.js';
import { CheckpointSync, keySync } from './sync.js';

/** When this step's process started: the time budget counts from here, restore included. */
const STARTED_AT = Date.now() - Math.round(process.uptime() * 1000);

/** A plan written inline with the `run` input: one step, run in the workspace. */
async function inlinePlanFile(inputs: Inputs, cfg: RunnerConfig, key: string): Promise<string> {
  const dir = join(cfg.temp, 'checkpoint-action');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'inline-plan.yml');
  const doc = {
    version: 1,
    name: key,
    steps: [{ id: 'run', run: inputs.run, 'working-directory': cfg.workspace }],
  };
  await writeFile(file, stringify(doc), { mode: 0o600 });
  return file;
}

/**
 * The environment units start from: the runner's, without this action's own inputs (`signing-key` and
 * `github-token` are secrets meant for the action, not for every command of the plan) and without the
 * files through which the action reports to the runner (a unit writing there could forge the action's
 * outputs or the state post acts on). The engine removes the runner's runtime tokens on top of this.
 */
export function unitEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { CI: 'true' };
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('INPUT_') || k.startsWith('STATE_') || k === 'GITHUB_OUTPUT' || k === 'GITHUB_STATE')
      continue;
    out[k] = v;
  }
  out.CI = 'true';
  return out;
}

interface Context {
  inputs: Inputs;
  cfg: RunnerConfig;
  plan: Plan;
  planFile: string;
  key: string;
  root: string;
  runId: string;
  state: StateProvider;
  sync: CheckpointSync;
  io: Io;
}

/** The `file` input names a plan that is not there: the action's words, not the CLI's `-f PATH`. */
async function missingPlan(inputs: Inputs, cfg: RunnerConfig): Promise<string | undefined> {
  if (inputs.run !== undefined) return undefined;
  const st = await stat(inputs.file).catch(() => undefined);
  if (st?.isFile()) return undefined;
  const shown = inputs.file.startsWith(`${cfg.workspace}/`)
    ? inputs.file.slice(cfg.workspace.length + 1)
    : inputs.file;
  return st
    ? `input \`file\`: ${shown} is a directory, not a plan file; set \`file\` to the plan's path (for example \`file: ${shown}/checkpoint.yml\`)`
    : `input \`file\`: ${shown} was not found in the workspace (${cfg.workspace}); check the repository out first (actions/checkout), add the plan there, or set \`file\` to its path, or write a one-step plan inline with \`run\``;
}

async function setUp(state: StateProvider, signal: AbortSignal): Promise<Context | undefined> {
  const cfg = readConfig();
  let inputs: Inputs;
  try {
    inputs = readInputs((n) => core.getInput(n, { trimWhitespace: false }), { workspace: cfg.workspace });
    if (inputs.onIncomplete === 'dispatch' && inputs.key === undefined)
      throw new InputError(
        'input `on-incomplete: dispatch` continues in a new workflow run, which finds the checkpoint only through an explicit `key`; set `key` (for example `key: nightly-backfill`)',
      );
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    core.setFailed(err.message);
    return undefined;
  }
  if (inputs.signingKey) core.setSecret(inputs.signingKey);
  if (inputs.signingKey && inputs.store === 'none')
    core.warning(
      'input `signing-key` has no effect with `store: none`: nothing is saved to a store, so nothing is signed or checked; remove it, or set `store: cache` or `store: artifact`',
    );
  const missing = await missingPlan(inputs, cfg);
  if (missing) {
    core.setFailed(missing);
    return undefined;
  }
  const key = baseKey({
    ...(inputs.key !== undefined ? { key: inputs.key } : {}),
    workflow: cfg.workflow,
    job: cfg.job,
    ...(inputs.shard !== undefined ? { shard: inputs.shard } : {}),
    runId: cfg.runId,
  });
  const planFile = inputs.run !== undefined ? await inlinePlanFile(inputs, cfg, key) : inputs.file;
  let plan: Plan;
  try {
    plan = await loadPlan(
      planFile,
      inputs.concurrency !== undefined ? { concurrency: inputs.concurrency } : {},
    );
  } catch (err) {
    const { code, message } = classify(err);
    core.setFailed(message);
    process.exitCode = code;
    return undefined;
  }
  if (inputs.approve.length > 0) {
    // Checked against the plan before anything is restored: an unknown step is an input error.
    const { checkApprovable } = await import('../session/manage.js');
    try {
      checkApprovable(plan, inputs.approve, 'input `approve`');
    } catch (err) {
      core.setFailed((err as Error).message);
      return undefined;
    }
  }
  // The run folder is named after the key, so every attempt and every store agrees on it.
  const runId = key;
  const root = join(inputs.run !== undefined ? cfg.workspace : plan.dir, '.checkpoints');
  state.set('root', root);
  state.set('run-id', runId);
  state.set('key', key);
  state.set('plan-name', plan.name);
  state.set('plan-file', planFile);
  const store = makeStore(inputs, cfg, signal);
  const sync = new CheckpointSync({
    store,
    key,
    root,
    runId,
    planName: plan.name,
    plan,
    workspace: cfg.workspace,
    temp: cfg.temp,
    paths: inputs.paths,
    ...(inputs.signingKey !== undefined ? { signingKey: inputs.signingKey } : {}),
    ghRunId: cfg.runId,
    attempt: cfg.runAttempt,
    state,
    log: coreLog,
    selfHosted: cfg.selfHosted,
    signal,
  });
  const log = actionLog(process.stdout);
  const io: Io = { out: log, err: log, env: unitEnvironment(process.env) };
  return { inputs, cfg, plan, planFile, key, root, runId, state, sync, io };
}

/**
 * A shard of a matrix whose size changed (DESIGN §7): with no checkpoint of its own, or only one from a
 * matrix before the last merge, it starts from the campaign's merged checkpoint (`<key>-merged`, saved by
 * `command: report`). Returns the merged run's id to start from, or nothing (resume as usual).
 */
async function restoreMerge(ctx: Context): Promise<string | undefined> {
  if (ctx.inputs.shard === undefined || ctx.inputs.command !== 'run' || ctx.inputs.store === 'none') return;
  const key = mergedKey({
    ...(ctx.inputs.key !== undefined ? { key: ctx.inputs.key } : {}),
    workflow: ctx.cfg.workflow,
    job: ctx.cfg.job,
    runId: ctx.cfg.runId,
  });
  // Its own state: the shard's save sequence and saved entry are not the merge's.
  const sync = keySync(ctx, makeStore(ctx.inputs, ctx.cfg), key, coreLog, { runOnly: true, plan: ctx.plan });
  await sync.restore();
  if (!(await Checkpoint.exists(ctx.root, key))) return;
  const merged = await Checkpoint.read(ctx.root, key);
  const m = merged.state.merge;
  if (!m || !isUnboundMerge(merged.state) || merged.state.planName !== ctx.plan.name) return;
  if (await Checkpoint.exists(ctx.root, ctx.runId)) {
    const own = await Checkpoint.read(ctx.root, ctx.runId);
    if (sameMerge(own.state.merge, m)) return;
    if (own.state.updatedAt > m.at) {
      core.warning(
        `checkpoint ${ctx.runId} is newer than the campaign's merged checkpoint ${key} and did not start from it; resuming it (run \`command: report\` over this matrix to merge it)`,
      );
      return;
    }
    // A matrix of this size ran before the last merge: its work is in the merge, its part is not ours now.
    core.info(
      `checkpoint ${ctx.runId} is older than the merge ${key} that holds its work; starting from the merge`,
    );
    await rm(join(ctx.root, ctx.runId), { recursive: true, force: true });
  }
  core.info(
    `shard ${ctx.inputs.shard} starts from the campaign's merged checkpoint ${key} (${m.total} shards merged): its part of what remains`,
  );
  return key;
}

async function runEngine(ctx: Context): Promise<RunOutcome> {
  const groups = new StepGroups(core);
  let timer: NodeJS.Timeout | undefined;
  let engineCkpt: Checkpoint | undefined;
  // Spans of the run when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set (src/trace); a dead collector warns.
  const tracing = await startTracing(ctx.io, { warn: (m) => core.warning(m) });
  try {
    const hooks: RunHooks = {
      onEngine: (ckpt) => {
        engineCkpt = ckpt;
        // Secret outputs restored from earlier attempts, before any unit can print them.
        maskSecrets(secretValues(ctx.plan, ckpt.state));
        timer = setInterval(() => {
          const seq = ckpt.state.seq;
          if (ctx.sync.changedSince(seq)) void ctx.sync.save(seq, `every ${ctx.inputs.saveEveryMs / 1000}s`);
        }, ctx.inputs.saveEveryMs);
        timer.unref();
      },
      onEvent: (ev) => {
        if (ev.type === 'step-state') groups.onState(ev.step, ev.state);
        // A unit recorded its outputs: secret ones are masked before a later unit could print them.
        if (ev.type === 'unit-end' && ev.result === 'done' && engineCkpt)
          maskSecrets(secretValues(ctx.plan, engineCkpt.state, ev.unit.step));
      },
    };
    const run = (h: RunHooks) =>
      executeRun(
        {
          file: ctx.planFile,
          dir: ctx.root,
          run: ctx.runId,
          // The budget counts from the start of the step: the restore has used part of it already.
          ...(ctx.inputs.timeBudgetMs !== undefined
            ? { timeBudget: `${Math.max(1, ctx.inputs.timeBudgetMs - (Date.now() - STARTED_AT))}ms` }
            : {}),
          ...(ctx.inputs.concurrency !== undefined ? { concurrency: String(ctx.inputs.concurrency) } : {}),
          ...(ctx.inputs.shard !== undefined ? { shard: ctx.inputs.shard } : {}),
        },
        ctx.io,
        h,
      );
    return await (tracing ? tracing.around(run, hooks) : run(hooks));
  } finally {
    if (timer) clearInterval(timer);
    groups.close();
  }
}

/**
 * The shard's run, started from the merged run `seedFrom` (restoreMerge) before `reset` and `approve` apply:
 * they act on the seeded run as on any restored one (a blank run made first would not start from the merge).
 */
async function seedShard(ctx: Context, seedFrom: string): Promise<void> {
  const shard = ctx.inputs.shard !== undefined ? parseShardText(ctx.inputs.shard) : undefined;
  if (!shard) return;
  const merged = await Checkpoint.read(ctx.root, seedFrom);
  const seed = await startFromMerge(merged, ctx.plan, shard, ctx.root, ctx.runId);
  core.info(`checkpoint ${ctx.runId}: ${seedLine(seed)}`);
}

async function resetSteps(ctx: Context): Promise<void> {
  if (ctx.inputs.reset.length === 0 || !(await Checkpoint.exists(ctx.root, ctx.runId))) return;
  const { resetCommand } = await import('../session/manage.js');
  const opts = { file: ctx.planFile, dir: ctx.root, run: ctx.runId };
  const entries = parseResetEntries(ctx.inputs.reset);
  if (entries.steps.length > 0) await resetCommand(entries.steps, opts, ctx.io);
  // `STEP:UNIT` / `STEP:ITEM`: those units of the step pending again (and its dependents), one step at a time.
  for (const [step, either] of entries.units) await resetCommand([step], { ...opts, either }, ctx.io);
}

/** The `approve` input: recorded after the restore (reset first), before the engine, by GITHUB_ACTOR. */
async function approveSteps(ctx: Context): Promise<void> {
  if (ctx.inputs.approve.length === 0) return;
  const { approveInRun } = await import('../session/manage.js');
  const shard = ctx.inputs.shard !== undefined ? parseShardText(ctx.inputs.shard) : undefined;
  await approveInRun(
    {
      plan: ctx.plan,
      root: ctx.root,
      runId: ctx.runId,
      ids: ctx.inputs.approve,
      by: ctx.cfg.actor || 'unknown',
      ...(shard ? { shard } : {}),
    },
    ctx.io,
  );
}

async function otherCommand(ctx: Context): Promise<number> {
  const opts = { file: ctx.planFile, dir: ctx.root, run: ctx.runId };
  if (!(await Checkpoint.exists(ctx.root, ctx.runId))) {
    core.info(`no checkpoint for key ${ctx.key} yet: nothing to ${ctx.inputs.command}`);
    return EXIT_OK;
  }
  if (ctx.inputs.command === 'status') {
    const { statusCommand } = await import('../session/status.js');
    return statusCommand(opts, ctx.io);
  }
  if (ctx.inputs.command === 'rollback') {
    const { rollbackCommand } = await import('../session/manage.js');
    return rollbackCommand(opts, ctx.io);
  }
  // `report`: the summary and outputs below are the report of this job's checkpoint.
  return EXIT_OK;
}

/**
 * For `on-incomplete: dispatch`, counts the continuation in the checkpoint before the final save, so the
 * next run sees it. Undefined when the limit is reached (nothing is counted then).
 */
async function countContinuation(ctx: Context): Promise<number | undefined> {
  const runDir = join(ctx.root, ctx.runId);
  const done = await readContinuations(runDir);
  if (done >= ctx.inputs.maxContinuations) return undefined;
  await writeContinuations(runDir, done + 1);
  return done + 1;
}

/** What a re-run of the job will find, as true as the saves allow. */
function nextAttemptText(ctx: Context, progress: number | undefined): string {
  const where = ctx.sync.whereText(progress);
  if (ctx.inputs.store === 'none')
    return ctx.cfg.selfHosted
      ? `the checkpoint is ${where}: re-run the job on this runner to continue`
      : `the checkpoint is ${where}, so a re-run starts over; set \`store: cache\` (or \`artifact\`) to continue on the next attempt`;
  const st = ctx.sync.status(progress);
  if (st.upToDate) return `the checkpoint is ${where}: re-run the job (Re-run failed jobs) to continue`;
  if (st.entry)
    return `the checkpoint is ${where} (the last save failed; see the warnings): a re-run continues from it and repeats what came after`;
  return `the checkpoint is ${where} (see the warnings): a re-run starts over`;
}

/** Ends the job for an incomplete run as `on-incomplete` says. */
async function onIncomplete(
  ctx: Context,
  remaining: number,
  continuation: number | undefined,
  progress: number | undefined,
): Promise<void> {
  const left = `${remaining} units remain`;
  if (ctx.inputs.onIncomplete === 'success') {
    core.info(`incomplete: ${left}; the job passes (on-incomplete: success) and complete=false`);
    return;
  }
  if (ctx.inputs.onIncomplete === 'fail') {
    core.setFailed(`incomplete: ${left}; ${nextAttemptText(ctx, progress)}`);
    return;
  }
  if (continuation === undefined) {
    core.setFailed(
      `incomplete: ${left} after ${ctx.inputs.maxContinuations} continuations (max-continuations); raise max-continuations or look at why the plan is not finishing`,
    );
    return;
  }
  try {
    await dispatchWorkflow({
      apiUrl: ctx.cfg.apiUrl,
      repository: ctx.cfg.repository,
      workflowRef: ctx.cfg.workflowRef,
      ref: ctx.cfg.ref,
      token: ctx.inputs.githubToken,
    });
    core.info(
      `incomplete: ${left}; dispatched continuation ${continuation} of at most ${ctx.inputs.maxContinuations}`,
    );
  } catch (err) {
    core.setFailed(
      `incomplete: ${left}, and the continuation could not be dispatched: ${(err as Error).message}`,
    );
  }
}

/**
 * An incomplete run that stopped before steps with `approval: true`: `success` passes, `fail` and `dispatch`
 * fail the job (nothing is dispatched: it would stop at the same place), naming the steps and the way on.
 */
function waitingForApproval(ctx: Context, remaining: number, steps: string[]): void {
  const list = steps.join(', ');
  const how =
    `waiting for approval: ${list}; run the workflow again with the input \`approve: ${list}\` ` +
    '(for example from a workflow_dispatch input)' +
    (ctx.inputs.key === undefined
      ? '; set a `key` so that run finds this checkpoint (without one, each workflow run has its own)'
      : `; it continues this checkpoint (key ${ctx.inputs.key})`);
  if (ctx.inputs.onIncomplete === 'success') {
    core.info(`incomplete: ${remaining} units remain; ${how}; the job passes (on-incomplete: success)`);
    return;
  }
  core.setFailed(`incomplete: ${remaining} units remain; ${how}`);
}

/**
 * The runner's cancel is SIGINT, then SIGTERM 7.5 s later, then SIGKILL. Main leaves in time whatever a
 * store is doing: outside the engine it leaves at once (the checkpoint's records are durable as they are
 * written; an in-flight save is abandoned, its entry left unfinished under a name no save reuses); inside it,
 * the engine stops and records its units (it promises 5 s), main sets the outputs and leaves, and if the
 * engine has not returned by LEAVE_MS main leaves anyway. The post step saves and writes the summary.
 */
const LEAVE_MS = 6_500;

class Cancel {
  readonly controller = new AbortController();
  /** What main is doing, for the message should a signal arrive. */
  phase: 'setting up' | 'restoring' | 'running' | 'saving' = 'setting up';
  readonly #onSignal = (sig: NodeJS.Signals) => this.#signal(sig);

  constructor() {
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  #signal(sig: NodeJS.Signals): void {
    const first = !this.controller.signal.aborted;
    if (first) this.controller.abort(new Error(`received ${sig}`));
    if (this.phase === 'running') {
      // The engine has its own handler and stops; main leaves from its signal path once it has.
      if (first)
        setTimeout(
          () => leave(`stopped by ${sig}; the run did not stop within ${LEAVE_MS / 1000} s`),
          LEAVE_MS,
        ).unref();
      return;
    }
    leave(`stopped by ${sig} while ${this.phase}`);
  }

  dispose(): void {
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
  }
}

/** Ends main now; open connections (a hung save) would otherwise keep Node alive past the runner's SIGTERM. */
function leave(why: string): never {
  core.warning(`${why}; the post step saves the checkpoint and writes the job summary`);
  // stdout is a pipe on a runner, written synchronously on Linux: nothing printed above is lost.
  process.exit(EXIT_FAILED);
}

/** The main step; never throws: whatever goes wrong ends as a failed step with its message. */
export async function run(state: StateProvider = new CoreStateProvider(core)): Promise<void> {
  const cancel = new Cancel();
  try {
    await main(state, cancel);
  } catch (err) {
    core.setFailed(`checkpoint-action: ${(err as Error).stack ?? String(err)}`);
  } finally {
    cancel.dispose();
  }
  if (cancel.signal.aborted) {
    // Cancelled: the outputs are set; nothing of main's is worth more time than the runner allows.
    process.exit(process.exitCode ?? EXIT_FAILED);
  }
}

async function main(state: StateProvider, cancel: Cancel): Promise<void> {
  const ctx = await setUp(state, cancel.signal);
  if (!ctx) return;
  if (ctx.inputs.command === 'report' && ctx.inputs.shards !== undefined) {
    // The final job of a sharded matrix: every shard's checkpoint, not this job's own.
    const { reportShards } = await import('./shard-report.js');
    await reportShards(ctx);
    state.set('main-ended', 'true');
    return;
  }
  cancel.phase = 'restoring';
  const restored = await ctx.sync.restore();
  const seedFrom = await restoreMerge(ctx);
  const resumed = restored.source !== 'none' || seedFrom !== undefined;
  state.set('resumed', String(resumed));
  core.info(
    `checkpoint ${ctx.runId}: ${restored.source === 'store' ? `restored from ${restored.entry}` : restored.source === 'local' ? 'continuing the local checkpoint' : 'fresh start'} (${restored.ms} ms)`,
  );
  let exitCode: number;
  let outcome: RunOutcome | undefined;
  try {
    if (ctx.inputs.command === 'run') {
      cancel.phase = 'running';
      if (seedFrom !== undefined) await seedShard(ctx, seedFrom);
      await resetSteps(ctx);
      await approveSteps(ctx);
      outcome = await runEngine(ctx);
      exitCode = outcome.exitCode;
      cancel.phase = 'saving';
    } else {
      exitCode = await otherCommand(ctx);
    }
  } catch (err) {
    const { code, message } = classify(err);
    core.setFailed(message);
    exitCode = code;
  }
  cancel.phase = 'saving';
  if (outcome?.signal || cancel.signal.aborted) {
    // Cancelled or timed out: the runner kills this process 7.5 s after its SIGINT, and a save may not
    // fit; post runs next, saves what main could not and writes the summary.
    core.warning(
      `stopped by ${outcome?.signal ?? 'a signal'}; the post step saves the checkpoint and writes the job summary`,
    );
    await setRunOutputs(ctx, resumed, await readRun(ctx)).catch(() => undefined);
    process.exitCode = EXIT_FAILED;
    return;
  }
  // Stopped only because steps wait for approval: a continuation would stop at the same place.
  const awaiting = outcome?.result?.reason.startsWith('waiting for approval')
    ? (outcome.result.waitingForApproval ?? [])
    : [];
  const continuation =
    exitCode === EXIT_INCOMPLETE && ctx.inputs.onIncomplete === 'dispatch' && awaiting.length === 0
      ? await countContinuation(ctx)
      : undefined;
  // Read once: the save, the outputs and the report all describe the same finished state.
  const ckpt = await readRun(ctx);
  const seq = ckpt?.state.seq;
  if (seq !== undefined && ctx.inputs.command !== 'status')
    await ctx.sync.save(seq, 'end of main', continuation !== undefined);
  const stats = await setRunOutputs(ctx, resumed, ckpt);
  await publishReport(ctx, outcome?.result, restored, ckpt);
  state.set('summary-written', 'true');
  state.set('main-ended', 'true');
  if (exitCode === EXIT_OK || ctx.inputs.command !== 'run') {
    if (exitCode !== EXIT_OK && !process.exitCode)
      process.exitCode = exitCode === EXIT_INCOMPLETE ? 1 : exitCode;
    return;
  }
  if (exitCode === EXIT_INCOMPLETE && awaiting.length > 0)
    waitingForApproval(ctx, stats?.unitsRemaining ?? 0, awaiting);
  else if (exitCode === EXIT_INCOMPLETE)
    await onIncomplete(ctx, stats?.unitsRemaining ?? 0, continuation, seq);
  else if (!process.exitCode) core.setFailed(outcome?.result?.reason ?? `the run failed (exit ${exitCode})`);
}

export type { Context as MainContext };
