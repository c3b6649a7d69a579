// Budgets, timeouts, retry delays and rates are measured on the monotonic clock: NTP steps, a suspended VM
// or a skewed host move the wall clock, not this one. Wall-clock times are for display (and for the
// CHECKPOINT_DEADLINE a command reads), converted once from the monotonic deadline.

/** Milliseconds on the monotonic clock (an arbitrary origin; only differences mean anything). */
export function monoNow(): number {
  return performance.now();
}

/** The Unix time (ms) that monotonic time `mono` corresponds to, by the wall clock as it reads now. */
export function wallOf(mono: number): number {
  return Date.now() + (mono - monoNow());
}
