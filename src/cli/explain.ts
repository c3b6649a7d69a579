// `checkpoint explain` and `run --dry-run`: for every step, whether it will run and why.
import type { Preparation } from '../engine/prepare.js';
import { prepare } from '../engine/prepare.js';
import { Checkpoint } from '../journal/checkpoint.js';
import type { Plan } from '../plan/types.js';
import { type CommonOptions, requirePlan, rootOf } from './context.js';
import { chooseRun, type Io } from './run.js';

export function printExplain(
  out: NodeJS.WritableStream,
  plan: Plan,
  prep: Preparation,
  runLabel: string,
): void {
  out.write(`plan ${plan.name} (${plan.steps.length} steps), run ${runLabel}\n`);
  const selected = new Set(prep.selected.map((s) => s.id));
  const width = Math.max(...plan.steps.map((s) => s.id.length));
  for (const step of plan.steps) {
    const i = prep.info.get(step.id);
    if (!i) continue;
    const verb = !selected.has(step.id)
      ? 'skip'
      : i.action === 'skip'
        ? 'skip'
        : i.action === 'partial'
          ? 'resume'
          : 'run';
    const why = !selected.has(step.id) ? 'not selected by --only' : i.why;
    const units = step.batch ? ` [${i.unitsDone}/${i.unitsTotal} units]` : '';
    const needs = step.needs.length ? ` after ${step.needs.join(', ')}` : '';
    out.write(`  ${verb.padEnd(6)} ${step.id.padEnd(width)}${units}${needs}${why ? `: ${why}` : ''}\n`);
    if (i.itemsDrift) out.write(`         ${' '.repeat(width)}note: ${i.itemsDrift}\n`);
  }
}

export async function explainCommand(opts: CommonOptions & { run?: string }, io: Io): Promise<number> {
  const plan = await requirePlan(opts);
  const root = rootOf(opts, plan);
  // The run that `checkpoint run` would pick, so explain and run never disagree.
  const { id, existing } = await chooseRun(plan, root, opts.run === undefined ? {} : { run: opts.run });
  const ckpt = existing ? await Checkpoint.read(root, id) : Checkpoint.blank(root, id, plan.name);
  const label = existing ? id : `${id} (new: the latest run is complete or absent)`;
  const prep = await prepare(plan, ckpt.state, { env: io.env, checkDrift: true });
  printExplain(io.out, plan, prep, label);
  return 0;
}
