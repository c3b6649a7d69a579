// What `checkpoint run` prints while it works: on a terminal a live block (one line per step: bar,
// done/total, rate, ETA) under the units' output; elsewhere (CI logs) plain timestamped lines, at most one
// progress line per step every few seconds, plus a line for each finished, failed or retried unit.

import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import type { EngineEvent } from '../engine/scheduler.js';
import type { Checkpoint } from '../journal/checkpoint.js';
import { unitCount } from '../journal/state.js';
import { formatDuration } from '../plan/duration.js';
import type { Plan } from '../plan/types.js';
import { type Colors, makeColors } from './colors.js';
import { describeUnitItems, emptyItemsWarning } from './items.js';

export interface ProgressOptions {
  tty: boolean;
  color: boolean;
  out: NodeJS.WritableStream;
  /** Plain mode: least time between two progress lines of one step. */
  intervalMs?: number;
  now?: () => number;
}

interface StepLive {
  id: string;
  name: string;
  startedAt?: number;
  doneAtStart: number;
  state: string;
  lastLine?: number;
  lastDone?: number;
}

export class Progress {
  readonly #ckpt: Checkpoint;
  readonly #opts: ProgressOptions;
  readonly #c: Colors;
  readonly #steps = new Map<string, StepLive>();
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Durations, rates and ETAs: the monotonic clock (a wall clock that jumps moves none of them). */
  readonly #now: () => number;
  /** The timestamps printed on plain lines. */
  readonly #wall: () => number;
  /** Batch steps, whose units are named by range (and items). */
  readonly #batch = new Set<string>();
  readonly #items = new Map<string, readonly string[] | undefined>();
  readonly #warnedEmpty = new Set<string>();

  constructor(plan: Plan, ckpt: Checkpoint, steps: readonly string[], opts: ProgressOptions) {
    this.#ckpt = ckpt;
    this.#opts = opts;
    this.#c = makeColors(opts.color);
    this.#now = opts.now ?? (() => performance.now());
    this.#wall = opts.now ?? Date.now;
    for (const id of steps) {
      const s = plan.steps.find((x) => x.id === id);
      if (s?.batch) this.#batch.add(id);
      this.#steps.set(id, {
        id,
        name: s?.name ?? id,
        doneAtStart: ckpt.state.steps.get(id)?.unitsDone ?? 0,
        state: 'waiting',
      });
    }
  }

  start(): void {
    if (this.#opts.tty) {
      this.#timer = setInterval(() => this.#redraw(), 200);
      this.#redraw();
    } else {
      this.#timer = setInterval(() => this.#plainTick(), 1000);
    }
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#opts.tty) this.#redraw();
  }

  #write(text: string): void {
    this.#opts.out.write(text);
  }

  /** Prints a log line above the live block (or as is in plain mode). */
  line(text: string): void {
    if (this.#opts.tty) {
      this.#clear();
      this.#write(`${text}\n`);
      this.#redraw();
    } else {
      this.#write(`${new Date(this.#wall()).toISOString()} ${text}\n`);
    }
  }

  output(label: string, line: string, stream: 'stdout' | 'stderr'): void {
    const prefix = this.#c.dim(`[${label}]`);
    const text = `${prefix} ${stream === 'stderr' ? line : line}`;
    if (this.#opts.tty) {
      this.#clear();
      this.#write(`${text}\n`);
      this.#redrawSoon();
    } else {
      this.#write(`${text}\n`);
    }
  }

  event(ev: EngineEvent): void {
    const c = this.#c;
    switch (ev.type) {
      case 'step-state': {
        const s = this.#steps.get(ev.step);
        if (!s) return;
        s.state = ev.state;
        if (ev.state === 'running' && s.startedAt === undefined) {
          s.startedAt = this.#now();
          s.doneAtStart = this.#ckpt.state.steps.get(ev.step)?.unitsDone ?? 0;
        }
        // Done without a unit started: none ran now, whatever the attempt's first records changed in the
        // counts (a refresh counts a unit whose items are all gone as settled).
        if (ev.state === 'done' && s.startedAt === undefined)
          s.doneAtStart = this.#ckpt.state.steps.get(ev.step)?.unitsDone ?? 0;
        if (ev.state === 'done' && ev.detail) this.line(`${c.green('✓')} ${s.id}: ${ev.detail}`);
        else if (ev.state === 'done') this.line(`${c.green('✓')} ${s.id} done${this.#stepSummary(s)}`);
        if (ev.state === 'running' || ev.state === 'done') this.#warnEmpty(s.id);
        if (ev.state === 'failed') this.line(`${c.red('✗')} ${s.id} failed: ${ev.detail ?? ''}`);
        if (ev.state === 'blocked') this.line(`${c.yellow('-')} ${s.id} not run: ${ev.detail ?? ''}`);
        if (ev.state === 'waiting' && ev.detail) this.line(`${c.yellow('⏸')} ${s.id} ${ev.detail}`);
        return;
      }
      case 'unit-end':
        if (ev.result === 'failed' || ev.result === 'retry') {
          this.line(`${ev.result === 'failed' ? c.red('✗') : c.yellow('↻')} ${ev.detail ?? ev.unit.step}`);
          if (ev.result === 'failed' && ev.tail && !this.#opts.tty) {
            const tail = ev.tail.trimEnd().split('\n').slice(-5);
            for (const l of tail) this.#write(`    ${l}\n`);
          }
        }
        if (ev.result === 'yielded') {
          const step = { id: ev.unit.step, batch: this.#batch.has(ev.unit.step) || undefined };
          const unit = describeUnitItems(step, ev.unit, this.#itemsOf(ev.unit.step));
          this.line(`${c.cyan('⏸')} ${unit} yielded; it runs again`);
        }
        return;
      case 'notice':
        this.line(ev.message);
        return;
      case 'unit-start':
        return;
    }
  }

  /** An item source that gave nothing: said once, when the step starts or (having no units) completes. */
  #warnEmpty(id: string): void {
    const rec = this.#ckpt.state.steps.get(id);
    if (!rec?.items || rec.items.count > 0 || rec.items.refresh || this.#warnedEmpty.has(id)) return;
    this.#warnedEmpty.add(id);
    this.line(`${this.#c.yellow('warning:')} ${emptyItemsWarning(id, rec.items.source)}`);
  }

  /**
   * The step's frozen item list, read once when a unit of it is first named. Synchronous: a yield line is
   * rare and the list is one small JSON file per step (the engine checked its checksum when it loaded it).
   */
  #itemsOf(id: string): readonly string[] | undefined {
    if (this.#items.has(id)) return this.#items.get(id);
    let list: readonly string[] | undefined;
    if (this.#ckpt.state.steps.get(id)?.items) {
      try {
        // Not through a symlink, as every file of a run folder (DESIGN §4).
        const fd = openSync(this.#ckpt.itemsPath(id), constants.O_RDONLY | constants.O_NOFOLLOW);
        let text: string;
        try {
          text = readFileSync(fd, 'utf8');
        } finally {
          closeSync(fd);
        }
        const parsed: unknown = JSON.parse(text);
        if (Array.isArray(parsed) && parsed.every((i) => typeof i === 'string')) list = parsed;
      } catch {
        // Shown by index instead.
      }
    }
    this.#items.set(id, list);
    return list;
  }

  #stepSummary(s: StepLive): string {
    const rec = this.#ckpt.state.steps.get(s.id);
    if (!rec) return '';
    const total = unitCount(rec);
    const ran = rec.unitsDone - s.doneAtStart;
    const took = s.startedAt === undefined ? '' : ` in ${formatDuration(this.#now() - s.startedAt)}`;
    return total > 1 ? ` (${ran} of ${total} units run now${took})` : took;
  }

  #figures(s: StepLive): { done: number; total: number; rate?: number; etaMs?: number } {
    const rec = this.#ckpt.state.steps.get(s.id);
    if (!rec) return { done: 0, total: 0 };
    const total = unitCount(rec);
    const done = Math.min(total, rec.unitsDone);
    const out: { done: number; total: number; rate?: number; etaMs?: number } = { done, total };
    if (s.startedAt !== undefined) {
      const secs = (this.#now() - s.startedAt) / 1000;
      const ran = done - s.doneAtStart;
      if (secs > 0.5 && ran > 0) {
        out.rate = ran / secs;
        out.etaMs = ((total - done) / out.rate) * 1000;
      }
    }
    return out;
  }

  #plainTick(): void {
    const interval = this.#opts.intervalMs ?? 5000;
    const now = this.#now();
    for (const s of this.#steps.values()) {
      if (s.state !== 'running') continue;
      const f = this.#figures(s);
      if (f.total <= 1) continue;
      if (s.lastLine !== undefined && now - s.lastLine < interval) continue;
      if (s.lastDone === f.done) continue;
      s.lastLine = now;
      s.lastDone = f.done;
      this.line(`[${s.id}] ${this.#figureText(f)}`);
    }
  }

  #figureText(f: { done: number; total: number; rate?: number; etaMs?: number }): string {
    const pct = f.total > 0 ? Math.floor((f.done / f.total) * 100) : 0;
    const parts = [`${f.done}/${f.total} units (${pct}%)`];
    if (f.rate !== undefined) parts.push(`${f.rate >= 10 ? f.rate.toFixed(0) : f.rate.toFixed(1)}/s`);
    if (f.etaMs !== undefined) parts.push(`ETA ${formatDuration(f.etaMs)}`);
    return parts.join('  ');
  }

  #redrawPending = false;
  #redrawSoon(): void {
    if (this.#redrawPending) return;
    this.#redrawPending = true;
    setImmediate(() => {
      this.#redrawPending = false;
      this.#redraw();
    });
  }

  #clear(): void {
    if (this.#drawn > 0) this.#write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }

  #redraw(): void {
    const c = this.#c;
    this.#clear();
    const width = Math.max(...[...this.#steps.values()].map((s) => s.id.length), 4);
    const lines: string[] = [];
    for (const s of this.#steps.values()) {
      const f = this.#figures(s);
      const ratio = f.total > 0 ? f.done / f.total : 0;
      const barW = 20;
      const filled = Math.round(ratio * barW);
      const bar = c.green('█'.repeat(filled)) + c.dim('░'.repeat(barW - filled));
      const mark =
        s.state === 'done'
          ? c.green('✓')
          : s.state === 'failed'
            ? c.red('✗')
            : s.state === 'running'
              ? c.cyan('›')
              : s.state === 'blocked'
                ? c.yellow('-')
                : ' ';
      const held = this.#ckpt.state.steps.get(s.id)?.throttle?.held ? `  ${c.yellow('throttled')}` : '';
      lines.push(`${mark} ${s.id.padEnd(width)} ${bar} ${this.#figureText(f)}${held}`);
    }
    this.#write(`${lines.join('\n')}\n`);
    this.#drawn = lines.length;
  }
}
