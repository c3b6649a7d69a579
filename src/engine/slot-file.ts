// A scratch file rewritten for every unit that runs in one slot: overwriting a kept descriptor costs one or
// two system calls, where creating and deleting a file per unit cost a path lookup, an inode and a journal
// entry each — measurable when units take a millisecond.
import { closeSync, ftruncateSync, writeSync } from 'node:fs';
import { openNoFollowSync } from '../journal/fsutil.js';

export class SlotFile {
  readonly path: string;
  readonly #fd: number;
  /** Bytes the file holds now: only a shorter text needs a cut. */
  #length = 0;

  constructor(path: string) {
    this.path = path;
    // A link planted where the scratch file goes is refused, not written through (DESIGN §4).
    this.#fd = openNoFollowSync(path, 'w');
  }

  set(data: string): void {
    // Overwrite in place, then cut only if the text got shorter: most texts are as long as the last one, and
    // the ftruncate is a system call more. Never cut to zero first: ext4 flushes a file truncated to zero
    // (auto_da_alloc), at a fraction of a millisecond each time.
    const buf = Buffer.from(data);
    let done = 0;
    while (done < buf.length) {
      const n = writeSync(this.#fd, buf, done, buf.length - done, done);
      if (n <= 0) throw new Error(`could not write ${this.path}: write() wrote nothing`);
      done += n;
    }
    if (buf.length < this.#length) ftruncateSync(this.#fd, buf.length);
    this.#length = buf.length;
  }

  close(): void {
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed.
    }
  }
}
