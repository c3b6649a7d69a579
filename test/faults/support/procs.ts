// Shared by the kills, signals and concurrency campaigns: a seeded PRNG (a failing run can be replayed), the
// processes still alive in a project (orphans), and a small pool to run projects side by side.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Node's compile cache for the CLI children: each campaign starts hundreds of CLIs, and parsing src/ again
 * every time would be most of the campaign's CPU on a 2-core box.
 */
export const CLI_ENV: NodeJS.ProcessEnv = {
  NODE_COMPILE_CACHE: join(tmpdir(), 'checkpoint-faults-compile-cache'),
};

export { prng } from '../../support/prng.js';

export interface LiveProcess {
  pid: number;
  ppid: number;
  /** Process group: tells a unit's group from the launcher that started it. */
  pgid: number;
  cmdline: string;
}

function procStat(pid: number): { state: string; ppid: number; pgid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the last ')' (comm may hold anything): state ppid pgrp …
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '', ppid: Number(f[1]), pgid: Number(f[2]) };
  } catch {
    return undefined;
  }
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/**
 * Every live (non-zombie) process whose working directory is `dir` or below it. Units, their children and
 * grandchildren all run in the project folder, so this finds orphans whose pid no unit could write down (the
 * members of a pipeline), and a pid reused by an unrelated process is never mistaken for one.
 */
export function processesIn(dir: string): LiveProcess[] {
  const out: LiveProcess[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue;
    const st = procStat(pid);
    if (st === undefined || st.state === 'Z' || st.state === 'X') continue;
    out.push({ pid, ppid: st.ppid, pgid: st.pgid, cmdline: cmdlineOf(pid).slice(0, 60) });
  }
  return out;
}

/** The recorded pids still alive and still in `dir` (a reused pid elsewhere is not an orphan). */
export function aliveOf(pids: Iterable<number>, dir: string): number[] {
  const inDir = new Set(processesIn(dir).map((p) => p.pid));
  return [...new Set(pids)].filter((pid) => inDir.has(pid));
}

/** Orphans in `dir` after a short wait: SIGKILL is delivered asynchronously, a group takes a moment to go. */
export async function orphansIn(dir: string, settleMs = 1500): Promise<LiveProcess[]> {
  const until = Date.now() + settleMs;
  for (;;) {
    const live = processesIn(dir);
    if (live.length === 0 || Date.now() > until) return live;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Test cleanup: whatever a failed assertion left running must not outlive the campaign. */
export function killAllIn(dir: string): void {
  for (const p of processesIn(dir)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

/** Runs `fn` over `items` with at most `width` at once, in order of start. */
export async function pool<T>(
  items: T[],
  width: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
