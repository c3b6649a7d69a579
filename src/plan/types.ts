// The validated, normalised plan the engine runs. The YAML file is parsed by `load.ts` into this shape;
// nothing below the plan layer ever reads raw YAML.

export interface RetryPolicy {
  /** Total tries of a unit (1 = no retry). */
  attempts: number;
  delayMs: number;
  backoff: number;
  maxDelayMs: number;
  /**
   * `retry.on`: the failures a retry may fix. Absent: the default, every failure but exit codes 126 and 127
   * (src/engine/retry.ts decides).
   */
  on?: readonly RetryCondition[];
}

/** One entry of `retry.on`: an exit code (1–255), `timeout`, `signal` (not sent by the engine) or `any`. */
export type RetryCondition = number | 'timeout' | 'signal' | 'any';

/**
 * `refresh: true` (DESIGN §2): every attempt expands the source again and appends the items not yet in the
 * frozen list (src/engine/refresh.ts). An inline list's source is the plan's own text.
 */
export type ItemsSource = (
  | { kind: 'list'; items: string[] }
  | { kind: 'file'; file: string }
  | { kind: 'glob'; glob: string }
  | { kind: 'command'; command: string }
) & { refresh?: true };

export type BatchSpace = { kind: 'range'; from: number; to: number } | { kind: 'items'; source: ItemsSource };

export type MaxFailures = { kind: 'count'; count: number } | { kind: 'percent'; percent: number };

export interface BatchSpec {
  space: BatchSpace;
  /**
   * Items or numbers per unit: the step's grid. With `size: { target, min, max }` this is `min`, and units
   * are whole multiples of it, sized by `adaptive`.
   */
  size: number;
  /** `size: { target, min, max }`: chunks grow or shrink so that each takes about `targetMs`. */
  adaptive?: AdaptiveSize;
  /** Most units of this step at once. */
  parallel: number;
  order: 'any' | 'sequential';
  maxFailures: MaxFailures;
  /** Units start only while this check passes (issue 5, "Throttling"). */
  throttle?: Throttle;
}

/** `batch.size: { target, min, max }` (chunks sized by time). */
export interface AdaptiveSize {
  /** How long each chunk should take, ms (> 0). */
  targetMs: number;
  /** The smallest chunk, and the grid: chunks are whole multiples of it (>= 1). */
  min: number;
  /** The largest chunk (>= min); Number.MAX_SAFE_INTEGER when not set. */
  max: number;
}

export interface Throttle {
  command: string;
  /** A passing check holds this long. */
  everyMs: number;
  /** After a failing check, no unit starts for this long. */
  backoffMs: number;
}

export interface Step {
  id: string;
  /** Display name; defaults to the id. */
  name: string;
  run: string;
  /** The step's own `env`, merged over the plan's `env` (already merged here). */
  env: Record<string, string>;
  /** Absolute path. */
  workingDirectory: string;
  /** The path as written in the plan, relative to the plan's directory (for fingerprints and messages). */
  workingDirectoryRel: string;
  timeoutMs: number | undefined;
  retry: RetryPolicy;
  needs: string[];
  always: boolean;
  /**
   * `approval: true`: the run stops before this step until it is approved (`checkpoint approve`, the
   * action's `approve` input). Always set by the loader; optional only so hand-built Steps in tests need
   * not spell it out.
   */
  approval?: boolean;
  rollback: string | undefined;
  /**
   * Outputs whose values are secret: the action masks them in the log and the job summary. Always set by
   * the loader; optional so that hand-built Steps in tests need not spell it out.
   */
  secretOutputs?: string[];
  inputs: string[];
  onChange: 'rerun' | 'keep';
  batch: BatchSpec | undefined;
  /** Index in the plan's `steps` list. */
  index: number;
  /**
   * With `--shard I/N`: `all` (default) runs a plain step on every shard and splits a batch step's units
   * among the shards; `first` runs the whole step on shard 0 only (it counts as done, with no units, on the
   * others). See src/engine/shard.ts. Always set by the loader; optional only so that hand-built Steps in
   * tests need not spell it out.
   */
  shards?: 'all' | 'first';
}

export interface Shell {
  /** As written: `bash`, `sh`, or a command prefix. */
  spec: string;
  /** argv prefix; the command text is appended as the last argument. */
  argv: string[];
}

export interface Plan {
  version: 1;
  name: string;
  /** Absolute path of the plan file. */
  file: string;
  /** Absolute path of the directory holding the plan file. */
  dir: string;
  shell: Shell;
  concurrency: number;
  env: Record<string, string>;
  steps: Step[];
}
