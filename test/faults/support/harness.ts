// Shared by the fault campaigns: spawning the CLI under a fault (a file size limit, another user), waiting on
// what a running CLI does, reading which units a checkpoint or the effects file says ran, and judging an
// error message.
import { type ChildProcess, spawn } from 'node:child_process';
import { chown, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Checkpoint } from '../../../src/journal/checkpoint.js';
import type { CliResult, StatusJson } from '../../support/cli.js';
import { readLines, repoRoot } from '../../support/cli.js';

const register = join(repoRoot, 'test/support/register.mjs');
const entry = join(repoRoot, 'src/cli/index.ts');

export interface FaultSpawn {
  cwd: string;
  /** `ulimit -f` for the CLI and everything it starts, in KiB (bash counts -f in 1024-byte blocks). */
  fileLimitKb?: number;
  /** Run as this uid/gid: root ignores permission bits, so a read-only directory needs another user. */
  user?: { uid: number; gid: number };
  env?: NodeJS.ProcessEnv;
}

export interface FaultRun {
  child: ChildProcess;
  result: Promise<CliResult>;
  output(): string;
}

/** Like test/support/cli.ts's startCli, plus the faults: a bash in between sets the limit, then execs node. */
export function spawnCli(args: string[], opts: FaultSpawn): FaultRun {
  const node = [process.execPath, '--no-warnings', '--import', register, entry, ...args];
  const limit = opts.fileLimitKb;
  const [cmd, argv] =
    limit === undefined
      ? [node[0] as string, node.slice(1)]
      : ['bash', ['-c', `ulimit -f ${limit} && exec "$0" "$@"`, ...node]];
  const child = spawn(cmd, argv, {
    cwd: opts.cwd,
    env: { ...process.env, CI: 'true', NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const result = new Promise<CliResult>((res) => {
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
  return { child, result, output: () => stdout + stderr };
}

/** A started CLI, as test/support/cli.ts's startCli or spawnCli above return it. */
export interface RunningCli {
  result: Promise<CliResult>;
  output(): string;
}

/** The last `max` characters of a run's output, for a message. */
function tailOf(text: string, max = 4000): string {
  return text.length <= max ? text : `…${text.slice(-max)}`;
}

/**
 * Polls `fn` (every 25 ms, like test/support/cli.ts's waitFor) for something the running CLI `run` will
 * do, and gives up at once, with its exit and output, when the run ends first: what a run has not done by
 * its end never comes, and waiting out the timeout then only hid why (a torn-files set-up once waited 180 s
 * for a unit that had already run in an earlier attempt). `fn` is asked once more after the end is known,
 * so an event that came just before the exit is never missed.
 */
export async function waitWhileRunning<T>(
  run: RunningCli,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  let ended: CliResult | undefined;
  void run.result.then((r) => {
    ended = r;
  });
  const until = Date.now() + timeoutMs;
  for (;;) {
    const endedBefore = ended;
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (endedBefore)
      throw new Error(
        `the run ended (exit ${endedBefore.code}, signal ${endedBefore.signal}) before ${what}:\n` +
          tailOf(run.output()),
      );
    if (Date.now() > until)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${tailOf(run.output())}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function runCliWith(args: string[], opts: FaultSpawn): Promise<CliResult> {
  return spawnCli(args, opts).result;
}

/** Where a step's units lie: unit i is [from + i·size, min(from + (i+1)·size, to)). */
export interface Geometry {
  from: number;
  to: number;
  size: number;
}

/** `step:index` of every unit whose whole range is inside `done` (flat pairs or [s, e] pairs). */
export function unitsIn(step: string, g: Geometry, done: Iterable<readonly [number, number]>): Set<string> {
  const list = [...done];
  const out = new Set<string>();
  for (let i = 0; g.from + i * g.size < g.to; i++) {
    const s = g.from + i * g.size;
    const e = Math.min(s + g.size, g.to);
    if (list.some(([a, b]) => a <= s && e <= b)) out.add(`${step}:${i}`);
  }
  return out;
}

export function allUnits(geometry: Record<string, Geometry>): Set<string> {
  const out = new Set<string>();
  for (const [step, g] of Object.entries(geometry))
    for (let i = 0; g.from + i * g.size < g.to; i++) out.add(`${step}:${i}`);
  return out;
}

export function doneUnitsOfStatus(s: StatusJson, geometry: Record<string, Geometry>): Set<string> {
  const out = new Set<string>();
  for (const st of s.steps) {
    const g = geometry[st.id];
    if (g) for (const u of unitsIn(st.id, g, st.done)) out.add(u);
  }
  return out;
}

/** The units a checkpoint, as loaded, records done. */
export function doneUnitsOf(ck: Checkpoint, geometry: Record<string, Geometry>): Set<string> {
  const out = new Set<string>();
  for (const [id, rec] of ck.state.steps) {
    const g = geometry[id];
    if (g) for (const u of unitsIn(id, g, rec.done.toJSON())) out.add(u);
  }
  return out;
}

/** Units write `<step> <index>` to effects.log: the `step:index` of every line from `from` on. */
export async function effectUnits(effects: string, from = 0): Promise<string[]> {
  return (await readLines(effects)).slice(from).map((l) => l.trim().split(/\s+/).join(':'));
}

/** A Node stack frame (`    at fn (file:1:2)`) anywhere in the text. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+:\d+:\d+\)?$/m.test(text);
}

const WAY_OUT = /checkpoint reset|--new|restore the previous checkpoint entry|upgrade checkpoint-action/i;

/** Why `stderr` is not a clear error naming `file` and a way out, or undefined when it is one. */
export function unclear(stderr: string, file: RegExp, wayOut = WAY_OUT): string | undefined {
  if (hasStackTrace(stderr)) return 'stack trace';
  if (/internal error/.test(stderr)) return 'reported as an internal error';
  if (!file.test(stderr)) return `does not name the file (${file})`;
  if (!wayOut.test(stderr)) return 'names no way out';
  return undefined;
}

/** Hands `dir` and everything in it to `user` (for runs as another user). */
export async function chownTree(dir: string, user: { uid: number; gid: number }): Promise<void> {
  await chown(dir, user.uid, user.gid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, user);
    else await chown(p, user.uid, user.gid);
  }
}

/**
 * The events of a journal a run is still writing: whole lines only (a reader may see the start of a line
 * whose write is under way), parsed independently of the reader under test; none while it does not exist.
 */
export async function liveJournalEvents<E extends object>(path: string): Promise<E[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const out: E[] = [];
  for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
    if (line === '') continue;
    try {
      out.push(JSON.parse(line) as E);
    } catch {
      // Damage is the reader's business; this only watches a run's progress.
    }
  }
  return out;
}

export async function readRunId(projectDir: string): Promise<string> {
  return (await readFile(join(projectDir, '.checkpoints', 'latest'), 'utf8')).trim();
}
