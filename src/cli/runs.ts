// `checkpoint runs` and `checkpoint prune`.
import { rm } from 'node:fs/promises';
import { Checkpoint } from '../journal/checkpoint.js';
import { inspectLease } from '../journal/lock.js';
import { listRunIds, readLatest } from '../journal/runs.js';
import { parseDuration } from '../plan/duration.js';
import { runStats } from '../report/stats.js';
import { type CommonOptions, optionalPlan, rootOf, shown, UsageError } from '../session/context.js';
import type { Io } from '../session/io.js';

export async function runsCommand(opts: CommonOptions & { json?: boolean }, io: Io): Promise<number> {
  const plan = await optionalPlan(opts).catch(() => undefined);
  const root = rootOf(opts, plan);
  const latest = await readLatest(root);
  const rows = [];
  for (const id of await listRunIds(root)) {
    try {
      const ck = await Checkpoint.read(root, id);
      const st = runStats(ck, plan && plan.name === ck.state.planName ? plan : undefined);
      rows.push({
        id,
        plan: ck.state.planName,
        latest: id === latest,
        complete: st.complete,
        attempts: ck.state.attempts.length,
        units: { done: st.unitsDone, total: st.unitsTotal, failed: st.unitsFailed },
        updatedAt: new Date(ck.state.updatedAt).toISOString(),
        error: null as string | null,
      });
    } catch (err) {
      rows.push({
        id,
        plan: '?',
        latest: id === latest,
        complete: false,
        attempts: 0,
        units: { done: 0, total: 0, failed: 0 },
        updatedAt: '',
        error: (err as Error).message,
      });
    }
  }
  if (opts.json) {
    io.out.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    io.out.write(`no runs in ${shown(root)}\n`);
    return 0;
  }
  for (const r of rows) {
    const state = r.error ? `unreadable: ${r.error}` : r.complete ? 'complete' : 'incomplete';
    io.out.write(
      `${r.latest ? '*' : ' '} ${r.id}  ${r.plan}  ${state}  ${r.units.done}/${r.units.total} units  ${r.attempts} attempt(s)  ${r.updatedAt}\n`,
    );
  }
  return 0;
}

export async function pruneCommand(
  opts: CommonOptions & { olderThan?: string; keep?: string; dryRun?: boolean },
  io: Io,
): Promise<number> {
  const root = rootOf(opts, await optionalPlan(opts).catch(() => undefined));
  let olderMs: number | undefined;
  if (opts.olderThan !== undefined) {
    try {
      olderMs = parseDuration(opts.olderThan);
    } catch (err) {
      throw new UsageError(`--older-than: ${(err as Error).message}`);
    }
  }
  let keep: number | undefined;
  if (opts.keep !== undefined) {
    keep = Number(opts.keep);
    if (!Number.isInteger(keep) || keep < 0)
      throw new UsageError(`--keep: expected a whole number >= 0, got "${opts.keep}"`);
  }
  if (olderMs === undefined && keep === undefined) olderMs = parseDuration('7d');
  const runs: Array<{ id: string; updatedAt: number }> = [];
  for (const id of await listRunIds(root)) {
    const ck = await Checkpoint.read(root, id).catch(() => undefined);
    runs.push({ id, updatedAt: ck?.state.updatedAt ?? 0 });
  }
  runs.sort((a, b) => b.updatedAt - a.updatedAt);
  const now = Date.now();
  let removed = 0;
  for (const [i, r] of runs.entries()) {
    const tooOld = olderMs !== undefined && now - r.updatedAt > olderMs;
    const beyondKeep = keep !== undefined && i >= keep;
    if (!(tooOld || beyondKeep)) continue;
    const lease = await inspectLease(`${root}/${r.id}`).catch(() => undefined);
    if (lease && !lease.stale) {
      io.out.write(
        `kept ${r.id}: in use by pid ${lease.holder?.pid ?? '?'} on ${lease.holder?.host ?? '?'}\n`,
      );
      continue;
    }
    if (!opts.dryRun) await rm(`${root}/${r.id}`, { recursive: true, force: true });
    io.out.write(`${opts.dryRun ? 'would remove' : 'removed'} ${r.id}\n`);
    removed += 1;
  }
  io.out.write(`${removed} run(s) ${opts.dryRun ? 'would be ' : ''}removed, ${runs.length - removed} kept\n`);
  return 0;
}
