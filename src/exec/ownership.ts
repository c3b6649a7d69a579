// Whether a process named by a checkpoint may be signalled. A pid read back from a checkpoint is a claim, not
// a fact: the checkpoint may be forged (a cache entry another job wrote) or stale (the pid was reused). So a
// process is signalled only once it is proven to be one of this run's units:
//  - it runs on this host, and its start time (/proc/<pid>/stat field 22) is the one recorded at spawn;
//  - its environment (/proc/<pid>/environ, fixed at exec) holds CHECKPOINT_TRACKING_ID=<the recorded
//    marker>, which the engine gives every unit (marker.ts; as the GitHub runner finds a job's strays by
//    RUNNER_TRACKING_ID). A forger who knows a pid and start time still cannot put the marker into a
//    foreign process's environment; a record without a marker (older checkpoints) is never ours;
//  - it leads its own process group (units are spawned detached; the group is what gets signalled);
//  - and it is none of: pid 0 or 1, this process, this process's group, an ancestor of this process.
// Where there is no /proc (macOS) the same facts come from `ps` (ps.ts): a start time from ps is a wall time
// to the second, recorded as such, and never compared with a /proc one; a ps that fails proves nothing. Either
// way, what cannot be proven is not signalled.
import { hostname } from 'node:os';
import { markerOf, TRACKING_VAR } from './marker.js';
import { compareStarts, describeStart, processSource, psProblem, rowOf, startKind } from './ps.js';

export { TRACKING_VAR } from './marker.js';

/** What a checkpoint says about a unit's process (a RunningUnit of the model). */
export interface ProcessClaim {
  pid?: number | undefined;
  host?: string | undefined;
  startTime?: number | undefined;
  marker?: string | undefined;
}

/** The pids of this process's ancestors (its parent, the parent's parent, ... up to pid 1); null: unknown. */
function ancestors(): Set<number> | null {
  const out = new Set<number>();
  let pid = process.ppid;
  while (pid > 0 && !out.has(pid)) {
    out.add(pid);
    const row = rowOf(pid);
    if (row === null) return null;
    if (!row) break;
    pid = row.ppid;
  }
  return out;
}

/**
 * Why the process a checkpoint names is not provably one of this run's units, or undefined when it is
 * (then, and only then, it may be signalled — its process group, which it leads).
 */
export function whyNotOurs(claim: ProcessClaim): string | undefined {
  const { pid, marker } = claim;
  const source = processSource();
  if (source.kind === 'none') return `process ownership cannot be proven here: ${source.why}`;
  if (pid === undefined || !Number.isSafeInteger(pid) || pid <= 1)
    return `pid ${String(pid)} is never signalled`;
  if (pid === process.pid) return `pid ${pid} is this process`;
  if (claim.host !== hostname()) return `it ran on host ${String(claim.host)}, not this one`;
  if (claim.startTime === undefined) return 'no start time was recorded';
  if (marker === undefined || marker === '') return `no ${TRACKING_VAR} was recorded`;
  const cannot = () => `process ${pid} cannot be checked: ${psProblem() ?? 'ps gave no answer'}`;
  const row = rowOf(pid);
  if (row === null) return cannot();
  if (!row || row.state === 'Z' || row.state === 'X') return `process ${pid} is gone`;
  const same = compareStarts(claim.startTime, row.start);
  if (same === 'other') return `pid ${pid} now belongs to another process (start time)`;
  if (same === 'unknown')
    return startKind(claim.startTime) === startKind(row.start)
      ? `pid ${pid} started at ${describeStart(row.start)}, not at the recorded ${describeStart(claim.startTime)}`
      : `its start time was recorded as ${describeStart(claim.startTime)}, which cannot be compared with ${describeStart(row.start)} read now`;
  if (row.pgid !== pid) return `process ${pid} does not lead its own process group`;
  const self = rowOf('self');
  if (self === null) return cannot();
  if (!self || self.pgid === pid) return `process group ${pid} is this process's own`;
  const up = ancestors();
  if (up === null) return cannot();
  if (up.has(pid)) return `process ${pid} is an ancestor of this process`;
  const has = markerOf(pid);
  if (has === undefined)
    return `process ${pid} does not carry this unit's ${TRACKING_VAR} (it has none, or its environment cannot be read${source.kind === 'ps' && psProblem() ? `: ${psProblem()}` : ''})`;
  if (has !== marker) return `process ${pid} does not carry this unit's ${TRACKING_VAR}`;
  return undefined;
}

/** True only when the process a checkpoint names is proven to be one of this run's units (see above). */
export function provablyOurs(claim: ProcessClaim): boolean {
  return whyNotOurs(claim) === undefined;
}
