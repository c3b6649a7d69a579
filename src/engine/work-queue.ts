// Which unit of a step starts next: the queue policy, with no processes, files or clocks of its own (the
// caller passes `now`, on the monotonic clock), so it is tested on its own (test/engine/work-queue.test.ts).
//
// - Failed and interrupted units of earlier attempts go first, then new units from the step's grid in
//   order; a unit never spans two chunks of the grid, and holds no done or gone item (a piece of a cell is
//   a unit of its own, with the cell's index).
// - A retry waits for its backoff (`notBefore`); it keeps its unit's exact [start, end).
// - `order: sequential`: one unit at a time, the lowest pending one, and none after a unit failed for good.
// - `max-failures`: once more units failed for good than it allows, nothing more starts.
// - The time budget's predictive stop: `holdBack` hands a unit back and nothing more starts.
// - Chunks sized by time: each new chunk is sized by `chunking.ts` from the step's measured pace.
import { IntervalSet } from '../journal/intervals.js';
import { firstPendingGap, type StepRecord, unitCount } from '../journal/state.js';
import type { Step } from '../plan/types.js';
import { nextChunkSize } from './chunking.js';

export interface Unit {
  step: string;
  start: number;
  end: number;
  index: number;
}

interface QueuedUnit extends Unit {
  notBefore: number;
}

export type Next = Unit | { wakeAt: number } | undefined;

export class WorkQueue {
  readonly step: Step;
  readonly #rec: () => StepRecord;
  /** Work done before now plus every unit handed out in this attempt; only grows. */
  readonly #taken: IntervalSet;
  #cursor: number;
  #retryQueue: QueuedUnit[] = [];
  /** Tries of units in flight or waiting for a retry in this attempt; forgotten at a unit's end. */
  readonly #tries = new Map<number, number>();
  /** Chunks sized by time: interrupted work of earlier attempts, handed out first, in chunks sized anew. */
  #resume: IntervalSet | undefined;
  /** Units handed out and not yet ended (`order: sequential` hands out one at a time). */
  #inFlight = 0;
  /** Units that failed for good in this attempt (starts, for `order: sequential`). */
  readonly #failedFinal = new Set<number>();
  #stoppedByFailures = false;
  #heldForBudget = false;
  /** The time budget's deadline on the monotonic clock: chunks sized by time are cut to fit before it. */
  deadline: number | undefined;

  constructor(step: Step, rec: () => StepRecord) {
    this.step = step;
    this.#rec = rec;
    const r = rec();
    this.#cursor = r.from;
    this.#taken = r.done.clone();
    // `refresh: true`: items gone from the source go to no unit; a unit is cut around them, as around done work.
    for (const [s, e] of r.gone?.intervals() ?? []) this.#taken.add(s, e);
    for (const f of [...r.failed.values()].sort((a, b) => a.start - b.start)) {
      this.#retryQueue.push({ step: step.id, start: f.start, end: f.end, index: f.index, notBefore: 0 });
      this.#taken.add(f.start, f.end);
    }
    for (const [s, e] of r.interrupted.intervals()) {
      if (step.batch?.adaptive) {
        this.#resume ??= new IntervalSet();
        this.#resume.add(s, e);
        continue;
      }
      // A failed unit whose retry was interrupted is recorded both ways: it is queued once, as the retry.
      for (const [gs, ge] of [...this.#taken.gaps(s, e)]) {
        for (const u of this.cut(gs, ge)) {
          this.#retryQueue.push({ ...u, notBefore: 0 });
          this.#taken.add(u.start, u.end);
        }
      }
    }
  }

  get #sequential(): boolean {
    return this.step.batch?.order === 'sequential';
  }

  /** Most units of the step at once. */
  get parallel(): number {
    return this.step.batch ? (this.#sequential ? 1 : this.step.batch.parallel) : 1;
  }

  get maxFailures(): number {
    const mf = this.step.batch?.maxFailures;
    if (!mf) return 0;
    if (mf.kind === 'count') return mf.count;
    return Math.floor((mf.percent / 100) * unitCount(this.#rec()));
  }

  get failedFinal(): number {
    return this.#failedFinal.size;
  }

  get stoppedByFailures(): boolean {
    return this.#stoppedByFailures;
  }

  get heldForBudget(): boolean {
    return this.#heldForBudget;
  }

  /** Units that would start if limits allowed (now or after a retry's backoff). */
  get hasQueued(): boolean {
    if (this.#stoppedByFailures || this.#heldForBudget) return false;
    return this.#retryQueue.length > 0 || this.#taken.firstGap(this.#cursor, this.#rec().to) !== undefined;
  }

  /** A retry waits for its backoff (and may yet start in this attempt). */
  waitingRetry(now: number): boolean {
    return this.#retryQueue.some((q) => Number.isFinite(q.notBefore) && q.notBefore > now);
  }

  /** Grid-aligned units covering [s, e): a unit never spans two chunks of the step's grid. */
  *cut(s: number, e: number): Generator<Unit> {
    const { from, size } = this.#rec();
    let p = s;
    while (p < e) {
      const index = Math.floor((p - from) / size);
      const end = Math.min(from + (index + 1) * size, e);
      yield { step: this.step.id, start: p, end, index };
      p = end;
    }
  }

  /** The next unit to start now, or the time to look again, or nothing left in this attempt. */
  next(now: number): Next {
    if (this.#stoppedByFailures || this.#heldForBudget) return undefined;
    const u = this.#sequential ? this.#nextSequential(now) : this.#nextAny(now);
    if (u && !('wakeAt' in u)) this.#inFlight += 1;
    return u;
  }

  /** Counts a try of `u`, which the caller starts now; returns its 1-based number in this attempt. */
  startTry(u: Unit): number {
    const n = (this.#tries.get(u.start) ?? 0) + 1;
    this.#tries.set(u.start, n);
    return n;
  }

  /** `u` ended done: its bookkeeping is dropped. */
  done(u: Unit): void {
    this.#tries.delete(u.start);
    this.#inFlight -= 1;
  }

  /** `u` failed and runs again at `notBefore` (monotonic ms). */
  retry(u: Unit, notBefore: number): void {
    this.#inFlight -= 1;
    this.#retryQueue.push({ ...u, notBefore });
  }

  /** `u` yielded (exit 75): it runs again without using a try, at once or (stopping) in the next attempt. */
  yielded(u: Unit, again: boolean): void {
    const n = this.#tries.get(u.start) ?? 1;
    this.#tries.set(u.start, n - 1);
    this.#inFlight -= 1;
    this.#retryQueue.push({ ...u, notBefore: again ? 0 : Number.POSITIVE_INFINITY });
  }

  /** `u` was interrupted (stop): pending for the next attempt. */
  interrupted(u: Unit): void {
    this.#tries.delete(u.start);
    this.#inFlight -= 1;
    this.#retryQueue.push({ ...u, notBefore: Number.POSITIVE_INFINITY });
  }

  /** `u` failed for good. Returns true when this failure is the one past `max-failures`. */
  failed(u: Unit): boolean {
    this.#tries.delete(u.start);
    this.#inFlight -= 1;
    this.#failedFinal.add(u.start);
    if (this.#failedFinal.size > this.maxFailures && !this.#stoppedByFailures) {
      this.#stoppedByFailures = true;
      return true;
    }
    return false;
  }

  /**
   * A unit handed out that never started goes back, its try unused: to the front of the queue, as it was;
   * with chunks sized by time, a new chunk (not a retry) goes back to the pending work instead, to be sized
   * anew (the time left may be shorter by now).
   */
  giveBack(u: Unit): void {
    this.#inFlight -= 1;
    const retry = (this.#tries.get(u.start) ?? 0) > 0 || this.#rec().failed.has(u.start);
    if (!this.step.batch?.adaptive || retry) {
      this.#retryQueue.unshift({ ...u, notBefore: 0 });
      return;
    }
    this.#taken.remove(u.start, u.end);
    if (u.start < this.#cursor) this.#cursor = u.start;
  }

  /** The time budget's predictive stop: `u` goes back for the next attempt and nothing more starts. */
  holdBack(u: Unit): boolean {
    this.#inFlight -= 1;
    this.#retryQueue.push({ ...u, notBefore: Number.POSITIVE_INFINITY });
    const first = !this.#heldForBudget;
    this.#heldForBudget = true;
    return first;
  }

  #nextAny(now: number): Next {
    let wakeAt = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.#retryQueue.length; i++) {
      const q = this.#retryQueue[i] as QueuedUnit;
      if (q.notBefore <= now) {
        this.#retryQueue.splice(i, 1);
        // A plain unit: its fields are spread into journal records.
        return { step: q.step, start: q.start, end: q.end, index: q.index };
      }
      wakeAt = Math.min(wakeAt, q.notBefore);
    }
    const rec = this.#rec();
    if (this.step.batch?.adaptive) {
      const chunk = this.#nextChunk(now);
      if (chunk) return chunk;
      return Number.isFinite(wakeAt) ? { wakeAt } : undefined;
    }
    const gap = this.#taken.firstGap(this.#cursor, rec.to);
    if (gap) {
      const u = this.#unitAt(gap[0], gap[1]);
      this.#taken.add(u.start, u.end);
      this.#cursor = u.end;
      return u;
    }
    this.#cursor = rec.to;
    return Number.isFinite(wakeAt) ? { wakeAt } : undefined;
  }

  /** The unit at the start of [s, e) (what `cut` yields first, without a generator per unit). */
  #unitAt(s: number, e: number): Unit {
    const { from, size } = this.#rec();
    const index = Math.floor((s - from) / size);
    return { step: this.step.id, start: s, end: Math.min(from + (index + 1) * size, e), index };
  }

  /**
   * Chunks sized by time (chunking.ts): the next chunk from the first pending gap, interrupted work of
   * earlier attempts first. A retry never comes here: it keeps its unit's exact [start, end).
   */
  #nextChunk(now: number): Unit | undefined {
    const rec = this.#rec();
    let gap: [number, number] | undefined;
    if (this.#resume) {
      for (const [s, e] of this.#resume.intervals()) {
        gap = this.#taken.firstGap(s, e);
        if (gap) break;
      }
      if (!gap) this.#resume = undefined;
    }
    const resumed = gap !== undefined;
    gap ??= this.#taken.firstGap(this.#cursor, rec.to);
    if (!gap) {
      this.#cursor = rec.to;
      return undefined;
    }
    const u = this.#chunkAt(gap[0], gap[1], now);
    this.#taken.add(u.start, u.end);
    if (!resumed) this.#cursor = u.end;
    return u;
  }

  /** A chunk sized by time starting at `s`, within [s, e); its index is its first cell of the `min` grid. */
  #chunkAt(s: number, e: number, now: number): Unit {
    const rec = this.#rec();
    const adaptive = this.step.batch?.adaptive;
    const size = adaptive
      ? nextChunkSize({
          size: adaptive,
          pace: rec.pace,
          room: e - s,
          remainingMs: this.deadline === undefined ? undefined : this.deadline - now,
        })
      : e - s;
    return { step: this.step.id, start: s, end: s + size, index: Math.floor((s - rec.from) / rec.size) };
  }

  #nextSequential(now: number): Next {
    if (this.#inFlight > 0) return undefined;
    const rec = this.#rec();
    const gap = firstPendingGap(rec, rec.from, rec.to);
    if (!gap) return undefined;
    const [s, e] = gap;
    if (this.step.batch?.adaptive) {
      if (this.#failedFinal.has(s)) return undefined;
      const q = this.#retryQueue.findIndex((x) => x.start === s);
      if (q >= 0) {
        const item = this.#retryQueue[q] as QueuedUnit;
        if (item.notBefore > now)
          return Number.isFinite(item.notBefore) ? { wakeAt: item.notBefore } : undefined;
        this.#retryQueue.splice(q, 1);
        return { step: item.step, start: item.start, end: item.end, index: item.index };
      }
      // A new chunk stops where a unit waiting for its retry begins.
      let end = e;
      for (const x of this.#retryQueue) if (x.start > s && x.start < end) end = x.start;
      return this.#chunkAt(s, end, now);
    }
    const u = this.#unitAt(s, e);
    if (this.#failedFinal.has(u.start)) return undefined;
    const q = this.#retryQueue.findIndex((x) => x.start === u.start);
    if (q >= 0) {
      const item = this.#retryQueue[q] as QueuedUnit;
      if (item.notBefore > now)
        return Number.isFinite(item.notBefore) ? { wakeAt: item.notBefore } : undefined;
      this.#retryQueue.splice(q, 1);
    }
    return u;
  }
}
