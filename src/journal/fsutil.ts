// Small durable-file helpers. Every update to the checkpoint directory is either append-then-fsync (the
// journal) or write-temp, fsync, rename, fsync-the-directory (everything else, via writeFileAtomic).

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';

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
