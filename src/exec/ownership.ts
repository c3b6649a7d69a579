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
// Linux only (/proc); elsewhere nothing is provably ours and nothing is signalled.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { markerOf, TRACKING_VAR } from './marker.js';

export { TRACKING_VAR } from './marker.js';

/** What a checkpoint says about a unit's process (a RunningUnit of the model). */
export interface ProcessClaim {
  pid?: number | undefined;
  host?: string | undefined;
  startTime?: number | undefined;
  marker?: string | undefined;
}

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  startTime: number;
}

function procStat(pid: number | 'self'): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ..." — comm may hold spaces and parentheses: split after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const stat = { state: f[0] ?? '', ppid: Number(f[1]), pgrp: Number(f[2]), startTime: Number(f[19]) };
  if (![stat.ppid, stat.pgrp, stat.startTime].every(Number.isSafeInteger)) return undefined;
  return stat;
}

/** The pids of this process's ancestors (its parent, the parent's parent, ... up to pid 1). */
function ancestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.ppid;
  while (pid > 0 && !out.has(pid)) {
    out.add(pid);
    const stat = procStat(pid);
    if (!stat) break;
    pid = stat.ppid;
  }
  return out;
}

/**
 * Why the process a checkpoint names is not provably one of this run's units, or undefined when it is
 * (then, and only then, it may be signalled — its process group, which it leads).
 */
export function whyNotOurs(claim: ProcessClaim): string | undefined {
  const { pid, marker } = claim;
  if (process.platform !== 'linux') return 'process ownership can only be proven on Linux';
  if (pid === undefined || !Number.isSafeInteger(pid) || pid <= 1)
    return `pid ${String(pid)} is never signalled`;
  if (pid === process.pid) return `pid ${pid} is this process`;
  if (claim.host !== hostname()) return `it ran on host ${String(claim.host)}, not this one`;
  if (claim.startTime === undefined) return 'no start time was recorded';
  if (marker === undefined || marker === '') return `no ${TRACKING_VAR} was recorded`;
  const stat = procStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return `process ${pid} is gone`;
  if (stat.startTime !== claim.startTime) return `pid ${pid} now belongs to another process (start time)`;
  if (stat.pgrp !== pid) return `process ${pid} does not lead its own process group`;
  const self = procStat('self');
  if (!self || self.pgrp === pid) return `process group ${pid} is this process's own`;
  if (ancestors().has(pid)) return `process ${pid} is an ancestor of this process`;
  const has = markerOf(pid);
  if (has === undefined)
    return `process ${pid} does not carry this unit's ${TRACKING_VAR} (it has none, or its environment cannot be read)`;
  if (has !== marker) return `process ${pid} does not carry this unit's ${TRACKING_VAR}`;
  return undefined;
}

/** True only when the process a checkpoint names is proven to be one of this run's units (see above). */
export function provablyOurs(claim: ProcessClaim): boolean {
  return whyNotOurs(claim) === undefined;
}
