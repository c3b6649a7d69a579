// The one place that starts processes: units, the items command, throttle checks and rollback commands.
// Each is a real process in its own process group (its `$$`, `$PPID` and /proc/self are its own, as with
// `bash -c` in a terminal), carries a marker in its environment (marker.ts), has its output bounded
// (output.ts), its timeout, and ends with its exit status, which is all the engine learns from it: no byte
// it prints is read as an instruction.
//
// Escaped processes: a unit may leave a daemon that keeps its stdout open. Once the unit's own process has
// exited, its output is waited for at most DRAIN_MS, then the pipes are closed: nothing another process
// holds can keep a unit (or the engine) from ending. When the engine ends a unit (stop, time budget,
// timeout), it signals the unit's process group and every process carrying the unit's marker, also those
// outside the group, and the unit's end waits until they are gone or SIGKILLed after the grace.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { processStartTime } from '../journal/lock.js';
import { findMarked, Markers, signalAll, TRACKING_VAR } from './marker.js';
import { LineSplitter, type Stream, Tail } from './output.js';

export const MAX_TIMER_MS = 2 ** 31 - 1;

/** How long output is still read after the process itself exited (what a left daemon may hold open). */
export const DRAIN_MS = 500;

export interface ProcessExit {
  /** Exit code, or null when ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  /** Why the engine ended it, if it did: `timeout`, `stop`. */
  endedBy?: 'timeout' | 'stop';
  /** The process could not be started at all (missing shell, missing working directory). */
  spawnError?: string;
}

export interface SpawnOptions {
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The process's CHECKPOINT_TRACKING_ID; one is made when not given. */
  marker?: string;
  /** Called once per output line (without the newline); `cut` when the line was longer than the cap. */
  onLine?: (line: string, stream: Stream, cut: boolean) => void;
  maxLine?: number;
  timeoutMs?: number;
  /** SIGTERM → SIGKILL delay on timeout. */
  timeoutGraceMs?: number;
  /** Bytes of output tail kept for logs and error messages. */
  tailBytes?: number;
}

/** Markers for processes started outside an engine's units (items commands, rollbacks). */
const adHoc = new Markers('checkpoint', process.pid);

/** Processes started here that have not ended: `stopAll` ends them (a signal during set-up). */
const live = new Set<ManagedProcess>();

/** Ends every process started here and not yet exited (SIGTERM, SIGKILL after the grace). */
export function stopAll(graceMs: number): void {
  for (const p of live) p.terminate(graceMs, 'stop');
}

/** Sends a signal to a whole process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export function groupAlive(pgid: number): boolean {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The absolute path of a program as a PATH search would find it, so each of thousands of unit starts skips
 * the search (a failed stat per PATH entry); the name itself when not found (the start then reports it).
 */
export function resolveProgram(name: string, pathVar: string | undefined): string {
  if (name.includes('/')) return name;
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return name;
}

export class ManagedProcess {
  readonly pid: number | undefined;
  readonly startTime: number | undefined;
  readonly marker: string;
  readonly exited: Promise<ProcessExit>;
  readonly #child: ChildProcess;
  readonly #tail: Tail;
  readonly #started = performance.now();
  #endedBy: ProcessExit['endedBy'];
  #timeoutTimer: NodeJS.Timeout | undefined;
  /** Resolves once an ending the engine began is over: group and marked processes gone, or SIGKILLed. */
  #ending: Promise<void> | undefined;
  #exited = false;

  constructor(opts: SpawnOptions) {
    this.marker = opts.marker ?? adHoc.next();
    const [cmd, ...args] = opts.argv;
    // detached: the child leads a new process group, so signals reach everything it starts in it.
    this.#child = spawn(cmd ?? 'sh', args, {
      cwd: opts.cwd,
      env: { ...opts.env, [TRACKING_VAR]: this.marker },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.#child.pid;
    this.startTime = this.pid === undefined ? undefined : processStartTime(this.pid);
    this.#tail = new Tail(opts.tailBytes ?? 64 * 1024);
    const onLine = opts.onLine;
    const splitter = (stream: Stream) =>
      onLine ? new LineSplitter((l, cut) => onLine(l, stream, cut), opts.maxLine) : undefined;
    const lines = { stdout: splitter('stdout'), stderr: splitter('stderr') };
    const take = (stream: Stream) => (c: Buffer) => {
      this.#tail.push(c, stream);
      lines[stream]?.push(c);
    };
    this.#child.stdout?.on('data', take('stdout'));
    this.#child.stderr?.on('data', take('stderr'));
    if (this.pid !== undefined) live.add(this);
    this.exited = this.#watchExit(opts).then(async (exit) => {
      this.#exited = true;
      if (this.#timeoutTimer) clearTimeout(this.#timeoutTimer);
      this.#tail.end();
      lines.stdout?.end();
      lines.stderr?.end();
      // An ending the engine began is over only once what the unit left behind is gone too.
      await this.#ending;
      live.delete(this);
      const result: ProcessExit = { ...exit, ms: Math.round(performance.now() - this.#started) };
      if (this.#endedBy) result.endedBy = this.#endedBy;
      return result;
    });
    // setTimeout fires at once past 2^31-1 ms (~24.8 days); a longer timeout is as good as none.
    if (opts.timeoutMs !== undefined && opts.timeoutMs < MAX_TIMER_MS && this.pid !== undefined) {
      this.#timeoutTimer = setTimeout(() => {
        this.terminate(opts.timeoutGraceMs ?? 10_000, 'timeout');
      }, opts.timeoutMs);
    }
  }

  #watchExit(opts: SpawnOptions): Promise<Omit<ProcessExit, 'ms' | 'endedBy'>> {
    const child = this.#child;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (exit: Omit<ProcessExit, 'ms' | 'endedBy'>) => {
        if (settled) return;
        settled = true;
        // Processes the unit left may hold its pipes open: its end does not wait for them.
        const drain = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          resolve(exit);
        }, DRAIN_MS);
        let open = 2;
        const closed = () => {
          open -= 1;
          if (open === 0) {
            clearTimeout(drain);
            resolve(exit);
          }
        };
        for (const s of [child.stdout, child.stderr]) {
          if (!s || s.readableEnded || s.destroyed) closed();
          else s.once('close', closed);
        }
      };
      child.once('error', (err) =>
        finish({ code: null, signal: null, spawnError: describeSpawnError(err, opts) }),
      );
      child.once('exit', (code, signal) => finish({ code, signal }));
    });
  }

  /**
   * Ends the process and all it started: SIGTERM to its group and to every process with its marker now,
   * SIGKILL to whatever is left of them after the grace (0 = SIGKILL at once).
   */
  terminate(graceMs: number, reason: 'stop' | 'timeout' = 'stop'): void {
    if (this.pid === undefined) return;
    if (this.#exited && !this.#ending) return;
    this.#endedBy ??= reason;
    const pid = this.pid;
    const marker = this.marker;
    const marked = () => findMarked((m) => m === marker);
    const kill = (signal: NodeJS.Signals) => {
      signalGroup(pid, signal);
      signalAll(marked(), signal);
    };
    if (graceMs <= 0) {
      kill('SIGKILL');
      this.#ending ??= Promise.resolve();
      return;
    }
    if (this.#ending) return;
    kill('SIGTERM');
    const killAt = performance.now() + graceMs;
    this.#ending = new Promise<void>((resolve) => {
      const watch = setInterval(() => {
        const left = marked();
        if (!groupAlive(pid) && left.length === 0) {
          clearInterval(watch);
          resolve();
        } else if (performance.now() >= killAt) {
          clearInterval(watch);
          kill('SIGKILL');
          resolve();
        }
      }, 50);
    });
  }

  /** The output's tail, decoded for messages. */
  tail(): string {
    return this.#tail.toString();
  }

  /** The output's tail as printed, for the log file. */
  tailBytes(): Buffer {
    return this.#tail.bytes();
  }

  get hasOutput(): boolean {
    return !this.#tail.empty;
  }
}

function describeSpawnError(err: NodeJS.ErrnoException, opts: SpawnOptions): string {
  if (err.code === 'ENOENT') {
    return `could not start "${opts.argv[0]}" in ${opts.cwd}: the program or the working directory does not exist; check \`shell\` and \`working-directory\``;
  }
  return `could not start "${opts.argv[0]}": ${err.message}`;
}
