// Small durable-file helpers. Every update to the checkpoint directory is either append-then-fsync (the
// journal) or write-temp, fsync, rename, fsync-the-directory (everything else, via writeFileAtomic).

import { randomBytes } from 'node:crypto';
import { constants as fsConstants, openSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readFile, readlink, rename, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CheckpointCorruptError, shownPath } from './damage.js';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

export { errorCode, writeFix } from '../errors.js';

import { CheckpointError, EXIT_FAILED, errorCode, writeFix } from '../errors.js';

/**
 * Replacing a file of the checkpoint failed. Node's own error for a failed write() or fsync() names no file,
 * so this one does, with the cause and what to do.
 */
export class CheckpointWriteError extends CheckpointError {
  override readonly name = 'CheckpointWriteError';
  readonly exitCode = EXIT_FAILED;
  readonly path: string;
  /** The OS error code (ENOSPC, EFBIG, EACCES...), when there was one; errorCode() reads it too. */
  readonly code: string | undefined;

  constructor(path: string, cause: unknown) {
    const code = errorCode(cause);
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(
      `could not write ${path}: ${code ?? 'error'} (${detail}). ${writeFix(code) ?? 'Fix the cause above'} ` +
        'and run the command again; work recorded before this point is kept.',
      { cause },
    );
    this.path = path;
    this.code = code;
  }
}

/**
 * Creates `path` and any missing parents with mode 0700. Directories that already existed keep their mode
 * (they may be the user's); the ones created here are chmod'ed to 0700 so a permissive umask can't widen them.
 */
export async function ensureDir(path: string): Promise<void> {
  const created = await mkdir(path, { recursive: true, mode: DIR_MODE });
  if (created === undefined) return;
  // `created` is the top-most directory mkdir made; everything between it and `path` is ours too.
  const target = resolve(path);
  let current = resolve(created);
  const rel = relative(current, target);
  await chmod(current, DIR_MODE);
  if (rel === '') return;
  for (const part of rel.split(sep)) {
    current = join(current, part);
    await chmod(current, DIR_MODE);
  }
}

/** fsyncs a directory so a rename or a newly created entry in it survives a power loss. */
export async function fsyncDir(path: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (error) {
    // Some platforms and filesystems refuse to open or fsync directories; the rename is still atomic there.
    const code = errorCode(error);
    if (
      code !== 'EISDIR' &&
      code !== 'EINVAL' &&
      code !== 'EPERM' &&
      code !== 'EACCES' &&
      code !== 'ENOTSUP'
    ) {
      throw error;
    }
  } finally {
    await handle?.close();
  }
}

/** Name of a unique temporary sibling of `path`. */
export function tempPath(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content, never a mix:
 * write a 0600 temp file beside it, fsync it, rename it over `path`, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPath(path);
  let created = false;
  try {
    const handle = await open(tmp, 'wx', FILE_MODE);
    created = true;
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    created = false;
    await fsyncDir(dirname(path));
  } catch (error) {
    if (created) await unlink(tmp).catch(() => undefined);
    throw new CheckpointWriteError(path, error);
  }
}

/** The file's UTF-8 content, or undefined when it does not exist. */
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

// ------------------------------------------------------------------------------------------------------
// No symlinks inside a run folder (DESIGN §4). A checkpoint folder may come from a cache entry or a disk
// others write to: a link where `logs`, `state`, `steps`, `tmp`, `items` or a file of the checkpoint should
// be would make the runner write (or units read) outside it. Folders are created one level at a time and
// checked with lstat; files are opened with O_NOFOLLOW; replacing a file by rename() replaces a link at
// its name rather than following it. A link found is damage, named, and nothing goes through it.

/** A symbolic link (or something else that is no plain file or folder) where the checkpoint keeps its own. */
export class CheckpointLinkError extends CheckpointCorruptError {
  override name = 'CheckpointLinkError';
  readonly path: string;

  constructor(path: string, what: string) {
    super(
      `${shownPath(path)} ${what}, where the checkpoint keeps its own files and folders; nothing is read or ` +
        'written through it. Remove it (`rm`) if it is not meant to be there, or start a new run with ' +
        '`checkpoint run --new`.',
    );
    this.path = path;
  }
}

const NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const FLAG_BITS = {
  r: fsConstants.O_RDONLY,
  'r+': fsConstants.O_RDWR,
  a: fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND,
  w: fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC,
  wx: fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL,
} as const;

/** Throws CheckpointLinkError when `path` is a symbolic link; a missing path is fine. */
export async function refuseLink(path: string): Promise<void> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return;
    throw error;
  }
  if (info.isSymbolicLink())
    throw new CheckpointLinkError(path, `is a symbolic link (to ${await linkTarget(path)})`);
}

async function linkTarget(path: string): Promise<string> {
  try {
    return await readlink(path);
  } catch {
    return 'somewhere';
  }
}

/**
 * Creates the folder `path` (mode 0700) if missing, its parent being there already, and checks that what is
 * there is a real folder, not a link. For the folders of a run folder.
 */
export async function ensureRealDir(path: string): Promise<void> {
  try {
    await mkdir(path, { mode: DIR_MODE });
    await chmod(path, DIR_MODE);
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw error;
  }
  const info = await lstat(path);
  if (info.isSymbolicLink())
    throw new CheckpointLinkError(path, `is a symbolic link (to ${await linkTarget(path)})`);
  if (!info.isDirectory()) throw new CheckpointLinkError(path, 'is not a folder');
}

/**
 * `base/rel` as a real folder: every component below `base` is created (0700) or checked not to be a link.
 * `rel` must stay below `base` (no `..`, not absolute). For the engine's `state/<step>` and `logs/<step>`.
 */
export async function ensureDirUnder(base: string, rel: string): Promise<string> {
  const parts = rel.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..') || isAbsolute(rel))
    throw new RangeError(`ensureDirUnder: "${rel}" does not stay below ${base}`);
  let current = base;
  for (const part of parts) {
    current = join(current, part);
    await ensureRealDir(current);
  }
  return current;
}

/**
 * Opens a file of the checkpoint without following a link at its name (O_NOFOLLOW): a link there throws
 * CheckpointLinkError. `flags` as for fs.open ('r', 'a', 'w', 'wx', 'r+').
 */
export async function openNoFollow(path: string, flags: 'r' | 'r+' | 'a' | 'w' | 'wx', mode = FILE_MODE) {
  try {
    return await open(path, FLAG_BITS[flags] | NOFOLLOW, mode);
  } catch (error) {
    if (errorCode(error) === 'ELOOP')
      throw new CheckpointLinkError(path, `is a symbolic link (to ${await linkTarget(path)})`);
    throw error;
  }
}

/** openNoFollow, synchronously, for writers that keep a descriptor (the engine's slot files): returns the fd. */
export function openNoFollowSync(
  path: string,
  flags: 'r' | 'r+' | 'a' | 'w' | 'wx',
  mode = FILE_MODE,
): number {
  try {
    return openSync(path, FLAG_BITS[flags] | NOFOLLOW, mode);
  } catch (error) {
    if (errorCode(error) === 'ELOOP') throw new CheckpointLinkError(path, 'is a symbolic link');
    throw error;
  }
}

/** The file's UTF-8 content, or undefined when it does not exist; a link at its name throws CheckpointLinkError. */
export async function readFileNoFollow(path: string): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await openNoFollow(path, 'r');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
