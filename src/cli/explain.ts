// `checkpoint explain`: for every step, whether it will run and why (the run `checkpoint run` would pick).
import { prepare } from '../engine/prepare.js';
import { Checkpoint } from '../journal/checkpoint.js';
import { printExplain } from '../report/explain.js';
import { type CommonOptions, requirePlan, rootOf } from '../session/context.js';
import type { Io } from '../session/io.js';
import { chooseRun } from '../session/run.js';

export async function explainCommand(opts: CommonOptions & { run?: string }, io: Io): Promise<number> {
  const plan = await requirePlan(opts);
  const root = rootOf(opts, plan);
  // The run that `checkpoint run` would pick, so explain and run never disagree.
  const { id, existing } = await chooseRun(plan, root, opts.run === undefined ? {} : { run: opts.run });
  const ckpt = existing ? await Checkpoint.read(root, id) : Checkpoint.blank(root, id, plan.name);
  const label = existing ? id : `${id} (new: the latest run is complete or absent)`;
  const prep = await prepare(plan, ckpt.state, {
    env: io.env,
    checkDrift: true,
    frozenItems: (step) => ckpt.readItems(step),
  });
  printExplain(io.out, plan, prep, label);
  return 0;
}
