// A step's fingerprint: what its completed work depends on (DESIGN §3). Each part is hashed on its own so
// that `explain` can say which part changed, not just that something did.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { glob } from 'tinyglobby';
import type { BatchSpec, Plan, Step } from './types.js';

export interface Fingerprint {
  /** Combines every part; equal hashes mean nothing the step depends on changed. */
  hash: string;
  parts: {
    run: string;
    shell: string;
    env: string;
    workingDirectory: string;
    batch: string;
    /** Each file matched by `inputs`, relative to the plan's directory (with `/`), → hash of its content. */
    inputs: Record<string, string>;
  };
}

/** Bumped when what goes into a part changes, so old checkpoints see a change instead of a false match. */
const FORMAT = 'fp1';
const HASH_CHARS = 16;
/** Files hashed at once: enough to hide latency, few enough to stay clear of the fd limit. */
const FILE_CONCURRENCY = 16;

function short(text: string): string {
  return createHash('sha256').update(FORMAT).update('\0').update(text).digest('hex').slice(0, HASH_CHARS);
}

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex').slice(0, HASH_CHARS)));
  });
}

/**
 * What defines the units of a batch step: the space and the chunk size. `parallel`, `order` and
 * `max-failures` only change how units are scheduled, so changing them keeps completed work.
 * Chunks sized by time (`size: { target, min, max }`) differ from attempt to attempt anyway, so a command
 * that runs under it takes any [start, end): only the space and the fact of sizing by time count, and
 * changing `target`, `min` or `max` keeps completed work (done work is kept as intervals).
 */
function batchIdentity(batch: BatchSpec | undefined): unknown {
  if (batch === undefined) return null;
  const { space } = batch;
  const size = batch.adaptive ? 'by-time' : batch.size;
  if (space.kind === 'range') return { range: [space.from, space.to], size };
  // `refresh: true`: what the source gives changes from attempt to attempt by design, and each change is
  // appended to the frozen list (engine/refresh.ts), so only the source's definition counts. The flag itself
  // is left out too: turning it on keeps the work done, as it only says how the list may grow. An inline
  // list's definition is its items, so with `refresh` it counts as a list and nothing more.
  const { refresh, ...source } = space.source;
  if (refresh && source.kind === 'list') return { items: { kind: 'list', refresh: true }, size };
  return { items: source, size };
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `db/`, `./db` and `db` are the same directory and must not count as a change. */
function normaliseDir(rel: string): string {
  const posix = rel.replaceAll('\\', '/');
  const normalised = path.posix.normalize(posix).replace(/\/+$/, '');
  return normalised === '' ? '.' : normalised;
}

async function hashInputs(plan: Plan, step: Step): Promise<Record<string, string>> {
  if (step.inputs.length === 0) return {};
  // One call with every pattern, so that negated patterns (`!**/*.tmp`) apply to the others. A bare
  // directory (`sql`) means everything under it.
  const files = await glob(step.inputs, { cwd: plan.dir, onlyFiles: true });
  const unique = [...new Set(files)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const hashes: string[] = new Array(unique.length);
  let next = 0;
  const worker = async () => {
    while (next < unique.length) {
      const i = next++;
      hashes[i] = await hashFile(path.resolve(plan.dir, unique[i] as string));
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILE_CONCURRENCY, unique.length) }, worker));
  const out: Record<string, string> = {};
  unique.forEach((file, i) => {
    out[file] = hashes[i] as string;
  });
  return out;
}

/** Computes a step's fingerprint, reading the files its `inputs` match. */
export async function fingerprintStep(plan: Plan, step: Step): Promise<Fingerprint> {
  const inputs = await hashInputs(plan, step);
  const parts: Fingerprint['parts'] = {
    run: short(step.run),
    shell: short(JSON.stringify(plan.shell.argv)),
    env: short(JSON.stringify(sortedEntries(step.env))),
    workingDirectory: short(normaliseDir(step.workingDirectoryRel)),
    batch: short(JSON.stringify(batchIdentity(step.batch))),
    inputs,
  };
  const hash = short(
    JSON.stringify([
      parts.run,
      parts.shell,
      parts.env,
      parts.workingDirectory,
      parts.batch,
      sortedEntries(inputs),
    ]),
  );
  return { hash, parts };
}

/**
 * Why two fingerprints differ, as short reasons for `explain`: `run`, `shell`, `env`, `working-directory`,
 * `batch`, `inputs sql/a.sql` (changed), `inputs +sql/new.sql` (added), `inputs -sql/old.sql` (removed).
 * Empty when the hashes are equal. Tolerates an `old` read from an older or damaged checkpoint.
 */
export function diffFingerprints(old: Fingerprint, now: Fingerprint): string[] {
  if (old.hash === now.hash) return [];
  const before: Partial<Fingerprint['parts']> = old.parts ?? {};
  const after = now.parts;
  const reasons: string[] = [];
  if (before.run !== after.run) reasons.push('run');
  if (before.shell !== after.shell) reasons.push('shell');
  if (before.env !== after.env) reasons.push('env');
  if (before.workingDirectory !== after.workingDirectory) reasons.push('working-directory');
  if (before.batch !== after.batch) reasons.push('batch');

  const oldInputs = before.inputs ?? {};
  const files = [...new Set([...Object.keys(oldInputs), ...Object.keys(after.inputs)])].sort((a, b) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  for (const file of files) {
    const was = Object.hasOwn(oldInputs, file) ? oldInputs[file] : undefined;
    const is = Object.hasOwn(after.inputs, file) ? after.inputs[file] : undefined;
    if (was === is) continue;
    if (was === undefined) reasons.push(`inputs +${file}`);
    else if (is === undefined) reasons.push(`inputs -${file}`);
    else reasons.push(`inputs ${file}`);
  }
  // Same parts but a different hash: the fingerprint format itself changed between versions.
  if (reasons.length === 0) reasons.push('definition');
  return reasons;
}
