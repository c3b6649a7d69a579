// A run killed with SIGKILL may leave its units running (its watcher normally ends them; a watcher killed
// too, or a host that went down, leaves them). Before their work is handed out again, the next run on the
// same host ends them. A checkpoint is evidence, not orders: a recorded process group is signalled only
// once its leader is proven to be the unit (src/exec/ownership.ts: host, start time and the unit's marker
// in its environment; never pid 1, this process, its group or an ancestor), and the processes a unit left
// outside its group are found by that marker alone (exec/marker.ts), which only this run's units carry.
// Without /proc (macOS) both come from `ps` (exec/ps.ts); when that fails nothing is proven, nothing is
// signalled, and `warn` says so: the units are still recorded interrupted and run again.
import { hostname } from 'node:os';
import { findMarked, findMarkedWith, isMarkerOfRun, markerSearchProblem, signalAll } from '../exec/marker.js';
import { provablyOurs } from '../exec/ownership.js';
import { groupAlive, signalGroup } from '../exec/process.js';
import type { Checkpoint } from '../journal/checkpoint.js';
import { orphanedUnits } from '../journal/state.js';

export async function endOrphans(
  ckpt: Checkpoint,
  notice: (message: string) => void,
  warn: (message: string) => void = notice,
): Promise<number> {
  const host = hostname();
  const orphans = orphanedUnits(ckpt.state);
  const markers = new Set<string>();
  for (const { unit } of orphans)
    if (unit.host === host && isMarkerOfRun(unit.marker, ckpt.runId)) markers.add(unit.marker);
  const byMarker = new Map<string, number[]>();
  if (markers.size > 0)
    // One pass over /proc (or one ps listing) for all of them; each process's marker comes with it.
    for (const [pid, m] of findMarkedWith((x) => markers.has(x)))
      byMarker.set(m, [...(byMarker.get(m) ?? []), pid]);
  const blind = markers.size > 0 ? markerSearchProblem() : undefined;
  if (blind !== undefined)
    warn(
      `could not look for processes left running by ${markers.size} unit(s) of an earlier attempt: ${blind}; none of them was signalled (only what can be proven ours is), so any still running keep running alongside the units run again`,
    );
  let ended = 0;
  const groups: number[] = [];
  for (const { step, unit } of orphans) {
    const pids =
      unit.marker !== undefined && markers.has(unit.marker) ? (byMarker.get(unit.marker) ?? []) : [];
    const group = unit.pid !== undefined && provablyOurs(unit) ? unit.pid : undefined;
    if (group !== undefined) signalGroup(group, 'SIGKILL');
    signalAll(pids, 'SIGKILL');
    if (group !== undefined || pids.length > 0) {
      notice(
        `ended unit ${step} [${unit.start}, ${unit.end}) left running by attempt ${unit.attempt} (${group !== undefined ? `pid ${group}` : `${pids.length} process(es) it started`})`,
      );
      if (group !== undefined) groups.push(group);
      ended += 1;
    }
    ckpt.recordLater({
      type: 'interrupt',
      step,
      start: unit.start,
      end: unit.end,
      index: unit.index,
      ms: 0,
      reason: `attempt ${unit.attempt} ended while it ran`,
    });
  }
  // SIGKILL is asynchronous: wait until the groups and marked processes are gone (or 5 s).
  const until = performance.now() + 5000;
  const alive = () =>
    groups.some((g) => groupAlive(g)) || (markers.size > 0 && findMarked((m) => markers.has(m)).length > 0);
  while (ended > 0 && alive() && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return ended;
}
