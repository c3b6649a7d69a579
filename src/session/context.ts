// What every command needs first: the plan (or a clear exit 2), the checkpoint root, and the run to act on.
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { Checkpoint } from '../journal/checkpoint.js';
import { listRunIds, readLatest } from '../journal/runs.js';
import { PlanError } from '../plan/errors.js';
import { loadPlan } from '../plan/load.js';
import type { Plan } from '../plan/types.js';

export { UsageError } from '../errors.js';

export interface CommonOptions {
  file: string;
  dir?: string;
}

export function planPath(opts: CommonOptions): string {
  return resolve(opts.file);
}

/** `--dir`, else `.checkpoints/` beside the plan file (in the plan's folder, when it is loaded). */
export function rootOf(opts: CommonOptions, plan?: Plan): string {
  if (opts.dir) return isAbsolute(opts.dir) ? opts.dir : resolve(opts.dir);
  return resolve(plan?.dir ?? dirname(planPath(opts)), '.checkpoints');
}

export function shown(p: string): string {
  const r = relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') && r.length > p.length ? p : r;
}

export async function requirePlan(opts: CommonOptions): Promise<Plan> {
  return loadPlan(planPath(opts));
}

/** The plan when it loads; undefined when the file is absent (status and runs work from the checkpoint alone). */
export async function optionalPlan(opts: CommonOptions): Promise<Plan | undefined> {
  try {
    return await loadPlan(planPath(opts));
  } catch (err) {
    if (err instanceof PlanError && /file not found/.test(err.message)) return undefined;
    throw err;
  }
}

/** `--run ID`, else `latest`, else the newest run folder. */
export async function resolveRunId(root: string, runOpt: string | undefined): Promise<string> {
  if (runOpt) {
    if (!(await Checkpoint.exists(root, runOpt))) {
      const known = await listRunIds(root);
      throw new UsageError(
        `--run: no run "${runOpt}" in ${shown(root)}${known.length ? `; known runs: ${known.slice(-5).join(', ')}` : ''}`,
      );
    }
    return runOpt;
  }
  const latest = await readLatest(root);
  if (latest && (await Checkpoint.exists(root, latest))) return latest;
  const ids = await listRunIds(root);
  const last = ids[ids.length - 1];
  if (!last) throw new UsageError(`no runs in ${shown(root)} yet; start one with \`checkpoint run\``);
  return last;
}
