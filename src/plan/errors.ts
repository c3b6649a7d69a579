// Named errors of the plan layer. Both are fatal for a run (exit 2 for a PlanError); their messages are
// complete and meant to be shown to the user as they are, without a stack.
import { CheckpointError, EXIT_USAGE } from '../errors.js';

/** A problem with the plan file. One problem per line; every line starts with the plan's file name. */
export class PlanError extends CheckpointError {
  override name = 'PlanError';
  readonly exitCode = EXIT_USAGE;
  /** The individual problems, one per line of `message`. */
  readonly problems: readonly string[];

  constructor(problems: string | readonly string[]) {
    const list = typeof problems === 'string' ? [problems] : [...problems];
    super(list.join('\n'));
    this.problems = list;
  }
}

/**
 * Expanding a batch step's `items` source failed (missing file, failing command). The plan layer does not
 * know which step asked, so the caller adds that context.
 */
export class ItemsError extends CheckpointError {
  override name = 'ItemsError';
  readonly exitCode = EXIT_USAGE;
}
