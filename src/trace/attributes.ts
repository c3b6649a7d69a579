// The names of the span attributes a traced run sets (documented in README.md, "Traces"). A user's queries
// and dashboards depend on them: change none without saying so in the docs.

/** Every span: `done`, `failed`, `interrupted`, `yielded` (and `blocked` for a step that could not run). */
export const RESULT = 'checkpoint.result';
/** Why a span ended the way it did: the failure, the stop or the run's reason, as the log says it. */
export const REASON = 'checkpoint.reason';

// The attempt span (the root).
export const RUN_ID = 'checkpoint.run.id';
export const PLAN_NAME = 'checkpoint.plan.name';
export const ATTEMPT = 'checkpoint.attempt.number';
export const RESUMED = 'checkpoint.attempt.resumed';
export const UNITS_DONE_AT_START = 'checkpoint.attempt.units_done_at_start';
export const UNITS_DONE = 'checkpoint.attempt.units_done';
export const UNITS_REMAINING = 'checkpoint.attempt.units_remaining';
export const UNITS_FAILED = 'checkpoint.attempt.units_failed';
/** The attempt: the run's exit code (0, 1, 75); a unit: its process's exit code. */
export const EXIT_CODE = 'checkpoint.exit_code';
/** The attempt: the signal that stopped the run; a unit: the signal that killed its process. */
export const SIGNAL = 'checkpoint.signal';

// Step and unit spans.
export const STEP_ID = 'checkpoint.step.id';
export const STEP_NAME = 'checkpoint.step.name';
/** A step span for a step done in an earlier attempt (zero length: nothing of it ran). */
export const STEP_DONE_EARLIER = 'checkpoint.step.done_earlier';

// Unit spans.
export const UNIT_INDEX = 'checkpoint.unit.index';
/** Batch units: `[start, end)` — numbers for ranges, item indices for lists. */
export const UNIT_START = 'checkpoint.unit.start';
export const UNIT_END = 'checkpoint.unit.end';
/** Item-list units of `size: 1`: the item itself (`CHECKPOINT_ITEM`). */
export const UNIT_ITEM = 'checkpoint.unit.item';
/** 1-based try within this attempt (`CHECKPOINT_TRY`). */
export const UNIT_TRY = 'checkpoint.unit.try';
/** A failed try that will be tried again. */
export const UNIT_RETRYING = 'checkpoint.unit.retrying';
