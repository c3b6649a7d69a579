// Every process the engine starts carries a marker in its environment, CHECKPOINT_TRACKING_ID, and so does
// everything those processes start, also what leaves the unit's process group (`setsid`, a double fork, a
// daemon): the environment is inherited where process groups are not. It is how the GitHub runner finds a
// job's strays (RUNNER_TRACKING_ID). A marker is `<run id>.<attempt>.<random>.<n>`: unique per unit start,
// and prefixed by the run, so a marker read back from a checkpoint can only ever name processes of that
// run's own units.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { processSource, psMarkers, psProblem } from './ps.js';

export const TRACKING_VAR = 'CHECKPOINT_TRACKING_ID';

/** Hands out the markers of one engine's units. */
export class Markers {
  readonly prefix: string;
  #n = 0;

  constructor(runId: string, attempt: number) {
    this.prefix = `${runId}.${attempt}.${randomBytes(4).toString('hex')}`;
  }

  next(): string {
    this.#n += 1;
    return `${this.prefix}.${this.#n}`;
  }
}

/** Whether `marker` is one this run's engine could have handed out (a checkpoint's value is checked). */
export function isMarkerOfRun(marker: unknown, runId: string): marker is string {
  return (
    typeof marker === 'string' &&
    marker.length < 512 &&
    marker.startsWith(`${runId}.`) &&
    /^[A-Za-z0-9._-]+$/.test(marker)
  );
}

const NEEDLE = Buffer.from(`${TRACKING_VAR}=`);

/** The marker in /proc/<pid>/environ (fixed at exec), if it has one and it can be read. */
function procMarker(pid: number): string | undefined {
  let env: Buffer;
  try {
    env = readFileSync(`/proc/${pid}/environ`);
  } catch {
    return undefined;
  }
  let at = env.indexOf(NEEDLE);
  // Only at the start of an entry: `X_CHECKPOINT_TRACKING_ID=` is another variable.
  while (at > 0 && env[at - 1] !== 0) at = env.indexOf(NEEDLE, at + 1);
  if (at < 0) return undefined;
  const from = at + NEEDLE.length;
  const end = env.indexOf(0, from);
  return env.subarray(from, end < 0 ? env.length : end).toString('utf8');
}

/**
 * The marker in one process's environment, if it has one: /proc where it is there, else `ps` (ps.ts); undefined
 * also when neither can tell.
 */
export function markerOf(pid: number): string | undefined {
  const source = processSource();
  if (source.kind === 'proc') return procMarker(pid);
  if (source.kind === 'none') return undefined;
  return psMarkers(TRACKING_VAR)?.get(pid);
}

/**
 * The pids of live processes whose marker `matches`, never pid 0, 1 or this process. Linux reads /proc;
 * without /proc (macOS) one `ps` listing; when that fails nothing is found (psProblem says why), and only
 * process groups the engine started itself are signalled.
 */
export function findMarked(matches: (marker: string) => boolean): number[] {
  return findMarkedWith(matches).map(([pid]) => pid);
}

let searchProblem: string | undefined;

/** Why the last findMarked/findMarkedWith could not look at all (then it found nothing); undefined if it could. */
export function markerSearchProblem(): string | undefined {
  return searchProblem;
}

/** As findMarked, with each process's marker. */
export function findMarkedWith(matches: (marker: string) => boolean): Array<[pid: number, marker: string]> {
  const out: Array<[number, string]> = [];
  const keep = (pid: number, m: string | undefined) => {
    if (!Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid) return;
    if (m !== undefined && matches(m)) out.push([pid, m]);
  };
  const source = processSource();
  searchProblem = source.kind === 'none' ? source.why : undefined;
  if (source.kind === 'ps') {
    const all = psMarkers(TRACKING_VAR);
    if (all === undefined) searchProblem = psProblem() ?? '`ps` gave no answer';
    for (const [pid, m] of all ?? []) keep(pid, m);
    return out;
  }
  if (source.kind === 'none') return out;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    const c = e.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(e);
    if (!Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid) continue;
    keep(pid, procMarker(pid));
  }
  return out;
}

/** Signals each process; one that is gone already is not an error. */
export function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    if (pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, signal);
    } catch {
      // Gone meanwhile.
    }
  }
}
