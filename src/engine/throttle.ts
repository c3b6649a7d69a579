// THE THROTTLE (`batch.throttle`): units of the step start only while its check passes. A passing check
// holds for `every`; a failing one holds units back for `backoff`, then the check runs again. The check runs
// only when a unit could start, with the plan's shell in the step's directory and environment. Times are
// monotonic (clock.ts).
import type { ManagedProcess } from '../exec/process.js';
import { formatDuration } from '../plan/duration.js';
import type { Throttle as ThrottleSpec } from '../plan/types.js';
import { monoNow } from './clock.js';

/** A throttle check that hangs holds units back no longer than this; it then counts as failed. */
export const THROTTLE_CHECK_TIMEOUT_MS = 60_000;

export interface ThrottleHooks {
  /** Starts the check command (the caller knows the shell, directory and environment). */
  spawn: (command: string) => ManagedProcess;
  /** Records a change of held/open in the journal. */
  record: (held: boolean, reason?: string) => Promise<void>;
  notice: (message: string) => void;
  /** The check's end is work the engine waits for (and pumps after). */
  track: (p: Promise<void>) => void;
}

export class Throttle {
  readonly #step: string;
  readonly #spec: ThrottleSpec;
  readonly #hooks: ThrottleHooks;
  /** Monotonic ms: the last check passed, and holds until then. */
  #okUntil = 0;
  /** Monotonic ms: the last check failed; the next runs then. */
  #blockedUntil = 0;
  #proc: ManagedProcess | undefined;
  /** Why units are held back, while they are (recorded in the journal on each change). */
  #held: string | undefined;

  constructor(step: string, spec: ThrottleSpec, hooks: ThrottleHooks) {
    this.#step = step;
    this.#spec = spec;
    this.#hooks = hooks;
  }

  get held(): boolean {
    return this.#held !== undefined;
  }

  /** When to ask again, while a failed check holds units back (and none runs). */
  get wakeAt(): number {
    return this.#proc ? Number.POSITIVE_INFINITY : this.#blockedUntil;
  }

  /** Whether a unit may start now; starts a check when one is due. */
  open(now: number): boolean {
    if (this.#okUntil > now) return true;
    if (this.#proc || this.#blockedUntil > now) return false;
    const proc = this.#hooks.spawn(this.#spec.command);
    this.#proc = proc;
    this.#hooks.track(proc.exited.then((exit) => this.#checked(proc, exit)));
    return false;
  }

  terminate(graceMs: number): void {
    this.#proc?.terminate(graceMs, 'stop');
  }

  async #checked(proc: ManagedProcess, exit: Awaited<ManagedProcess['exited']>): Promise<void> {
    this.#proc = undefined;
    const at = monoNow();
    const spec = this.#spec;
    if (exit.code === 0 && !exit.spawnError) {
      this.#okUntil = at + spec.everyMs;
      if (this.#held !== undefined) {
        this.#held = undefined;
        await this.#hooks.record(false);
        this.#hooks.notice(`${this.#step}: throttle check passes: starting units again`);
      }
      return;
    }
    if (exit.endedBy === 'stop') return;
    this.#blockedUntil = at + spec.backoffMs;
    const why = exit.spawnError
      ? exit.spawnError
      : exit.endedBy === 'timeout'
        ? `timed out after ${formatDuration(THROTTLE_CHECK_TIMEOUT_MS)}`
        : exit.signal
          ? `killed by ${exit.signal}`
          : `exit code ${exit.code}`;
    const said = lastLine(proc.tail());
    const reason = `throttled: ${spec.command}: ${why}${said ? ` (${said})` : ''}`;
    if (reason !== this.#held) {
      this.#held = reason;
      await this.#hooks.record(true, reason);
    }
    this.#hooks.notice(
      `${this.#step}: ${reason}; no new unit starts, checking again in ${formatDuration(spec.backoffMs)}`,
    );
  }
}

/** The last non-empty line of a command's output, shortened for one log line. */
export function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const l = (lines[lines.length - 1] ?? '').trim();
  return l.length > 200 ? `${l.slice(0, 197)}...` : l;
}
