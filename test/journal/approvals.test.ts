// Approvals in the checkpoint model: `approve` events, what takes them back, and the snapshot round trip.
import { describe, expect, it } from 'vitest';
import type { CheckpointEvent } from '../../src/journal/events.js';
import { parseSnapshot, serializeSnapshot } from '../../src/journal/snapshot.js';
import { approvalOf } from '../../src/journal/state.js';
import { fp, replay } from '../support/events.js';

const init = (step: string): CheckpointEvent => ({
  type: 'step-init',
  step,
  fingerprint: fp,
  from: 0,
  to: 1,
  size: 1,
  reason: 'new',
});

describe('approvals in the model', () => {
  it('records who approved and when (the event time); approving again replaces it', () => {
    const st = replay([
      init('deploy'),
      { type: 'approve', step: 'deploy', by: 'alice' },
      { type: 'approve', step: 'deploy', by: 'bob' },
    ]);
    expect(approvalOf(st, 'deploy')).toEqual({ by: 'bob', at: 1002 });
    expect(approvalOf(st, 'other')).toBeUndefined();
  });

  it('an approval may come before the step has a record (a first run approved up front)', () => {
    const st = replay([{ type: 'approve', step: 'deploy', by: 'alice' }, init('deploy')]);
    expect(approvalOf(st, 'deploy')).toEqual({ by: 'alice', at: 1000 });
  });

  it('a reset takes it back, also without a record; --failed and the `always` reset do not', () => {
    const kept = replay([
      init('deploy'),
      { type: 'approve', step: 'deploy', by: 'alice' },
      { type: 'reset', step: 'deploy', failedOnly: true, reason: 'checkpoint reset --failed' },
      { type: 'reset', step: 'deploy', failedOnly: false, reason: 'always' },
    ]);
    expect(approvalOf(kept, 'deploy')).toMatchObject({ by: 'alice' });
    const gone = replay([
      init('deploy'),
      { type: 'approve', step: 'deploy', by: 'alice' },
      { type: 'reset', step: 'deploy', failedOnly: false, forget: true, reason: 'checkpoint reset' },
    ]);
    expect(approvalOf(gone, 'deploy')).toBeUndefined();
    const noRecord = replay([
      { type: 'approve', step: 'deploy', by: 'alice' },
      { type: 'reset', step: 'deploy', failedOnly: false, forget: true, reason: 'rolled back' },
    ]);
    expect(approvalOf(noRecord, 'deploy')).toBeUndefined();
  });

  it('survives the snapshot round trip; no `approvals` key without approvals', () => {
    const st = replay([init('deploy'), { type: 'approve', step: 'deploy', by: 'alice' }]);
    const text = serializeSnapshot(st);
    expect(text).toMatch(/"approvals": \{\n {4}"deploy": \{\n {6}"by": "alice",\n {6}"at": 1001\n/);
    const back = parseSnapshot(text, 'checkpoint.json');
    expect(approvalOf(back, 'deploy')).toEqual({ by: 'alice', at: 1001 });
    expect(serializeSnapshot(back)).toBe(text);
    expect(serializeSnapshot(replay([init('deploy')]))).not.toMatch(/approvals/);
  });
});
