// The checkpoint root: one folder per run, plus `latest` naming the most recent one.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Checkpoint } from './checkpoint.js';
import { CheckpointCorruptError, shownPath, showValue } from './damage.js';
import { CheckpointLinkError, errorCode, readFileNoFollow } from './fsutil.js';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function isValidRunId(id: string): boolean {
  return RUN_ID.test(id) && id !== 'latest' && !id.includes('..');
}

export async function readLatest(root: string): Promise<string | undefined> {
  // Damaged (a link, unreadable): as if absent; `resolveLatest` is the one that says so.
  const text = await readFileNoFollow(join(root, 'latest')).catch(() => undefined);
  const id = text?.trim();
  return id && isValidRunId(id) ? id : undefined;
}

/** The run `checkpoint run` resumes by default, and what was wrong with `latest` if it was damaged. */
export interface LatestRun {
  /** The run to consider resuming; undefined when there is none (a first run, or no run of this plan). */
  runId: string | undefined;
  /** Set when `latest` was damaged: what it held, and what was done instead (print it as a warning). */
  warning?: string;
}

/**
 * `latest`, checked: it must be a plain run id (no `/`, no `..`, no NUL, not empty) naming a run folder of
 * `root` that holds a checkpoint. Anything else is damage, never a reason to start over silently: the
 * newest run of `planName` found by scanning the folders is taken instead, with a warning; when run
 * folders exist but none of them can be read as a run of this plan, CheckpointCorruptError names the way
 * out. No `latest` and no runs: a first run.
 */
export async function resolveLatest(root: string, planName: string): Promise<LatestRun> {
  const path = join(root, 'latest');
  let text: string | undefined;
  let problem: string | undefined;
  try {
    text = await readFileNoFollow(path);
  } catch (err) {
    problem =
      err instanceof CheckpointLinkError
        ? 'is a symbolic link'
        : `cannot be read (${errorCode(err) ?? String(err)})`;
  }
  const ids = await listRunIds(root);
  if (text === undefined && problem === undefined) {
    if (ids.length === 0) return { runId: undefined };
    problem = 'is missing';
  }
  if (problem === undefined && text !== undefined) {
    const id = text.trim();
    if (!isPlainId(id)) problem = `holds ${showValue(text)}, which is not a run id`;
    else if (!ids.includes(id))
      problem = `names ${showValue(id)}, which is not a run folder of ${shownPath(root)}`;
    else return { runId: id };
  }
  // Damaged: the newest run of this plan (by its last update) is the one `latest` would have named.
  let best: { id: string; at: number } | undefined;
  let unreadable = 0;
  for (const id of ids) {
    try {
      const ck = await Checkpoint.read(root, id);
      if (ck.state.planName !== planName) continue;
      if (!best || ck.state.updatedAt >= best.at) best = { id, at: ck.state.updatedAt };
    } catch {
      unreadable += 1;
    }
  }
  const head = `${shownPath(path)} ${problem}`;
  if (best)
    return { runId: best.id, warning: `${head}; taking the newest run of plan "${planName}", ${best.id}` };
  if (unreadable > 0) {
    throw new CheckpointCorruptError(
      `${head}, and none of the ${ids.length} run folder(s) in ${shownPath(root)} can be read as a run of plan ` +
        `"${planName}". Name the run to resume with \`checkpoint run --run ID\`, or start a new run with \`checkpoint run --new\`.`,
    );
  }
  return { runId: undefined, warning: `${head}; no run of plan "${planName}" is there, so a new run starts` };
}

/** A run id `latest` may hold: a name in this folder, nothing that leads out of it. */
function isPlainId(id: string): boolean {
  return id !== '' && !id.includes('/') && !id.includes('\0') && !id.includes('..') && isValidRunId(id);
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/**
 * `<name>-YYYYMMDD-HHMMSS` (UTC), with `-2`, `-3`… when that second is taken; `tag` goes after the name
 * (`<name>-shard1of3-YYYYMMDD-HHMMSS` for `--shard 1/3`).
 */
export async function newRunId(
  root: string,
  planName: string,
  now = new Date(),
  tag?: string,
): Promise<string> {
  const safe =
    planName
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'run';
  const base = `${safe}${tag ? `-${tag}` : ''}-${stamp(now)}`;
  let id = base;
  for (let n = 2; await exists(join(root, id)); n++) id = `${base}-${n}`;
  return id;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export async function listRunIds(root: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    if (!isValidRunId(n)) continue;
    if (await Checkpoint.exists(root, n)) out.push(n);
  }
  return out.sort();
}
