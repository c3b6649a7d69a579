// The errors for a checkpoint that cannot be trusted. A checkpoint comes back from a cache, an artifact or a
// disk that other jobs, tools and people can write to: what it says is evidence, never orders. A record
// that fails its checks is damage, reported with where it is and the way out, and never acted on.

import { relative } from 'node:path';
import { CheckpointError, EXIT_FAILED } from '../errors.js';

/** What every damage message ends with: how to get going again. */
export const WAY_OUT =
  'Start this run over with `checkpoint reset --all`, or start a new run with `checkpoint run --new` ' +
  '(in the action: the checkpoint entry saved before this one is restored instead)';

export class CheckpointCorruptError extends CheckpointError {
  override name = 'CheckpointCorruptError';
  readonly exitCode: number = EXIT_FAILED;
}

/**
 * One record of the checkpoint fails its schema or the plan. `where` is the file as shown (with `:line` for
 * a journal line), `what` the field, its value and what was expected.
 */
export class CheckpointDamageError extends CheckpointCorruptError {
  override name = 'CheckpointDamageError';
  /** The file, as given (absolute or relative). */
  readonly file: string;
  /** 1-based journal line, when the record is one. */
  readonly line: number | undefined;
  readonly detail: string;

  constructor(file: string, line: number | undefined, detail: string) {
    super(
      `${shownPath(file)}${line !== undefined ? `:${line}` : ''}: ${detail}. This record is damage (a forged or ` +
        `corrupted checkpoint) and is not acted on. ${WAY_OUT}.`,
    );
    this.file = file;
    this.line = line;
    this.detail = detail;
  }
}

/** `path` relative to the working directory when it is below it, else as given. */
export function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') ? rel : path;
}

/** A value for a message: JSON when it can be, cut short when long (a forged value can be anything). */
export function showValue(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
