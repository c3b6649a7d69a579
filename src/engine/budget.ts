// The time budget's predictive stop: before a unit starts, would it still end before the deadline? Times
// are on the monotonic clock (clock.ts): a wall clock that jumps changes no decision here.
import type { StepRecord } from '../journal/state.js';
import { p90 } from '../journal/state.js';
import { formatDuration } from '../plan/duration.js';
import type { Step } from '../plan/types.js';
import { estimateMs, fitsRemaining, usableMs } from './chunking.js';
import type { Unit } from './work-queue.js';

/** Undefined: the unit fits (or nothing predicts it yet); else why it would not end in time. */
export function wouldOverrun(
  step: Step,
  rec: StepRecord,
  u: Unit,
  now: number,
  deadline: number | undefined,
): string | undefined {
  if (deadline === undefined) return undefined;
  const left = Math.max(0, deadline - now);
  if (step.batch?.adaptive) {
    // Chunks sized by time: a chunk's estimate is its size at the step's measured rate. The chunk was already
    // cut to the time left, so only a chunk of `min` (or a retry, which keeps its range) can be too long.
    const est = estimateMs(rec.pace, u.end - u.start);
    if (est === undefined || fitsRemaining(est, deadline - now)) return undefined;
    return `a chunk of ${u.end - u.start} would take about ${formatDuration(Math.round(est))}, more than fits in the time budget (${formatDuration(left)} left, less a margin of ${formatDuration(left - usableMs(left))})`;
  }
  const est = p90(rec.durations);
  if (est === undefined || now + est <= deadline) return undefined;
  return `p90 ${formatDuration(est)} would end after the time budget (${formatDuration(left)} left)`;
}
