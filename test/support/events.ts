// Checkpoint state built from events in memory, for tests of the state model and what reads it.
import type { CheckpointEvent, Stamped } from '../../src/journal/events.js';
import { applyEvent, emptyState } from '../../src/journal/state.js';

/** A step fingerprint for records whose definition the test does not care about. */
export const fp = {
  hash: 'h',
  parts: { run: 'r', shell: 's', env: 'e', workingDirectory: 'w', batch: 'b', inputs: {} },
};

/** The state after `events`, stamped seq 1, 2, ... at t = 1000, 1001, ... */
export function replay(events: CheckpointEvent[]) {
  const st = emptyState('run-1', 'plan');
  events.forEach((e, i) => {
    applyEvent(st, { ...e, seq: i + 1, t: 1000 + i } as Stamped);
  });
  return st;
}
