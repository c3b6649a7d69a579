// `command: report` with `shard: N` (or `*/N`): the final job of a sharded matrix. Restores every shard's
// newest checkpoint from the store (one key per shard, the keys the matrix jobs saved under), gathers them
// into one report, writes it to the job summary and sets the outputs (`complete`: the union of the shards'
// done work is the whole of every step, and no range was done twice). When the shards add up, it also saves
// their done work merged into one checkpoint under `<key>-merged` (src/session/merge.ts): a later matrix of
// any size starts from it (main-run.ts restores it for a shard whose own key has no entry).
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as core from '@actions/core';
import { parse } from 'yaml';
import { Checkpoint } from '../journal/checkpoint.js';
import { loadFrozenItems } from '../report/items.js';
import {
  gatherShards,
  readShardLogTails,
  renderReportMarkdown,
  renderReportText,
  type ShardReport,
  type ShardSource,
} from '../report/shards.js';
import { mergeProblems, writeMerge } from '../session/merge.js';
import type { RunnerConfig } from './config.js';
import { InputError } from './inputs.js';
import { mergedKey, shardKeys } from './keys.js';
import { coreLog } from './log-groups.js';
import type { MainContext } from './main-run.js';
import { makeStore } from './store-factory.js';
import { keySync } from './sync.js';

const KEY_FIX =
  'set the same `key` in the matrix job and in this job (for example `key: backfill-$' +
  '{{ github.run_id }}`); the shards are then saved and found under `<key>-shardIofN`';

/**
 * Without an explicit `key`, the shards saved under `<workflow>-<job>-shardIofN-<run_id>`, where `<job>` is
 * the matrix job. A job cannot see another job's id, so it is read from the workflow file in the workspace
 * (GITHUB_WORKFLOW_REF): the job this one `needs` that has a matrix (or the only job it needs).
 */
export async function matrixJobOf(cfg: RunnerConfig): Promise<string> {
  const why = (reason: string) =>
    new InputError(
      `input \`key\`: \`command: report\` without \`key\` looks for the checkpoints of the matrix job this job \`needs\`, but ${reason}; ${KEY_FIX}`,
    );
  const ref = cfg.workflowRef;
  if (!ref) throw why('GITHUB_WORKFLOW_REF is not set, so the workflow file is unknown');
  const at = ref.lastIndexOf('@');
  const full = at >= 0 ? ref.slice(0, at) : ref;
  const prefix = `${cfg.repository}/`;
  const path = full.startsWith(prefix) ? full.slice(prefix.length) : full.replace(/^[^/]+\/[^/]+\//, '');
  let text: string;
  try {
    text = await readFile(join(cfg.workspace, path), 'utf8');
  } catch {
    throw why(`the workflow file ${path} is not in the workspace (check the repository out first)`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw why(`the workflow file ${path} could not be read (${(err as Error).message})`);
  }
  const jobs = (doc as { jobs?: Record<string, { needs?: unknown; strategy?: { matrix?: unknown } }> } | null)
    ?.jobs;
  const me = jobs?.[cfg.job];
  if (!jobs || !me) throw why(`${path} has no job "${cfg.job}"`);
  const needs = (typeof me.needs === 'string' ? [me.needs] : Array.isArray(me.needs) ? me.needs : []).filter(
    (j): j is string => typeof j === 'string',
  );
  const matrix = needs.filter((j) => jobs[j]?.strategy?.matrix !== undefined);
  const pick = matrix.length > 0 ? matrix : needs;
  if (pick.length === 1) return pick[0] as string;
  throw why(
    needs.length === 0
      ? `job "${cfg.job}" has no \`needs:\``
      : `job "${cfg.job}" needs ${needs.join(', ')} and it is not clear which one is the sharded matrix`,
  );
}

/** Every output, for the shards as a whole. */
function setReportOutputs(report: ShardReport, keys: string[]): void {
  const done = report.steps.filter((s) => s.complete).length;
  const outputs: Record<string, Record<string, string>> = {};
  // Shard 0 first: a `shards: first` step's outputs come from there; other shards add what it lacks.
  for (const s of report.steps) {
    for (const c of s.shards) {
      for (const [k, v] of Object.entries(c.stats?.outputs ?? {})) {
        outputs[s.id] ??= {};
        (outputs[s.id] as Record<string, string>)[k] ??= v;
      }
    }
  }
  core.setOutput('complete', String(report.complete));
  core.setOutput('resumed', String(report.shards.some((s) => s.present)));
  core.setOutput(
    'run-id',
    report.shards
      .map((s) => s.runId)
      .filter((id): id is string => id !== null)
      .join(','),
  );
  core.setOutput('steps-done', String(done));
  core.setOutput('steps-remaining', String(report.steps.length - done));
  core.setOutput('units-done', String(report.units.done));
  core.setOutput('units-remaining', String(report.units.remaining));
  core.setOutput('outputs', JSON.stringify(outputs));
  core.setOutput('checkpoint-key', keys.join(','));
}

/**
 * The shards' done work as one checkpoint under `<key>-merged`, for a matrix of another size to start from.
 * Shards that do not add up (or a shard without a checkpoint) are not merged: a warning says why, and the
 * merged entry saved before, if any, stays the newest.
 */
async function saveMerge(
  ctx: MainContext,
  report: ShardReport,
  sources: ShardSource[],
  key: string,
  store: ReturnType<typeof makeStore>,
): Promise<void> {
  if (store.kind === 'none' || sources.length === 0) return;
  const problems = mergeProblems(report, sources);
  if (problems.length > 0) {
    core.warning(
      `the shards were not merged, so a matrix of another size cannot start from them yet (${problems.length} problem(s)): ${problems[0]}${problems.length > 1 ? ' …' : ''}`,
    );
    return;
  }
  // The folder is this job's own output: a self-hosted runner may keep one from an earlier report.
  await rm(join(ctx.root, key), { recursive: true, force: true });
  const result = await writeMerge(report, sources, ctx.root, key);
  for (const note of result.notes) core.info(`merge: ${note}`);
  const sync = keySync(ctx, store, key, coreLog);
  const seq = (await Checkpoint.read(ctx.root, key)).state.seq;
  const done = result.steps.reduce((n, s) => n + s.done, 0);
  const units = result.steps.reduce((n, s) => n + s.units, 0);
  if (await sync.save(seq, 'merge of the shards'))
    core.info(
      `merged ${result.total} shards (${done}/${units} units done) and saved them under key ${key}: a matrix of any size with this key starts from there`,
    );
}

/** The report job; failures end as a failed step with their message (never a throw). */
export async function reportShards(ctx: MainContext): Promise<void> {
  const total = ctx.inputs.shards as number;
  let keys: string[];
  let merged: string;
  try {
    if (ctx.inputs.run !== undefined)
      throw new InputError(
        'input `run`: `command: report` gathers the shards of a plan file; give the matrix job’s `file` instead of `run`',
      );
    const base = { workflow: ctx.cfg.workflow, job: ctx.cfg.job, runId: ctx.cfg.runId };
    const campaign =
      ctx.inputs.key !== undefined
        ? { ...base, key: ctx.inputs.key }
        : { ...base, job: await matrixJobOf(ctx.cfg) };
    keys = shardKeys(campaign, total);
    merged = mergedKey(campaign);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    core.setFailed(err.message);
    return;
  }
  const store = makeStore(ctx.inputs, ctx.cfg);
  const sources: ShardSource[] = [];
  const warnings: string[] = [];
  // One at a time: a restore stages its bundle in one fixed folder of the workspace.
  for (const key of keys) {
    const sync = keySync(ctx, store, key, coreLog, { runOnly: true });
    const restored = await sync.restore();
    warnings.push(...sync.warnings);
    if (!(await Checkpoint.exists(ctx.root, key))) continue;
    try {
      const ckpt = await Checkpoint.read(ctx.root, key);
      sources.push({ source: restored.entry ?? key, ckpt, frozen: await loadFrozenItems(ckpt) });
    } catch (err) {
      const message = `the checkpoint of ${key} could not be read: ${(err as Error).message}`;
      warnings.push(message);
      core.warning(message);
    }
  }
  const report = gatherShards({ sources, plan: ctx.plan, total, warnings });
  core.info(renderReportText(report).trimEnd());
  await saveMerge(ctx, report, sources, merged, store);
  setReportOutputs(report, keys);
  if (ctx.cfg.summaryFile) {
    const logs = await readShardLogTails(report, sources);
    await appendFile(ctx.cfg.summaryFile, `${renderReportMarkdown(report, { logs })}\n`);
  }
  for (const e of report.errors) core.error(e, { title: 'checkpoint report: the shards do not add up' });
  if (!report.consistent) {
    core.setFailed(
      `the shards do not add up (${report.errors.length} error(s)): ${report.errors[0]}${report.errors.length > 1 ? ' …' : ''}`,
    );
  } else if (!report.complete) {
    core.info(
      `incomplete: ${report.units.remaining} units remain across ${report.total} shards (${report.shards.filter((s) => !s.present).length} without a checkpoint); complete=false`,
    );
  } else {
    core.info(`complete: all ${report.units.total} units of ${report.total} shards are done`);
  }
}
