// `checkpoint report DIR... [--dir DIR]... [--json | --markdown]`: gathers the checkpoints of the shards of
// a `--shard I/N` run (one per directory) into one report. Each DIR is a checkpoint directory (its `latest`
// run is taken) or a run folder (the one holding checkpoint.json). Exit 0 complete, 1 inconsistent or failed
// units, 75 incomplete, 2 usage errors. `--merge DIR` also writes the shards' done work as one checkpoint
// in DIR (src/session/merge.ts); a merge that is refused exits 2 and writes nothing.
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { Checkpoint } from '../journal/checkpoint.js';
import { isValidRunId, newRunId } from '../journal/runs.js';
import { loadFrozenItems } from '../report/items.js';
import {
  gatherShards,
  readShardLogTails,
  renderReportMarkdown,
  renderReportText,
  reportExitCode,
  reportJson,
  type ShardSource,
} from '../report/shards.js';
import { optionalPlan, resolveRunId, UsageError } from '../session/context.js';
import type { Io } from '../session/io.js';
import { writeMerge } from '../session/merge.js';

export interface ReportOptions {
  file: string;
  dir?: string[];
  json?: boolean;
  markdown?: boolean;
  merge?: string;
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() === true;
}

/** A run folder (checkpoint.json or journal.ndjson inside) or a checkpoint directory (its latest run). */
export async function openShardDir(dir: string): Promise<ShardSource> {
  const abs = resolve(dir);
  if (!(await isDir(abs)))
    throw new UsageError(
      `report: ${dir}: no such directory; pass each shard's checkpoint directory (its --dir) or run folder`,
    );
  const root = dirname(abs);
  const id = basename(abs);
  if (isValidRunId(id) && (await Checkpoint.exists(root, id))) {
    const ckpt = await Checkpoint.read(root, id);
    return { source: dir, ckpt, frozen: await loadFrozenItems(ckpt) };
  }
  let runId: string;
  try {
    runId = await resolveRunId(abs, undefined);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    throw new UsageError(
      `report: ${dir} is neither a checkpoint directory (with runs in it) nor a run folder (with checkpoint.json); pass the --dir each shard ran with`,
    );
  }
  const ckpt = await Checkpoint.read(abs, runId);
  return { source: dir, ckpt, frozen: await loadFrozenItems(ckpt) };
}

export async function reportCommand(dirs: string[], opts: ReportOptions, io: Io): Promise<number> {
  const all = [...dirs, ...(opts.dir ?? [])];
  if (all.length === 0)
    throw new UsageError(
      'report: name the shards’ checkpoint directories, e.g. `checkpoint report shard0/.checkpoints shard1/.checkpoints` (or --dir A --dir B)',
    );
  if (opts.json && opts.markdown) throw new UsageError('report: use one of --json and --markdown');
  const plan = await optionalPlan({ file: opts.file });
  const sources: ShardSource[] = [];
  for (const d of all) sources.push(await openShardDir(d));
  const report = gatherShards({ sources, ...(plan ? { plan } : {}) });
  if (opts.json) io.out.write(`${JSON.stringify(reportJson(report), null, 2)}\n`);
  else if (opts.markdown)
    io.out.write(renderReportMarkdown(report, { logs: await readShardLogTails(report, sources) }));
  else io.out.write(renderReportText(report));
  if (!opts.json && !opts.markdown && report.errors.length > 0)
    io.err.write(`checkpoint: report: the shards do not add up (${report.errors.length} error(s) above)\n`);
  if (opts.merge !== undefined) {
    const root = resolve(opts.merge);
    const runId = await newRunId(root, report.plan, new Date(), 'merged');
    const merged = await writeMerge(report, sources, root, runId);
    const done = merged.steps.reduce((n, s) => n + s.done, 0);
    const units = merged.steps.reduce((n, s) => n + s.units, 0);
    for (const note of merged.notes) io.err.write(`checkpoint: report --merge: note: ${note}\n`);
    io.err.write(
      `checkpoint: merged ${merged.total} shards into run ${merged.runId} in ${opts.merge} (${done}/${units} units done); ` +
        `\`checkpoint run --shard I/M\` over a copy of that directory starts from it, with any M\n`,
    );
  }
  return reportExitCode(report);
}
