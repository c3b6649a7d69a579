// A checkpoint travels between attempts as a bundle: a folder holding `checkpoint.tar.gz` (the run's
// directory, plus the extra `paths`) and `bundle.json` (what it is, its sha256, and an HMAC when a signing
// key is set). Stores move the folder; only this module packs and unpacks it, and nothing is written to
// the checkpoint root until the whole archive has been checked: a bundle that fails any check is refused
// as a unit, so the run starts fresh (with a warning) instead of from half a checkpoint.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { z } from 'zod';
import { Checkpoint } from '../journal/checkpoint.js';
import { ensureDir, errorCode, writeFileAtomic } from '../journal/fsutil.js';
import { checkAgainstPlan } from '../journal/plan-check.js';
import { isValidRunId } from '../journal/runs.js';
import { fingerprintStep } from '../plan/fingerprint.js';
import type { Plan } from '../plan/types.js';

export const ARCHIVE = 'checkpoint.tar.gz';
export const MANIFEST = 'bundle.json';
const FORMAT = 'checkpoint-bundle';
const VERSION = 1;

/** Files of a run directory that belong to one process's life, never to the checkpoint. */
function transient(rel: string): boolean {
  const base = posix.basename(rel);
  return (
    rel === 'lock' ||
    base.startsWith('lock.') ||
    base.includes('.tmp-') ||
    rel === 'tmp' ||
    rel.startsWith('tmp/')
  );
}

const manifestSchema = z.object({
  format: z.literal(FORMAT),
  version: z.number().int(),
  key: z.string(),
  plan: z.string(),
  runId: z.string(),
  seq: z.number().int().nonnegative(),
  createdAt: z.string(),
  files: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  hmac: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** A bundle that must not be used; the message says why, for the warning. */
export class BundleRejected extends Error {
  override name = 'BundleRejected';
}

function signedText(m: Omit<Manifest, 'hmac'>): string {
  // A fixed field order, so the signature does not depend on how JSON happened to be written.
  return [m.format, m.version, m.key, m.plan, m.runId, m.seq, m.createdAt, m.files, m.sha256].join('\n');
}

function hmacOf(m: Omit<Manifest, 'hmac'>, signingKey: string): string {
  return createHmac('sha256', signingKey).update(signedText(m)).digest('hex');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

interface FileEntry {
  name: string;
  abs: string;
}

async function walk(
  dir: string,
  prefix: string,
  skip: (rel: string) => boolean,
  out: FileEntry[],
): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw err;
  }
  for (const n of names) {
    const abs = join(dir, n);
    const rel = prefix ? `${prefix}/${n}` : n;
    if (skip(rel)) continue;
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(abs);
    } catch (err) {
      // A unit may delete a scratch file of its state folder while a periodic save runs.
      if (errorCode(err) === 'ENOENT') continue;
      throw err;
    }
    if (st.isDirectory()) await walk(abs, rel, skip, out);
    else if (st.isFile()) out.push({ name: rel, abs });
    // Symbolic links and special files are not carried: restoring them could point outside the workspace.
  }
}

export interface PackOptions {
  /** The checkpoint root (`.checkpoints`). */
  root: string;
  runId: string;
  planName: string;
  /** Sequence number of the last event in the checkpoint (progress marker). */
  seq: number;
  key: string;
  /** Extra files or folders (absolute), carried under `paths/` relative to `workspace`. */
  paths?: string[];
  workspace?: string;
  signingKey?: string;
}

/**
 * Writes `<dest>/checkpoint.tar.gz` and `<dest>/bundle.json`. The journal is read before the snapshot: the
 * engine may compact while this runs, and a newer snapshot with an older journal is consistent (events up to
 * the snapshot's sequence are skipped), while the other way round could leave a gap.
 */
export async function packBundle(dest: string, o: PackOptions): Promise<Manifest> {
  await rm(dest, { recursive: true, force: true });
  await ensureDir(dest);
  const runDir = join(o.root, o.runId);
  const entries: FileEntry[] = [];
  await walk(runDir, '', transient, entries);
  const rank = (e: FileEntry) => (e.name === 'journal.ndjson' ? 0 : e.name === 'checkpoint.json' ? 1 : 2);
  entries.sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1));
  const items = entries.map((e) => ({ name: `run/${e.name}`, abs: e.abs }));
  for (const p of o.paths ?? []) {
    const ws = o.workspace ?? process.cwd();
    const rel = relative(ws, p).split(sep).join('/');
    const extra: FileEntry[] = [];
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (st.isFile()) extra.push({ name: rel, abs: p });
    else if (st.isDirectory()) await walk(p, rel, () => false, extra);
    for (const e of extra) items.push({ name: `paths/${e.name}`, abs: e.abs });
  }

  const pack = tar.pack();
  const archive = join(dest, ARCHIVE);
  const written = pipeline(pack, createGzip({ level: 6 }), createWriteStream(archive, { mode: 0o600 }));
  let files = 0;
  for (const it of items) {
    let data: Buffer;
    try {
      data = await readFile(it.abs);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') continue;
      throw err;
    }
    await new Promise<void>((res, rej) =>
      pack.entry({ name: it.name, size: data.length, mode: 0o600, type: 'file' }, data, (e) =>
        e ? rej(e) : res(),
      ),
    );
    files += 1;
  }
  pack.finalize();
  await written;
  const base: Omit<Manifest, 'hmac'> = {
    format: FORMAT,
    version: VERSION,
    key: o.key,
    plan: o.planName,
    runId: o.runId,
    seq: o.seq,
    createdAt: new Date().toISOString(),
    files,
    sha256: await sha256File(archive),
  };
  const manifest: Manifest = o.signingKey ? { ...base, hmac: hmacOf(base, o.signingKey) } : base;
  await writeFile(join(dest, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  return manifest;
}

export interface CheckOptions {
  planName: string;
  signingKey?: string;
  /**
   * The plan the restored checkpoint will run: every step record is checked against it (its space, chunk
   * size and counts, as `checkpoint run` checks a local one), so a forged but well-checksummed entry is
   * refused here and the entry before it is tried, before anything runs.
   */
  plan?: Plan;
}

/** Reads and checks `bundle.json` and the archive's digest (and HMAC): anything wrong is a BundleRejected. */
export async function checkBundle(src: string, o: CheckOptions): Promise<Manifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(src, MANIFEST), 'utf8'));
  } catch (err) {
    throw new BundleRejected(`${MANIFEST} is missing or not JSON (${(err as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw new BundleRejected(`${MANIFEST} is not a checkpoint bundle manifest`);
  const m = parsed.data;
  if (m.version > VERSION)
    throw new BundleRejected(
      `bundle format ${m.version} is newer than this version of checkpoint-action reads (${VERSION}); update the action`,
    );
  // The same bound as the action's `key`, which names the run folder.
  if (!isValidRunId(m.runId) || m.runId.length > 200)
    throw new BundleRejected(`run id "${m.runId.slice(0, 60)}" in ${MANIFEST} is not valid`);
  if (m.plan !== o.planName) throw new BundleRejected(`it belongs to plan "${m.plan}", not "${o.planName}"`);
  if (o.signingKey !== undefined) {
    if (!m.hmac) throw new BundleRejected('it is not signed, and `signing-key` is set');
    const { hmac, ...rest } = m;
    const want = Buffer.from(hmacOf(rest, o.signingKey), 'hex');
    if (!timingSafeEqual(want, Buffer.from(hmac, 'hex')))
      throw new BundleRejected(
        'its signature does not match `signing-key` (tampered, or signed with another key)',
      );
  }
  let digest: string;
  try {
    digest = await sha256File(join(src, ARCHIVE));
  } catch (err) {
    throw new BundleRejected(`${ARCHIVE} cannot be read (${(err as Error).message})`);
  }
  if (digest !== m.sha256) throw new BundleRejected(`${ARCHIVE} does not match the sha256 in ${MANIFEST}`);
  return m;
}

/** An archive entry name, or why it is refused: only plain relative paths under `run/` or `paths/`. */
export function entryProblem(name: string): string | undefined {
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'is absolute';
  const parts = name.split('/');
  if (parts.some((p) => p === '..')) return 'climbs out with ".."';
  if (parts.some((p) => p === '' || p === '.')) return 'is not a normalised path';
  if (parts[0] !== 'run' && parts[0] !== 'paths') return 'is not under run/ or paths/';
  if (parts.length < 2) return 'names a folder, not a file';
  return undefined;
}

export interface UnpackResult {
  manifest: Manifest;
  /** Where the run directory was unpacked (`<stage>/run`), checked with the engine's own reader. */
  runDir: string;
  /** Where the extra paths were unpacked (`<stage>/paths`). */
  pathsDir: string;
  checkpoint: Checkpoint;
}

/**
 * Checks the bundle in `src` and unpacks it into `stage` (a scratch folder, emptied first). Every entry is
 * checked before anything is written, the run is then read by the engine's own reader (schema, checksum,
 * journal), so a bundle is either wholly usable or refused.
 */
export async function unpackBundle(src: string, stage: string, o: CheckOptions): Promise<UnpackResult> {
  const manifest = await checkBundle(src, o);
  const files: Array<{ name: string; data: Buffer }> = [];
  const extract = tar.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const problem = h.type !== 'file' ? `is a ${h.type}, not a regular file` : entryProblem(h.name);
      if (problem) {
        entry.resume();
        throw new BundleRejected(`archive entry "${h.name}" ${problem}`);
      }
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      files.push({ name: h.name, data: Buffer.concat(chunks) });
    }
  })();
  try {
    await Promise.all([pipeline(createReadStream(join(src, ARCHIVE)), createGunzip(), extract), reading]);
  } catch (err) {
    if (err instanceof BundleRejected) throw err;
    throw new BundleRejected(`${ARCHIVE} is not a valid archive (${(err as Error).message})`);
  }
  await rm(stage, { recursive: true, force: true });
  await ensureDir(stage);
  const root = join(stage, 'root');
  const runDir = join(root, manifest.runId);
  const pathsDir = join(stage, 'paths');
  for (const f of files) {
    const [top, ...rest] = f.name.split('/');
    // Step markers are meant to be sourced by shell scripts (`. steps/build.complete`), so a restored one is
    // never trusted: the engine writes them again from the checkpoint's own state when the run starts.
    if (top === 'run' && rest.length === 2 && rest[0] === 'steps' && rest[1]?.endsWith('.complete')) continue;
    const dest = top === 'run' ? join(runDir, ...rest) : join(pathsDir, ...rest);
    try {
      await ensureDir(resolve(dest, '..'));
      await writeFile(dest, f.data, { mode: 0o600 });
    } catch (err) {
      // A name this file system cannot hold (too long, a file where the archive also has a folder): the
      // bundle is unusable here, which is a refusal, not a crash of the restore.
      throw new BundleRejected(`archive entry "${f.name}" cannot be unpacked (${(err as Error).message})`);
    }
  }
  // The engine reads a run without snapshot or journal as a blank one; a bundle must carry a checkpoint.
  if (!(await Checkpoint.exists(root, manifest.runId)))
    throw new BundleRejected('its archive holds no checkpoint (run/checkpoint.json or run/journal.ndjson)');
  let checkpoint: Checkpoint;
  try {
    checkpoint = await Checkpoint.read(root, manifest.runId);
  } catch (err) {
    throw new BundleRejected(`its checkpoint cannot be read: ${(err as Error).message}`);
  }
  if (checkpoint.state.planName !== '' && checkpoint.state.planName !== o.planName)
    throw new BundleRejected(
      `its checkpoint belongs to plan "${checkpoint.state.planName}", not "${o.planName}"`,
    );
  await checkFrozenItems(checkpoint);
  if (o.plan) await checkAgainstThePlan(checkpoint, o.plan);
  return { manifest, runDir, pathsDir, checkpoint };
}

/** Each step record against the plan's definition of its space: a record that fails is a refused entry. */
async function checkAgainstThePlan(checkpoint: Checkpoint, plan: Plan): Promise<void> {
  for (const step of plan.steps) {
    const rec = checkpoint.state.steps.get(step.id);
    if (!rec) continue;
    try {
      checkAgainstPlan(plan, step, rec, await fingerprintStep(plan, step));
    } catch (err) {
      throw new BundleRejected(`its checkpoint does not fit the plan: ${(err as Error).message}`);
    }
  }
}

/**
 * The engine takes a frozen item list as it finds it once its checksum matches, and a list that is not one
 * (an object, numbers, fewer items than recorded) would run units on nothing and record them done. A bundle
 * carrying such a list is refused here, where a restored checkpoint is checked.
 */
async function checkFrozenItems(checkpoint: Checkpoint): Promise<void> {
  for (const [step, rec] of checkpoint.state.steps) {
    if (!rec.items) continue;
    let items: unknown;
    try {
      items = await checkpoint.readItems(step);
    } catch (err) {
      throw new BundleRejected(`its checkpoint cannot be read: ${(err as Error).message}`);
    }
    const ok =
      Array.isArray(items) &&
      items.length === rec.items.count &&
      items.every((i) => typeof i === 'string' && !i.includes('\0'));
    if (!ok)
      throw new BundleRejected(
        `the frozen item list of step "${step}" is not a list of ${rec.items.count} text items`,
      );
  }
}

/**
 * Moves an unpacked run into the checkpoint root, replacing an older local copy of the same run, and makes
 * it `latest`. The old copy is renamed aside first and removed last, so a crash leaves one of the two.
 */
export async function installRun(unpacked: UnpackResult, root: string): Promise<void> {
  await ensureDir(root);
  const dest = join(root, unpacked.manifest.runId);
  const aside = `${dest}.replaced-${process.pid}`;
  const had = await lstat(dest).then(
    () => true,
    () => false,
  );
  if (had) await rename(dest, aside);
  await mkdir(root, { recursive: true });
  await rename(unpacked.runDir, dest);
  await writeFileAtomic(join(root, 'latest'), `${unpacked.manifest.runId}\n`);
  if (had) await rm(aside, { recursive: true, force: true });
}

/**
 * Why `rel` cannot be written under `workspace` as it stands, if it cannot. The archive's names are checked
 * lexically when it is read, but a symbolic link already in the workspace (a checked-out repository may hold
 * one) would carry the write to wherever it points, and a file where a folder is needed would fail halfway.
 */
async function obstacle(workspace: string, rel: string): Promise<string | undefined> {
  const parts = rel.split(sep);
  let cur = workspace;
  for (const [i, part] of parts.entries()) {
    cur = join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    // What does not exist yet is created by us, as a plain folder or file.
    if (!st) return undefined;
    if (st.isSymbolicLink())
      return `would be written through the symbolic link "${relative(workspace, cur)}" in the workspace`;
    if (i < parts.length - 1 ? !st.isDirectory() : !st.isFile())
      return `would replace "${relative(workspace, cur)}", which is not a ${i < parts.length - 1 ? 'folder' : 'file'}`;
  }
  return undefined;
}

/**
 * Copies the restored extra paths back into the workspace. Every path is checked before any is written: one
 * that would land outside the workspace, go through a symbolic link found in it or replace something that is
 * not a plain file refuses the bundle without touching the workspace.
 */
export async function installPaths(unpacked: UnpackResult, workspace: string): Promise<string[]> {
  const entries: FileEntry[] = [];
  await walk(unpacked.pathsDir, '', () => false, entries);
  const planned: Array<{ from: string; dest: string; rel: string }> = [];
  for (const e of entries) {
    const dest = resolve(workspace, e.name);
    const rel = relative(workspace, dest);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel))
      throw new BundleRejected(`path "${e.name}" would land outside the workspace`);
    const problem = await obstacle(workspace, rel);
    if (problem !== undefined) throw new BundleRejected(`path "${e.name}" ${problem}`);
    planned.push({ from: e.abs, dest, rel });
  }
  const placed: string[] = [];
  for (const { from, dest, rel } of planned) {
    await ensureDir(resolve(dest, '..'));
    await rename(from, dest).catch(async () => writeFile(dest, await readFile(from)));
    placed.push(rel);
  }
  return placed;
}
