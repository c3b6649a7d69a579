// The validated, normalised plan the engine runs. The YAML file is parsed by `load.ts` into this shape;
// nothing below the plan layer ever reads raw YAML.

export interface RetryPolicy {
  /** Total tries of a unit (1 = no retry). */
  attempts: number;
  delayMs: number;
  backoff: number;
  maxDelayMs: number;
}

export type ItemsSource =
  | { kind: 'list'; items: string[] }
  | { kind: 'file'; file: string }
  | { kind: 'glob'; glob: string }
  | { kind: 'command'; command: string };

export type BatchSpace = { kind: 'range'; from: number; to: number } | { kind: 'items'; source: ItemsSource };

export type MaxFailures = { kind: 'count'; count: number } | { kind: 'percent'; percent: number };

export interface BatchSpec {
  space: BatchSpace;
  /** Items or numbers per unit. */
  size: number;
  /** Most units of this step at once. */
  parallel: number;
  order: 'any' | 'sequential';
  maxFailures: MaxFailures;
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
  rollback: string | undefined;
  inputs: string[];
  onChange: 'rerun' | 'keep';
  batch: BatchSpec | undefined;
  /** Index in the plan's `steps` list. */
  index: number;
  /**
   * With `--shard I/N`, where a plain step runs: `all` (default) on every shard, `first` on shard 1 only
   * (DESIGN §7). Batch steps always split their units across shards. Always set by the loader; optional
   * only so that hand-built Steps in tests need not spell it out.
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
