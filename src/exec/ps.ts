// What the engine knows about other processes: start time, process group, parent, state, and the
// CHECKPOINT_TRACKING_ID in the environment. Linux reads /proc (exact, cheap). Where /proc is not there
// (macOS; a Linux container with /proc hidden) the same facts come from `ps`, which is slower and coarser:
//  - one `ps` call lists every process (`-A`), so a whole ownership check or orphan pass costs one or three
//    calls: a listing serves every question asked in the same turn of the event loop (several units being
//    ended poll in the same timer phase), and is forgotten at the next turn, so a process started since is
//    never missed by a later look (a listing kept for a fixed time hid a unit's fresh daemon from its own
//    ending);
//  - each call is bounded (PS_TIMEOUT_MS, then SIGKILL; after a failure ps is left alone for RETRY_AFTER_MS)
//    and synchronous, as its callers are; it happens only in orphan passes, the action's post, the ending
//    of a unit and lease checks, never per unit start;
//  - a call that fails (no `ps`, a `ps` that itself needs /proc, a timeout) means "cannot prove": callers
//    signal nothing they cannot prove, and `psProblem()` says why for their note.
//
// Start times. /proc gives clock ticks since boot (stat field 22); `ps` gives a wall time to the second
// (`lstart`). The two never compare, so a recorded start time says which it is: ticks are stored as they are
// (every checkpoint and lease written before ps was used holds ticks), a wall time as WALL_BASE + Unix seconds,
// far above any tick count (2^52 ticks at 100 Hz is over a million years of uptime). A start time of the
// other kind proves nothing, in either direction. A wall time can also move when the clock is set (procps
// derives it from the boot time, which follows the clock), so a differing wall time never proves that a pid
// was reused either: only equal start times of one kind, or differing tick counts, are facts.
//
// The environment through `ps`. macOS `ps -E` appends the environment the process was started with (its
// own user's processes, or any as root) after its arguments, procps `ps e` likewise, both joined with
// spaces. A marker is read only from what follows the process's arguments (the same listing without the
// environment is the prefix that is cut off), so no argument can pose as a marker, and only as a whole
// space-separated word: a process whose environment shows two different markers is nobody's.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Wall start times (ps `lstart`, seconds) are stored above this; tick counts (/proc) below. */
export const WALL_BASE = 2 ** 52;

export type StartKind = 'ticks' | 'wall';

export function startKind(start: number): StartKind {
  return start >= WALL_BASE ? 'wall' : 'ticks';
}

export function wallStart(unixSeconds: number): number {
  return WALL_BASE + unixSeconds;
}

/** A recorded start time for messages: "clock tick 123 since boot" or "2025-01-06T12:34:56Z (ps)". */
export function describeStart(start: number): string {
  if (startKind(start) === 'ticks') return `clock tick ${start} after boot (/proc)`;
  return `${new Date((start - WALL_BASE) * 1000).toISOString().replace('.000', '')} (ps)`;
}

/**
 * Whether a recorded start time and the one read now name the same process: `same` only for equal values
 * of one kind; `other` only for differing tick counts (a pid reused); anything else is `unknown`.
 */
export function compareStarts(
  recorded: number | undefined,
  current: number | undefined,
): 'same' | 'other' | 'unknown' {
  if (recorded === undefined || current === undefined) return 'unknown';
  if (startKind(recorded) !== startKind(current)) return 'unknown';
  if (recorded === current) return 'same';
  return startKind(current) === 'ticks' ? 'other' : 'unknown';
}

/** One process as the engine needs it. */
export interface ProcRow {
  pid: number;
  ppid: number;
  pgid: number;
  /** First letter of the state: `Z` zombie, `X` dead (Linux), `S`, `R`, ... */
  state: string;
  /** Ticks (/proc) or WALL_BASE + seconds (ps); see startKind. */
  start: number;
}

// ---- /proc -------------------------------------------------------------------------------------------

let procChecked: boolean | undefined;

/** Whether /proc can be read here (decided once per process: /proc/self/stat is readable). */
export function procAvailable(): boolean {
  if (procChecked === undefined) {
    try {
      procChecked = process.platform !== 'win32' && readFileSync('/proc/self/stat', 'utf8').length > 0;
    } catch {
      procChecked = false;
    }
  }
  return procChecked;
}

/** /proc/<pid>/stat, or undefined when the process is gone (or /proc cannot be read). */
export function procRow(pid: number | 'self'): ProcRow | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ..." — comm may hold spaces and parentheses: split after the last ')'.
  // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const row = {
    pid: Number(text.slice(0, text.indexOf(' '))),
    state: f[0] ?? '',
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    start: Number(f[19]),
  };
  if (row.state === '' || ![row.pid, row.ppid, row.pgid, row.start].every(Number.isSafeInteger))
    return undefined;
  return row;
}

// ---- ps output ---------------------------------------------------------------------------------------

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * `lstart` as printed with LC_ALL=C and TZ=UTC0 ("Mon Jan  6 12:34:56 2025": C's `%c`, which macOS uses,
 * and procps's "%a %b %e %H:%M:%S %Y" are the same) → Unix seconds; undefined for anything else.
 */
export function parseLstart(text: string): number | undefined {
  const m = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/.exec(text.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1] as string);
  if (month < 0) return undefined;
  const [day, h, min, s, y] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Date.UTC(y, month, day, h, min, s);
  const back = new Date(ms);
  // Date.UTC rolls "Feb 31" over into March: such a date was not printed by ps.
  if (
    back.getUTCDate() !== day ||
    back.getUTCHours() !== h ||
    back.getUTCMinutes() !== min ||
    back.getUTCSeconds() !== s
  )
    return undefined;
  return ms / 1000;
}

const TABLE_LINE =
  /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+([A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} \d{4})\s*$/;

/**
 * The output of `ps -A -o pid=,pgid=,ppid=,stat=,lstart=` → rows by pid. A line that does not parse is
 * left out (that process is then unknown, so nothing about it is proven).
 */
export function parsePsTable(text: string): Map<number, ProcRow> {
  const out = new Map<number, ProcRow>();
  for (const line of text.split('\n')) {
    const m = TABLE_LINE.exec(line);
    if (!m) continue;
    const seconds = parseLstart(m[5] as string);
    const [pid, pgid, ppid] = [m[1], m[2], m[3]].map(Number) as [number, number, number];
    if (seconds === undefined || ![pid, pgid, ppid].every(Number.isSafeInteger)) continue;
    out.set(pid, { pid, pgid, ppid, state: (m[4] as string).charAt(0), start: wallStart(seconds) });
  }
  return out;
}

/** The output of `ps -A -ww -o pid=,command=` (with or without the environment) → command text by pid. */
export function parsePsCommands(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    if (Number.isSafeInteger(pid)) out.set(pid, m[2] as string);
  }
  return out;
}

/**
 * The marker in one process's listing: `withEnv` is its command with the environment, `argv` the same
 * without. Undefined when the listings disagree (its arguments changed in between), when the environment
 * part has no marker, or when it shows two different ones.
 */
export function markerFromListing(withEnv: string, argv: string, name: string): string | undefined {
  if (!withEnv.startsWith(argv)) return undefined;
  const env = withEnv.slice(argv.length);
  if (env !== '' && !env.startsWith(' ')) return undefined;
  let found: string | undefined;
  const key = `${name}=`;
  for (const word of env.split(' ')) {
    if (!word.startsWith(key)) continue;
    const value = word.slice(key.length);
    if (found !== undefined && found !== value) return undefined;
    found = value;
  }
  return found;
}

/**
 * Both listings (`commands` and `environment`, see psArgs) → the marker of every process that shows one; a
 * process in only one of them (started or ended in between) is left out.
 */
export function markersFromListings(plain: string, withEnv: string, name: string): Map<number, string> {
  const argv = parsePsCommands(plain);
  const out = new Map<number, string>();
  for (const [pid, text] of parsePsCommands(withEnv)) {
    const a = argv.get(pid);
    if (a === undefined) continue;
    const m = markerFromListing(text, a, name);
    if (m !== undefined) out.set(pid, m);
  }
  return out;
}

// ---- running ps --------------------------------------------------------------------------------------

/** How long one `ps` may take before it is killed (and nothing is proven). */
export const PS_TIMEOUT_MS = 2_000;
/**
 * After a failure, how long `ps` is not asked again: a unit being ended polls every 50 ms, and a `ps` that
 * hangs must not hold the engine's 5 s stop for its timeout on every poll. Meanwhile nothing is proven.
 */
const RETRY_AFTER_MS = 10_000;

export type PsFlavour = 'bsd' | 'procps';

/** macOS (and the BSDs) spell "with the environment" `-E`; procps spells it `e` (its `-e` is `-A`). */
export function psFlavour(platform: NodeJS.Platform = process.platform): PsFlavour {
  return platform === 'linux' ? 'procps' : 'bsd';
}

/** The arguments of each listing: the table, and the commands with or without the environment. */
export function psArgs(
  what: 'table' | 'commands' | 'environment',
  flavour: PsFlavour = psFlavour(),
): string[] {
  if (what === 'table') return ['-A', '-o', 'pid=,pgid=,ppid=,stat=,lstart='];
  // -ww: never cut at a terminal width (BSD ps cuts at 79 columns when it cannot tell one).
  const env = what === 'environment' ? [flavour === 'bsd' ? '-E' : 'e'] : [];
  return ['-A', ...env, '-ww', '-o', 'pid=,command='];
}

let problem: string | undefined;
let failedAt = Number.NEGATIVE_INFINITY;

/** Why the last `ps` failed, for a note; undefined once one succeeded. */
export function psProblem(): string | undefined {
  return problem;
}

/** Runs `ps`, bounded; undefined (and psProblem set) when it fails. */
function runPs(args: string[]): string | undefined {
  if (performance.now() - failedAt < RETRY_AFTER_MS) return undefined;
  try {
    const out = execFileSync('ps', args, {
      // A fixed locale and zone make `lstart` parseable; COLUMNS and the rest of ours are left out.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: PS_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 256 * 1024 * 1024,
      encoding: 'utf8',
    });
    problem = undefined;
    return out;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & {
      stderr?: string;
      signal?: string | null;
      status?: number | null;
    };
    const said = typeof e.stderr === 'string' ? e.stderr.trim().split('\n')[0] : '';
    const how =
      e.code === 'ENOENT'
        ? 'there is no `ps` on PATH'
        : e.signal
          ? `\`ps\` did not answer within ${PS_TIMEOUT_MS / 1000} s`
          : `\`ps ${args.join(' ')}\` failed${e.status != null ? ` (exit ${e.status})` : ''}${said ? `: ${said}` : ''}`;
    problem = `/proc is not readable here and ${how}`;
    failedAt = performance.now();
    return undefined;
  }
}

let tableSnap: Map<number, ProcRow> | undefined;
let markerSnap: Map<number, string> | undefined;
let forgetting = false;

/** Keeps listings until the event loop's next turn. */
function keepThisTurn(): void {
  if (forgetting) return;
  forgetting = true;
  setImmediate(forgetPsListings).unref();
}

/** Every process, from `ps`; undefined when ps fails. */
export function psTable(): Map<number, ProcRow> | undefined {
  if (tableSnap) return tableSnap;
  const text = runPs(psArgs('table'));
  if (text === undefined) return undefined;
  tableSnap = parsePsTable(text);
  keepThisTurn();
  return tableSnap;
}

/** The marker (of variable `name`) of every process that shows one, from `ps`; undefined when ps fails. */
export function psMarkers(name: string): Map<number, string> | undefined {
  if (markerSnap) return markerSnap;
  // Without the environment first: a process started in between is then missing from the prefix listing
  // and is left out, never read without its prefix cut.
  const plain = runPs(psArgs('commands'));
  if (plain === undefined) return undefined;
  const withEnv = runPs(psArgs('environment'));
  if (withEnv === undefined) return undefined;
  const out = markersFromListings(plain, withEnv, name);
  markerSnap = out;
  keepThisTurn();
  return out;
}

/** Forgets the listings: the next question lists again. */
export function forgetPsListings(): void {
  tableSnap = undefined;
  markerSnap = undefined;
  forgetting = false;
}

// ---- one view over both sources ----------------------------------------------------------------------

/** How this host answers "which process is this": /proc, ps, or not at all (with the reason). */
export type ProcessSource = { kind: 'proc' } | { kind: 'ps' } | { kind: 'none'; why: string };

export function processSource(): ProcessSource {
  if (process.platform === 'win32') return { kind: 'none', why: 'processes cannot be inspected on Windows' };
  return procAvailable() ? { kind: 'proc' } : { kind: 'ps' };
}

/**
 * One process's row from whichever source this host has. `undefined`: no such process; `null`: it cannot be
 * told (ps failed; psProblem says why).
 */
export function rowOf(pid: number | 'self'): ProcRow | undefined | null {
  const source = processSource();
  if (source.kind === 'proc') return procRow(pid);
  if (source.kind === 'none') return null;
  const table = psTable();
  if (table === undefined) return null;
  return table.get(pid === 'self' ? process.pid : pid);
}
