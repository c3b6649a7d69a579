// `checkpoint explain` and `run --dry-run`: for every step, whether it will run and why.
import type { Preparation } from '../engine/prepare.js';
import type { Plan } from '../plan/types.js';
import { Checkpoint } from '../journal/checkpoint.js';
import { readLatest } from '../journal/runs.js';
import { prepare } from '../engine/prepare.js';
import { type CommonOptions, requirePlan, rootOf } from './context.js';
import type { Io } from './run.js';

export function printExplain(out: NodeJS.WritableStream, plan: Plan, prep: Preparation, runLabel: string): void {
  out.write(`plan ${plan.name} (${plan.steps.length} steps), run ${runLabel}\n`);
  const selected = new Set(prep.selected.map((s) => s.id));
  const width = Math.max(...plan.steps.map((s) => s.id.length));
  for (const step of plan.steps) {
    const i = prep.info.get(step.id);
    if (!i) continue;
    const verb = !selected.has(step.id) ? 'skip' : i.action === 'skip' ? 'skip' : i.action === 'partial' ? 'resume' : 'run';
    const why = !selected.has(step.id) ? 'not selected by --only' : i.why;
    const units = step.batch ? ` [${i.unitsDone}/${i.unitsTotal} units]` : '';
    const needs = step.needs.length ? ` after ${step.needs.join(', ')}` : '';
    out.write(`  ${verb.padEnd(6)} ${step.id.padEnd(width)}${units}${needs}${why ? `: ${why}` : ''}\n`);
  }
}

export async function explainCommand(opts: CommonOptions & { run?: string }, io: Io): Promise<number> {
  const plan = await requirePlan(opts);
  const root = rootOf(opts);
  const id = opts.run ?? (await readLatest(root));
  let ckpt: Checkpoint;
  let label: string;
  if (id && (await Checkpoint.exists(root, id))) {
    ckpt = await Checkpoint.read(root, id);
    label = id;
  } else {
    ckpt = Checkpoint.blank(root, 'new', plan.name);
    label = '(none yet: everything runs)';
  }
  const prep = await prepare(plan, ckpt.state, { env: io.env });
  printExplain(io.out, plan, prep, label);
  return 0;
}
