import { describe, expect, it } from 'vitest';
import { describeRetry, type Failure, failureHint, failureOf, mayRetry } from '../../src/engine/retry.js';

const exit = (code: number): Failure => ({ kind: 'exit', code });
const ctx = (over: Partial<Parameters<typeof failureHint>[1]> = {}) => ({
  command: './migrate.sh up',
  workingDirectory: '.',
  path: '/usr/bin:/bin',
  tail: '',
  ...over,
});

describe('mayRetry', () => {
  it('by default retries every failure but exit codes 126 and 127', () => {
    for (const code of [1, 2, 3, 75, 125, 128, 137, 255])
      expect(mayRetry(undefined, exit(code)).retry).toBe(true);
    expect(mayRetry(undefined, { kind: 'timeout' }).retry).toBe(true);
    expect(mayRetry(undefined, { kind: 'signal', signal: 'SIGKILL' }).retry).toBe(true);
    expect(mayRetry(undefined, { kind: 'start' }).retry).toBe(true);
    for (const code of [126, 127]) {
      const v = mayRetry(undefined, exit(code));
      expect(v.retry).toBe(false);
      expect(v.why).toBe(`no retry fixes exit code ${code}; retry.on: [${code}] retries it anyway`);
    }
  });

  it('with a list retries only what it names', () => {
    const on = [3, 'timeout'] as const;
    expect(mayRetry(on, exit(3))).toEqual({ retry: true });
    expect(mayRetry(on, { kind: 'timeout' })).toEqual({ retry: true });
    expect(mayRetry(on, exit(1))).toEqual({
      retry: false,
      why: 'exit code 1 is not in retry.on [3, timeout]',
    });
    expect(mayRetry(on, { kind: 'signal', signal: 'SIGKILL' })).toEqual({
      retry: false,
      why: 'a signal (SIGKILL) is not in retry.on [3, timeout]',
    });
    expect(mayRetry(on, { kind: 'start' }).retry).toBe(false);
    expect(mayRetry(['signal'], { kind: 'signal', signal: 'SIGTERM' }).retry).toBe(true);
    expect(mayRetry(['signal'], { kind: 'timeout' }).retry).toBe(false);
  });

  it('a list that names 126 or 127 retries them; any retries everything', () => {
    expect(mayRetry([126], exit(126)).retry).toBe(true);
    expect(mayRetry([1], exit(127)).retry).toBe(false);
    for (const f of [exit(1), exit(126), exit(127), { kind: 'timeout' }, { kind: 'start' }] as Failure[])
      expect(mayRetry(['any'], f).retry).toBe(true);
  });
});

describe('failureOf', () => {
  it('classifies what the process did', () => {
    expect(failureOf({ code: 3, signal: null })).toEqual(exit(3));
    expect(failureOf({ code: null, signal: 'SIGKILL' })).toEqual({ kind: 'signal', signal: 'SIGKILL' });
    // The engine's own SIGTERM on a timeout is a timeout, not a signal.
    expect(failureOf({ code: null, signal: 'SIGTERM', endedBy: 'timeout' })).toEqual({ kind: 'timeout' });
    expect(failureOf({ code: 143, signal: null, endedBy: 'timeout' })).toEqual({ kind: 'timeout' });
    expect(failureOf({ code: null, signal: null, spawnError: 'could not start' })).toEqual({ kind: 'start' });
  });
});

describe('failureHint', () => {
  it('names no hint for other failures', () => {
    expect(failureHint(exit(1), ctx())).toBeUndefined();
    expect(failureHint({ kind: 'timeout' }, ctx())).toBeUndefined();
  });

  it('126: chmod +x, naming the script the shell complained about or the command started with', () => {
    expect(failureHint(exit(126), ctx({ tail: 'bash: line 1: ./migrate.sh: Permission denied\n' }))).toBe(
      './migrate.sh is not executable; run chmod +x ./migrate.sh (and git update-index --chmod=+x ./migrate.sh to commit that)',
    );
    // No output: the command's first word, when it is a path.
    expect(failureHint(exit(126), ctx({ command: 'scripts/load.sh 1 2', workingDirectory: 'db' }))).toBe(
      'scripts/load.sh is not executable (in working-directory db); run chmod +x scripts/load.sh (and git update-index --chmod=+x scripts/load.sh to commit that)',
    );
    // A script inside the command: dash's wording.
    expect(
      failureHint(exit(126), ctx({ command: 'make all', tail: 'sh: 1: ./gen: Permission denied' })),
    ).toMatch(/^\.\/gen is not executable; run chmod \+x \.\/gen/);
    expect(failureHint(exit(126), ctx({ command: 'make all' }))).toBe(
      'a program the command ran is not executable; make it so with chmod +x',
    );
    expect(failureHint(exit(126), ctx({ tail: 'bash: line 1: ./migrate.sh: Is a directory' }))).toBe(
      './migrate.sh is a directory, not a program',
    );
    expect(
      failureHint(
        exit(126),
        ctx({ tail: 'bash: line 1: ./a.py: /usr/bin/python9: bad interpreter: No such file or directory' }),
      ),
    ).toBe('the interpreter of ./a.py (/usr/bin/python9) does not exist; fix its #! line');
    expect(failureHint(exit(126), ctx({ tail: 'bash: line 1: ./my script.sh: Permission denied' }))).toMatch(
      /chmod \+x '\.\/my script\.sh'/,
    );
  });

  it('127: the program not found and the PATH the unit saw', () => {
    expect(
      failureHint(exit(127), ctx({ command: 'jq . x.json', tail: 'bash: line 1: jq: command not found' })),
    ).toBe('jq was not found on the PATH the unit saw: /usr/bin:/bin');
    expect(
      failureHint(exit(127), ctx({ command: 'jq . x.json', tail: 'sh: 1: jq: not found', path: '' })),
    ).toBe('jq was not found on the PATH the unit saw: (PATH was not set)');
    expect(
      failureHint(exit(127), ctx({ tail: 'bash: line 1: ./migrate.sh: No such file or directory' })),
    ).toBe('./migrate.sh does not exist');
    expect(failureHint(exit(127), ctx({ command: 'make' }))).toBe(
      'a program the command ran was not found on the PATH the unit saw: /usr/bin:/bin',
    );
    // The last complaint wins: the one that ended the script.
    expect(
      failureHint(
        exit(127),
        ctx({ command: 'make', tail: 'x: command not found\nok\nbash: line 3: yq: command not found\n' }),
      ),
    ).toMatch(/^yq was not found/);
  });
});

describe('describeRetry', () => {
  const policy = { attempts: 3, delayMs: 1000, backoff: 2, maxDelayMs: 60_000 };
  it('says how many tries and on what', () => {
    expect(describeRetry({ ...policy, attempts: 1 })).toBeUndefined();
    expect(describeRetry(policy)).toBeUndefined();
    expect(describeRetry({ ...policy, on: [3, 'timeout'] })).toBe(
      'retry: up to 3 tries, on [3, timeout] only',
    );
    expect(describeRetry({ ...policy, on: ['any', 3] })).toBe('retry: up to 3 tries, on any failure');
    expect(describeRetry({ ...policy, attempts: 1, on: [3] })).toBe(
      'retry: on [3] has no effect with attempts: 1',
    );
  });
});
