// Starting a process from Node costs milliseconds of blocked event loop (fork of a big process, then a wait
// for exec), which capped a plan of short units at a fifth of xargs' rate. A launcher is a small, long-lived
// bash that forks units for us: Node writes the unit's request to a file (`slot-N.launch`: its own variables;
// the step's cwd, argv and environment go to `slot-N.launch.step`, written and read only when they change:
// parsing them took a tenth of a millisecond per unit) and one byte to the launcher; the launcher starts the
// unit in its own process group (job control, `set -m`), reports its pid and exit status, and passes its
// output through on stdout/stderr, closed by an end marker so nothing is misattributed. One launcher runs
// one unit at a time; the pool holds one per concurrently running unit. A plain `bash -c` unit is not even
// exec'd: its forked subshell of the launcher becomes that bash (a forked shell, see forked-shell.ts), which
// saves bash's start-up, about a millisecond of CPU per unit.
//
// Pipelining: while a unit runs, the engine may already hand its launcher the next request (`q`). The
// launcher starts it the moment the running unit exits 0, without waiting for a round trip through the
// engine; that round trip, not CPU, was most of the time per unit for short units. Revoking is race-free:
// the launcher answers every request with exactly one of `S pid` (started), `X request` (could not read it)
// or `R` (not started), and it starts a queued request only if
//   - the unit before it exited 0 (after a failure the engine decides: it may have exceeded max-failures),
//   - no `c` (revoke) from the engine is waiting when it looks, and
//   - the clock is not past the request's start-by time (`__by`, the time budget's last useful start).
// So a revoked request either never starts, or started before the revoke was read and the engine learns
// its pid from `S` like any other start. The launcher's writes double as a check that the engine is alive:
// a launcher whose engine is gone (SIGKILL) gets EPIPE and exits instead of starting a queued unit.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BASH_SETS, envDelta, shellStart, whichBash } from './forked-shell.js';
import type { SpawnOptions, UnitBackend, UnitExit } from './process.js';
import { SlotFile } from './slot-file.js';
import { UnitEnv } from './unit-env.js';

/** Starts the launcher's own lines in a unit stream: NUL never occurs in text output. */
const PREFIX = '\0checkpoint-';
/** After PREFIX: the end of a unit's output on this stream. */
const END = 'unit-end\n';
/** After PREFIX, on stdout only: events up to the newline. */
const EVENTS = 'ev ';
/** Longer than any event line: a NUL-started line this long without a newline is unit output. */
const MAX_EVENT_LINE = 256;

// fd 3 carries one byte per command: `r` start the request now (sent to an idle launcher), `q` start it
// when the running unit has ended (see above), `c` revoke the queued request (ignored once it started).
// Events travel in-band on stdout, between units' output, as `\0checkpoint-ev ...` lines: `S <pid>`
// started, `X <pid> <why>` / `X request` could not start, `R` not started, `E <status>` ended. The `E` of a
// unit goes with the next queued unit's `S` or `R`, or at once when nothing is queued; events on one line
// are separated by `;` (bash flushes its output at each newline, so this is one write). In-band, they need
// no redirection: \`printf >&3\` saves, redirects and restores fd 1 around the write, ten system calls.
// Units write to fd 1 and fd 4 (their stderr) and read /dev/null (fd 0); the launcher's own stderr, where
// job control prints its notices, is discarded. A PIPE handler (an ignored signal would be inherited by
// units) turns a write to a vanished engine into an error the loop acts on.
const SCRIPT = `
shopt -s execfail
trap : PIPE
# The engine gone (SIGKILL) while a unit runs: nothing else would end the unit, whose \`spawned\` record may
# not have reached the journal for the next run to find it. fd 5 is a socket the engine never writes to; a
# watcher reads end-of-file from it when the engine's end closes, however the engine ended, and signals
# the launcher (USR1 ends \`wait\` at once), which ends its unit's group: SIGTERM, SIGKILL 3 s later.
__gone() {
  local __j __i
  __j=$(jobs -p)
  if [ -n "$__j" ]; then
    kill -TERM -- $(printf -- '-%s ' $__j) 2>/dev/null
    for __i in {1..30}; do
      kill -0 -- $(printf -- '-%s ' $__j) 2>/dev/null || exit 0
      sleep 0.1
    done
    kill -KILL -- $(printf -- '-%s ' $__j) 2>/dev/null
  fi
  exit 0
}
trap __gone USR1
(
  trap - USR1
  exec 0</dev/null 1>/dev/null 2>/dev/null 3<&- 4<&-
  read -r -u 5 _
  # Only while the launcher is still this watcher's parent: its pid may belong to another process later.
  read -r __s < "/proc/$BASHPID/stat" || exit
  set -- \${__s##*) }
  [ "$2" = "$$" ] && kill -USR1 "$$"
) &
exec 5<&-
set -m
__have=
__st=0
__ev=
while :; do
  if [ -n "$__ev" ] && ! read -t 0 -u 3; then printf '\\0checkpoint-ev %s\\n' "\${__ev%;}" || exit; __ev=; fi
  IFS= read -r -N 1 -u 3 __m || break
  case $__m in
  q)
    # Only a revoke can follow a queued request before it is answered.
    if [ "$__st" != 0 ]; then __m=c
    elif read -t 0 -u 3; then IFS= read -r -N 1 -u 3 __m || exit
    fi
    if [ "$__m" = c ]; then
      printf '\\0checkpoint-ev %sR\\n' "$__ev" || exit
      __ev=
      continue
    fi ;;
  r) ;;
  *) continue ;;
  esac
  __by=
  # The step's part (cwd, argv, its environment) is read again only when the request names another one.
  if . "$__req" && { [ "$__tpl" = "$__have" ] || { . "$__step" && __have=$__tpl; }; }; then
    if [ -n "$__by" ]; then
      __now=\${EPOCHREALTIME/[.,]/}
      if [ -z "$__now" ] || [ "$__now" -gt "$__by" ]; then
        printf '\\0checkpoint-ev %sR\\n' "$__ev" || exit
        __ev=
        continue
      fi
    fi
    (
      # One builtin call each, not a loop: this runs for every unit. cd's complaint goes to the
      # launcher's discarded stderr. cd first: it sets PWD and OLDPWD, which the unit then gets as its
      # environment says (the physical path, as a new bash would find with getcwd).
      cd -P -- "$__cwd" || { printf '\\0checkpoint-ev X %d cwd\\n' "$BASHPID"; exit 127; }
      if [ -z "$__fork" ]; then
        [ \${#__unset[@]} -eq 0 ] || unset -v "\${__unset[@]}"
        [ \${#__env[@]} -eq 0 ] || export "\${__env[@]}"
        [ \${#__own[@]} -eq 0 ] || export "\${__own[@]}"
        exec "\${__argv[@]}" 2>&4 3>&- 4>&-
        printf '\\0checkpoint-ev X %d exec\\n' "$BASHPID"
        exit 127
      fi
      # A forked shell (forked-shell.ts): this subshell becomes the unit's \`bash -c\`. Nothing of the
      # launcher stays: its variables (all named __*), function, traps (still listed by \`trap\` in a
      # subshell) and shell option go; the unit's set options come last, so they judge only its command.
      exec 2>&4 3>&- 4>&-
      [ \${#__unset[@]} -eq 0 ] || unset -v "\${__unset[@]}"
      BASH_EXECUTION_STRING=\${__argv[-1]}
      BASH_ARGV0=\${__argv[0]}
      set -- "$__fork" "\${__env[@]}" "\${__own[@]}"
      unset -v "\${!__@}"
      unset -f __gone
      trap - PIPE USR1
      shopt -u execfail
      BASH_SUBSHELL=0
      [ $# -eq 1 ] || export "\${@:2}"
      set $1 --
      # The command runs from a trap: a trap's code is numbered from line 1, as \`bash -c\` numbers its
      # command (LINENO, error messages), where a plain eval here would continue this script's numbering.
      # Where USR2 was ignored when the launcher started, it cannot be trapped: then a plain eval.
      trap 'trap - USR2; eval "$BASH_EXECUTION_STRING"; exit $?' USR2
      kill -USR2 $BASHPID
      eval "$BASH_EXECUTION_STRING"
    ) &
    __pid=$!
    # No engine to record it: end it rather than leave a unit running that nobody knows of.
    printf '\\0checkpoint-ev %sS %d\\n' "$__ev" "$__pid" || { kill -KILL -- "-$__pid"; exit; }
    __ev=
    wait "$__pid"
    __st=$?
  else
    printf '\\0checkpoint-ev %sX request\\n' "$__ev" || exit
    __ev=
    __st=127
  fi
  printf '\\0checkpoint-unit-end\\n' || exit
  printf '\\0checkpoint-unit-end\\n' >&4 || exit
  __ev="E $__st;"
done
`;

/** Bash ANSI-C quoting: safe for any byte string without NUL (which neither argv nor env can hold). */
export function bashQuote(s: string): string {
  // Most values need no escapes: one test instead of a character loop.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
  if (!/[\\'\x00-\x1f\x7f]/.test(s)) return `$'${s}'`;
  let out = "$'";
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}'`;
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name as NodeJS.Signals;
  return null;
}

/**
 * Splits one launcher stream into per-unit output by the end marker, taking out the launcher's event lines
 * (stdout only: `onEvents` given). Exported for its tests.
 */
export class Demux {
  /** The start of a line that may be ours, cut by the end of the previous chunk. */
  #carry: Buffer | undefined;
  readonly onData: (chunk: Buffer) => void;
  readonly onEnd: () => void;
  readonly onEvents: ((text: string) => void) | undefined;
  constructor(onData: (chunk: Buffer) => void, onEnd: () => void, onEvents?: (text: string) => void) {
    this.onData = onData;
    this.onEnd = onEnd;
    this.onEvents = onEvents;
  }

  push(chunk: Buffer): void {
    const buf = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    this.#carry = undefined;
    let pos = 0;
    let from = 0;
    for (;;) {
      const i = buf.indexOf(0, from);
      if (i < 0) break;
      const line = this.#line(buf, i);
      if (line === 'no') {
        from = i + 1;
        continue;
      }
      // The output before a launcher line belongs to the unit that line ends (or runs).
      if (i > pos) this.onData(buf.subarray(pos, i));
      if (line === 'cut') {
        // Possibly ours, cut by the chunk's end: decided with the next chunk.
        this.#carry = Buffer.from(buf.subarray(i));
        return;
      }
      if (line.events === undefined) this.onEnd();
      else this.onEvents?.(line.events);
      pos = i + line.length;
      from = pos;
    }
    if (buf.length > pos) this.onData(pos === 0 ? buf : buf.subarray(pos));
  }

  /** What starts at `i` (a NUL): a launcher line (its length, and its events), none, or one cut short. */
  #line(buf: Buffer, i: number): { length: number; events?: string } | 'no' | 'cut' {
    // Our lines are ASCII: latin1 maps each byte to one character.
    const head = buf.toString('latin1', i, Math.min(buf.length, i + PREFIX.length + END.length));
    if (head === PREFIX + END) return { length: head.length };
    if (this.onEvents && head.startsWith(PREFIX + EVENTS)) {
      const nl = buf.indexOf(10, i);
      if (nl >= 0 && nl - i <= MAX_EVENT_LINE) {
        const events = buf.toString('latin1', i + PREFIX.length + EVENTS.length, nl);
        return { length: nl + 1 - i, events };
      }
      return nl < 0 && buf.length - i <= MAX_EVENT_LINE ? 'cut' : 'no';
    }
    // A line cut short is a prefix of ours that reaches the end of the chunk.
    if (i + head.length < buf.length) return 'no';
    const cut =
      (PREFIX + END).startsWith(head) || (this.onEvents !== undefined && (PREFIX + EVENTS).startsWith(head));
    return cut ? 'cut' : 'no';
  }
}

type Exit = Omit<UnitExit, 'ms' | 'endedBy'>;
type Sink = (chunk: Buffer, stream: 'stdout' | 'stderr') => void;

/** A request handed to a launcher ahead of time (see the top of this file). */
export interface Handoff {
  /** The unit's backend once the launcher started it (or failed to: pid undefined); undefined: not started. */
  readonly started: Promise<UnitBackend | undefined>;
  /** Asks the launcher not to start it; `started` tells whether that came in time. */
  revoke(): void;
}

/** One request from being written until its three ends (stdout marker, stderr marker, `E`) arrived. */
class Request {
  readonly opts: SpawnOptions;
  /** Sent as `q`, behind a running unit. */
  readonly queued: boolean;
  readonly started: Promise<UnitBackend | undefined>;
  readonly exited: Promise<Exit>;
  /** Called when the unit ahead of it exited 0: from then on the launcher starts it unless revoked in time. */
  readonly onPromote: (() => void) | undefined;
  /** `S`, `X request` or `R` arrived. */
  settled = false;
  pid: number | undefined;
  failed: string | undefined;
  status: number | undefined;
  outEnded = false;
  errEnded = false;
  evEnded = false;
  revokeSent = false;
  #settle!: (b: UnitBackend | undefined) => void;
  #finish!: (exit: Exit) => void;
  #buffered: Array<[Buffer, 'stdout' | 'stderr']> | undefined = [];
  #sink: Sink = (c, s) => this.#buffered?.push([c, s]);

  constructor(opts: SpawnOptions, queued: boolean, onPromote?: () => void) {
    this.opts = opts;
    this.queued = queued;
    this.onPromote = onPromote;
    this.started = new Promise((r) => {
      this.#settle = r;
    });
    this.exited = new Promise((r) => {
      this.#finish = r;
    });
  }

  output(chunk: Buffer, stream: 'stdout' | 'stderr'): void {
    this.#sink(chunk, stream);
  }

  get done(): boolean {
    return this.outEnded && this.errEnded && this.evEnded;
  }

  /** It started (or could not: pid undefined); output and the exit follow. */
  start(pid: number | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.pid = pid;
    this.#settle({
      pid,
      setOutput: (fn) => {
        for (const [c, s] of this.#buffered ?? []) fn(c, s);
        this.#buffered = undefined;
        this.#sink = fn;
      },
      exited: this.exited,
    });
  }

  /** The launcher did not start it. */
  drop(): void {
    this.settled = true;
    this.#settle(undefined);
  }

  finish(exit: Exit): void {
    this.start(undefined);
    this.#finish(exit);
  }
}

class Launcher {
  readonly #child: ChildProcess;
  /** The launcher's fd 3: commands. */
  readonly #commands: Writable | undefined;
  /** The launcher's fd 5: held open, never written, for as long as this process lives. */
  readonly #alive: Readable | Writable | undefined;
  readonly #req: SlotFile;
  readonly #step: SlotFile;
  readonly #templates: TemplateCache;
  /** CHECKPOINT_LAUNCHER (`exec`: no forked shells). */
  readonly #mode: string | undefined;
  /** The step part the launcher was last sent (it keeps it loaded), numbered per launcher. */
  #tpl: { fixed: object; argv: readonly string[]; cwd: string; id: number } | undefined;
  #tplCount = 0;
  /** Requests written and not yet ended, in the order the launcher handles them. */
  readonly #units: Request[] = [];
  #dead = false;

  constructor(env: NodeJS.ProcessEnv, reqPath: string, templates: TemplateCache, mode: string | undefined) {
    this.#mode = mode;
    this.#req = new SlotFile(reqPath);
    this.#step = new SlotFile(`${reqPath}.step`);
    this.#templates = templates;
    // Detached: its own session, so a terminal's Ctrl-C reaches the engine (which stops units itself), not
    // the launchers. fd 0 is /dev/null, which units inherit; commands come on fd 3 (a socket Node writes to).
    // The paths go in the script, not as arguments: those would show in a forked shell's BASH_ARGV.
    const script = `__req=${bashQuote(reqPath)} __step=${bashQuote(this.#step.path)}${SCRIPT}`;
    this.#child = spawn('bash', ['-c', script, 'checkpoint-launcher'], {
      env,
      detached: true,
      // fd 5: never written; the launcher's watcher sees it close when this process ends (see SCRIPT).
      stdio: ['ignore', 'pipe', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    // Node types the extra stdio entries as either direction; a 'pipe' at fd 3 is a duplex socket.
    this.#commands = (this.#child.stdio[3] ?? undefined) as Writable | undefined;
    // Each stream is read in order: its output belongs to the first request whose marker it has not sent.
    const out = new Demux(
      (c) => this.#units.find((u) => !u.outEnded)?.output(c, 'stdout'),
      () => this.#streamEnded('outEnded'),
      (text) => this.#onEvents(text),
    );
    const err = new Demux(
      (c) => this.#units.find((u) => !u.errEnded)?.output(c, 'stderr'),
      () => this.#streamEnded('errEnded'),
    );
    this.#child.stdout?.on('data', (c: Buffer) => out.push(c));
    this.#child.stdio[4]?.on('data', (c: Buffer) => err.push(c as Buffer));
    // Node types stdio as a tuple of five; the sixth entry exists because stdio above asks for it.
    this.#alive = (this.#child.stdio as readonly (Readable | Writable | null | undefined)[])[5] ?? undefined;
    for (const s of [this.#child.stdout, this.#child.stdio[4], this.#commands, this.#alive])
      s?.on('error', () => {});
    this.#child.once('error', (e) => this.#die(e.message));
    this.#child.once('exit', (code, sig) => this.#die(sig ? `signal ${sig}` : `exit ${code}`));
  }

  get dead(): boolean {
    return this.#dead;
  }

  /** A request may be queued: the launcher runs a unit whose end it has not reported, and nothing else waits. */
  get canQueue(): boolean {
    const last = this.#units[this.#units.length - 1];
    return !this.#dead && last !== undefined && last.settled && last.pid !== undefined && !last.evEnded;
  }

  #die(why: string): void {
    if (this.#dead) return;
    this.#dead = true;
    const left = this.#units.splice(0);
    for (const r of left)
      r.finish({ code: null, signal: null, spawnError: `the unit launcher ended unexpectedly (${why})` });
  }

  #onEvents(line: string): void {
    for (const ev of line.split(';')) if (ev) this.#onEvent(ev);
  }

  #onEvent(line: string): void {
    // Events speak of the first request not ended yet, except `X` from a unit's own process (by pid).
    const r = this.#units.find((u) => !u.evEnded);
    if (!r) return;
    const [kind, arg, why] = line.split(' ');
    if (kind === 'S') r.start(Number(arg));
    else if (kind === 'R') {
      this.#units.splice(this.#units.indexOf(r), 1);
      // Only a queued request may go unstarted; the engine awaits a start for any other.
      if (r.queued) r.drop();
      else r.finish({ code: null, signal: null, spawnError: 'the unit launcher did not start it' });
    } else if (kind === 'X') {
      if (arg === 'request') {
        r.failed = 'request';
        r.start(undefined);
      } else {
        // The unit's process may report before its launcher's `S` for it (and before the `E` of the one
        // ahead of it) arrived: a pid nobody has yet belongs to the request still waiting for its `S`.
        const pid = Number(arg);
        const owner = this.#units.find((u) => u.pid === pid) ?? this.#units.find((u) => !u.settled);
        if (owner) owner.failed = why ?? 'start';
      }
    } else if (kind === 'E') {
      r.status = Number(arg);
      r.evEnded = true;
      const next = this.#units[this.#units.indexOf(r) + 1];
      if (next?.queued && !next.settled && r.status === 0) next.onPromote?.();
      this.#maybeFinish(r);
    }
  }

  #streamEnded(which: 'outEnded' | 'errEnded'): void {
    const r = this.#units.find((u) => !u[which]);
    if (!r) return;
    r[which] = true;
    this.#maybeFinish(r);
  }

  /** The unit is over when its three ends arrived. */
  #maybeFinish(r: Request): void {
    if (!r.done) return;
    this.#units.splice(this.#units.indexOf(r), 1);
    const st = r.status ?? 127;
    if (r.failed) {
      const what =
        r.failed === 'cwd'
          ? 'the working directory does not exist'
          : r.failed === 'request'
            ? 'the launcher could not read its request'
            : 'the program was not found';
      r.finish({
        code: null,
        signal: null,
        spawnError: `could not start "${r.opts.argv[0]}" in ${r.opts.cwd}: ${what}; check \`shell\` and \`working-directory\``,
      });
    } else if (st > 128 && signalName(st - 128)) {
      r.finish({ code: null, signal: signalName(st - 128) });
    } else r.finish({ code: st, signal: null });
  }

  #send(r: Request, startBy: number | undefined, base: NodeJS.ProcessEnv): void {
    // The request files are rewritten only here, and only once the previous request was answered (`S`, `X`
    // or `R`): the launcher reads them between reading the message byte and answering, never later.
    const env = r.opts.env instanceof UnitEnv ? r.opts.env : new UnitEnv(r.opts.env, {});
    let t = this.#tpl;
    if (!t || t.fixed !== env.fixed || t.cwd !== r.opts.cwd || !sameArgv(t.argv, r.opts.argv)) {
      this.#step.set(stepText(r.opts, env.fixed, base, this.#mode, this.#templates));
      this.#tplCount += 1;
      t = { fixed: env.fixed, argv: r.opts.argv, cwd: r.opts.cwd, id: this.#tplCount };
      this.#tpl = t;
    }
    this.#req.set(requestText(t.id, env.own, startBy));
    if (this.#dead) {
      r.finish({ code: null, signal: null, spawnError: 'the unit launcher is not running' });
      return;
    }
    this.#units.push(r);
    this.#commands?.write(r.queued ? 'q' : 'r');
  }

  /** Starts a unit now; the launcher must be idle (nothing queued, the last unit's `E` seen). */
  start(opts: SpawnOptions, base: NodeJS.ProcessEnv): Promise<UnitBackend> {
    const r = new Request(opts, false);
    this.#send(r, undefined, base);
    return r.started as Promise<UnitBackend>;
  }

  /** Queues a unit behind the running one (`canQueue` must be true). `startBy`: Unix time in µs. */
  queue(
    opts: SpawnOptions,
    base: NodeJS.ProcessEnv,
    startBy: number | undefined,
    onPromote: () => void,
  ): Handoff {
    const r = new Request(opts, true, onPromote);
    this.#send(r, startBy, base);
    return {
      started: r.started,
      revoke: () => {
        if (r.settled || r.revokeSent || this.#dead) return;
        r.revokeSent = true;
        this.#commands?.write('c');
      },
    };
  }

  close(): void {
    this.#commands?.end();
    this.#alive?.destroy();
    this.#req.close();
    this.#step.close();
  }
}

/** A step's request part per fixed environment, shared by all launchers (see `stepText`). */
type TemplateCache = WeakMap<object, { argv: readonly string[]; cwd: string; text: string }>;

/** Only the difference to the launcher's own environment travels; bash's own variables are pinned back. */
function envDiff(
  env: Readonly<NodeJS.ProcessEnv>,
  base: NodeJS.ProcessEnv,
): { set: string[]; unset: string[] } {
  const { set, unset } = envDelta(env, base, BASH_SETS);
  for (const k of BASH_SETS) {
    const v = env[k];
    if (v !== undefined) set.push(`${k}=${v}`);
    else unset.push(k);
  }
  return { set, unset };
}

function sameArgv(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

/** The step part of a request (`slot-N.launch.step`): `__cwd`, `__argv`, `__fork`, `__unset` and `__env`. */
function stepText(
  opts: SpawnOptions,
  fixed: Readonly<NodeJS.ProcessEnv>,
  base: NodeJS.ProcessEnv,
  mode: string | undefined,
  cache: TemplateCache,
): string {
  const hit = cache.get(fixed);
  if (hit && hit.cwd === opts.cwd && sameArgv(hit.argv, opts.argv)) return hit.text;
  const start = shellStart(opts.argv, fixed, base, mode);
  const { set, unset } = start.kind === 'fork' ? start : envDiff(fixed, base);
  const text = [
    `__cwd=${bashQuote(opts.cwd)}`,
    `__argv=(${opts.argv.map(bashQuote).join(' ')})`,
    // Always set: the launcher keeps the last step part's variables.
    `__fork=${start.kind === 'fork' ? bashQuote(start.setArgs) : ''}`,
    `__unset=(${unset.map(bashQuote).join(' ')})`,
    `__env=(${set.map(bashQuote).join(' ')})`,
    '',
  ].join('\n');
  cache.set(fixed, { argv: opts.argv, cwd: opts.cwd, text });
  return text;
}

/** The unit part of a request (`slot-N.launch`): which step part, its own variables, its start-by time. */
function requestText(
  tpl: number,
  own: Readonly<Record<string, string>>,
  startBy: number | undefined,
): string {
  let text = `__tpl=${tpl}\n__own=(`;
  for (const [k, v] of Object.entries(own)) text += ` ${bashQuote(`${k}=${v}`)}`;
  text += ')\n';
  if (startBy !== undefined) text += `__by=${Math.floor(startBy)}\n`;
  return text;
}

/** Whether the bash at a path is recent enough for a launcher, asked once per process. */
const bashVersionOk = new Map<string, boolean>();

/** One launcher per slot (a unit running at once), created on demand and replaced if it dies. */
export class LauncherPool {
  readonly #env: NodeJS.ProcessEnv;
  readonly #dir: string;
  readonly #bySlot = new Map<number, Launcher>();
  readonly #templates: TemplateCache = new WeakMap();
  readonly #mode: string | undefined;

  /** `mode`: CHECKPOINT_LAUNCHER of the run (`exec`: every unit gets a fresh shell). */
  constructor(env: NodeJS.ProcessEnv, tmpDir: string, mode?: string) {
    this.#env = env;
    this.#dir = tmpDir;
    this.#mode = mode;
  }

  /**
   * A launcher needs bash 5 or later on PATH (it uses `read -N`, EPOCHREALTIME, BASH_ARGV0); without it (say,
   * macOS's own bash 3.2 first on PATH) units are spawned directly.
   */
  static available(env: NodeJS.ProcessEnv): boolean {
    if (process.platform === 'win32' || env.CHECKPOINT_LAUNCHER === '0') return false;
    const bash = whichBash(env.PATH);
    if (bash === undefined) return false;
    let ok = bashVersionOk.get(bash);
    if (ok === undefined) {
      // stdin from /dev/null: a bash whose stdin is a socket (Node's pipes are) and whose SHLVL is unset
      // thinks rshd started it and sources ~/.bashrc, which on a CI runner may take a tenth of a second.
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash code, not a JS template
      const r = spawnSync(bash, ['-c', 'echo "${BASH_VERSINFO[0]}"'], {
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 10_000,
      });
      ok = r.status === 0 && Number(r.stdout.trim()) >= 5;
      bashVersionOk.set(bash, ok);
    }
    return ok;
  }

  start(opts: SpawnOptions, slot: number): Promise<UnitBackend> {
    let l = this.#bySlot.get(slot);
    if (!l || l.dead) {
      l = new Launcher(this.#env, join(this.#dir, `slot-${slot}.launch`), this.#templates, this.#mode);
      this.#bySlot.set(slot, l);
    }
    return l.start(opts, this.#env);
  }

  /** Whether `queue` may hand this slot's launcher a request now. */
  canQueue(slot: number): boolean {
    return this.#bySlot.get(slot)?.canQueue === true;
  }

  /**
   * Hands the slot's launcher the request to start when its running unit exits 0 (`canQueue` first).
   * `startBy` (Unix time, µs): not started later than this. `onPromote`: the unit ahead exited 0, so the
   * launcher is starting this one now unless a revoke reaches it first.
   */
  queue(opts: SpawnOptions, slot: number, startBy: number | undefined, onPromote: () => void): Handoff {
    const l = this.#bySlot.get(slot);
    if (!l?.canQueue) throw new Error(`internal: the launcher of slot ${slot} cannot take a queued request`);
    return l.queue(opts, this.#env, startBy, onPromote);
  }

  close(): void {
    for (const l of this.#bySlot.values()) l.close();
    this.#bySlot.clear();
  }
}
