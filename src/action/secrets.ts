// Outputs a plan marks secret (`secret-outputs`) reach the job as the `outputs` output and may be printed by
// later units; the runner masks a value in the log only once it has been told about it (`::add-mask::`).
// The action tells it as soon as a value exists: restored from an earlier attempt, or recorded by a unit.

import * as core from '@actions/core';
import type { CheckpointState } from '../journal/state.js';
import type { Plan } from '../plan/types.js';

/** Values registered in this process: each is announced once. */
const announced = new Set<string>();

/**
 * The runner masks each line of a multi-line secret on its own, and would mask every occurrence of a
 * one-character "secret" in the whole log: parts shorter than this are not registered on their own.
 */
const MIN_PART = 3;

/** The secret values of `plan`'s steps as the checkpoint holds them (of one step, when given). */
export function secretValues(plan: Plan, state: CheckpointState, step?: string): string[] {
  const out: string[] = [];
  for (const s of plan.steps) {
    if (step !== undefined && s.id !== step) continue;
    const names = s.secretOutputs ?? [];
    if (names.length === 0) continue;
    const outputs = state.steps.get(s.id)?.outputs ?? {};
    for (const n of names) {
      const v = outputs[n];
      if (v !== undefined && v !== '') out.push(v);
    }
  }
  return out;
}

/** Registers the secret values with the runner's log masking, once each (and each line of a long one). */
export function maskSecrets(values: readonly string[]): void {
  for (const v of values) {
    const parts = [v, ...v.split(/\r?\n/).map((l) => l.trim())];
    for (const p of parts) {
      if (p.length < MIN_PART && p !== v) continue;
      if (p === '' || announced.has(p)) continue;
      announced.add(p);
      core.setSecret(p);
    }
  }
}

/** `text` with every secret value replaced by `***` (longest first, so a value inside another goes too). */
export function redact(text: string, values: readonly string[]): string {
  let out = text;
  for (const v of [...values].sort((a, b) => b.length - a.length)) {
    if (v.length === 0) continue;
    out = out.split(v).join('***');
    for (const line of v.split(/\r?\n/)) {
      const l = line.trim();
      if (l.length >= MIN_PART) out = out.split(l).join('***');
    }
  }
  return out;
}
