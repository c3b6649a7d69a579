// A unit's environment in two parts: the step's fixed part (the engine's environment, the plan's and the
// step's variables, the run's CHECKPOINT_* values), built once per step, and the handful of variables that
// differ from one unit to the next. A launcher turns the fixed part into request text once per step instead
// of diffing and quoting ~50 variables for every unit; Node's own spawn merges the two.

export class UnitEnv {
  /** Shared by every unit of a step: never modified after construction. */
  readonly fixed: Readonly<NodeJS.ProcessEnv>;
  /** This unit's own variables (CHECKPOINT_TRY, CHECKPOINT_BATCH_*, ...); they win over `fixed`. */
  readonly own: Readonly<Record<string, string>>;

  constructor(fixed: Readonly<NodeJS.ProcessEnv>, own: Readonly<Record<string, string>>) {
    this.fixed = fixed;
    this.own = own;
  }

  toObject(): NodeJS.ProcessEnv {
    return { ...this.fixed, ...this.own };
  }
}

/** The whole environment, whichever way it was given. */
export function envObject(env: NodeJS.ProcessEnv | UnitEnv): NodeJS.ProcessEnv {
  return env instanceof UnitEnv ? env.toObject() : env;
}
