// The checkpoint root: one folder per run, plus `latest` naming the most recent one.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Checkpoint } from './checkpoint.js';
import { readFileIfExists } from './fsutil.js';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function isValidRunId(id: string): boolean {
  return RUN_ID.test(id) && id !== 'latest' && !id.includes('..');
}

export async function readLatest(root: string): Promise<string | undefined> {
  const text = await readFileIfExists(join(root, 'latest'));
  const id = text?.trim();
  return id && isValidRunId(id) ? id : undefined;
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
