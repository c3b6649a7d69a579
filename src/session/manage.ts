// Commands that change a checkpoint by hand: reset, mark-done, rollback, approve. Each takes the run's lease
// first.

import { rm } from 'node:fs/promises';
import { scrubEnv } from '../engine/env.js';
import { dependentsOf, prepare } from '../engine/prepare.js';
import { ManagedProcess } from '../exec/process.js';
import { Checkpoint, CheckpointCorruptError } from '../journal/checkpoint.js';
import { ensureDir } from '../journal/fsutil.js';
import { JournalCorruptError } from '../journal/journal-file.js';
import { acquireLease } from '../journal/lock.js';
import { SnapshotError, SnapshotVersionError } from '../journal/snapshot.js';
import { approvalOf, type CheckpointState, isStepComplete } from '../journal/state.js';
import type { Shard } from '../plan/space.js';
import { shardLabel } from '../plan/space.js';
import type { Plan, Step } from '../plan/types.js';
import { type CommonOptions, requirePlan, resolveRunId, rootOf, shown, UsageError } from './context.js';
import type { Io } from './io.js';
import {
  checkUnitSelection,
  describeTarget,
  resolveUnits,
  type UnitSelection,
  type UnitTarget,
} from './units.js';

function checkSteps(plan: Plan, ids: string[], flag: string): void {
  for (const id of ids) {
    if (!plan.steps.some((s) => s.id === id)) {
      throw new UsageError(
        `${flag}: no step "${id}" in ${shown(plan.file)}; steps: ${plan.steps.map((s) => s.id).join(', ')}`,
      );
    }
  }
}

/** The checkpoint cannot be read because it is damaged (not because a newer program wrote it). */
function isDamage(err: unknown): err is Error {
  return (
    err instanceof CheckpointCorruptError ||
    err instanceof JournalCorruptError ||
    (err instanceof SnapshotError && !(err instanceof SnapshotVersionError))
  );
}

interface StartedOver {
  /** Why the checkpoint could not be read. */
  damage: string;
  /** Where the damaged files were moved. */
  kept: string[];
}

async function withRun<T>(
  opts: CommonOptions & {
    run?: string;
    /** `reset --all`: a damaged run starts over instead of being refused (the way out its error names). */
    startOverIfDamaged?: boolean;
    /** Checks the arguments against the plan before the lease is taken (a usage error wins over a lock). */
    check?: (plan: Plan) => void;
    /** Checks against the checkpoint as read, before it is opened for writing: a refusal leaves it as it was. */
    inspect?: (plan: Plan, ckpt: Checkpoint) => Promise<void>;
  },
  fn: (plan: Plan, ckpt: Checkpoint, startedOver?: StartedOver) => Promise<T>,
): Promise<T> {
  const plan = await requirePlan(opts);
  opts.check?.(plan);
  const root = rootOf(opts, plan);
  const id = await resolveRunId(root, opts.run);
  const lease = await acquireLease(`${root}/${id}`, { runId: id, attempt: 0 });
  try {
    let ckpt: Checkpoint;
    let startedOver: StartedOver | undefined;
    try {
      ckpt = await Checkpoint.read(root, id);
    } catch (err) {
      if (!opts.startOverIfDamaged || !isDamage(err)) throw err;
      const fresh = await Checkpoint.startOver(root, id, plan.name);
      ckpt = fresh.ckpt;
      startedOver = { damage: err.message, kept: fresh.kept };
    }
    await opts.inspect?.(plan, ckpt);
    await ckpt.openForWrite({ lease });
    try {
      return await fn(plan, ckpt, startedOver);
    } finally {
      await ckpt.compact();
      await ckpt.close();
    }
  } finally {
    await lease.release();
  }
}

/** `--unit` / `--item` (and the action's `STEP:X`), with `--by`. */
export interface UnitOptions {
  unit?: string[];
  item?: string[];
  /** The action's `reset: STEP:X` entries of one step: an item name, else a unit index. */
  either?: string[];
  by?: string;
}

function selectionOf(opts: UnitOptions): UnitSelection | undefined {
  if (opts.unit !== undefined && opts.item !== undefined)
    throw new UsageError(
      '--unit and --item: give one of them (units by chunk index, or by the items they hold)',
    );
  if (opts.unit !== undefined) return { units: opts.unit };
  if (opts.item !== undefined) return { items: opts.item };
  if (opts.either !== undefined) return { either: opts.either };
  return undefined;
}

/** How errors name what was given: `reset --unit`, `mark-done --item`, the action's ``input `reset` ``. */
function labelOf(cmd: 'mark-done' | 'reset', sel: UnitSelection): string {
  return sel.units ? `${cmd} --unit` : sel.items ? `${cmd} --item` : 'input `reset`';
}

function byOf(opts: UnitOptions, io: Io): string {
  if (opts.by !== undefined && opts.by.trim() === '')
    throw new UsageError('--by: expected a name, e.g. `--by alice`');
  return opts.by?.trim() || defaultApprover(io.env);
}

/**
 * A step made pending whole (its record, marker, frozen list and state folder dropped), as `reset STEP`
 * does; `dependent`: it is reset because a step it depends on was. False when it had nothing to reset.
 */
async function resetWhole(
  ckpt: Checkpoint,
  id: string,
  dependent: boolean,
  by: string,
  io: Io,
): Promise<boolean> {
  const forget = () =>
    ckpt.record({ type: 'reset', step: id, failedOnly: false, forget: true, reason: 'checkpoint reset', by });
  const rec = ckpt.state.steps.get(id);
  // No record but an approval (given before the step was first prepared): the reset takes it back.
  if (!rec && approvalOf(ckpt.state, id)) {
    await forget();
    io.out.write(`reset ${id}: its approval is taken back\n`);
    return true;
  }
  if (!rec) return false;
  const approved = approvalOf(ckpt.state, id) !== undefined;
  await forget();
  await ckpt.clearStepFiles(id);
  await rm(ckpt.stateDir(id), { recursive: true, force: true });
  io.out.write(
    `reset ${id}${dependent ? ' (depends on a reset step)' : ''}: all its work is pending again${approved ? '; its approval is taken back (approve it again before it runs)' : ''}\n`,
  );
  return true;
}

/** `reset STEP --unit N..` / `--item NAME..`: those units pending again, the step's dependents whole. */
async function resetUnits(
  step: string,
  sel: UnitSelection,
  opts: CommonOptions & { run?: string } & UnitOptions,
  io: Io,
): Promise<number> {
  const where = labelOf('reset', sel);
  const by = byOf(opts, io);
  let target: UnitTarget | undefined;
  return withRun(
    {
      ...opts,
      check: (plan) => {
        checkSteps(plan, [step], 'reset');
        checkUnitSelection(plan, 'reset', [step], sel, where);
      },
      inspect: async (plan, ckpt) => {
        target = await resolveUnits(plan, ckpt, 'reset', step, sel, where, io.env);
      },
    },
    async (plan, ckpt) => {
      const t = target as UnitTarget;
      const rec = ckpt.state.steps.get(step);
      if (!rec) io.out.write(`reset ${step} ${describeTarget(t)}: pending already (the step has not run)\n`);
      else {
        const approved = approvalOf(ckpt.state, step) !== undefined;
        const had = t.ranges.some(
          ([s, e]) => rec.done.overlaps(s, e) || [...rec.failed.keys()].some((f) => f >= s && f < e),
        );
        await ckpt.record({
          type: 'reset',
          step,
          failedOnly: false,
          reason: `checkpoint reset ${where}`,
          ranges: t.ranges,
          by,
        });
        if (!isStepComplete(rec)) await ckpt.removeMarker(step);
        io.out.write(
          `reset ${step} ${describeTarget(t)}: ${had ? 'pending again' : 'pending already'} (by ${by}); the rest of its work stays${approved ? '; its approval is taken back (approve it again before it runs)' : ''}\n`,
        );
      }
      const deps = dependentsOf(plan, [step]);
      for (const id of plan.steps.map((s) => s.id))
        if (id !== step && deps.has(id)) await resetWhole(ckpt, id, true, by, io);
      return 0;
    },
  );
}

export async function resetCommand(
  steps: string[],
  opts: CommonOptions & { run?: string; all?: boolean; failed?: boolean } & UnitOptions,
  io: Io,
): Promise<number> {
  const sel = selectionOf(opts);
  if (sel) {
    if (opts.all || opts.failed)
      throw new UsageError(
        `${labelOf('reset', sel)}: not with ${opts.all ? '--all' : '--failed'}; name one step and its units, e.g. \`checkpoint reset STEP --unit 3\``,
      );
    if (steps.length !== 1)
      throw new UsageError(
        `${labelOf('reset', sel)}: name exactly one step (the units are that step's), got ${steps.length === 0 ? 'none' : steps.join(', ')}; e.g. \`checkpoint reset STEP --unit 3\``,
      );
    return resetUnits(steps[0] as string, sel, opts, io);
  }
  if (!opts.all && steps.length === 0 && !opts.failed) {
    throw new UsageError('reset: name the steps to reset, or pass --all (or --failed for failed units only)');
  }
  const startOverIfDamaged = opts.all === true && !opts.failed;
  return withRun({ ...opts, startOverIfDamaged }, async (plan, ckpt, startedOver) => {
    checkSteps(plan, steps, 'reset');
    if (startedOver) {
      // The records went with the damaged files: so do the side files of every step.
      for (const s of plan.steps) {
        await ckpt.clearStepFiles(s.id);
        await rm(ckpt.stateDir(s.id), { recursive: true, force: true });
      }
      io.err.write(`checkpoint: ${startedOver.damage}\n`);
      io.out.write(
        `reset --all: run ${ckpt.runId} starts over, every step is pending again; the damaged files are kept as ${startedOver.kept.map(shown).join(', ')}\n`,
      );
      return 0;
    }
    const named = opts.all || steps.length === 0 ? plan.steps.map((s) => s.id) : steps;
    const targets = opts.failed ? new Set(named) : dependentsOf(plan, named);
    let n = 0;
    const by = byOf(opts, io);
    // Each named step and its dependents go whole: the next run starts them afresh (items expanded again).
    for (const id of plan.steps.map((s) => s.id)) {
      if (!targets.has(id)) continue;
      if (opts.failed) {
        const failed = ckpt.state.steps.get(id)?.failed.size ?? 0;
        if (failed === 0) continue;
        await ckpt.record({
          type: 'reset',
          step: id,
          failedOnly: true,
          reason: 'checkpoint reset --failed',
          by,
        });
        io.out.write(`reset ${id}: ${failed} failed unit(s) are pending again with fresh tries\n`);
        n += 1;
      } else if (await resetWhole(ckpt, id, !named.includes(id), by, io)) n += 1;
    }
    if (n === 0) io.out.write('nothing to reset\n');
    return 0;
  });
}

/** `mark-done STEP --unit N..` / `--item NAME..`: those units done by hand; nothing else changes. */
async function markUnitsDone(
  step: string,
  sel: UnitSelection,
  opts: CommonOptions & { run?: string } & UnitOptions,
  io: Io,
): Promise<number> {
  const where = labelOf('mark-done', sel);
  const by = byOf(opts, io);
  let target: UnitTarget | undefined;
  return withRun(
    {
      ...opts,
      check: (plan) => {
        checkSteps(plan, [step], 'mark-done');
        checkUnitSelection(plan, 'mark-done', [step], sel, where);
      },
      inspect: async (plan, ckpt) => {
        target = await resolveUnits(plan, ckpt, 'mark-done', step, sel, where, io.env);
      },
    },
    async (_plan, ckpt) => {
      const t = target as UnitTarget;
      if (t.init) {
        await ckpt.record(t.init.event);
        if (t.init.items) await ckpt.writeItems(step, t.init.items);
      }
      const rec = ckpt.state.steps.get(step);
      const already = rec ? t.ranges.every(([s, e]) => rec.done.covers(s, e)) : false;
      await ckpt.record({ type: 'mark-done', step, ranges: t.ranges, by });
      const after = ckpt.state.steps.get(step);
      const complete = after !== undefined && isStepComplete(after);
      if (complete) await ckpt.writeMarker(step);
      io.out.write(
        `marked ${step} ${describeTarget(t)} done (by hand, by ${by})${already ? '; they were done already' : ''}${complete ? `; ${step} is complete` : ''}\n`,
      );
      return 0;
    },
  );
}

export async function markDoneCommand(
  steps: string[],
  opts: CommonOptions & { run?: string } & UnitOptions,
  io: Io,
): Promise<number> {
  if (steps.length === 0)
    throw new UsageError('mark-done: name at least one step, e.g. `checkpoint mark-done schema`');
  const sel = selectionOf(opts);
  if (sel) {
    if (steps.length !== 1)
      throw new UsageError(
        `${labelOf('mark-done', sel)}: name exactly one step (the units are that step's), got ${steps.join(', ')}; e.g. \`checkpoint mark-done ${steps[0]} ${sel.items ? '--item NAME' : '--unit 3'}\``,
      );
    return markUnitsDone(steps[0] as string, sel, opts, io);
  }
  const by = byOf(opts, io);
  return withRun(opts, async (plan, ckpt) => {
    checkSteps(plan, steps, 'mark-done');
    const prep = await prepare(plan, ckpt.state, { env: io.env });
    for (const ev of prep.events) {
      if (ev.type === 'step-init' && steps.includes(ev.step) && !ckpt.state.steps.has(ev.step)) {
        await ckpt.record(ev);
        const list = prep.items.get(ev.step);
        if (list) await ckpt.writeItems(ev.step, list);
      }
    }
    for (const id of steps) {
      await ckpt.record({ type: 'mark-done', step: id, by });
      await ckpt.writeMarker(id);
      io.out.write(`marked ${id} done (by hand, by ${by})\n`);
    }
    return 0;
  });
}

export async function rollbackCommand(
  opts: CommonOptions & { run?: string; to?: string },
  io: Io,
): Promise<number> {
  return withRun(opts, async (plan, ckpt) => {
    if (opts.to) checkSteps(plan, [opts.to], '--to');
    const order = rollbackOrder(plan, ckpt.state);
    if (order.length === 0) {
      io.out.write('nothing to roll back: no step has done work\n');
      return 0;
    }
    const to = opts.to;
    if (to !== undefined && !order.some((s) => s.id === to)) {
      throw new UsageError(
        `rollback --to ${to}: step "${to}" has no done work, so there is nothing to roll back to; steps with done work, newest first: ${order.map((s) => s.id).join(', ')}`,
      );
    }
    const todo = to === undefined ? order : order.slice(0, order.findIndex((s) => s.id === to) + 1);
    io.out.write(
      `rolling back ${todo.length} step(s), dependents first, then newest done work first: ${todo.map((s) => s.id).join(', ')}\n`,
    );
    let ran = 0;
    let undone = 0;
    for (const s of todo) {
      if (s.rollback) {
        io.out.write(`rollback ${s.id}: ${s.rollback.split('\n')[0]}\n`);
        const proc = new ManagedProcess({
          argv: [...plan.shell.argv, s.rollback],
          cwd: s.workingDirectory,
          env: {
            ...scrubEnv(io.env),
            ...s.env,
            CHECKPOINT_RUN_ID: ckpt.runId,
            CHECKPOINT_STEP: s.id,
            CHECKPOINT_STATE_DIR: ckpt.stateDir(s.id),
            CHECKPOINT_OUTPUTS: ckpt.outputsPath(),
          },
          onLine: (line) => io.out.write(`[${s.id} rollback] ${line}\n`),
        });
        const exit = await proc.exited;
        if (exit.code !== 0) {
          io.err.write(
            `rollback of ${s.id} failed (${exit.spawnError ?? `exit code ${exit.code ?? exit.signal}`}); later steps were rolled back, ${s.id} and earlier ones were not. Fix it and run \`checkpoint rollback\` again.\n`,
          );
          return 1;
        }
        ran += 1;
      } else {
        io.out.write(
          `rollback ${s.id}: no rollback command; its work is pending again (nothing outside the checkpoint was undone)\n`,
        );
      }
      await ckpt.record({
        type: 'reset',
        step: s.id,
        failedOnly: false,
        forget: true,
        reason: 'rolled back',
      });
      await ckpt.clearStepFiles(s.id);
      undone += 1;
    }
    io.out.write(`rolled back ${undone} step(s), ${ran} rollback command(s) run\n`);
    return 0;
  });
}

/**
 * The steps with done work in the order `rollback` undoes them: a step only after every step that depends
 * on it (directly or through steps with no done work), and among those free to go, the one whose work was
 * done last first. The time is that of the step's last done unit (`lastDoneAt`); a checkpoint written
 * before that was recorded has only `completedAt`, and a step with neither counts as oldest.
 */
export function rollbackOrder(plan: Plan, state: CheckpointState): Step[] {
  const left = new Map<string, { step: Step; at: number }>();
  for (const step of plan.steps) {
    const rec = state.steps.get(step.id);
    if (!rec || !(isStepComplete(rec) || rec.unitsDone > 0)) continue;
    left.set(step.id, { step, at: rec.lastDoneAt ?? rec.completedAt ?? Number.NEGATIVE_INFINITY });
  }
  // Dependents (transitive) of each step with done work, among the steps with done work.
  const waitsFor = new Map<string, Set<string>>();
  for (const id of left.keys()) {
    const deps = dependentsOf(plan, [id]);
    deps.delete(id);
    waitsFor.set(id, new Set([...deps].filter((d) => left.has(d))));
  }
  const out: Step[] = [];
  while (left.size > 0) {
    let best: { step: Step; at: number } | undefined;
    for (const [id, entry] of left) {
      const blocked = [...(waitsFor.get(id) ?? [])].some((d) => left.has(d));
      if (blocked) continue;
      // Ties (same millisecond, or no time at all): the step later in the plan first.
      if (!best || entry.at > best.at || (entry.at === best.at && entry.step.index > best.step.index))
        best = entry;
    }
    // Needs are acyclic (the plan loader refuses cycles), so some step is always free to go.
    if (!best) break;
    out.push(best.step);
    left.delete(best.step.id);
  }
  return out;
}

/** Who approves when `--by` is not given: the GitHub actor, else the local user. */
export function defaultApprover(env: NodeJS.ProcessEnv): string {
  return env.GITHUB_ACTOR?.trim() || env.USER?.trim() || env.USERNAME?.trim() || 'unknown';
}

/** `approve b,c d` and `approve: "b, c"`: step ids split on commas and white space. */
export function approvalIds(args: readonly string[]): string[] {
  return [...new Set(args.flatMap((a) => a.split(/[\s,]+/)).filter((a) => a !== ''))];
}

/**
 * Every id names a step of the plan with `approval: true`; otherwise a usage error naming the step and the
 * fix. `where` starts the message: `approve` for the command, ``input `approve` `` for the action.
 */
export function checkApprovable(plan: Plan, ids: readonly string[], where: string): void {
  const gated = plan.steps.filter((s) => s.approval).map((s) => s.id);
  const which =
    gated.length > 0
      ? `steps that wait for approval: ${gated.join(', ')}`
      : 'no step of this plan has `approval: true`';
  for (const id of ids) {
    const step = plan.steps.find((s) => s.id === id);
    if (!step) {
      throw new UsageError(
        `${where}: no step "${id}" in ${shown(plan.file)}; ${which} (all steps: ${plan.steps.map((s) => s.id).join(', ')})`,
      );
    }
    if (!step.approval) {
      throw new UsageError(
        `${where}: step "${id}" does not wait for approval; add \`approval: true\` to it in ${shown(plan.file)} to make it a manual intervention point (${which})`,
      );
    }
  }
}

/** Records an `approve` event for each step and says so; approving again replaces who and when. */
async function recordApprovals(ckpt: Checkpoint, ids: readonly string[], by: string, io: Io): Promise<void> {
  for (const id of ids) {
    const before = approvalOf(ckpt.state, id);
    await ckpt.record({ type: 'approve', step: id, by });
    const rec = ckpt.state.steps.get(id);
    const done = rec !== undefined && isStepComplete(rec) ? ' (it is done already)' : '';
    const again = before
      ? `; it was approved before by ${before.by} at ${new Date(before.at).toISOString()}`
      : '';
    io.out.write(`approved ${id} (by ${by})${done}${again}\n`);
  }
}

export async function approveCommand(
  steps: string[],
  opts: CommonOptions & { run?: string; by?: string },
  io: Io,
): Promise<number> {
  const ids = approvalIds(steps);
  if (ids.length === 0)
    throw new UsageError('approve: name at least one step, e.g. `checkpoint approve deploy`');
  if (opts.by !== undefined && opts.by.trim() === '')
    throw new UsageError('--by: expected a name, e.g. `--by alice`');
  const by = opts.by?.trim() || defaultApprover(io.env);
  const check = (plan: Plan) => checkApprovable(plan, ids, 'approve');
  return withRun({ ...opts, check }, async (_plan, ckpt) => {
    await recordApprovals(ckpt, ids, by, io);
    const again = [
      'checkpoint run',
      opts.file !== 'checkpoint.yml' ? `-f ${opts.file}` : '',
      opts.dir !== undefined ? `--dir ${opts.dir}` : '',
      opts.run !== undefined ? `--run ${ckpt.runId}` : '',
      // A sharded run resumes only with its own shard.
      ckpt.state.shard ? `--shard ${shardLabel(ckpt.state.shard)}` : '',
    ].filter(Boolean);
    io.out.write(`run again to continue: ${again.join(' ')}\n`);
    return 0;
  });
}

/**
 * The action's `approve` input: records the approvals in the run `runId` (after the restore, before the
 * engine), creating the run when there is no checkpoint yet, so a first run can be approved up front.
 * The ids are checked with `checkApprovable` first.
 */
export async function approveInRun(
  o: { plan: Plan; root: string; runId: string; ids: readonly string[]; by: string; shard?: Shard },
  io: Io,
): Promise<void> {
  const dir = `${o.root}/${o.runId}`;
  await ensureDir(o.root);
  const lease = await acquireLease(dir, { runId: o.runId, attempt: 0 });
  try {
    const exists = await Checkpoint.exists(o.root, o.runId);
    const ckpt = exists
      ? await Checkpoint.read(o.root, o.runId)
      : Checkpoint.blank(o.root, o.runId, o.plan.name, o.shard);
    await ckpt.openForWrite({ lease });
    try {
      await recordApprovals(ckpt, o.ids, o.by, io);
    } finally {
      await ckpt.compact();
      await ckpt.close();
    }
  } finally {
    await lease.release();
  }
}
