// The rule that turns a process's end into a record (src/engine/recorder.ts classifyExit): its exit status,
// and why the engine ended it if it did.
import { describe, expect, it } from 'vitest';
import { classifyExit } from '../../src/engine/recorder.js';
import type { ProcessExit } from '../../src/exec/process.js';

const exit = (e: Partial<ProcessExit>): ProcessExit => ({ code: null, signal: null, ms: 5, ...e });

describe('classifyExit', () => {
  it('exit 0 is done, also when the engine had asked the unit to stop (it finished: never run it again)', () => {
    expect(classifyExit(exit({ code: 0 }), undefined).kind).toBe('done');
    expect(classifyExit(exit({ code: 0, endedBy: 'stop' }), undefined).kind).toBe('done');
  });

  it('a unit the stop ended any other way is interrupted, to run again', () => {
    expect(classifyExit(exit({ signal: 'SIGTERM', endedBy: 'stop' }), undefined).kind).toBe('interrupted');
    expect(classifyExit(exit({ signal: 'SIGKILL', endedBy: 'stop' }), undefined).kind).toBe('interrupted');
    expect(classifyExit(exit({ code: 1, endedBy: 'stop' }), undefined).kind).toBe('interrupted');
    expect(classifyExit(exit({ code: 75, endedBy: 'stop' }), undefined).kind).toBe('interrupted');
  });

  it('past its timeout a unit has failed, whatever it exits', () => {
    const v = classifyExit(exit({ code: 0, endedBy: 'timeout' }), 2000);
    expect(v).toMatchObject({ kind: 'failed', cause: 'timeout' });
    expect(classifyExit(exit({ signal: 'SIGTERM', endedBy: 'timeout' }), 2000).kind).toBe('failed');
  });

  it('otherwise: 75 yields, a signal or another code fails, a start that failed fails', () => {
    expect(classifyExit(exit({ code: 75 }), undefined).kind).toBe('yielded');
    expect(classifyExit(exit({ signal: 'SIGSEGV' }), undefined)).toMatchObject({
      kind: 'failed',
      cause: 'signal',
    });
    expect(classifyExit(exit({ code: 3 }), undefined)).toMatchObject({ kind: 'failed', cause: 'exit' });
    expect(classifyExit(exit({ spawnError: 'no such program' }), undefined)).toMatchObject({
      cause: 'spawn',
    });
  });
});
