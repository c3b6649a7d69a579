// A process's output, bounded however much it prints and whatever bytes they are: lines for the live view
// (decoded as UTF-8 across chunk boundaries, each at most MAX_LINE characters) and the kept tail of raw
// bytes for logs and error messages (at most `limit` bytes). Both are linear in the output: nothing is
// joined and split again per chunk, so a 100 MB line costs what 100 MB of short lines cost.
import { StringDecoder } from 'node:string_decoder';

/** Longest line handed to the live view; the rest of a longer line is dropped with a mark. */
export const MAX_LINE = 16 * 1024;

export type Stream = 'stdout' | 'stderr';

/** Splits one stream into lines. A line longer than `maxLine` is cut there and its rest skipped. */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8');
  readonly #onLine: (line: string, cut: boolean) => void;
  readonly #maxLine: number;
  #partial = '';
  /** The current line was already cut: skip to its newline. */
  #skipping = false;

  /** `onLine(line, cut)`: `cut` when the line was longer than `maxLine` and ends with the cut mark. */
  constructor(onLine: (line: string, cut: boolean) => void, maxLine = MAX_LINE) {
    this.#onLine = onLine;
    this.#maxLine = maxLine;
  }

  push(chunk: Buffer): void {
    this.#take(this.#decoder.write(chunk));
  }

  /** The stream ended: its last line, even without a newline. */
  end(): void {
    this.#take(this.#decoder.end());
    if (this.#partial !== '' && !this.#skipping) this.#onLine(this.#partial, false);
    this.#partial = '';
    this.#skipping = false;
  }

  #take(text: string): void {
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      if (nl < 0) break;
      if (!this.#skipping) this.#emit(this.#partial + text.slice(from, nl));
      this.#partial = '';
      this.#skipping = false;
      from = nl + 1;
    }
    if (from >= text.length || this.#skipping) return;
    // Only up to the cap is kept of a line without its newline yet, so memory stays bounded.
    this.#partial += text.slice(from, from + this.#maxLine + 1 - this.#partial.length);
    if (this.#partial.length > this.#maxLine) {
      this.#emit(this.#partial);
      this.#partial = '';
      this.#skipping = true;
    }
  }

  #emit(line: string): void {
    if (line.length > this.#maxLine) this.#onLine(`${line.slice(0, this.#maxLine)} …[line cut]`, true);
    else this.#onLine(line, false);
  }
}

/**
 * The last `limit` bytes of a process's output, both streams, as whole lines per stream where it can: the
 * two pipes are read in no fixed order, so a chunk that ends mid-line waits for its stream's newline, or
 * the tail would splice the other stream's line into it. A pending partial line longer than the limit goes
 * in as it is (it would be cut anyway), which keeps memory bounded for output without newlines.
 */
export class Tail {
  #chunks: Buffer[] = [];
  #bytes = 0;
  readonly #limit: number;
  readonly #pending: Record<Stream, Buffer[]> = { stdout: [], stderr: [] };
  readonly #pendingBytes: Record<Stream, number> = { stdout: 0, stderr: 0 };

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Buffer, stream: Stream): void {
    const nl = chunk.lastIndexOf(0x0a);
    if (nl < 0) {
      this.#hold(stream, chunk);
      if (this.#pendingBytes[stream] > this.#limit) this.#flush(stream);
      return;
    }
    this.#flush(stream);
    this.#add(chunk.subarray(0, nl + 1));
    if (nl + 1 < chunk.length) this.#hold(stream, chunk.subarray(nl + 1));
  }

  /** Both streams ended: their last partial lines go in, kept apart by a newline. */
  end(): void {
    const both = this.#pendingBytes.stdout > 0 && this.#pendingBytes.stderr > 0;
    this.#flush('stdout');
    if (both) this.#add(Buffer.from('\n'));
    this.#flush('stderr');
  }

  /** The kept bytes as they were printed (for the log file). */
  bytes(): Buffer {
    const all = Buffer.concat(this.#chunks);
    let start = Math.max(0, all.length - this.#limit);
    // Cut at a character's start, not inside a multi-byte UTF-8 sequence.
    for (let i = 0; i < 3 && start < all.length && ((all[start] ?? 0) & 0xc0) === 0x80; i++) start += 1;
    return all.subarray(start);
  }

  /** The kept bytes decoded for messages (invalid bytes become U+FFFD). */
  toString(): string {
    return this.bytes().toString('utf8');
  }

  get empty(): boolean {
    return this.#bytes === 0 && this.#pendingBytes.stdout === 0 && this.#pendingBytes.stderr === 0;
  }

  #hold(stream: Stream, b: Buffer): void {
    this.#pending[stream].push(b);
    this.#pendingBytes[stream] += b.length;
  }

  #flush(stream: Stream): void {
    for (const b of this.#pending[stream]) this.#add(b);
    this.#pending[stream] = [];
    this.#pendingBytes[stream] = 0;
  }

  #add(b: Buffer): void {
    if (b.length === 0) return;
    // A chunk bigger than the limit keeps only its end (and replaces everything before it).
    if (b.length >= this.#limit) {
      this.#chunks = [Buffer.from(b.subarray(b.length - this.#limit))];
      this.#bytes = this.#limit;
      return;
    }
    this.#chunks.push(b);
    this.#bytes += b.length;
    while (this.#chunks.length > 1 && this.#bytes - (this.#chunks[0]?.length ?? 0) >= this.#limit) {
      this.#bytes -= this.#chunks.shift()?.length ?? 0;
    }
  }
}
