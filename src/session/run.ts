// One run, from options to outcome, for the CLI and the action alike: pick or create the run, take its
// lease, prepare, run the engine, and stop cleanly on SIGINT/SIGTERM (exit 75 within 5 s, a second SIGINT
// skips the grace). It returns what happened; callers print or publish it.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { monoNow } from '../engine/clock.js';
import { type Preparation, prepare } from '../engine/prepare.js';
import { Engine, type EngineEvent, EXIT_INCOMPLETE, EXIT_OK, type RunResult } from '../engine/scheduler.js';
import { StoppedError } from '../errors.js';
import { stopAll } from '../exec/process.js';
import { Checkpoint } from '../journal/checkpoint.js';
import { ensureDir } from '../journal/fsutil.js';
import { acquireLease, type Lease, LockedError } from '../journal/lock.js';
import { isValidRunId, newRunId, resolveLatest } from '../journal/runs.js';
import { applyEvent, emptyState, isStepComplete, unitCount } from '../journal/state.js';
import { parseDuration } from '../plan/duration.js';
import { loadPlan } from '../plan/load.js';
import { shardLabel } from '../plan/space.js';
import type { Plan } from '../plan/types.js';
import { colorEnabled } from '../report/colors.js';
import { printExplain } from '../report/explain.js';
import { Progress } from '../report/progress.js';
import { type CommonOptions, planPath, rootOf, shown, UsageError } from './context.js';
import type { Io } from './io.js';
import { applySeed, isUnboundMerge, type Seed, seedFromMerge, seedLine } from './merge.js';
import { checkRunShard, parseShard, type Shard } from './shard.js';

export type { Io } from './io.js';

export interface RunCliOptions extends CommonOptions {
  run?: string;
  new?: boolean;
  timeBudget?: string;
  concurrency?: string;
  only?: string[];
  shard?: string;
  dryRun?: boolean;
  /** `--trace FILE`: append the run's spans to FILE as OTLP JSON lines (src/trace). */
  trace?: string;
}

function parseConcurrency(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--concurrency: expected a positive integer, got "${v}"`);
  return n;
}

function parseBudget(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  try {
    const ms = parseDuration(v);
    if (ms <= 0) throw new Error('must be more than zero');
    return ms;
  } catch (err) {
    throw new UsageError(`--time-budget: ${(err as Error).message}`);
  }
}

function planComplete(plan: Plan, ckpt: Checkpoint): boolean {
  return plan.steps.every((s) => {
    const rec = ckpt.state.steps.get(s.id);
    return rec !== undefined && isStepComplete(rec);
  });
}

/**
 * A complete run with nothing invalidated: every step done, the last attempt closed (events past the
 * snapshot mean it was cut off, and it is finished rather than declared done), and no step to run again
 * (a changed fingerprint or a step added to the plan runs in this same run).
 */
export function isNoop(plan: Plan, ckpt: Checkpoint, prep: Preparation): boolean {
  const closed = ckpt.loadReport.eventsReplayed === 0;
  return closed && planComplete(plan, ckpt) && [...prep.info.values()].every((i) => i.action === 'skip');
}

/** The result a complete run reports when it is run again. */
function completeResult(plan: Plan, ckpt: Checkpoint): RunResult {
  let unitsDone = 0;
  for (const s of plan.steps) {
    const rec = ckpt.state.steps.get(s.id);
    if (rec) unitsDone += unitCount(rec);
  }
  return {
    exitCode: EXIT_OK,
    reason: 'complete',
    complete: true,
    resumed: true,
    stepsDone: plan.steps.length,
    stepsRemaining: 0,
    unitsDone,
    unitsRemaining: 0,
    unitsFailed: 0,
    attempt: ckpt.state.attempts[ckpt.state.attempts.length - 1]?.attempt ?? 0,
  };
}

/** Under the checkpoint root: the lease held while a new run is created (not a valid run id: never listed). */
const CREATING = '.creating';

/**
 * The lease for creating a run. Its holder lets go within milliseconds (it only creates the run), so a
 * contender waits for it rather than being refused with the name of a process that is not the run's holder.
 */
async function acquireCreating(root: string, id: string): Promise<Lease> {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      return await acquireLease(join(root, CREATING), { runId: id, attempt: 0 });
    } catch (err) {
      if (!(err instanceof LockedError) || Date.now() > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** The environment of a sharded run's units: which shard they belong to (removed for unsharded runs). */
export function shardEnv(env: NodeJS.ProcessEnv, shard: Shard | undefined): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out.CHECKPOINT_SHARD_INDEX;
  delete out.CHECKPOINT_SHARD_TOTAL;
  if (shard) {
    out.CHECKPOINT_SHARD_INDEX = String(shard.index);
    out.CHECKPOINT_SHARD_TOTAL = String(shard.total);
  }
  return out;
}

/**
 * `--run ID`, `--new`, or the latest unfinished run of this plan; otherwise a fresh run (named after the
 * shard with `--shard`: `<name>-shardIofN-<time>`).
 */
export async function chooseRun(
  plan: Plan,
  root: string,
  opts: Pick<RunCliOptions, 'run' | 'new'> & { shard?: Shard },
): Promise<{ id: string; existing: boolean; read?: Checkpoint; warning?: string }> {
  if (opts.run !== undefined) {
    if (!isValidRunId(opts.run)) {
      throw new UsageError(
        `--run: "${opts.run}" is not a valid run id; use letters, digits, ".", "_" and "-"`,
      );
    }
    return { id: opts.run, existing: await Checkpoint.exists(root, opts.run) };
  }
  // A damaged `latest` is warned about and replaced by the newest run of this plan, never a silent start-over.
  let warning: string | undefined;
  if (!opts.new) {
    // The latest run of this plan, complete or not: a complete one is a no-op unless the plan changed
    // (DESIGN §3, complete runs), so a cron job over a finished migration does nothing.
    const found = await resolveLatest(root, plan.name);
    warning = found.warning;
    const latest = found.runId;
    if (latest && (await Checkpoint.exists(root, latest))) {
      const ck = await Checkpoint.read(root, latest);
      if (ck.state.planName === plan.name)
        return { id: latest, existing: true, read: ck, ...(warning ? { warning } : {}) };
    }
  }
  const tag = opts.shard ? `shard${opts.shard.index}of${opts.shard.total}` : undefined;
  return {
    id: await newRunId(root, plan.name, new Date(), tag),
    existing: false,
    ...(warning ? { warning } : {}),
  };
}

/**
 * `prepare` over the run as it will be once the seed is written (`applySeed`, right after the run is opened:
 * before the attempt, which then starts from the merged work like any resumed attempt).
 */
async function seededPrepare(
  plan: Plan,
  ckpt: Checkpoint,
  seed: Seed,
  opts: Parameters<typeof prepare>[2],
): Promise<Preparation> {
  const scratch = emptyState(ckpt.runId, plan.name);
  if (ckpt.state.shard) scratch.shard = { ...ckpt.state.shard };
  const t = Date.now();
  seed.events.forEach((ev, i) => {
    applyEvent(scratch, { ...ev, seq: i + 1, t });
  });
  return prepare(plan, scratch, opts);
}

/** What a run came to, for callers that do more than exit with its code (the action). */
export interface RunOutcome {
  exitCode: number;
  plan: Plan;
  root: string;
  runId: string;
  /** The engine's result; undefined for a dry run or a run stopped before the engine started. */
  result?: RunResult;
  /** The signal that stopped the run, if one did. */
  signal?: NodeJS.Signals;
}

export interface RunHooks {
  /** Called once the engine exists, with the open checkpoint (the action starts its periodic saves here). */
  onEngine?: (ckpt: Checkpoint, engine: Engine, plan: Plan) => void;
  /** Every engine event, after the progress view saw it. */
  onEvent?: (ev: EngineEvent) => void;
}

/** `checkpoint run`, returning what happened instead of only an exit code. */
export async function executeRun(opts: RunCliOptions, io: Io, hooks: RunHooks = {}): Promise<RunOutcome> {
  const concurrency = parseConcurrency(opts.concurrency);
  const plan = await loadPlan(planPath(opts), concurrency === undefined ? {} : { concurrency });
  const root = rootOf(opts, plan);
  const budgetMs = parseBudget(opts.timeBudget);
  // On the monotonic clock: a wall clock that jumps mid-run moves no budget decision (engine/clock.ts).
  const deadline = budgetMs === undefined ? undefined : monoNow() + budgetMs;
  const shard = opts.shard !== undefined ? parseShard(opts.shard) : undefined;
  for (const id of opts.only ?? []) {
    if (!plan.steps.some((s) => s.id === id)) {
      throw new UsageError(
        `--only: no step "${id}" in ${shown(plan.file)}; steps: ${plan.steps.map((s) => s.id).join(', ')}`,
      );
    }
  }
  const chosen = await chooseRun(plan, root, {
    ...(opts.run !== undefined ? { run: opts.run } : {}),
    ...(opts.new ? { new: true } : {}),
    ...(shard ? { shard } : {}),
  });
  let { existing } = chosen;
  const { read } = chosen;
  if (chosen.warning) io.err.write(`checkpoint: warning: ${chosen.warning}\n`);
  let id = chosen.id;
  // A sharded run over a merged checkpoint starts a run of its own from it (its part of what remains).
  let merged: Checkpoint | undefined;
  if (shard && existing) {
    const ck = read ?? (await Checkpoint.read(root, id));
    if (ck.state.planName === plan.name && isUnboundMerge(ck.state)) {
      merged = ck;
      existing = false;
      id = await newRunId(root, plan.name, new Date(), `shard${shard.index}of${shard.total}`);
    }
  }
  let seed: Seed | undefined;

  // Signals that arrive before the engine exists end the command with 75 once set-up is undone.
  let engine: Engine | undefined;
  let early: string | undefined;
  let sigints = 0;
  let signal: NodeJS.Signals | undefined;
  const outcome = (exitCode: number, result?: RunResult): RunOutcome => ({
    exitCode,
    plan,
    root,
    runId: id,
    ...(result ? { result } : {}),
    ...(signal ? { signal } : {}),
  });
  const onSignal = (sig: NodeJS.Signals) => {
    signal ??= sig;
    if (sig === 'SIGINT') sigints += 1;
    if (!engine) {
      // Set-up normally ends in milliseconds; a hanging items command is ended (it is started by the one
      // spawner, in its own group), set-up then fails, the lease is let go and the command exits 75.
      early = sig;
      stopAll(sigints >= 2 ? 0 : 3000);
      return;
    }
    if (sig === 'SIGINT' && sigints >= 2) engine.stop('second SIGINT: no grace', 0);
    else engine.stop(`received ${sig}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let lease: Lease | undefined;
  try {
    let ckpt: Checkpoint;
    let prep: Preparation;
    if (existing) {
      if (!opts.dryRun) lease = await acquireLease(`${root}/${id}`, { runId: id, attempt: 0 });
      // A dry run reuses the read made to choose the run; a real one reads again under the lease.
      ckpt = opts.dryRun && read ? read : await Checkpoint.read(root, id);
      if (ckpt.state.planName !== '' && ckpt.state.planName !== plan.name) {
        throw new UsageError(
          `--run ${id}: that run belongs to plan "${ckpt.state.planName}", not "${plan.name}"; pick another run or use --new`,
        );
      }
      checkRunShard(id, ckpt.state.shard, shard, ckpt.state.merge?.run);
      const opened = ckpt;
      prep = await prepare(plan, ckpt.state, {
        only: opts.only ?? [],
        env: io.env,
        checkDrift: opts.dryRun === true,
        frozenItems: (step) => opened.readItems(step),
      });
    } else {
      ckpt = Checkpoint.blank(root, id, plan.name, shard);
      if (merged && shard) {
        seed = await seedFromMerge(merged, plan, shard);
        prep = await seededPrepare(plan, ckpt, seed, {
          only: opts.only ?? [],
          env: io.env,
          checkDrift: opts.dryRun === true,
        });
      } else
        prep = await prepare(plan, ckpt.state, {
          only: opts.only ?? [],
          env: io.env,
          checkDrift: opts.dryRun === true,
        });
    }
    if (existing && isNoop(plan, ckpt, prep)) {
      const line = `run ${id} of plan ${plan.name} is complete: nothing to do (\`checkpoint run --new\` starts a fresh run)`;
      if (opts.dryRun) io.out.write(`${line}\n`);
      else
        io.out.write(
          `${io.out.isTTY === true && io.env.CI !== 'true' ? '' : `${new Date().toISOString()} `}${line}\n`,
        );
      return outcome(EXIT_OK, completeResult(plan, ckpt));
    }
    if (opts.dryRun) {
      printExplain(io.out, plan, prep, existing ? id : `${id} (new)`);
      return outcome(EXIT_OK);
    }
    let creating: Lease | undefined;
    if (!lease) {
      await ensureDir(root);
      if (!opts.new && opts.run === undefined) {
        // Runs started together on a fresh folder must agree on one run: creating one is serialised by a
        // lease on the root, and whoever comes second joins (or is refused by) the run the first created.
        creating = await acquireCreating(root, id);
        const latest = (await resolveLatest(root, plan.name)).runId;
        if (latest && latest !== id && (await Checkpoint.exists(root, latest))) {
          const other = await Checkpoint.read(root, latest);
          // A merge stays as it is: every shard starts its own run from it.
          if (other.state.planName === plan.name && !(shard && isUnboundMerge(other.state))) {
            checkRunShard(latest, other.state.shard, shard);
            lease = await acquireLease(`${root}/${latest}`, { runId: latest, attempt: 0 });
            id = latest;
            seed = undefined;
            ckpt = await Checkpoint.read(root, id);
            const joined = ckpt;
            prep = await prepare(plan, ckpt.state, {
              only: opts.only ?? [],
              env: io.env,
              frozenItems: (step) => joined.readItems(step),
            });
          }
        }
      }
    }
    if (!lease) {
      await ensureDir(`${root}/${id}`);
      lease = await acquireLease(`${root}/${id}`, { runId: id, attempt: 0 });
      if (await Checkpoint.exists(root, id)) {
        // Another run started with the same id in the same second and has finished: continue from it.
        seed = undefined;
        ckpt = await Checkpoint.read(root, id);
        checkRunShard(id, ckpt.state.shard, shard, ckpt.state.merge?.run);
        const joined = ckpt;
        prep = await prepare(plan, ckpt.state, {
          only: opts.only ?? [],
          env: io.env,
          frozenItems: (step) => joined.readItems(step),
        });
      }
    }
    try {
      await ckpt.openForWrite(lease ? { lease } : {});
      if (seed) await applySeed(ckpt, seed);
    } finally {
      await creating?.release();
    }
    if (early) {
      io.err.write(`checkpoint: received ${early} before starting; nothing ran\n`);
      return outcome(EXIT_INCOMPLETE);
    }
    // Past here a signal stops the engine; set-up is over.
    const tty = io.out.isTTY === true && io.env.CI !== 'true';
    const progress = new Progress(
      plan,
      ckpt,
      prep.selected.map((s) => s.id),
      { tty, color: colorEnabled(io.out, io.env), out: io.out },
    );
    const report = ckpt.loadReport;
    if (report.rebuiltFrom) progress.line(`warning: ${report.rebuiltFrom}`);
    if (report.tornTail)
      progress.line('note: ignored a torn last line in the journal (the run before was cut off mid-write)');
    progress.line(
      `${existing ? 'resuming' : 'starting'} run ${id} of plan ${plan.name}${shard ? ` as shard ${shardLabel(shard)}` : ''} in ${shown(ckpt.dir)} (host ${hostname()})`,
    );
    if (seed) progress.line(seedLine(seed));
    // `refresh: true`: what this attempt appended to each list and which items are gone, by name.
    for (const step of prep.selected) {
      const note = prep.info.get(step.id)?.refresh;
      if (note) progress.line(`${step.id}: ${note}`);
    }
    engine = new Engine(plan, ckpt, prep, {
      concurrency,
      deadline,
      env: shardEnv(io.env, shard),
      onEvent: (ev) => {
        progress.event(ev);
        hooks.onEvent?.(ev);
      },
      onOutput: (label, line, stream) => progress.output(label, line, stream),
    });
    const lost = (reason: string) => engine?.stop(`lease lost: ${reason}`, 0);
    lease.onLost(lost);
    hooks.onEngine?.(ckpt, engine, plan);
    progress.start();
    let result: RunResult;
    try {
      result = await engine.run();
    } catch (err) {
      progress.stop();
      // The engine's error (say, a failed journal write) is the one to report, not a second one from closing.
      await ckpt.close().catch(() => undefined);
      throw err;
    }
    progress.stop();
    await ckpt.close();
    progress.line(
      `${result.exitCode === EXIT_OK ? 'complete' : result.reason}: ${result.unitsDone} of ${result.unitsDone + result.unitsRemaining} units done` +
        `${result.unitsFailed ? `, ${result.unitsFailed} failed` : ''} (attempt ${result.attempt}, exit ${result.exitCode})`,
    );
    const waiting = result.waitingForApproval ?? [];
    if (result.exitCode === EXIT_INCOMPLETE && waiting.length === 0)
      progress.line(
        `resume with: checkpoint run${opts.file !== 'checkpoint.yml' ? ` -f ${opts.file}` : ''}${shard ? ` --shard ${shardLabel(shard)}` : ''}`,
      );
    if (waiting.length > 0) {
      // The last line names the steps and the way on, for the CLI and for the action's log.
      const where = `${opts.file !== 'checkpoint.yml' ? ` -f ${opts.file}` : ''}${opts.dir !== undefined ? ` --dir ${opts.dir}` : ''}`;
      progress.line(
        `approve with: checkpoint approve ${waiting.join(' ')}${where}, then run again: checkpoint run${opts.file !== 'checkpoint.yml' ? ` -f ${opts.file}` : ''}${shard ? ` --shard ${shardLabel(shard)}` : ''} (GitHub Action: run the workflow again with the input \`approve: ${waiting.join(', ')}\`)`,
      );
    }
    return outcome(result.exitCode, result);
  } catch (err) {
    // A signal during set-up ends what set-up started (an items command); whatever that made fail, the
    // command stopped because it was asked to, and nothing ran.
    if (early && !engine)
      throw new StoppedError(`received ${early} during set-up; nothing ran (run the same command again)`);
    throw err;
  } finally {
    // Released before the handlers go: a signal while the lease is let go must not kill the process (exit
    // 130 after it printed "exit 75").
    await lease?.release();
    // The run is over and only reporting and the exit are left: a late Ctrl-C or SIGTERM must not kill
    // the process by its signal (exit 130 for a run that ended 0 or 75). Without a listener Node gives the
    // signal back to its default action at once, so the no-op goes on before onSignal goes off. Only when
    // nobody else listens (the CLI): a caller with its own handlers (the action's main) decides itself.
    if (process.listenerCount('SIGINT') === 1) ignoreLateSignals();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const ignore = () => {};

function ignoreLateSignals(): void {
  if (process.listeners('SIGINT').includes(ignore)) return;
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
}
