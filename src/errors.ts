// One base for the errors the program expects, each carrying its exit code: a plan or usage error exits 2,
// a run that cannot go on for now (a live lease, a stop before anything ran) 75, a damaged or unwritable
// checkpoint 1. Their messages are complete (the thing, the value, the fix) and shown as they are, without
// a stack. Anything else is an internal error. The lowest layer: it imports nothing of the program.

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INCOMPLETE = 75;

export abstract class CheckpointError extends Error {
  /** What `checkpoint` exits with when this error ends a command. */
  abstract readonly exitCode: number;
}

/** A bad command line or input: exit 2, nothing touched. */
export class UsageError extends CheckpointError {
  override name = 'UsageError';
  readonly exitCode = EXIT_USAGE;
}

/** Nothing ran, and the command can simply be run again (a signal during set-up): exit 75. */
export class StoppedError extends CheckpointError {
  override name = 'StoppedError';
  readonly exitCode = EXIT_INCOMPLETE;
}

/** Error code of a Node system error (ENOENT, EEXIST...), or undefined for anything else. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** What to do about a failed write, by error code; undefined for codes that are not about the disk. */
const WRITE_FIXES: Record<string, string> = {
  ENOSPC: 'The disk is full: free disk space',
  EDQUOT: 'The disk quota is exhausted: free space or raise the quota',
  EFBIG: 'The file size limit was reached (see `ulimit -f`): raise it',
  EROFS: 'The filesystem is read-only: put the checkpoint directory (--dir) on a writable filesystem',
  EACCES: 'Permission denied: make the checkpoint directory writable by this user',
  EPERM: 'Permission denied: make the checkpoint directory writable by this user',
  EIO: 'The disk reported an I/O error: check the disk',
};

export function writeFix(code: string | undefined): string | undefined {
  return code === undefined ? undefined : WRITE_FIXES[code];
}

/** Exit code and message for an error; only unexpected errors show a stack (with CHECKPOINT_DEBUG=1). */
export function classify(err: unknown, debug = false): { code: number; message: string } {
  if (err instanceof CheckpointError) return { code: err.exitCode, message: err.message };
  const e = err instanceof Error ? err : new Error(String(err));
  const stack = debug && e.stack ? `\n${e.stack}` : '';
  // A full disk, a size limit or a read-only folder met outside the checkpoint's own writers is the
  // environment, not a bug: say what to do rather than "please report it".
  const fix = writeFix(errorCode(err));
  if (fix) return { code: EXIT_FAILED, message: `${e.message}. ${fix} and run the command again.${stack}` };
  return {
    code: EXIT_FAILED,
    message: `internal error: ${e.message}${stack || ' (set CHECKPOINT_DEBUG=1 for details; please report it)'}`,
  };
}
