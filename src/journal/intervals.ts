// A set of integers kept as sorted, disjoint, merged half-open intervals [start, end).
//
// Completed work is recorded here: a million contiguous done units is one interval, and even a
// pathological every-other pattern (500,000 fragments) costs flat number arrays, not an object per
// fragment.
//
// Layout: the intervals, in order, are cut into blocks; each block is a flat number[]
// [s0, e0, s1, e1, ...] of at most MAX_BLOCK numbers, never empty, with s0 < e0 < s1 < e1 < ... across
// all blocks (strict: adjacent intervals are merged, so e_i < s_{i+1}). A lookup is a binary search over
// the blocks (by their first start or last end) and then inside one block. Blocks bound the cost of an
// edit in the middle: one flat array would make filling the gaps of a 500,000-fragment set (a retry of
// every other unit) shift half a million numbers per unit, a minute of blocked event loop in total.
// Units finish in roughly ascending order, so add() has an O(1) fast path at the end.

export type Interval = [start: number, end: number];

/** Numbers (2 per interval) per block; a block that grows past it is split in two. */
const MAX_BLOCK = 1024;
/** A block shrunk below this is merged into a neighbour when they fit together. */
const MIN_BLOCK = MAX_BLOCK / 4;

/** Interval number `k` within block `b`. Normalised: k < intervals in block b, or b === blocks.length && k === 0 (the end). */
interface Pos {
  b: number;
  k: number;
}

function checkInt(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`IntervalSet: expected \`${name}\` to be a safe integer, got \`${String(value)}\``);
  }
}

/** In a flat block, the first interval whose end is >= x (> x when strict). */
function blockIndexByEnd(d: number[], x: number, strict: boolean): number {
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

/** In a flat block, the first interval whose start is > x (>= x when inclusive). */
function blockIndexByStart(d: number[], x: number, inclusive: boolean): number {
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

export class IntervalSet {
  #blocks: number[][] = [];
  #size = 0;
  #count = 0;

  /** Total count of integers covered. */
  get size(): number {
    return this.#size;
  }

  /** Number of disjoint intervals. */
  get count(): number {
    return this.#count;
  }

  get isEmpty(): boolean {
    return this.#count === 0;
  }

  /** Smallest covered integer, or undefined when empty. */
  get min(): number | undefined {
    return this.#blocks[0]?.[0];
  }

  /** One past the largest covered integer, or undefined when empty. */
  get max(): number | undefined {
    const last = this.#blocks[this.#blocks.length - 1];
    return last?.[last.length - 1];
  }

  /** Position of the first interval whose end is >= x (> x when strict). */
  #posByEnd(x: number, strict: boolean): Pos {
    const blocks = this.#blocks;
    let lo = 0;
    let hi = blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const block = blocks[mid] as number[];
      const end = block[block.length - 1] as number;
      if (strict ? end > x : end >= x) hi = mid;
      else lo = mid + 1;
    }
    const block = blocks[lo];
    return { b: lo, k: block === undefined ? 0 : blockIndexByEnd(block, x, strict) };
  }

  /** Position of the first interval whose start is > x (>= x when inclusive). */
  #posByStart(x: number, inclusive: boolean): Pos {
    const blocks = this.#blocks;
    let lo = 0;
    let hi = blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const start = (blocks[mid] as number[])[0] as number;
      if (inclusive ? start >= x : start > x) hi = mid;
      else lo = mid + 1;
    }
    // The answer is in the block before `lo` (whose first start qualifies not), or is `lo`'s first interval.
    const prev = blocks[lo - 1];
    if (prev === undefined) return { b: lo, k: 0 };
    const k = blockIndexByStart(prev, x, inclusive);
    return k === prev.length >> 1 ? { b: lo, k: 0 } : { b: lo - 1, k };
  }

  #startAt(p: Pos): number {
    return (this.#blocks[p.b] as number[])[2 * p.k] as number;
  }

  #endAt(p: Pos): number {
    return (this.#blocks[p.b] as number[])[2 * p.k + 1] as number;
  }

  /** End of the interval just before position `p` (which must not be the first). */
  #endBefore(p: Pos): number {
    if (p.k > 0) return (this.#blocks[p.b] as number[])[2 * p.k - 1] as number;
    const prev = this.#blocks[p.b - 1] as number[];
    return prev[prev.length - 1] as number;
  }

  /** Replaces the intervals from position p (inclusive) to q (exclusive) with `items` (flat, sorted). */
  #splice(p: Pos, q: Pos, items: number[]): void {
    const blocks = this.#blocks;
    let removedSize = 0;
    let removedCount = 0;
    for (let b = p.b, k = p.k; b < q.b || (b === q.b && k < q.k); ) {
      const block = blocks[b] as number[];
      if (2 * k >= block.length) {
        b++;
        k = 0;
        continue;
      }
      removedSize += (block[2 * k + 1] as number) - (block[2 * k] as number);
      removedCount++;
      k++;
    }
    let addedSize = 0;
    for (let i = 0; i < items.length; i += 2) addedSize += (items[i + 1] as number) - (items[i] as number);
    this.#size += addedSize - removedSize;
    this.#count += items.length / 2 - removedCount;

    if (p.b === blocks.length) {
      // Insertion at the very end (p === q).
      const last = blocks[blocks.length - 1];
      if (last !== undefined && last.length + items.length <= MAX_BLOCK) last.push(...items);
      else if (items.length > 0) blocks.push(items.slice());
      return;
    }
    const head = blocks[p.b] as number[];
    if (p.b === q.b) {
      head.splice(2 * p.k, 2 * (q.k - p.k), ...items);
      this.#rebalance(p.b);
      return;
    }
    head.length = 2 * p.k;
    head.push(...items);
    const tail = blocks[q.b];
    if (tail !== undefined && q.k > 0) tail.splice(0, 2 * q.k);
    blocks.splice(p.b + 1, q.b - p.b - 1);
    if (tail !== undefined) this.#rebalance(p.b + 1);
    this.#rebalance(p.b);
  }

  /** Keeps block `b` non-empty, at most MAX_BLOCK long, and merges it with a neighbour when small. */
  #rebalance(b: number): void {
    const blocks = this.#blocks;
    const block = blocks[b];
    if (block === undefined) return;
    if (block.length === 0) {
      blocks.splice(b, 1);
    } else if (block.length > MAX_BLOCK) {
      const half = (block.length >> 2) << 1;
      blocks.splice(b, 1, block.slice(0, half), block.slice(half));
    } else if (block.length < MIN_BLOCK) {
      const next = blocks[b + 1];
      const prev = blocks[b - 1];
      if (next !== undefined && block.length + next.length <= MAX_BLOCK) {
        block.push(...next);
        blocks.splice(b + 1, 1);
      } else if (prev !== undefined && prev.length + block.length <= MAX_BLOCK) {
        prev.push(...block);
        blocks.splice(b, 1);
      }
    }
  }

  /** Adds [start, end). Overlapping and adjacent intervals merge. An empty range is a no-op. */
  add(start: number, end: number): this {
    checkInt('start', start);
    checkInt('end', end);
    if (start >= end) return this;
    const blocks = this.#blocks;
    const last = blocks[blocks.length - 1];
    // Fast paths: appending past, touching or overlapping the last interval.
    if (last === undefined) {
      blocks.push([start, end]);
      this.#size += end - start;
      this.#count++;
      return this;
    }
    const n = last.length;
    const lastEnd = last[n - 1] as number;
    if (start > lastEnd) {
      if (n < MAX_BLOCK) last.push(start, end);
      else blocks.push([start, end]);
      this.#size += end - start;
      this.#count++;
      return this;
    }
    if (start >= (last[n - 2] as number)) {
      if (end > lastEnd) {
        last[n - 1] = end;
        this.#size += end - lastEnd;
      }
      return this;
    }
    // General case: the intervals from p to q (exclusive) touch or overlap [start, end) and merge with it.
    const p = this.#posByEnd(start, false);
    const q = this.#posByStart(end, false);
    if (p.b === q.b && p.k === q.k) {
      this.#splice(p, q, [start, end]);
    } else {
      this.#splice(p, q, [Math.min(start, this.#startAt(p)), Math.max(end, this.#endBefore(q))]);
    }
    return this;
  }

  /** Removes [start, end) from the set, splitting an interval when needed. */
  remove(start: number, end: number): this {
    checkInt('start', start);
    checkInt('end', end);
    if (start >= end) return this;
    // The intervals from p to q (exclusive) strictly overlap [start, end).
    const p = this.#posByEnd(start, true);
    const q = this.#posByStart(end, true);
    if (p.b > q.b || (p.b === q.b && p.k >= q.k)) return this;
    const firstStart = this.#startAt(p);
    const lastEnd = this.#endBefore(q);
    const keep: number[] = [];
    if (firstStart < start) keep.push(firstStart, start);
    if (lastEnd > end) keep.push(end, lastEnd);
    this.#splice(p, q, keep);
    return this;
  }

  clear(): this {
    this.#blocks = [];
    this.#size = 0;
    this.#count = 0;
    return this;
  }

  has(x: number): boolean {
    const p = this.#posByEnd(x, true);
    return p.b < this.#blocks.length && this.#startAt(p) <= x;
  }

  /** True when every integer of [start, end) is in the set (vacuously true for an empty range). */
  covers(start: number, end: number): boolean {
    if (start >= end) return true;
    const p = this.#posByEnd(start, true);
    return p.b < this.#blocks.length && this.#startAt(p) <= start && this.#endAt(p) >= end;
  }

  /** True when some integer of [start, end) is in the set. */
  overlaps(start: number, end: number): boolean {
    if (start >= end) return false;
    const p = this.#posByEnd(start, true);
    return p.b < this.#blocks.length && this.#startAt(p) < end;
  }

  /** The intervals from the first one ending after `x` on, in order. */
  *#from(x: number): Generator<Interval> {
    const blocks = this.#blocks;
    const p = this.#posByEnd(x, true);
    for (let b = p.b, k = p.k; b < blocks.length; b++, k = 0) {
      const block = blocks[b] as number[];
      for (; 2 * k < block.length; k++) yield [block[2 * k] as number, block[2 * k + 1] as number];
    }
  }

  /** Number of integers of [start, end) in the set. */
  coveredIn(start: number, end: number): number {
    if (start >= end) return 0;
    let total = 0;
    for (const [s, e] of this.#from(start)) {
      if (s >= end) break;
      total += Math.min(end, e) - Math.max(start, s);
    }
    return total;
  }

  *intervals(): Generator<Interval> {
    for (const block of this.#blocks) {
      for (let k = 0; k < block.length; k += 2) yield [block[k] as number, block[k + 1] as number];
    }
  }

  /** The uncovered pieces of [from, to), in ascending order. */
  *gaps(from: number, to: number): Generator<Interval> {
    if (from >= to) return;
    let cur = from;
    for (const [s, e] of this.#from(from)) {
      if (s >= to) break;
      if (s > cur) yield [cur, s];
      cur = e;
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
    copy.#blocks = this.#blocks.map((block) => block.slice());
    copy.#size = this.#size;
    copy.#count = this.#count;
    return copy;
  }

  equals(other: IntervalSet): boolean {
    if (this.#count !== other.#count || this.#size !== other.#size) return false;
    const theirs = other.intervals();
    for (const [s, e] of this.intervals()) {
      const next = theirs.next();
      if (next.done || next.value[0] !== s || next.value[1] !== e) return false;
    }
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
      throw new Error(
        `invalid interval list: expected an array of [start, end] pairs, got ${describe(value)}`,
      );
    }
    const set = new IntervalSet();
    let prevEnd: number | undefined;
    for (let i = 0; i < value.length; i++) {
      const pair: unknown = value[i];
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new Error(
          `invalid interval list: entry ${i} must be a [start, end] pair, got ${describe(pair)}`,
        );
      }
      const [s, e] = pair as unknown[];
      if (!Number.isSafeInteger(s) || !Number.isSafeInteger(e)) {
        throw new Error(`invalid interval list: entry ${i} must hold two integers, got ${describe(pair)}`);
      }
      const start = s as number;
      const end = e as number;
      if (start >= end) {
        throw new Error(
          `invalid interval list: entry ${i} [${start}, ${end}] is empty or reversed (start must be < end)`,
        );
      }
      if (prevEnd !== undefined && start < prevEnd) {
        throw new Error(
          `invalid interval list: entry ${i} [${start}, ${end}] overlaps or precedes the previous one, which ends at ${prevEnd}; entries must be sorted and disjoint`,
        );
      }
      // Sorted input always takes add()'s append fast path; an adjacent entry merges into the previous one.
      set.add(start, end);
      prevEnd = end;
    }
    return set;
  }

  /** `[s0, e0, s1, e1, ...]`: the compact form the snapshot stores (one array, not an array per interval). */
  toFlat(): number[] {
    const out: number[] = [];
    for (const block of this.#blocks) for (const x of block) out.push(x);
    return out;
  }

  /** The inverse of `toFlat`, validated: sorted, disjoint, non-empty integer intervals. */
  static fromFlat(value: unknown): IntervalSet {
    if (!Array.isArray(value) || value.length % 2 !== 0) {
      throw new Error(
        `invalid interval list: expected a flat array of start, end pairs, got ${describe(value)}`,
      );
    }
    const set = new IntervalSet();
    let prevEnd = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < value.length; i += 2) {
      const start: unknown = value[i];
      const end: unknown = value[i + 1];
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) {
        throw new Error(
          `invalid interval list: pair ${i / 2} must hold two integers, got ${describe([start, end])}`,
        );
      }
      const s = start as number;
      const e = end as number;
      if (s >= e || s < prevEnd) {
        throw new Error(
          `invalid interval list: pair ${i / 2} [${s}, ${e}] is empty, reversed, or not after the previous one (ends at ${prevEnd})`,
        );
      }
      set.add(s, e);
      prevEnd = e;
    }
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
