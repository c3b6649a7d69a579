// What the action tells the job: outputs (on every path), the job summary, and error annotations for
// failed units.
import { appendFile } from 'node:fs/promises';
import * as core from '@actions/core';
import type { RunResult } from '../engine/scheduler.js';
import { Checkpoint } from '../journal/checkpoint.js';
import { annotationsFor } from '../report/annotations.js';
import { loadFrozenItems } from '../report/items.js';
import { type RunStats, runStats } from '../report/stats.js';
import { readLogTails, renderSummary } from '../report/summary.js';
import type { MainContext } from './main-run.js';
import { maskSecrets, redact, secretValues } from './secrets.js';
import type { RestoreOutcome } from './sync.js';

/** The run as it stands on disk, read once after the engine is done; undefined when none was created. */
export async function readRun(ctx: Pick<MainContext, 'root' | 'runId'>): Promise<Checkpoint | undefined> {
  if (!(await Checkpoint.exists(ctx.root, ctx.runId))) return undefined;
  return Checkpoint.read(ctx.root, ctx.runId);
}

/** Sets every output; a run that never started reports zeros and complete=false. */
export async function setRunOutputs(
  ctx: MainContext,
  resumed: boolean,
  ckpt: Checkpoint | undefined,
): Promise<RunStats | undefined> {
  const stats = ckpt ? runStats(ckpt, ctx.plan) : undefined;
  const steps = stats?.steps ?? [];
  const done = steps.filter((s) => s.status === 'done').length;
  const outputs: Record<string, Record<string, string>> = {};
  for (const s of steps) if (Object.keys(s.outputs).length > 0) outputs[s.id] = s.outputs;
  // Before any output is written: the runner masks what it has been told about from then on.
  if (ckpt) maskSecrets(secretValues(ctx.plan, ckpt.state));
  core.setOutput('complete', String(stats?.complete ?? false));
  core.setOutput('resumed', String(resumed));
  core.setOutput('run-id', ctx.runId);
  core.setOutput('steps-done', String(done));
  core.setOutput('steps-remaining', String((stats ? steps.length : ctx.plan.steps.length) - done));
  core.setOutput('units-done', String(stats?.unitsDone ?? 0));
  core.setOutput('units-remaining', String(stats?.unitsRemaining ?? 0));
  core.setOutput('outputs', JSON.stringify(outputs));
  core.setOutput('checkpoint-key', ctx.key);
  return stats;
}

/** Job summary and annotations for the run as it stands now. */
export async function publishReport(
  ctx: Pick<MainContext, 'plan' | 'cfg' | 'runId'> & { sync: Pick<MainContext['sync'], 'warnings'> },
  result: RunResult | undefined,
  restored: Pick<RestoreOutcome, 'source'>,
  ckpt: Checkpoint | undefined,
): Promise<void> {
  if (!ckpt) return;
  const stats = runStats(ckpt, ctx.plan, false, await loadFrozenItems(ckpt));
  const logs = await readLogTails(ckpt, stats);
  const secrets = secretValues(ctx.plan, ckpt.state);
  maskSecrets(secrets);
  for (const a of annotationsFor(stats, logs)) core.error(redact(a.message, secrets), a.properties);
  if (!ctx.cfg.summaryFile) return;
  const markdown = renderSummary({
    state: ckpt.state,
    stats,
    planName: ctx.plan.name,
    runId: ctx.runId,
    resumed: restored.source !== 'none',
    ...(result ? { exitCode: result.exitCode, reason: result.reason } : {}),
    warnings: ctx.sync.warnings,
    logs,
  });
  // Appended directly to the file config.ts read: core.summary keeps the first GITHUB_STEP_SUMMARY it sees
  // for the life of the process (main and its tests run several jobs in one process) and buffers. The
  // summary is a file, not the log: the runner's masking does not reach it, so secret values go here.
  await appendFile(ctx.cfg.summaryFile, `${redact(markdown, secrets)}\n`);
}
