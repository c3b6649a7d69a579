// A run killed with SIGKILL may leave its units running (its watcher normally ends them; a watcher killed
// too, or a host that went down, leaves them). Before their work is handed out again, the next run on the
// same host ends them. A checkpoint is evidence, not orders: a pid read from it is signalled only once it
// is proven one of this run's units (the host, the process start time and the unit's marker in its
// environment, never pid 1 or our own group), and the processes a unit left outside its group are found by
// that marker alone (exec/marker.ts), which only this run's units carry.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { findMarked, isMarkerOfRun, markerOf, signalAll } from '../exec/marker.js';
import { groupAlive, signalGroup } from '../exec/process.js';
import type { Checkpoint } from '../journal/checkpoint.js';
import { processStartTime } from '../journal/lock.js';
import { orphanedUnits, type RunningUnit } from '../journal/state.js';

/** This process's group and its ancestors: never signalled, whatever a checkpoint says. */
function protectedPids(): Set<number> {
  const out = new Set<number>([process.pid]);
  let pid = process.pid;
  for (let i = 0; i < 64 && pid > 1; i++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      break;
    }
    // Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (pid === process.pid) out.add(Number(f[2]));
    pid = Number(f[1]);
    out.add(pid);
  }
  return out;
}

/** Whether the group led by `unit.pid` is provably the unit's. */
function provablyOurs(unit: RunningUnit, host: string): boolean {
  const pid = unit.pid;
  if (pid === undefined || !Number.isSafeInteger(pid) || pid <= 1 || pid === process.pid) return false;
  if (unit.host !== host || unit.startTime === undefined || unit.marker === undefined) return false;
  if (protectedPids().has(pid)) return false;
  return processStartTime(pid) === unit.startTime && markerOf(pid) === unit.marker;
}

export async function endOrphans(ckpt: Checkpoint, notice: (message: string) => void): Promise<number> {
  const host = hostname();
  const orphans = orphanedUnits(ckpt.state);
  const markers = new Set<string>();
  for (const { unit } of orphans)
    if (unit.host === host && isMarkerOfRun(unit.marker, ckpt.runId)) markers.add(unit.marker);
  const marked = markers.size > 0 ? findMarked((m) => markers.has(m)) : [];
  const byMarker = new Map<string, number[]>();
  for (const pid of marked) {
    const m = markerOf(pid);
    if (m !== undefined) byMarker.set(m, [...(byMarker.get(m) ?? []), pid]);
  }
  let ended = 0;
  const groups: number[] = [];
  for (const { step, unit } of orphans) {
    const pids = unit.marker !== undefined ? (byMarker.get(unit.marker) ?? []) : [];
    const group = provablyOurs(unit, host) ? unit.pid : undefined;
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
