// The one place that spawns unit processes: own process group, environment, output capture, timeouts and
// group-wide signals. Everything else asks this module.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { processStartTime } from '../journal/lock.js';
import { envObject, type UnitEnv } from './unit-env.js';

export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface UnitExit {
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
  /** A plain object, or a step's fixed part plus the unit's own variables (cheaper for launchers). */
  env: NodeJS.ProcessEnv | UnitEnv;
  /** Called once per complete output line (without the newline). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  timeoutMs?: number;
  /** SIGTERM → SIGKILL delay on timeout. */
  timeoutGraceMs?: number;
  /** Bytes of output tail kept for logs and error messages. */
  tailBytes?: number;
}

/** Sends a signal to a whole process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class Tail {
  #chunks: Buffer[] = [];
  #bytes = 0;
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  push(b: Buffer): void {
    this.#chunks.push(b);
    this.#bytes += b.length;
    while (this.#bytes - (this.#chunks[0]?.length ?? 0) >= this.#limit && this.#chunks.length > 1) {
      this.#bytes -= this.#chunks.shift()?.length ?? 0;
    }
  }
  toString(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.length - this.#limit)).toString('utf8');
  }
  get empty(): boolean {
    return this.#bytes === 0;
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

/** How a unit's process was started: the direct `spawn` below, or a launcher (engine/launcher.ts). */
export interface UnitBackend {
  readonly pid: number | undefined;
  /** Output chunks as they come; the backend calls it until `exited` resolves. */
  setOutput(fn: (chunk: Buffer, stream: 'stdout' | 'stderr') => void): void;
  /** Resolves when the process has exited and its output is drained. */
  readonly exited: Promise<Omit<UnitExit, 'ms' | 'endedBy'>>;
}

/** Starts a unit with Node's spawn, detached: the child leads a new process group. */
export function spawnDirect(opts: SpawnOptions): UnitBackend {
  const [cmd, ...args] = opts.argv;
  // detached: the child becomes the leader of a new process group, so signals reach everything it starts.
  const child: ChildProcess = spawn(cmd ?? 'sh', args, {
    cwd: opts.cwd,
    env: envObject(opts.env),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let sink: (chunk: Buffer, stream: 'stdout' | 'stderr') => void = () => {};
  child.stdout?.on('data', (c: Buffer) => sink(c, 'stdout'));
  child.stderr?.on('data', (c: Buffer) => sink(c, 'stderr'));
  const exited = new Promise<Omit<UnitExit, 'ms' | 'endedBy'>>((resolve) => {
    let settled = false;
    const finish = (exit: Omit<UnitExit, 'ms' | 'endedBy'>) => {
      if (settled) return;
      settled = true;
      // Background children may keep the pipes open after the shell exits; don't let them hold the unit.
      const drain = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve(exit);
      }, 50);
      let open = 2;
      const closed = () => {
        open -= 1;
        if (open === 0) {
          clearTimeout(drain);
          resolve(exit);
        }
      };
      if (child.stdout?.readableEnded ?? true) closed();
      else child.stdout?.once('close', closed);
      if (child.stderr?.readableEnded ?? true) closed();
      else child.stderr?.once('close', closed);
    };
    child.once('error', (err) =>
      finish({ code: null, signal: null, spawnError: describeSpawnError(err, opts) }),
    );
    child.once('exit', (code, signal) => finish({ code, signal }));
  });
  return {
    pid: child.pid,
    setOutput: (fn) => {
      sink = fn;
    },
    exited,
  };
}

export class UnitProcess {
  readonly pid: number | undefined;
  readonly startTime: number | undefined;
  readonly exited: Promise<UnitExit>;
  readonly #tail: Tail;
  readonly #started = performance.now();
  #endedBy: UnitExit['endedBy'];
  #timeoutTimer: NodeJS.Timeout | undefined;
  #done = false;

  constructor(opts: SpawnOptions, backend: UnitBackend = spawnDirect(opts)) {
    this.pid = backend.pid;
    this.startTime = this.pid === undefined ? undefined : processStartTime(this.pid);
    const onLine = opts.onLine;
    const partial = { stdout: '', stderr: '' };
    // stdout and stderr are separate pipes read in no fixed order, so the log takes whole lines only:
    // a chunk that ends mid-line waits for its stream's next newline, or the tail would splice the
    // other stream's line into it. A partial line past the tail's size goes in as it is (it would be
    // cut anyway), which keeps memory bounded by unit output without newlines.
    const tailLimit = opts.tailBytes ?? 64 * 1024;
    this.#tail = new Tail(tailLimit);
    const pendingLine: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
    const pendingBytes = { stdout: 0, stderr: 0 };
    const toTail = (chunk: Buffer, stream: 'stdout' | 'stderr'): void => {
      const nl = chunk.lastIndexOf(0x0a);
      if (nl < 0) {
        pendingLine[stream].push(chunk);
        pendingBytes[stream] += chunk.length;
        if (pendingBytes[stream] <= tailLimit) return;
        flushLine(stream);
        return;
      }
      flushLine(stream);
      this.#tail.push(chunk.subarray(0, nl + 1));
      if (nl + 1 < chunk.length) {
        const rest = chunk.subarray(nl + 1);
        pendingLine[stream].push(rest);
        pendingBytes[stream] = rest.length;
      }
    };
    const flushLine = (stream: 'stdout' | 'stderr'): void => {
      for (const b of pendingLine[stream]) this.#tail.push(b);
      pendingLine[stream] = [];
      pendingBytes[stream] = 0;
    };
    backend.setOutput((chunk, stream) => {
      toTail(chunk, stream);
      if (!onLine) return;
      const lines = (partial[stream] + chunk.toString('utf8')).split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const l of lines) onLine(l, stream);
    });
    this.exited = backend.exited.then((exit) => {
      this.#done = true;
      // The timeout timer is moot now, but a pending SIGKILL still has to reach group members that
      // ignored the SIGTERM after the leader exited.
      if (this.#timeoutTimer) clearTimeout(this.#timeoutTimer);
      // Both streams may end mid-line; the newline between them keeps the two last lines apart.
      const both = pendingBytes.stdout > 0 && pendingBytes.stderr > 0;
      flushLine('stdout');
      if (both) this.#tail.push(Buffer.from('\n'));
      flushLine('stderr');
      if (onLine) {
        for (const stream of ['stdout', 'stderr'] as const)
          if (partial[stream]) onLine(partial[stream], stream);
      }
      const result: UnitExit = { ...exit, ms: Math.round(performance.now() - this.#started) };
      if (this.#endedBy) result.endedBy = this.#endedBy;
      return result;
    });
    // setTimeout fires at once past 2^31-1 ms (~24.8 days); a longer timeout is as good as none.
    if (opts.timeoutMs !== undefined && opts.timeoutMs < MAX_TIMER_MS && this.pid !== undefined) {
      this.#timeoutTimer = setTimeout(() => {
        this.#endedBy = 'timeout';
        this.terminate(opts.timeoutGraceMs ?? 10_000);
      }, opts.timeoutMs);
    }
  }

  /** SIGTERM to the group now, SIGKILL after the grace (0 = SIGKILL at once). */
  terminate(graceMs: number, reason: 'stop' | 'timeout' = this.#endedBy ?? 'stop'): void {
    if (this.#done || this.pid === undefined) return;
    this.#endedBy ??= reason;
    const pid = this.pid;
    if (graceMs <= 0) {
      signalGroup(pid, 'SIGKILL');
      return;
    }
    signalGroup(pid, 'SIGTERM');
    // SIGKILL whatever is left of the group at the end of the grace; stop watching once it is empty.
    const killAt = Date.now() + graceMs;
    const watch = setInterval(() => {
      if (!groupAlive(pid)) clearInterval(watch);
      else if (Date.now() >= killAt) {
        signalGroup(pid, 'SIGKILL');
        clearInterval(watch);
      }
    }, 50);
  }

  tail(): string {
    return this.#tail.toString();
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
