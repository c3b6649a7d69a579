// The append-only journal: one JSON object per line, each carrying a CRC-32 of itself, so a reader can
// tell a torn last line (the process or machine died mid-write: ignored) from damage in the middle of the
// file (refused with a way out). Appends are group-committed: every append() resolves only once its line
// is written and fdatasync'd; lines are written as they come, and each fdatasync covers every line written
// before it started. A sync that only callers already released on write (`onWritten`) wait for starts at
// most every SYNC_SPACING_MS.

import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CheckpointError, EXIT_FAILED } from '../errors.js';
import { crc32 } from './crc32.js';
import { CheckpointLinkError, errorCode, FILE_MODE, fsyncDir, openNoFollow, writeFix } from './fsutil.js';

/**
 * The least time between the starts of two fdatasyncs for lines whose callers do not wait on them (a unit's
 * `done`: its slot goes to the next unit once the line is written). Units of a few milliseconds end one by
 * one, each wanting its own sync, and on a small VM a sync costs ~0.3 ms of CPU (the filesystem's journal
 * commit): a sixth of the CPU of a no-op unit, taken from the units. Spaced, one sync covers the ends of
 * every unit that ended meanwhile. It costs such a unit only a later acknowledgement: its line is written at
 * once (it survives a crash of this process), and it counts as done once synced, at most this much later.
 */
const SYNC_SPACING_MS = 5;

/** `"crc":"xxxxxxxx"}`: the fixed-size tail every line ends with (before the newline). */
const CRC_TAIL_LENGTH = 17;
const HEX8 = /^[0-9a-f]{8}$/;

/**
 * One journal line: the event's JSON with a last `"crc"` key holding the CRC-32 of the event's JSON
 * without that key, then '\n'. An own `crc` key on the event is ignored. Accepts any plain object (typed
 * event interfaces have no index signature, so `object` rather than Record<string, unknown>).
 */
export function encodeLine(event: object): string {
  const source = event as Record<string, unknown>;
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(source)) if (key !== 'crc') rest[key] = source[key];
  const json = JSON.stringify(rest);
  const crc = crc32(json);
  return json === '{}' ? `{"crc":"${crc}"}\n` : `${json.slice(0, -1)},"crc":"${crc}"}\n`;
}

/**
 * The event of one journal line (with or without its newline), without the `crc` key; undefined when the
 * line is not valid JSON, lacks the checksum, or the checksum does not match.
 */
export function decodeLine(line: string): Record<string, unknown> | undefined {
  const text = line.endsWith('\n') ? line.slice(0, -1) : line;
  if (text.length <= CRC_TAIL_LENGTH || !text.endsWith('"}')) return undefined;
  if (text.slice(-CRC_TAIL_LENGTH, -10) !== '"crc":"') return undefined;
  const crc = text.slice(-10, -2);
  if (!HEX8.test(crc)) return undefined;
  const head = text.slice(0, -CRC_TAIL_LENGTH);
  let json: string;
  if (head === '{') json = '{}';
  else if (head.startsWith('{') && head.endsWith(',')) json = `${head.slice(0, -1)}}`;
  else return undefined;
  if (crc32(json) !== crc) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

/** Writing or syncing the journal failed; nothing from the failed batch was acknowledged. */
export class JournalWriteError extends CheckpointError {
  override readonly name = 'JournalWriteError';
  readonly exitCode = EXIT_FAILED;
  readonly path: string;
  /** The OS error code (ENOSPC, EFBIG, EROFS, EBADF...), when there was one. */
  readonly code: string | undefined;

  constructor(path: string, cause: unknown) {
    const code = errorCode(cause);
    const detail = cause instanceof Error ? cause.message : String(cause);
    const fix = writeFix(code) ?? 'Fix the cause above';
    // Fenced (the lease was lost): nothing is wrong with the disk, and running again is not the fix.
    const fenced = cause instanceof Error && cause.name === 'LeaseLostError';
    super(
      fenced
        ? `did not write the checkpoint journal ${path}: ${detail}.`
        : `could not write the checkpoint journal ${path}: ${code ?? 'error'} (${detail}). ` +
            `${fix} and run \`checkpoint run\` again; work recorded before this point is kept.`,
      { cause },
    );
    this.path = path;
    this.code = code;
  }
}

/** A line in the middle of the journal is damaged (intact lines follow it, so it is not a torn write). */
export class JournalCorruptError extends CheckpointError {
  override readonly name = 'JournalCorruptError';
  readonly exitCode = EXIT_FAILED;
  readonly path: string;
  /** 1-based number of the first damaged line. */
  readonly line: number;

  constructor(path: string, line: number, why = 'and intact lines follow it') {
    super(
      `the checkpoint journal ${path} is corrupt at line ${line}: the line is not valid JSON or its checksum ` +
        `does not match, ${why}, so this is damage, not an interrupted write. ` +
        'Run `checkpoint reset --all` to start this run over, or restore the previous checkpoint entry ' +
        '(the cache or artifact saved before this one) and run again.',
    );
    this.path = path;
    this.line = line;
  }
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

interface Entry {
  /** One encoded line, or '' for a pure sync request (flush). */
  line: string;
  /** Present when the caller waits for durability (append, flush); absent for appendLater. */
  waiter?: Waiter;
  /** Called once the line is written (in the page cache: it survives this process, not the machine). */
  onWritten?: () => void;
}

/** A caller waiting for durability, and the journal size its line reached. */
interface SyncWaiter extends Waiter {
  upTo: number;
  /** Its caller was released when the line was written (onWritten): it may wait for a spaced sync. */
  patient: boolean;
}

export class JournalWriter {
  readonly path: string;
  #fh: FileHandle;
  #initialSize: number;
  /** Lines not yet written. */
  #queue: Entry[] = [];
  #writing = false;
  /** Written lines whose callers wait for an fdatasync. */
  #syncWaiters: SyncWaiter[] = [];
  #syncing = false;
  /** SYNC_SPACING_MS, unless a test asks for another. */
  readonly #syncSpacingMs: number;
  /** performance.now() when the last fdatasync started. */
  #lastSyncStart = Number.NEGATIVE_INFINITY;
  /** Ends the wait for a spaced sync early: a caller that is blocked until its line is durable came. */
  #wake: (() => void) | undefined;
  /** The journal size the last completed fdatasync covers. */
  #syncedSize: number;
  #bytesWritten = 0;
  #syncs = 0;
  #error: JournalWriteError | undefined;
  #closing: Promise<void> | undefined;
  /** Throws when this process may no longer write (its lease was lost): checked before every write. */
  #fence: (() => void) | undefined;

  private constructor(path: string, fh: FileHandle, initialSize: number, syncSpacingMs: number) {
    this.path = path;
    this.#syncSpacingMs = syncSpacingMs;
    this.#fh = fh;
    this.#initialSize = initialSize;
    this.#syncedSize = initialSize;
  }

  /**
   * Opens (creating with mode 0600) `path` for appending. A torn tail must already have been cut off
   * (readJournal → truncateTo), otherwise the first new line would be glued to it.
   */
  static async open(
    path: string,
    { syncSpacingMs = SYNC_SPACING_MS, fence }: { syncSpacingMs?: number; fence?: () => void } = {},
  ): Promise<JournalWriter> {
    let fh: FileHandle;
    try {
      fh = await openNoFollow(path, 'a', FILE_MODE);
    } catch (error) {
      if (error instanceof CheckpointLinkError) throw error;
      throw new JournalWriteError(path, error);
    }
    try {
      const { size } = await fh.stat();
      // Make the file's directory entry durable, in case we just created it.
      await fsyncDir(dirname(path));
      const writer = new JournalWriter(path, fh, size, syncSpacingMs);
      writer.#fence = fence;
      return writer;
    } catch (error) {
      await fh.close().catch(() => undefined);
      throw new JournalWriteError(path, error);
    }
  }

  /** Bytes appended by this writer (written, not necessarily synced yet). */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** Size of the journal: what it held when opened plus bytesWritten. */
  get size(): number {
    return this.#initialSize + this.#bytesWritten;
  }

  /** Number of fdatasync calls so far (group commit makes this far smaller than the number of appends). */
  get syncCount(): number {
    return this.#syncs;
  }

  /** The error that stopped this writer, if any. Once set, every append/flush/close rejects with it. */
  get error(): JournalWriteError | undefined {
    return this.#error;
  }

  /**
   * Appends `event`; resolves once its line is on disk and fdatasync'd. `onWritten` is called earlier, once
   * the line is written: from then on it survives a crash of this process (not of the machine). A caller
   * that passes it goes on from there, so its sync may wait up to SYNC_SPACING_MS to be shared; without it
   * the sync starts as soon as the one in flight (if any) ends.
   */
  append(event: object, onWritten?: () => void): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closing) return Promise.reject(this.#closedError());
    let line: string;
    try {
      line = encodeLine(event);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push(
        onWritten ? { line, waiter: { resolve, reject }, onWritten } : { line, waiter: { resolve, reject } },
      );
      this.#kick();
    });
  }

  /**
   * Appends `event` in order with the others without waiting for durability: the line is written soon
   * (so it survives a crash of this process) and fdatasync'd with the next append() or flush(). After a
   * write error this is a no-op; the error surfaces through append(), flush() and close().
   */
  appendLater(event: object): void {
    if (this.#error) return;
    if (this.#closing) throw this.#closedError();
    this.#queue.push({ line: encodeLine(event) });
    this.#kick();
  }

  /** Resolves once everything appended so far (appendLater included) is on disk and fdatasync'd. */
  flush(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ line: '', waiter: { resolve, reject } });
      this.#kick();
    });
  }

  /** Flushes and closes the file. Rejects with the write error if the writer had failed (the file is closed anyway). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      let failure: unknown;
      if (!this.#error) {
        try {
          await this.flush();
        } catch (error) {
          failure = error;
        }
      }
      await this.#fh.close().catch(() => undefined);
      if (this.#error) throw this.#error;
      if (failure !== undefined) throw failure;
    })();
    return this.#closing;
  }

  #closedError(): Error {
    return new Error(`the checkpoint journal ${this.path} was already closed; this is a bug in checkpoint`);
  }

  #kick(): void {
    if (this.#writing) return;
    this.#writing = true;
    void this.#drain();
  }

  // Lines are written as they come, whether or not an fdatasync is in flight: a written line survives a
  // SIGKILL of this process, and an end waiting behind a slow fdatasync would otherwise be lost with it
  // while the scheduler already started the next unit. Only the fdatasyncs are grouped: every append that
  // arrives while one is in flight shares the next.
  async #drain(): Promise<void> {
    // Let every append issued in the current tick join the first write.
    await Promise.resolve();
    try {
      while (this.#queue.length > 0 && !this.#error) {
        const batch = this.#queue;
        this.#queue = [];
        await this.#write(batch);
      }
    } finally {
      this.#writing = false;
    }
  }

  async #write(batch: Entry[]): Promise<void> {
    let text = '';
    for (const entry of batch) text += entry.line;
    const sizeBefore = this.size;
    // Fencing: a process that lost the run's lease writes nothing more (lock.ts, assertHeld) — not even the
    // truncation below, which would cut the new holder's lines.
    let fenced = text.length > 0;
    try {
      if (text.length > 0) this.#fence?.();
      fenced = false;
      if (text.length > 0) {
        const buffer = Buffer.from(text, 'utf8');
        let offset = 0;
        // One write() normally takes the whole batch; a short write happens only at a limit (disk full,
        // file size limit), and the next write() then reports the error.
        while (offset < buffer.length) {
          const { bytesWritten } = await this.#fh.write(buffer, offset, buffer.length - offset);
          if (bytesWritten <= 0) throw Object.assign(new Error('write() wrote nothing'), { code: 'EIO' });
          offset += bytesWritten;
        }
        this.#bytesWritten += buffer.length;
      }
    } catch (cause) {
      this.#error = new JournalWriteError(this.path, cause);
      // Cut off whatever part of this batch reached the file, so nothing we are about to reject stays
      // behind (best effort: if that fails too, readJournal treats a partial last line as a torn tail).
      // Lines written before this batch stay: their waiters get the outcome of their own fdatasync.
      if (!fenced) await this.#fh.truncate(sizeBefore).catch(() => undefined);
      const rejected = [...batch, ...this.#queue];
      this.#queue = [];
      for (const entry of rejected) entry.waiter?.reject(this.#error);
      return;
    }
    const upTo = this.size;
    for (const entry of batch) {
      entry.onWritten?.();
      if (entry.waiter)
        this.#syncWaiters.push({ ...entry.waiter, upTo, patient: entry.onWritten !== undefined });
      if (entry.waiter && !entry.onWritten) this.#wake?.();
    }
    if (this.#syncWaiters.length > 0) this.#kickSync();
  }

  #kickSync(): void {
    if (this.#syncing) return;
    this.#syncing = true;
    void this.#syncLoop();
  }

  async #syncLoop(): Promise<void> {
    try {
      while (this.#syncWaiters.length > 0) {
        // Syncs for patient callers start at most every SYNC_SPACING_MS; lines written meanwhile wait for
        // the next one together. A caller still blocked on its line (a failure, which decides whether more
        // units may start; a step's end; a flush) gets its sync at once. Checked again after the timer:
        // timers count whole milliseconds from the loop's cached clock.
        for (;;) {
          const wait = this.#lastSyncStart + this.#syncSpacingMs - performance.now();
          if (wait <= 0 || !this.#syncWaiters.every((w) => w.patient)) break;
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
            timer = setTimeout(resolve, Math.ceil(wait));
          });
          clearTimeout(timer);
          this.#wake = undefined;
        }
        const waiters = this.#syncWaiters;
        this.#syncWaiters = [];
        // Everything written so far, these waiters' lines included, is covered by the sync started now.
        const target = this.size;
        if (target > this.#syncedSize) {
          this.#lastSyncStart = performance.now();
          try {
            await this.#fh.datasync();
          } catch (cause) {
            this.#error ??= new JournalWriteError(this.path, cause);
            const rejected = [...waiters, ...this.#syncWaiters];
            this.#syncWaiters = [];
            for (const w of rejected) w.reject(this.#error);
            const queued = this.#queue;
            this.#queue = [];
            for (const entry of queued) entry.waiter?.reject(this.#error);
            return;
          }
          this.#syncs++;
          this.#syncedSize = Math.max(this.#syncedSize, target);
        }
        for (const w of waiters) w.resolve();
      }
    } finally {
      this.#syncing = false;
    }
  }
}

export interface JournalContents {
  events: Record<string, unknown>[];
  /** The 1-based line number of each event, for messages about a damaged record. */
  lines: number[];
  /** True when the file ends with an incomplete or damaged line, which was ignored. */
  tornTail: boolean;
  /** Byte offset just after the last good line: truncate to this before appending again. */
  validBytes: number;
}

const READ_CHUNK = 1 << 20;
/** Every line starts so (encodeLine keeps the event's key order, and every event's first key is `type`). */
const RECORD_START = '{"type":"';

/**
 * Whether a damaged line holds a whole record after its start: two lines run together (a newline lost to a
 * flipped bit). A write cut off by a crash leaves only a prefix of one line, so this is damage, and taking
 * it for a torn tail would silently drop the intact record inside it.
 */
function holdsRecord(text: string): boolean {
  for (let i = text.indexOf(RECORD_START, 1); i !== -1; i = text.indexOf(RECORD_START, i + 1))
    if (decodeLine(text.slice(i)) !== undefined) return true;
  return false;
}

/**
 * Reads every event of the journal at `path` (a missing file is an empty journal). Damaged lines at the
 * end are a torn tail and are ignored; a damaged line followed by an intact one throws JournalCorruptError.
 */
export async function readJournal(path: string): Promise<JournalContents> {
  let fh: FileHandle;
  try {
    fh = await openNoFollow(path, 'r');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return { events: [], lines: [], tornTail: false, validBytes: 0 };
    throw error;
  }
  const events: Record<string, unknown>[] = [];
  const lines: number[] = [];
  let validBytes = 0;
  let lineNumber = 0;
  let firstBadLine: number | undefined;
  // Bytes of the current, not yet terminated line, as copied chunks (a long garbage tail stays linear).
  let partial: Buffer[] = [];
  let partialLength = 0;
  let fileOffset = 0;
  try {
    const chunk = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(chunk, 0, READ_CHUNK, null);
      if (bytesRead === 0) break;
      const data = chunk.subarray(0, bytesRead);
      let start = 0;
      for (;;) {
        const newline = data.indexOf(10, start);
        if (newline === -1) break;
        let text: string;
        if (partialLength > 0) {
          partial.push(data.subarray(start, newline));
          text = Buffer.concat(partial).toString('utf8');
          partial = [];
          partialLength = 0;
        } else {
          text = data.toString('utf8', start, newline);
        }
        lineNumber++;
        const event = decodeLine(text);
        if (event === undefined) {
          firstBadLine ??= lineNumber;
          if (holdsRecord(text))
            throw new JournalCorruptError(path, lineNumber, 'and an intact record runs on inside it');
        } else {
          if (firstBadLine !== undefined) throw new JournalCorruptError(path, firstBadLine);
          events.push(event);
          lines.push(lineNumber);
          validBytes = fileOffset + newline + 1;
        }
        start = newline + 1;
      }
      if (start < bytesRead) {
        partial.push(Buffer.from(data.subarray(start)));
        partialLength += bytesRead - start;
      }
      fileOffset += bytesRead;
    }
    if (partialLength > 0 && holdsRecord(Buffer.concat(partial).toString('utf8')))
      throw new JournalCorruptError(path, lineNumber + 1, 'and an intact record runs on inside it');
  } finally {
    await fh.close();
  }
  return { events, lines, tornTail: firstBadLine !== undefined || partialLength > 0, validBytes };
}

/** Truncates the file at `path` to `bytes` and fsyncs it (used to cut a torn tail before appending). */
export async function truncateTo(path: string, bytes: number): Promise<void> {
  const fh = await openNoFollow(path, 'r+');
  try {
    await fh.truncate(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
