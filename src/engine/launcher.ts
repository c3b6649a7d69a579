// Starting a process from Node costs milliseconds of blocked event loop (fork of a big process, then a wait
// for exec), which capped a plan of short units at a fifth of xargs' rate. A launcher is a small, long-lived
// bash that forks units for us: Node writes the unit's request to a file and one line to the launcher; the
// launcher starts the unit in its own process group (job control, `set -m`), reports its pid and exit status
// on fd 3, and passes its output through on stdout/stderr, closed by an end marker so nothing is misattributed.
// One launcher runs one unit at a time; the pool holds one per concurrently running unit.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';
import type { SpawnOptions, UnitBackend, UnitExit } from './process.js';
import { SlotFile } from './slot-file.js';

const END = '\0checkpoint-unit-end\n';

// fd 3 carries events: `S <pid>` started, `X <why>` could not start, `E <status>` ended. Units write to fd 1
// and fd 4 (their stderr); the launcher's own stderr, where job control prints its notices, is discarded.
const SCRIPT = `
set -m
shopt -s execfail
__req=$1
# Each request is one empty line (one byte: bash reads pipes a byte at a time); its content is in $__req.
while IFS= read -r __line; do
  __ok=1
  . "$__req" || __ok=0
  if [ "$__ok" = 1 ]; then
    (
      # One builtin call each, not a loop: this runs for every unit.
      [ \${#__unset[@]} -eq 0 ] || unset -v "\${__unset[@]}"
      export "\${__env[@]}"
      cd -- "$__cwd" 2>/dev/null || { printf 'X cwd\\n' >&3; exit 127; }
      exec "\${__argv[@]}" 2>&4 3>&- 4>&- </dev/null
      printf 'X exec\\n' >&3
      exit 127
    ) &
    __pid=$!
    printf 'S %d\\n' "$__pid" >&3
    wait "$__pid"
    __st=$?
  else
    printf 'X request\\n' >&3
    __st=127
  fi
  printf '\\0checkpoint-unit-end\\n'
  printf '\\0checkpoint-unit-end\\n' >&4
  printf 'E %d\\n' "$__st" >&3
done
`;

/** Bash ANSI-C quoting: safe for any byte string without NUL (which neither argv nor env can hold). */
export function bashQuote(s: string): string {
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

/** Splits one launcher stream into per-unit output by the end marker. */
class Demux {
  #carry = '';
  readonly onData: (chunk: Buffer) => void;
  readonly onEnd: () => void;
  constructor(onData: (chunk: Buffer) => void, onEnd: () => void) {
    this.onData = onData;
    this.onEnd = onEnd;
  }
  push(chunk: Buffer): void {
    // Markers are ASCII; latin1 keeps a 1:1 byte mapping so slices map back to the original bytes.
    let text = this.#carry + chunk.toString('latin1');
    this.#carry = '';
    for (;;) {
      const i = text.indexOf(END);
      if (i < 0) break;
      if (i > 0) this.onData(Buffer.from(text.slice(0, i), 'latin1'));
      this.onEnd();
      text = text.slice(i + END.length);
    }
    // Keep a possible marker prefix for the next chunk.
    let keep = 0;
    for (let k = Math.min(END.length - 1, text.length); k > 0; k--) {
      if (END.startsWith(text.slice(text.length - k))) {
        keep = k;
        break;
      }
    }
    const out = text.slice(0, text.length - keep);
    this.#carry = text.slice(text.length - keep);
    if (out.length > 0) this.onData(Buffer.from(out, 'latin1'));
  }
}

interface Active {
  resolveStart: (pid: number | undefined) => void;
  sink: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
  failed?: string;
  status?: number;
  ends: number;
  finish: (exit: Omit<UnitExit, 'ms' | 'endedBy'>) => void;
  opts: SpawnOptions;
}

class Launcher {
  readonly #child: ChildProcess;
  readonly #env: NodeJS.ProcessEnv;
  readonly #req: SlotFile;
  #active: Active | undefined;
  #dead = false;
  #events = '';

  constructor(env: NodeJS.ProcessEnv, reqPath: string, onDeath: (l: Launcher) => void) {
    this.#env = env;
    this.#req = new SlotFile(reqPath);
    // Detached: its own session, so a terminal's Ctrl-C reaches the engine (which stops units itself),
    // not the launchers.
    this.#child = spawn('bash', ['-c', SCRIPT, 'checkpoint-launcher', reqPath], {
      env,
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore', 'pipe', 'pipe'],
    });
    const out = new Demux(
      (c) => this.#active?.sink(c, 'stdout'),
      () => this.#ended(),
    );
    const err = new Demux(
      (c) => this.#active?.sink(c, 'stderr'),
      () => this.#ended(),
    );
    this.#child.stdout?.on('data', (c: Buffer) => out.push(c));
    this.#child.stdio[4]?.on('data', (c: Buffer) => err.push(c as Buffer));
    const events = this.#child.stdio[3];
    events?.on('data', (c: Buffer) => this.#onEvents(c.toString('utf8')));
    for (const s of [this.#child.stdout, this.#child.stdio[4], events, this.#child.stdin])
      s?.on('error', () => {});
    const die = (why: string) => {
      if (this.#dead) return;
      this.#dead = true;
      onDeath(this);
      const a = this.#active;
      this.#active = undefined;
      if (a) {
        a.resolveStart(undefined);
        a.finish({ code: null, signal: null, spawnError: `the unit launcher ended unexpectedly (${why})` });
      }
    };
    this.#child.once('error', (e) => die(e.message));
    this.#child.once('exit', (code, sig) => die(sig ? `signal ${sig}` : `exit ${code}`));
  }

  get dead(): boolean {
    return this.#dead;
  }

  #onEvents(text: string): void {
    this.#events += text;
    const lines = this.#events.split('\n');
    this.#events = lines.pop() ?? '';
    for (const line of lines) {
      const a = this.#active;
      if (!a) continue;
      const [kind, arg] = line.split(' ');
      if (kind === 'S') a.resolveStart(Number(arg));
      else if (kind === 'X') a.failed = arg ?? 'start';
      else if (kind === 'E') {
        a.status = Number(arg);
        this.#ended();
      }
    }
  }

  /** Called for each stream marker and for the E event: the unit is over when all three arrived. */
  #ended(): void {
    const a = this.#active;
    if (!a) return;
    a.ends += 1;
    if (a.ends < 3 || a.status === undefined) return;
    this.#active = undefined;
    const st = a.status;
    if (a.failed) {
      a.resolveStart(undefined);
      const what = a.failed === 'cwd' ? 'the working directory does not exist' : 'the program was not found';
      a.finish({
        code: null,
        signal: null,
        spawnError: `could not start "${a.opts.argv[0]}" in ${a.opts.cwd}: ${what}; check \`shell\` and \`working-directory\``,
      });
    } else if (st > 128 && signalName(st - 128)) {
      a.finish({ code: null, signal: signalName(st - 128) });
    } else a.finish({ code: st, signal: null });
  }

  async start(opts: SpawnOptions, base: NodeJS.ProcessEnv): Promise<UnitBackend> {
    const env = opts.env;
    const set: string[] = [];
    const unset: string[] = [];
    // Only the difference to the launcher's own environment travels; bash's own variables are pinned back.
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) continue;
      if (base[k] !== v || k === 'PWD' || k === 'OLDPWD' || k === 'SHLVL' || k === '_') set.push(`${k}=${v}`);
    }
    for (const k of Object.keys(base)) if (env[k] === undefined) unset.push(k);
    for (const k of ['PWD', 'OLDPWD', 'SHLVL']) if (env[k] === undefined) unset.push(k);
    const req = [
      `__cwd=${bashQuote(opts.cwd)}`,
      `__env=(${set.map(bashQuote).join(' ')})`,
      `__unset=(${unset.map(bashQuote).join(' ')})`,
      `__argv=(${opts.argv.map(bashQuote).join(' ')})`,
      '',
    ].join('\n');
    this.#req.set(req);
    let finish!: (exit: Omit<UnitExit, 'ms' | 'endedBy'>) => void;
    const exited = new Promise<Omit<UnitExit, 'ms' | 'endedBy'>>((r) => {
      finish = r;
    });
    let buffered: Array<[Buffer, 'stdout' | 'stderr']> | undefined = [];
    let sink: (chunk: Buffer, stream: 'stdout' | 'stderr') => void = (c, s) => buffered?.push([c, s]);
    const pid = await new Promise<number | undefined>((resolveStart) => {
      this.#active = {
        resolveStart,
        sink: (c, s) => sink(c, s),
        ends: 0,
        finish,
        opts,
      };
      if (this.#dead) {
        this.#active = undefined;
        resolveStart(undefined);
        finish({ code: null, signal: null, spawnError: 'the unit launcher is not running' });
        return;
      }
      this.#child.stdin?.write('\n');
    });
    return {
      pid,
      setOutput: (fn) => {
        for (const [c, s] of buffered ?? []) fn(c, s);
        buffered = undefined;
        sink = fn;
      },
      exited,
    };
  }

  close(): void {
    this.#child.stdin?.end();
    this.#req.close();
  }
}

/** One launcher per slot (a unit running at once), created on demand and replaced if it dies. */
export class LauncherPool {
  readonly #env: NodeJS.ProcessEnv;
  readonly #dir: string;
  readonly #bySlot = new Map<number, Launcher>();

  constructor(env: NodeJS.ProcessEnv, tmpDir: string) {
    this.#env = env;
    this.#dir = tmpDir;
  }

  /** A launcher needs bash on PATH; without it units are spawned directly. */
  static available(env: NodeJS.ProcessEnv): boolean {
    if (process.platform === 'win32' || env.CHECKPOINT_LAUNCHER === '0') return false;
    for (const dir of (env.PATH ?? '').split(delimiter)) {
      try {
        accessSync(join(dir, 'bash'), constants.X_OK);
        return true;
      } catch {
        // not here
      }
    }
    return false;
  }

  start(opts: SpawnOptions, slot: number): Promise<UnitBackend> {
    let l = this.#bySlot.get(slot);
    if (!l || l.dead) {
      l = new Launcher(this.#env, join(this.#dir, `slot-${slot}.launch`), () => {});
      this.#bySlot.set(slot, l);
    }
    return l.start(opts, this.#env);
  }

  close(): void {
    for (const l of this.#bySlot.values()) l.close();
    this.#bySlot.clear();
  }
}
