// One run's checkpoint directory: loads snapshot + journal into the model, records events durably, and keeps
// the side files (markers, frozen item lists, outputs.json) in step with the model.

import { createHash } from 'node:crypto';
import { readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Shard } from '../plan/space.js';
import { CheckpointCorruptError, CheckpointDamageError } from './damage.js';
import type { CheckpointEvent, Stamped } from './events.js';
import {
  ensureDir,
  ensureDirUnder,
  ensureRealDir,
  fsyncDir,
  openNoFollow,
  readFileNoFollow,
  refuseLink,
  writeFileAtomic,
} from './fsutil.js';
import { type ItemList, ItemListSyntaxError, indexItemList } from './item-list.js';
import { JournalWriter, readJournal, truncateTo } from './journal-file.js';
import type { Lease } from './lock.js';
import { parseSnapshot, SnapshotError, SnapshotVersionError, serializeSnapshot } from './snapshot.js';
import { applyEvent, type CheckpointState, emptyState, isStepComplete, type StepRecord } from './state.js';
import { checkEvent, checkEventInState } from './validate.js';

export { CheckpointCorruptError, CheckpointDamageError } from './damage.js';

/** Where a step record's space was last set: the snapshot, or the journal line that (re)defined it. */
export interface RecordOrigin {
  file: string;
  line?: number;
}

const origins = new WeakMap<StepRecord, RecordOrigin>();

/** Where `rec` was read from, for a message about it (undefined for a record made in this process). */
export function recordOrigin(rec: StepRecord): RecordOrigin | undefined {
  return origins.get(rec);
}

/** The folders of a run folder (DESIGN §4), created by openForWrite. */
export const RUN_SUBDIRS = ['steps', 'state', 'logs', 'items', 'tmp'] as const;

/**
 * The journal is folded into the snapshot and started afresh once it holds this many bytes: at the end of an
 * attempt, and during one (rotation), so a run folder stays small however many units an attempt records
 * (466 bytes a unit: about 9,000 units a rotation). Below it the journal keeps the whole history, from which
 * a damaged snapshot can be rebuilt.
 */
export const COMPACT_BYTES = 4 * 1024 * 1024;

/** An event recorded while the journal rotates: written to the new journal once it is open. */
interface HeldEvent {
  event: Stamped;
  /** Set for `record` (the caller waits until the line is durable); absent for `recordLater`. */
  waiter?: { resolve: () => void; reject: (err: unknown) => void; onWritten?: (() => void) | undefined };
}

export interface LoadReport {
  /** A torn last journal line was found (and, when opened for writing, cut off). */
  tornTail: boolean;
  /** The snapshot was unusable and the state was rebuilt from the journal. */
  rebuiltFrom?: string;
  eventsReplayed: number;
}

export function runDirOf(root: string, runId: string): string {
  return join(root, runId);
}

export class Checkpoint {
  readonly root: string;
  readonly dir: string;
  state: CheckpointState;
  readonly loadReport: LoadReport;
  #journal: JournalWriter | undefined;
  #journalBytesAtOpen = 0;
  /** Journal bytes past which it rotates during an attempt (never less than the last snapshot's size). */
  #rotateAt = COMPACT_BYTES;
  #compactBytes = COMPACT_BYTES;
  /** Set while the journal rotates: what is recorded meanwhile waits here for the new journal. */
  #held: HeldEvent[] | undefined;
  #rotation: Promise<void> | undefined;
  /** A rotation that failed: nothing more can be recorded, and every later write reports it. */
  #rotationError: unknown;
  #outputsDirty = true;
  #fence: (() => void) | undefined;
  /** Where the journal's valid part ends, when it was read from disk (a torn tail is cut there). */
  #validBytes: number | undefined;

  private constructor(
    root: string,
    dir: string,
    state: CheckpointState,
    report: LoadReport,
    validBytes?: number,
  ) {
    this.root = root;
    this.dir = dir;
    this.state = state;
    this.loadReport = report;
    this.#validBytes = validBytes;
  }

  get runId(): string {
    return this.state.runId;
  }

  get journalPath(): string {
    return join(this.dir, 'journal.ndjson');
  }

  get snapshotPath(): string {
    return join(this.dir, 'checkpoint.json');
  }

  /** Reads a run without changing anything on disk (status, explain, runs). */
  static async read(root: string, runId: string): Promise<Checkpoint> {
    const dir = runDirOf(root, runId);
    const { state, report, validBytes } = await loadState(dir, runId);
    return new Checkpoint(root, dir, state, report, validBytes);
  }

  /** A model for a run that does not exist yet; nothing is written until `openForWrite`. */
  static blank(root: string, runId: string, planName: string, shard?: Shard): Checkpoint {
    const state = emptyState(runId, planName);
    if (shard) state.shard = { index: shard.index, total: shard.total };
    return new Checkpoint(root, runDirOf(root, runId), state, {
      tornTail: false,
      eventsReplayed: 0,
    });
  }

  /**
   * `checkpoint reset --all` on a checkpoint that cannot be read: the run starts over in its folder. The
   * damaged snapshot and journal are kept beside it (`<file>.damaged-<time>`, for a post-mortem); the model
   * returned is blank, to be opened for writing.
   */
  static async startOver(
    root: string,
    runId: string,
    planName: string,
  ): Promise<{ ckpt: Checkpoint; kept: string[] }> {
    const dir = runDirOf(root, runId);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const kept: string[] = [];
    for (const name of ['journal.ndjson', 'checkpoint.json']) {
      const path = join(dir, name);
      if ((await statOrUndefined(path)) === undefined) continue;
      await rename(path, `${path}.damaged-${stamp}`);
      kept.push(`${path}.damaged-${stamp}`);
    }
    await fsyncDir(dir);
    return { ckpt: Checkpoint.blank(root, runId, planName), kept };
  }

  static async exists(root: string, runId: string): Promise<boolean> {
    const dir = runDirOf(root, runId);
    return (
      (await statOrUndefined(join(dir, 'checkpoint.json'))) !== undefined ||
      (await statOrUndefined(join(dir, 'journal.ndjson'))) !== undefined
    );
  }

  /**
   * Creates the folders, cuts a torn journal tail, opens the journal. The caller holds the lease and read the
   * state under it (`read`), or this is a new run (`blank`), so the model in memory is the one on disk.
   */
  /**
   * Fencing (DESIGN §4: a process that lost its lease writes nothing more): with `lease`, every write of
   * this checkpoint (journal lines, compaction, outputs.json, markers, item lists) first asks the lease
   * whether it is still held, and is refused with LeaseLostError otherwise.
   */
  async openForWrite(
    opts: {
      lease?: Pick<Lease, 'assertHeld'>;
      /** COMPACT_BYTES unless a test asks for another. */
      compactBytes?: number;
    } = {},
  ): Promise<void> {
    const lease = opts.lease;
    if (lease) this.#fence = () => lease.assertHeld();
    if (opts.compactBytes !== undefined) this.#compactBytes = this.#rotateAt = opts.compactBytes;
    await ensureDir(this.root);
    await ensureRealDir(this.dir);
    // Nothing inside a run folder is a link (DESIGN §4): its folders, their entries one level down (a
    // step's state and log folders, the slot files) and the files the runner replaces or units read.
    for (const sub of RUN_SUBDIRS) {
      const path = join(this.dir, sub);
      await ensureRealDir(path);
      for (const entry of await readdir(path, { withFileTypes: true }))
        if (entry.isSymbolicLink()) await refuseLink(join(path, entry.name));
    }
    for (const name of ['checkpoint.json', 'journal.ndjson', 'outputs.json'])
      await refuseLink(join(this.dir, name));
    await refuseLink(join(this.root, 'latest'));
    if (this.#validBytes !== undefined) {
      if (this.loadReport.tornTail) await truncateTo(this.journalPath, this.#validBytes);
    } else if (await Checkpoint.exists(this.root, this.runId)) {
      throw new Error(`internal: ${this.dir} exists but was not read before opening it for writing`);
    } else {
      // A brand-new run: the snapshot exists from the start so `runs`/`status` can always read the name.
      await writeFileAtomic(this.snapshotPath, serializeSnapshot(this.state));
    }
    this.#journal = await JournalWriter.open(this.journalPath, this.#fenceOption());
    this.#journalBytesAtOpen = (await statOrUndefined(this.journalPath))?.size ?? 0;
    await writeFileAtomic(join(this.root, 'latest'), `${this.runId}\n`);
  }

  #fenceOption(): { fence?: () => void } {
    return this.#fence ? { fence: this.#fence } : {};
  }

  /** Before any write but the journal's (which fences its own): throws once the lease is lost. */
  #fenced(): void {
    this.#fence?.();
  }

  #stamp(ev: CheckpointEvent): Stamped {
    return { ...ev, seq: this.state.seq + 1, t: Date.now() };
  }

  /**
   * Applies the event and resolves once it is on disk (fsynced, shared with concurrent records).
   * `onWritten`: the line is written (it survives a SIGKILL of this process), before the fsync.
   */
  async record(ev: CheckpointEvent, onWritten?: () => void): Promise<void> {
    const writer = this.#writer();
    if (this.#rotationError !== undefined) throw this.#rotationError;
    const s = this.#stamp(ev);
    applyEvent(this.state, s);
    this.#touch(ev);
    const held = this.#held;
    if (held) {
      await new Promise<void>((resolve, reject) =>
        held.push({ event: s, waiter: { resolve, reject, onWritten } }),
      );
      return;
    }
    const durable = writer.append(s, onWritten);
    this.#rotateIfLarge();
    await durable;
  }

  /** Applies and writes the event; it becomes durable with the next `record` or `flush`. */
  recordLater(ev: CheckpointEvent): void {
    const writer = this.#writer();
    // As the journal writer after a write error: the error surfaces through record(), flush() and close().
    if (this.#rotationError !== undefined) return;
    const s = this.#stamp(ev);
    applyEvent(this.state, s);
    this.#touch(ev);
    if (this.#held) this.#held.push({ event: s });
    else {
      writer.appendLater(s);
      this.#rotateIfLarge();
    }
  }

  #rotateIfLarge(): void {
    if (this.#rotation || this.journalBytes <= this.#rotateAt) return;
    this.#rotation = this.#rotate().finally(() => {
      this.#rotation = undefined;
    });
    // Its failure is reported by the next record, flush or close (#rotationError), not as an unhandled one.
    this.#rotation.catch(() => undefined);
  }

  /**
   * Folds the journal into the snapshot during an attempt. The snapshot is taken at once, in the same turn
   * as the decision, so it holds every event recorded so far; what is recorded from then on is held and
   * goes to the new journal. A crash at any point leaves a readable pair: the old snapshot with the whole
   * old journal, the new snapshot with the old journal (its lines are all at or below the snapshot's seq,
   * and replay skips them), or the new snapshot with the new journal. Held events are not written until the
   * new journal is open, so a `record` that waits on one resolves only once it is durable there.
   */
  async #rotate(): Promise<void> {
    const text = serializeSnapshot(this.state);
    const held: HeldEvent[] = [];
    this.#held = held;
    try {
      await this.#writer().close();
      this.#fenced();
      await writeFileAtomic(this.snapshotPath, text);
      this.#fenced();
      await writeFileAtomic(this.journalPath, '');
      this.#journal = await JournalWriter.open(this.journalPath, this.#fenceOption());
      this.#journalBytesAtOpen = 0;
      // Rewriting a snapshot costs its size: the journal grows at least as much before the next one.
      this.#rotateAt = Math.max(this.#compactBytes, Buffer.byteLength(text));
    } catch (error) {
      this.#rotationError = error;
      this.#held = undefined;
      for (const h of held) h.waiter?.reject(error);
      throw error;
    }
    this.#held = undefined;
    const journal = this.#journal;
    for (const h of held) {
      if (!h.waiter) journal.appendLater(h.event);
      else journal.append(h.event, h.waiter.onWritten).then(h.waiter.resolve, h.waiter.reject);
    }
  }

  #touch(ev: CheckpointEvent): void {
    if (ev.type === 'done' && ev.outputs) this.#outputsDirty = true;
    if (
      ev.type === 'reset' ||
      ev.type === 'step-init' ||
      ev.type === 'step-complete' ||
      ev.type === 'mark-done'
    ) {
      this.#outputsDirty = true;
    }
  }

  #writer(): JournalWriter {
    if (!this.#journal) throw new Error(`checkpoint ${this.dir} is not open for writing`);
    return this.#journal;
  }

  async flush(): Promise<void> {
    await this.#rotation?.catch(() => undefined);
    if (this.#rotationError !== undefined) throw this.#rotationError;
    await this.#journal?.flush();
  }

  get journalBytes(): number {
    return this.#journalBytesAtOpen + (this.#journal?.bytesWritten ?? 0);
  }

  /**
   * Writes the snapshot. The journal is only cut when it has grown large: while it still holds the whole
   * history, a damaged snapshot can be rebuilt from it.
   */
  async compact(force = false): Promise<void> {
    await this.flush();
    this.#fenced();
    await writeFileAtomic(this.snapshotPath, serializeSnapshot(this.state));
    if (force || this.journalBytes > this.#compactBytes) {
      this.#fenced();
      await this.#journal?.close();
      await writeFileAtomic(this.journalPath, '');
      this.#journal = await JournalWriter.open(this.journalPath, this.#fenceOption());
      this.#journalBytesAtOpen = 0;
    }
  }

  async close(): Promise<void> {
    await this.#rotation?.catch(() => undefined);
    await this.#journal?.close();
    this.#journal = undefined;
    if (this.#rotationError !== undefined) throw this.#rotationError;
  }

  stateDir(step: string): string {
    return join(this.dir, 'state', step);
  }

  logPath(step: string, index: number): string {
    return join(this.dir, 'logs', step, `${index}.log`);
  }

  /** Creates `state/<step>` (0700), refusing a link anywhere below the run folder; returns its path. */
  async ensureStateDir(step: string): Promise<string> {
    this.#fenced();
    return ensureDirUnder(this.dir, join('state', step));
  }

  /**
   * Replaces `logs/<step>/<index>.log` with `text` (0600): the folder is created without following links
   * and the file is opened with O_NOFOLLOW, so a link planted there is refused (CheckpointLinkError), not
   * written through. Not atomic: a log is the tail of a unit's output, and a torn one is harmless.
   */
  async writeLog(step: string, index: number, text: string | Buffer): Promise<void> {
    this.#fenced();
    await ensureDirUnder(this.dir, join('logs', step));
    const handle = await openNoFollow(this.logPath(step, index), 'w');
    try {
      await handle.writeFile(text);
    } finally {
      await handle.close();
    }
  }

  outputsPath(): string {
    return join(this.dir, 'outputs.json');
  }

  itemsPath(step: string): string {
    return join(this.dir, 'items', `${step}.json`);
  }

  /** Rewrites outputs.json when a step's outputs changed since the last write. */
  async writeOutputsFile(): Promise<string> {
    if (this.#outputsDirty) {
      const all: Record<string, Record<string, string>> = {};
      for (const [id, rec] of this.state.steps)
        if (Object.keys(rec.outputs).length > 0) all[id] = rec.outputs;
      this.#fenced();
      await writeFileAtomic(this.outputsPath(), `${JSON.stringify(all, null, 2)}\n`);
      this.#outputsDirty = false;
    }
    return this.outputsPath();
  }

  /**
   * Freezes `items` into `items/<step>.json`; returns the list indexed over the text written, so that a
   * caller can let the array of millions of strings go (item-list.ts: a far smaller heap, and so far faster
   * forks of this process for every unit).
   */
  async writeItems(step: string, items: readonly string[]): Promise<ItemList> {
    this.#fenced();
    const text = JSON.stringify(items);
    await writeFileAtomic(this.itemsPath(step), `${text}\n`);
    return indexItemList(text) ?? items;
  }

  #refuseItems(step: string, why: string): never {
    const where = relative(process.cwd(), this.itemsPath(step));
    throw new CheckpointCorruptError(
      `${where}: the frozen item list of step "${step}" ${why}; run \`checkpoint reset ${step}\` to expand it again`,
    );
  }

  /**
   * The frozen list checked as `readItems` checks it, for readers that name a few units' items or only
   * verify it: when the file is the engine's own text (it hashes like its record), it is indexed, not
   * parsed (item-list.ts), and an item is decoded only when asked for.
   */
  async readItemList(step: string): Promise<ItemList> {
    const text = await readFileNoFollow(this.itemsPath(step));
    const rec = this.state.steps.get(step);
    if (text === undefined) return this.#refuseItems(step, 'is missing');
    const json = text.endsWith('\n') ? text.slice(0, -1) : text;
    if (!rec?.items || sha256(json) !== rec.items.sha256) return this.readItems(step);
    const list = indexItemList(text);
    if (list === undefined) return this.#refuseItems(step, 'is not a JSON list of strings');
    if (list.length !== rec.items.count)
      return this.#refuseItems(step, `holds ${list.length} items, but its record says ${rec.items.count}`);
    return {
      length: list.length,
      slice: (start?: number, end?: number) => {
        try {
          return list.slice(start, end);
        } catch (err) {
          if (err instanceof ItemListSyntaxError)
            return this.#refuseItems(step, `is not a JSON list of strings (${err.message})`);
          throw err;
        }
      },
    };
  }

  async readItems(step: string): Promise<string[]> {
    const text = await readFileNoFollow(this.itemsPath(step));
    const rec = this.state.steps.get(step);
    const refuse = (why: string): never => this.#refuseItems(step, why);
    if (text === undefined) return refuse('is missing');
    // Parsed once: a list of millions of items is held once, not once per check.
    const items = parseItems(text);
    if (items === undefined) return refuse('is not a JSON list of strings');
    // The file is the list's JSON as writeItems wrote it: its text hashes like the list (no second copy).
    const json = text.endsWith('\n') ? text.slice(0, -1) : text;
    // A list that refreshes is written longer before the `items-refresh` that records it (engine/scheduler.ts):
    // an attempt cut off in between leaves a file whose first `count` items are the recorded list, and the
    // next attempt appends the rest again. (Its first attempt with `refresh` may be the one cut off, so the
    // record need not say `refresh` yet.)
    if (rec?.items && items.length > rec.items.count) {
      const head = items.slice(0, rec.items.count);
      if (itemsHash(head) === rec.items.sha256) return head;
    }
    if (rec?.items && sha256(json) !== rec.items.sha256 && itemsHash(items) !== rec.items.sha256)
      return refuse('does not match its checksum');
    // The count is a field of its own in the record: a list of another length would hand out units past it.
    if (rec?.items && items.length !== rec.items.count)
      return refuse(`holds ${items.length} items, but its record says ${rec.items.count}`);
    return items;
  }

  /** steps/<id>.complete, readable by shell scripts (`. steps/build.complete`). */
  async writeMarker(step: string, exitCode = 0): Promise<void> {
    const rec = this.state.steps.get(step);
    if (!rec) return;
    const completedAt = new Date(rec.completedAt ?? Date.now()).toISOString();
    const text = [
      `STEP=${step}`,
      `COMPLETED_AT=${completedAt}`,
      `DURATION_SECONDS=${(rec.timeMs / 1000).toFixed(3)}`,
      `EXIT_CODE=${exitCode}`,
      `FINGERPRINT=${rec.fingerprint.hash}`,
      '',
    ].join('\n');
    this.#fenced();
    await writeFileAtomic(join(this.dir, 'steps', `${step}.complete`), text);
  }

  async removeMarker(step: string): Promise<void> {
    this.#fenced();
    await unlink(join(this.dir, 'steps', `${step}.complete`)).catch(() => undefined);
  }

  /** Makes markers agree with the model (after a reset, an invalidation, or a crash between the two). */
  async syncMarkers(): Promise<void> {
    const present = new Set(
      (await readdir(join(this.dir, 'steps')).catch(() => [] as string[]))
        .filter((f) => f.endsWith('.complete'))
        .map((f) => f.slice(0, -'.complete'.length)),
    );
    for (const [id, rec] of this.state.steps) {
      const complete = isStepComplete(rec) && rec.completedAt !== undefined;
      if (complete && !present.has(id)) await this.writeMarker(id);
      if (!complete && present.has(id)) await this.removeMarker(id);
    }
  }

  async clearStepFiles(step: string): Promise<void> {
    this.#fenced();
    await this.removeMarker(step);
    await rm(join(this.dir, 'items', `${step}.json`), { force: true });
  }
}

function parseItems(text: string): string[] | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * sha256 of `JSON.stringify(items)`, the text writeItems writes, hashed in pieces of about 64 KiB: a list of
 * millions of items is not turned into one more string of its whole size just to be hashed.
 */
export function itemsHash(items: readonly string[]): string {
  const hash = createHash('sha256');
  let piece = '[';
  for (let i = 0; i < items.length; i += 1) {
    piece += (i > 0 ? ',' : '') + JSON.stringify(items[i]);
    if (piece.length >= 65536) {
      hash.update(piece);
      piece = '';
    }
  }
  hash.update(`${piece}]`);
  return hash.digest('hex');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

async function loadState(
  dir: string,
  runId: string,
): Promise<{ state: CheckpointState; report: LoadReport; validBytes: number }> {
  const snapPath = join(dir, 'checkpoint.json');
  const journalPath = join(dir, 'journal.ndjson');
  const shown = (p: string) => relative(process.cwd(), p) || p;
  const report: LoadReport = { tornTail: false, eventsReplayed: 0 };
  const journal = await readJournal(journalPath);
  report.tornTail = journal.tornTail;
  const events = journal.events as unknown as Stamped[];
  let state: CheckpointState | undefined;
  const text = await readFileNoFollow(snapPath);
  if (text !== undefined) {
    try {
      state = parseSnapshot(text, shown(snapPath));
    } catch (err) {
      // A newer program's snapshot is not damage: its journal may hold events this one would misread.
      if (!(err instanceof SnapshotError) || err instanceof SnapshotVersionError) throw err;
      // The journal can stand in for the snapshot only when it still holds the run's whole history.
      if (events.length > 0 && events[0]?.seq === 1) {
        report.rebuiltFrom = `${err.message}; rebuilt from ${shown(journalPath)}`;
      } else {
        throw new CheckpointCorruptError(
          `${err.message}. The journal no longer holds the whole history, so it cannot be rebuilt. ` +
            `Restore the previous checkpoint entry, or start over with \`checkpoint reset --all\` (or \`checkpoint run --new\`).`,
        );
      }
    }
  } else if (events[0]?.seq !== 1 && (events.length > 0 || (await statOrUndefined(journalPath)))) {
    // A run's snapshot is written before its journal is created, so a journal without one is the remains of
    // a lost snapshot; an empty journal is what compaction leaves, with all progress in that snapshot.
    throw new CheckpointCorruptError(
      `${shown(snapPath)} is missing and ${shown(journalPath)} ${events.length > 0 ? 'does not start at the beginning of the run' : 'holds no events (its history was compacted into the missing snapshot)'}, ` +
        'so the progress of the run cannot be rebuilt. Restore the previous checkpoint entry, or start over with ' +
        '`checkpoint reset --all` (or `checkpoint run --new`).',
    );
  }
  if (!state) state = emptyState(runId, '');
  else for (const rec of state.steps.values()) origins.set(rec, { file: snapPath });
  let expected = state.seq + 1;
  for (let i = 0; i < events.length; i++) {
    const ev = events[i] as Stamped;
    const line = journal.lines[i];
    const invalid = checkEvent(ev as unknown as Record<string, unknown>);
    if (invalid !== undefined) throw new CheckpointDamageError(journalPath, line, invalid);
    // Lines the snapshot already holds are not applied, so only their form is checked.
    if (ev.seq <= state.seq) continue;
    const problem = checkEventInState(state, ev);
    if (problem !== undefined) throw new CheckpointDamageError(journalPath, line, problem);
    if (ev.seq !== expected) {
      throw new CheckpointCorruptError(
        `${shown(journalPath)}: event ${ev.seq} follows ${expected - 1} (a gap); restore the previous checkpoint entry or run \`checkpoint reset --all\``,
      );
    }
    applyEvent(state, ev);
    if (ev.type === 'step-init' || ev.type === 'step-redefine') {
      const rec = state.steps.get(ev.step);
      if (rec) origins.set(rec, line === undefined ? { file: journalPath } : { file: journalPath, line });
    }
    expected += 1;
    report.eventsReplayed += 1;
  }
  return { state, report, validBytes: journal.validBytes };
}
