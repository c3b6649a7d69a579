// The spans of one run attempt, built from the engine's event stream only (the engine knows nothing of
// tracing): the attempt is the root, each step a child of it, each try of a unit a child of its step. Times
// are taken when the events arrive; a unit ends at its start plus the process's own run time.
import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { EngineEvent, RunResult, Unit } from '../engine/scheduler.js';
import type { Checkpoint } from '../journal/checkpoint.js';
import { isResumed } from '../journal/state.js';
import type { Plan, Step } from '../plan/types.js';
import type { RunOutcome } from '../session/run.js';
import * as A from './attributes.js';

export type SpanResult = 'done' | 'failed' | 'interrupted' | 'yielded' | 'blocked';

/** Wall-clock milliseconds with sub-millisecond precision (OpenTelemetry takes it as an epoch time). */
export const now = (): number => performance.timeOrigin + performance.now();

interface StepSpan {
  span: Span;
  ended: boolean;
  /** The last unit's result in this attempt: a step left open at the end is `yielded` if that unit yielded. */
  last?: SpanResult;
}

interface UnitSpan {
  span: Span;
  startedAt: number;
}

/** What a unit's end event says about its process: the exit code or the signal, when the engine names it. */
export function exitFacts(ev: Extract<EngineEvent, { type: 'unit-end' }>): {
  code?: number;
  signal?: string;
} {
  if (ev.result === 'done') return { code: 0 };
  if (ev.result === 'yielded') return { code: 75 };
  if (ev.exit !== undefined || ev.signal !== undefined) {
    if (ev.signal) return { signal: ev.signal };
    return ev.exit === null || ev.exit === undefined ? {} : { code: ev.exit };
  }
  if (ev.result === 'interrupted' || ev.detail === undefined) return {};
  // Events without the fields (older callers): the engine's failure detail: `<unit>: exit code 3 (try 1 of 2)` or `<unit>: killed by SIGKILL (try ...)`.
  const code = /: exit code (\d+) \(try \d+ of \d+\)/.exec(ev.detail);
  if (code?.[1] !== undefined) return { code: Number(code[1]) };
  const sig = /: killed by (SIG[A-Z0-9]+) \(try \d+ of \d+\)/.exec(ev.detail);
  if (sig?.[1] !== undefined) return { signal: sig[1] };
  return {};
}

/** The attempt's result from the run's exit code and reason. */
function attemptResult(r: RunResult): SpanResult {
  if (r.exitCode === 0) return 'done';
  if (r.exitCode === 75) return r.reason === 'stopped early: a unit yielded' ? 'yielded' : 'interrupted';
  return 'failed';
}

export class RunTrace {
  readonly #tracer: Tracer;
  readonly #startedAt: number;
  #attempt: Span | undefined;
  #ckpt: Checkpoint | undefined;
  readonly #planSteps = new Map<string, Step>();
  readonly #steps = new Map<string, StepSpan>();
  readonly #units = new Map<string, UnitSpan>();
  /** Units recorded done in this attempt: the run's done count minus these were done at its start. */
  #doneHere = 0;
  /** Facts known when the engine starts, in case the run ends without a result (an error). */
  #doneBefore = 0;
  /** Frozen item lists of `size: 1` item steps (for `checkpoint.unit.item`), read once. */
  readonly #items = new Map<string, Promise<string[] | undefined>>();
  readonly #itemsRead = new Map<string, string[] | undefined>();
  readonly #pending = new Set<Promise<void>>();

  constructor(tracer: Tracer, startedAt: number) {
    this.#tracer = tracer;
    this.#startedAt = startedAt;
  }

  /** The engine exists: the attempt span starts (at the command's start, so set-up is part of it). */
  engine(ckpt: Checkpoint, plan: Plan): void {
    if (this.#attempt) return;
    this.#ckpt = ckpt;
    for (const s of plan.steps) this.#planSteps.set(s.id, s);
    const state = ckpt.state;
    // The engine's own rules for these two; the run's result confirms them at the end.
    const attempt = (state.attempts[state.attempts.length - 1]?.attempt ?? 0) + 1;
    const resumed = isResumed(state);
    for (const r of state.steps.values()) this.#doneBefore += r.unitsDone;
    this.#attempt = this.#tracer.startSpan(`run ${plan.name}`, {
      startTime: this.#startedAt,
      attributes: {
        [A.RUN_ID]: ckpt.runId,
        [A.PLAN_NAME]: plan.name,
        [A.ATTEMPT]: attempt,
        [A.RESUMED]: resumed,
      },
    });
  }

  event(ev: EngineEvent): void {
    if (!this.#attempt) return;
    const t = now();
    switch (ev.type) {
      case 'step-state':
        if (ev.state === 'running') this.#stepSpan(ev.step, t);
        else if (ev.state === 'done' || ev.state === 'failed' || ev.state === 'blocked')
          this.#endStep(ev.step, ev.state, t, ev.detail);
        else if (ev.state === 'stopped') this.#endStep(ev.step, 'interrupted', t, ev.detail);
        return;
      case 'unit-start':
        this.#startUnit(ev.unit, ev.try, t);
        return;
      case 'unit-end':
        this.#endUnit(ev, t);
        return;
      case 'notice':
        this.#attempt.addEvent('notice', { message: ev.message }, t);
        return;
    }
  }

  /** The run is over: whatever is still open ends now, and the attempt span takes the run's result. */
  finish(outcome: RunOutcome | undefined, error: unknown): void {
    const attempt = this.#attempt;
    if (!attempt) return;
    this.#attempt = undefined;
    const t = now();
    for (const [key, u] of this.#units) {
      u.span.setAttribute(A.RESULT, 'interrupted');
      u.span.end(t);
      this.#units.delete(key);
    }
    for (const [id, s] of this.#steps)
      if (!s.ended) this.#endStep(id, s.last === 'yielded' ? 'yielded' : 'interrupted', t);
    const r = outcome?.result;
    if (r) {
      const result = attemptResult(r);
      attempt.setAttributes({
        [A.ATTEMPT]: r.attempt,
        [A.RESUMED]: r.resumed,
        [A.UNITS_DONE_AT_START]: Math.max(0, r.unitsDone - this.#doneHere),
        [A.UNITS_DONE]: r.unitsDone,
        [A.UNITS_REMAINING]: r.unitsRemaining,
        [A.UNITS_FAILED]: r.unitsFailed,
        [A.EXIT_CODE]: r.exitCode,
        [A.RESULT]: result,
        [A.REASON]: r.reason,
      });
      if (result === 'failed') attempt.setStatus({ code: SpanStatusCode.ERROR, message: r.reason });
    } else {
      attempt.setAttribute(A.UNITS_DONE_AT_START, this.#doneBefore);
      attempt.setAttribute(A.RESULT, 'failed');
      if (outcome) attempt.setAttribute(A.EXIT_CODE, outcome.exitCode);
    }
    if (outcome?.signal) attempt.setAttribute(A.SIGNAL, outcome.signal);
    if (error !== undefined) {
      const e = error instanceof Error ? error : new Error(String(error));
      attempt.recordException(e, t);
      attempt.setAttributes({ [A.RESULT]: 'failed', [A.REASON]: e.message });
      attempt.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
    }
    attempt.end(t);
  }

  /** Resolves once spans waiting for an item list have ended. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  #step(id: string): Step | undefined {
    return this.#planSteps.get(id);
  }

  #stepSpan(id: string, t: number): StepSpan {
    let s = this.#steps.get(id);
    if (!s) {
      const attempt = this.#attempt as Span;
      s = {
        span: this.#tracer.startSpan(
          `step ${id}`,
          { startTime: t, attributes: { [A.STEP_ID]: id, [A.STEP_NAME]: this.#step(id)?.name ?? id } },
          trace.setSpan(ROOT_CONTEXT, attempt),
        ),
        ended: false,
      };
      this.#steps.set(id, s);
    }
    return s;
  }

  #endStep(id: string, result: SpanResult, t: number, detail?: string): void {
    const s = this.#stepSpan(id, t);
    if (s.ended) return;
    s.ended = true;
    const attrs: Attributes = { [A.RESULT]: result };
    if (detail !== undefined) attrs[A.REASON] = detail;
    if (result === 'done' && detail === 'done in an earlier attempt') attrs[A.STEP_DONE_EARLIER] = true;
    s.span.setAttributes(attrs);
    if (result === 'failed' || result === 'blocked')
      s.span.setStatus({ code: SpanStatusCode.ERROR, ...(detail !== undefined ? { message: detail } : {}) });
    s.span.end(t);
  }

  #startUnit(u: Unit, tryNo: number, t: number): void {
    const key = `${u.step}\u0000${u.start}`;
    const open = this.#units.get(key);
    if (open) {
      open.span.setAttribute(A.RESULT, 'interrupted');
      open.span.end(t);
    }
    const step = this.#step(u.step);
    const attrs: Attributes = { [A.STEP_ID]: u.step, [A.UNIT_TRY]: tryNo };
    if (step?.batch) {
      attrs[A.UNIT_INDEX] = u.index;
      attrs[A.UNIT_START] = u.start;
      attrs[A.UNIT_END] = u.end;
      if (step.batch.space.kind === 'items' && step.batch.size === 1 && !step.batch.adaptive)
        void this.#itemList(u.step);
    }
    const parent = this.#stepSpan(u.step, t).span;
    const span = this.#tracer.startSpan(
      `unit ${u.step}`,
      { startTime: t, attributes: attrs },
      trace.setSpan(ROOT_CONTEXT, parent),
    );
    this.#units.set(key, { span, startedAt: t });
  }

  #endUnit(ev: Extract<EngineEvent, { type: 'unit-end' }>, t: number): void {
    const key = `${ev.unit.step}\u0000${ev.unit.start}`;
    const u = this.#units.get(key);
    if (!u) return;
    this.#units.delete(key);
    const result: SpanResult = ev.result === 'retry' ? 'failed' : ev.result;
    const s = this.#steps.get(ev.unit.step);
    if (s) s.last = result;
    if (result === 'done') this.#doneHere += 1;
    const attrs: Attributes = { [A.RESULT]: result };
    const exit = exitFacts(ev);
    if (exit.code !== undefined) attrs[A.EXIT_CODE] = exit.code;
    if (exit.signal !== undefined) attrs[A.SIGNAL] = exit.signal;
    if (ev.result === 'retry') attrs[A.UNIT_RETRYING] = true;
    if (ev.detail !== undefined) attrs[A.REASON] = ev.detail;
    u.span.setAttributes(attrs);
    if (result === 'failed')
      u.span.setStatus({
        code: SpanStatusCode.ERROR,
        ...(ev.detail !== undefined ? { message: ev.detail } : {}),
      });
    // The process's own run time, from the start event; never past the end event (recording it took the rest).
    const end = Math.min(t, Math.max(u.startedAt, u.startedAt + ev.ms));
    const step = this.#step(ev.unit.step);
    if (step?.batch?.space.kind === 'items' && step.batch.size === 1 && !step.batch.adaptive) {
      const index = ev.unit.start;
      const withItem = (list: string[] | undefined) => {
        const item = list?.[index];
        if (item !== undefined) u.span.setAttribute(A.UNIT_ITEM, item);
        u.span.end(end);
      };
      if (this.#itemsRead.has(ev.unit.step)) withItem(this.#itemsRead.get(ev.unit.step));
      else this.#track(this.#itemList(ev.unit.step).then(withItem));
      return;
    }
    u.span.end(end);
  }

  #itemList(step: string): Promise<string[] | undefined> {
    let p = this.#items.get(step);
    if (!p) {
      const ckpt = this.#ckpt;
      p = (ckpt ? ckpt.readItems(step) : Promise.resolve(undefined)).then(
        (list) => list,
        () => undefined,
      );
      p = p.then((list) => {
        this.#itemsRead.set(step, list);
        return list;
      });
      this.#items.set(step, p);
    }
    return p;
  }

  #track(p: Promise<void>): void {
    const q = p.finally(() => this.#pending.delete(q));
    this.#pending.add(q);
  }
}
