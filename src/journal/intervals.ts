// A set of integers kept as sorted, disjoint, merged half-open intervals [start, end).
//
// Completed work is recorded here: a million contiguous done units is one interval, and even a
// pathological every-other pattern (500,000 fragments) is a single flat number[] of 1,000,000 entries,
// not an array of tuples (which would cost an object header per fragment).
//
// Layout: #d = [s0, e0, s1, e1, ...] with s0 < e0 < s1 < e1 < ... (strict: adjacent intervals are
// merged, so e_i < s_{i+1}). Units finish in roughly ascending order, so add() has an O(1) fast path
// for appending at or touching the end; everything else is a binary search plus one splice.

export type Interval = [start: number, end: number];

function checkInt(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`IntervalSet: expected \`${name}\` to be a safe integer, got \`${String(value)}\``);
  }
}

export class IntervalSet {
  #d: number[] = [];
  #size = 0;

  /** Total count of integers covered. */
  get size(): number {
    return this.#size;
  }

  /** Number of disjoint intervals. */
  get count(): number {
    return this.#d.length >> 1;
  }

  get isEmpty(): boolean {
    return this.#d.length === 0;
  }

  /** Smallest covered integer, or undefined when empty. */
  get min(): number | undefined {
    return this.#d[0];
  }

  /** One past the largest covered integer, or undefined when empty. */
  get max(): number | undefined {
    return this.#d[this.#d.length - 1];
  }

  /** Index (interval number) of the first interval whose end is >= x (or > x when `strict`). */
  #firstEndingAtOrAfter(x: number, strict: boolean): number {
    const d = this.#d;
    let lo = 0;
    let hi = d.length >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const end = d[2 * mid + 1] as number;
      if (strict ? end > x : end >= x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Index of the first interval whose start is > x (or >= x when `inclusive`). */
  #firstStartingAfter(x: number, inclusive: boolean): number {
    const d = this.#d;
    let lo = 0;
    let hi = d.length >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const start = d[2 * mid] as number;
      if (inclusive ? start >= x : start > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Adds [start, end). Overlapping and adjacent intervals merge. An empty range is a no-op. */
  add(start: number, end: number): this {
    checkInt('start', start);
    checkInt('end', end);
    if (start >= end) return this;
    const d = this.#d;
    const n = d.length;
    // Fast paths: appending past, touching or overlapping the last interval.
    if (n === 0 || start > (d[n - 1] as number)) {
      d.push(start, end);
      this.#size += end - start;
      return this;
    }
    const lastStart = d[n - 2] as number;
    const lastEnd = d[n - 1] as number;
    if (start >= lastStart) {
      if (end > lastEnd) {
        d[n - 1] = end;
        this.#size += end - lastEnd;
      }
      return this;
    }
    // General case: intervals i..j-1 touch or overlap [start, end) and merge with it.
    const i = this.#firstEndingAtOrAfter(start, false);
    const j = this.#firstStartingAfter(end, false);
    if (i === j) {
      d.splice(2 * i, 0, start, end);
      this.#size += end - start;
      return this;
    }
    const newStart = Math.min(start, d[2 * i] as number);
    const newEnd = Math.max(end, d[2 * j - 1] as number);
    let removed = 0;
    for (let k = i; k < j; k++) removed += (d[2 * k + 1] as number) - (d[2 * k] as number);
    if (j - i === 1) {
      d[2 * i] = newStart;
      d[2 * i + 1] = newEnd;
    } else {
      d.splice(2 * i, 2 * (j - i), newStart, newEnd);
    }
    this.#size += newEnd - newStart - removed;
    return this;
  }

  /** Removes [start, end) from the set, splitting an interval when needed. */
  remove(start: number, end: number): this {
    checkInt('start', start);
    checkInt('end', end);
    if (start >= end) return this;
    const d = this.#d;
    // Intervals i..j-1 strictly overlap [start, end).
    const i = this.#firstEndingAtOrAfter(start, true);
    const j = this.#firstStartingAfter(end, true);
    if (i >= j) return this;
    const firstStart = d[2 * i] as number;
    const lastEnd = d[2 * j - 1] as number;
    let removed = 0;
    for (let k = i; k < j; k++) removed += (d[2 * k + 1] as number) - (d[2 * k] as number);
    const keep: number[] = [];
    if (firstStart < start) keep.push(firstStart, start);
    if (lastEnd > end) keep.push(end, lastEnd);
    d.splice(2 * i, 2 * (j - i), ...keep);
    let kept = 0;
    for (let k = 0; k < keep.length; k += 2) kept += (keep[k + 1] as number) - (keep[k] as number);
    this.#size -= removed - kept;
    return this;
  }

  clear(): this {
    this.#d = [];
    this.#size = 0;
    return this;
  }

  has(x: number): boolean {
    const i = this.#firstEndingAtOrAfter(x, true);
    return i < this.count && (this.#d[2 * i] as number) <= x;
  }

  /** True when every integer of [start, end) is in the set (vacuously true for an empty range). */
  covers(start: number, end: number): boolean {
    if (start >= end) return true;
    const i = this.#firstEndingAtOrAfter(start, true);
    return i < this.count && (this.#d[2 * i] as number) <= start && (this.#d[2 * i + 1] as number) >= end;
  }

  /** True when some integer of [start, end) is in the set. */
  overlaps(start: number, end: number): boolean {
    if (start >= end) return false;
    const i = this.#firstEndingAtOrAfter(start, true);
    return i < this.count && (this.#d[2 * i] as number) < end;
  }

  /** Number of integers of [start, end) in the set. */
  coveredIn(start: number, end: number): number {
    if (start >= end) return 0;
    const d = this.#d;
    let total = 0;
    for (let i = this.#firstEndingAtOrAfter(start, true); i < this.count; i++) {
      const s = d[2 * i] as number;
      if (s >= end) break;
      total += Math.min(end, d[2 * i + 1] as number) - Math.max(start, s);
    }
    return total;
  }

  *intervals(): Generator<Interval> {
    const d = this.#d;
    for (let k = 0; k < d.length; k += 2) yield [d[k] as number, d[k + 1] as number];
  }

  /** The uncovered pieces of [from, to), in ascending order. */
  *gaps(from: number, to: number): Generator<Interval> {
    if (from >= to) return;
    const d = this.#d;
    let cur = from;
    for (let i = this.#firstEndingAtOrAfter(from, true); i < this.count; i++) {
      const s = d[2 * i] as number;
      if (s >= to) break;
      if (s > cur) yield [cur, s];
      cur = d[2 * i + 1] as number;
      if (cur >= to) return;
    }
    if (cur < to) yield [cur, to];
  }

  /**
   * The first uncovered piece of [from, to) that starts at or after `after` (default `from`), clipped to
   * begin no earlier than `after`; undefined when everything there is covered. The scheduler uses
   * `after` as a cursor to find the next pending unit without rescanning the finished prefix.
   */
  firstGap(from: number, to: number, after: number = from): Interval | undefined {
    const start = Math.max(from, after);
    for (const gap of this.gaps(start, to)) return gap;
    return undefined;
  }

  clone(): IntervalSet {
    const copy = new IntervalSet();
    copy.#d = this.#d.slice();
    copy.#size = this.#size;
    return copy;
  }

  equals(other: IntervalSet): boolean {
    const a = this.#d;
    const b = other.#d;
    if (a.length !== b.length) return false;
    for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
    return true;
  }

  toJSON(): Interval[] {
    return [...this.intervals()];
  }

  /** "0-99, 150, 200-299" (inclusive ends), for messages and status output. */
  toString(): string {
    const parts: string[] = [];
    for (const [s, e] of this.intervals()) parts.push(e - s === 1 ? `${s}` : `${s}-${e - 1}`);
    return parts.join(', ');
  }

  /**
   * Parses the output of toJSON(). Intervals must be [start, end) pairs of safe integers with start < end,
   * sorted and not overlapping; adjacent intervals are accepted and merged.
   */
  static fromJSON(value: unknown): IntervalSet {
    if (!Array.isArray(value)) {
      throw new Error(`invalid interval list: expected an array of [start, end] pairs, got ${describe(value)}`);
    }
    const set = new IntervalSet();
    const d = set.#d;
    let size = 0;
    for (let i = 0; i < value.length; i++) {
      const pair: unknown = value[i];
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new Error(`invalid interval list: entry ${i} must be a [start, end] pair, got ${describe(pair)}`);
      }
      const [s, e] = pair as unknown[];
      if (!Number.isSafeInteger(s) || !Number.isSafeInteger(e)) {
        throw new Error(
          `invalid interval list: entry ${i} must hold two integers, got ${describe(pair)}`,
        );
      }
      const start = s as number;
      const end = e as number;
      if (start >= end) {
        throw new Error(`invalid interval list: entry ${i} [${start}, ${end}] is empty or reversed (start must be < end)`);
      }
      const prevEnd = d[d.length - 1];
      if (prevEnd !== undefined) {
        if (start < prevEnd) {
          throw new Error(
            `invalid interval list: entry ${i} [${start}, ${end}] overlaps or precedes the previous one, which ends at ${prevEnd}; entries must be sorted and disjoint`,
          );
        }
        if (start === prevEnd) {
          d[d.length - 1] = end;
          size += end - start;
          continue;
        }
      }
      d.push(start, end);
      size += end - start;
    }
    set.#size = size;
    return set;
  }

  static from(intervals: Iterable<readonly [number, number]>): IntervalSet {
    const set = new IntervalSet();
    for (const [s, e] of intervals) set.add(s, e);
    return set;
  }
}

function describe(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
