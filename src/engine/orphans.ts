// A run killed with SIGKILL leaves its units running. Before their work is handed out again, the next run on
// the same host ends them — only those proven to be its units (host, start time and the unit's marker in the
// process's environment: src/exec/ownership.ts), so neither a reused pid nor a forged record is signalled.

import { provablyOurs } from '../exec/ownership.js';
import type { Checkpoint } from '../journal/checkpoint.js';
import { isProcessAlive } from '../journal/lock.js';
import { orphanedUnits } from '../journal/state.js';
import { groupAlive, signalGroup } from './process.js';

export async function endOrphans(ckpt: Checkpoint, notice: (message: string) => void): Promise<number> {
  let ended = 0;
  const waits: number[] = [];
  for (const { step, unit } of orphanedUnits(ckpt.state)) {
    const pid = unit.pid;
    // The checkpoint's word is not enough: host, start time and the unit's marker must all be proven.
    if (pid !== undefined && provablyOurs(unit)) {
      if (signalGroup(pid, 'SIGKILL')) {
        notice(
          `ended unit ${step} [${unit.start}, ${unit.end}) left running by attempt ${unit.attempt} (pid ${pid})`,
        );
        waits.push(pid);
        ended += 1;
      }
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
  // SIGKILL is asynchronous; the group is gone once the kernel has reaped or re-parented every member.
  const until = Date.now() + 5000;
  while (waits.some((pid) => groupAlive(pid) && isProcessAlive(pid)) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return ended;
}
