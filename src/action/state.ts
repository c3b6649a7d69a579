// State handed from main to post. One small interface over core.saveState/getState, so the rest of the
// action (and its tests) never import @actions/core for it.

export interface StateProvider {
  set(name: StateName, value: string): void;
  get(name: StateName): string;
}

export type StateName =
  /** The checkpoint root (`.checkpoints`) main used. */
  | 'root'
  /** The run id inside it. */
  | 'run-id'
  /** The base key (explicit or derived); entries are `checkpoint-v1-<key>-…`. */
  | 'key'
  | 'plan-name'
  | 'plan-file'
  /** The last sequence number used in an entry name, so post's save gets the next one. */
  | 'save-seq'
  /** The checkpoint's event sequence at the last successful save: post saves only when it moved on. */
  | 'saved-progress'
  /** The name of the newest entry saved for this job (what messages may say the checkpoint is saved as). */
  | 'saved-entry'
  /** `said` once the notice about pruning without `actions: write` was given (once per job). */
  | 'prune-notice'
  /** `true` when main restored earlier progress (the summary post may write says so). */
  | 'resumed'
  /** `true` once main wrote the job summary (post writes it when main could not). */
  | 'summary-written'
  /** `true` once main ended normally (post then only saves if something is left unsaved). */
  | 'main-ended';

export class CoreStateProvider implements StateProvider {
  readonly #core: { saveState(n: string, v: string): void; getState(n: string): string };
  constructor(core: { saveState(n: string, v: string): void; getState(n: string): string }) {
    this.#core = core;
  }
  set(name: StateName, value: string): void {
    this.#core.saveState(name, value);
  }
  get(name: StateName): string {
    return this.#core.getState(name);
  }
}

/** For tests and for running main's logic outside a runner. */
export class MemoryStateProvider implements StateProvider {
  readonly values = new Map<StateName, string>();
  set(name: StateName, value: string): void {
    this.values.set(name, value);
  }
  get(name: StateName): string {
    return this.values.get(name) ?? '';
  }
}
