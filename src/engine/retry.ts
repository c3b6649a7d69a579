// Retries: may a failed try be tried again (`retry.on`), what a failure no retry can fix should tell the
// user, and how long to wait before the next try. Pure: the scheduler passes in what the process did.

import type { RetryCondition, RetryPolicy } from '../plan/types.js';

/**
 * Delay before try `nextTry` (2 = the first retry): exponential, capped, with "equal jitter" (half fixed,
 * half random) so units failing together don't retry in lockstep yet never retry instantly.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  nextTry: number,
  random: () => number = Math.random,
): number {
  const exp = policy.delayMs * policy.backoff ** Math.max(0, nextTry - 2);
  const capped = Math.min(policy.maxDelayMs, exp);
  return Math.round(capped / 2 + random() * (capped / 2));
}

/** What ended a failed try, in the terms of `retry.on`. */
export type Failure =
  | { kind: 'exit'; code: number }
  /** The unit's `timeout` expired and the engine ended it. */
  | { kind: 'timeout' }
  /** A signal the engine did not send (the OOM killer, a `kill` from outside). */
  | { kind: 'signal'; signal: string }
  /** The process could not be started, or its launcher failed: nothing the command did. */
  | { kind: 'start' };

/** The exit codes a shell uses for "found but not executable" and "not found": no retry changes either. */
export const NOT_EXECUTABLE = 126;
export const NOT_FOUND = 127;

export interface RetryVerdict {
  retry: boolean;
  /** Why a failure that has tries left is not retried, e.g. `exit code 1 is not in retry.on [3, timeout]`. */
  why?: string;
}

/** `[3, timeout]`, as the plan writes it. */
export function formatRetryOn(on: readonly RetryCondition[]): string {
  return `[${on.join(', ')}]`;
}

/**
 * May `failure` be retried under `retry.on` (`on`; undefined: the default)? This says nothing of the tries
 * left: the caller counts those. The default retries every failure except exit codes 126 and 127, which
 * mean the command is not executable or not found: the same command fails the same way on every try.
 */
export function mayRetry(on: readonly RetryCondition[] | undefined, failure: Failure): RetryVerdict {
  if (on === undefined) {
    if (failure.kind === 'exit' && (failure.code === NOT_EXECUTABLE || failure.code === NOT_FOUND)) {
      return {
        retry: false,
        why: `no retry fixes exit code ${failure.code}; retry.on: [${failure.code}] retries it anyway`,
      };
    }
    return { retry: true };
  }
  if (on.includes('any')) return { retry: true };
  // A start failure is the engine's or the machine's, not one of the outcomes `on` can name; only `any` and
  // the default retry it.
  const retry =
    failure.kind === 'exit'
      ? on.includes(failure.code)
      : failure.kind === 'timeout'
        ? on.includes('timeout')
        : failure.kind === 'signal'
          ? on.includes('signal')
          : false;
  if (retry) return { retry };
  const what =
    failure.kind === 'exit'
      ? `exit code ${failure.code}`
      : failure.kind === 'timeout'
        ? 'a timeout'
        : failure.kind === 'signal'
          ? `a signal (${failure.signal})`
          : 'a failure to start';
  return { retry: false, why: `${what} is not in retry.on ${formatRetryOn(on)}` };
}

/** The unit's process as the failure hint needs it. */
export interface HintContext {
  /** The step's `run` command. */
  command: string;
  /** The step's `working-directory` as written in the plan (`.` by default). */
  workingDirectory: string;
  /** The PATH the unit's process was given. */
  path: string | undefined;
  /** The end of the unit's output, where the shell names the program it could not run. */
  tail: string;
}

// bash: `bash: line 1: ./migrate.sh: Permission denied`, `./a.sh: line 3: jq: command not found`;
// dash: `sh: 1: ./migrate.sh: Permission denied`, `sh: 1: jq: not found`.
const SHELL_COMPLAINT =
  /: ([^:\n]+): (Permission denied|Is a directory|command not found|not found|No such file or directory)\s*$/;

// bash: `bash: line 1: ./a.py: /usr/bin/python9: bad interpreter: No such file or directory` (exit 126).
const BAD_INTERPRETER = /: ([^:\n]+): ([^:\n]+): bad interpreter: /;

function complaint(tail: string): { name: string; what: string; interpreter?: string } | undefined {
  const lines = tail.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    const bad = BAD_INTERPRETER.exec(line);
    if (bad) return { name: (bad[1] ?? '').trim(), what: 'bad interpreter', interpreter: bad[2]?.trim() };
    const m = SHELL_COMPLAINT.exec(line);
    if (m) return { name: (m[1] ?? '').trim(), what: m[2] ?? '' };
  }
  return undefined;
}

const looksLikePath = (word: string) => word.includes('/');

function quoteArg(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/**
 * What to do about exit code 126 (not executable) or 127 (not found), naming the program: the one the
 * shell complained about in the output, else the command's first word. Undefined for any other failure.
 */
export function failureHint(failure: Failure, ctx: HintContext): string | undefined {
  if (failure.kind !== 'exit') return undefined;
  if (failure.code !== NOT_EXECUTABLE && failure.code !== NOT_FOUND) return undefined;
  const said = complaint(ctx.tail);
  const first = ctx.command.trim().split(/\s+/)[0] ?? '';
  const where = ctx.workingDirectory === '.' ? '' : ` (in working-directory ${ctx.workingDirectory})`;
  if (failure.code === NOT_EXECUTABLE) {
    const name = said?.name ?? (looksLikePath(first) ? first : undefined);
    if (name === undefined) return 'a program the command ran is not executable; make it so with chmod +x';
    if (said?.what === 'bad interpreter')
      return `the interpreter of ${name} (${said.interpreter ?? '?'}) does not exist; fix its #! line`;
    if (said?.what === 'Is a directory') return `${name} is a directory, not a program${where}`;
    return `${name} is not executable${where}; run chmod +x ${quoteArg(name)} (and git update-index --chmod=+x ${quoteArg(name)} to commit that)`;
  }
  const name = said?.name ?? (looksLikePath(first) ? first : undefined);
  if (name !== undefined && looksLikePath(name)) return `${name} does not exist${where}`;
  const shownPath = ctx.path === undefined || ctx.path === '' ? '(PATH was not set)' : ctx.path;
  return `${name === undefined ? 'a program the command ran' : name} was not found on the PATH the unit saw: ${shownPath}`;
}

/** A failed try's end as `retry.on` sees it. */
export function failureOf(exit: {
  code: number | null;
  signal: string | null;
  endedBy?: 'timeout' | 'stop';
  spawnError?: string;
}): Failure {
  if (exit.spawnError !== undefined) return { kind: 'start' };
  if (exit.endedBy === 'timeout') return { kind: 'timeout' };
  if (exit.code !== null) return { kind: 'exit', code: exit.code };
  if (exit.signal !== null) return { kind: 'signal', signal: exit.signal };
  return { kind: 'start' };
}

/**
 * The step's `retry.on` for `explain`, e.g. `retry: up to 3 tries, on [3, timeout] only`; undefined without
 * `on` (the default needs no note on every step).
 */
export function describeRetry(policy: RetryPolicy): string | undefined {
  if (policy.on === undefined) return undefined;
  if (policy.attempts <= 1) return `retry: on ${formatRetryOn(policy.on)} has no effect with attempts: 1`;
  const on = policy.on.includes('any') ? 'on any failure' : `on ${formatRetryOn(policy.on)} only`;
  return `retry: up to ${policy.attempts} tries, ${on}`;
}
