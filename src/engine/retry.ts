import type { RetryPolicy } from '../plan/types.js';

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
