// The action's log: a collapsible group per step, but only for a step that runs alone. GitHub's groups
// cannot nest or interleave, so while steps overlap no group is open and every line keeps its `[step]`
// prefix (the engine's printer adds it); a group is opened when a step starts while no other runs. Lines of
// the CLI's own advice (`resume with: checkpoint run …`) are dropped: the action says what to do instead.

import { Writable } from 'node:stream';
import * as core from '@actions/core';

export interface GroupSink {
  startGroup(name: string): void;
  endGroup(): void;
}

export class StepGroups {
  readonly #sink: GroupSink;
  readonly #running = new Set<string>();
  #open: string | undefined;

  constructor(sink: GroupSink) {
    this.#sink = sink;
  }

  /** The open group's step, if any. */
  get open(): string | undefined {
    return this.#open;
  }

  onState(step: string, state: string): void {
    if (state === 'running') {
      if (this.#running.has(step)) return;
      this.#running.add(step);
      if (this.#running.size === 1) {
        this.#sink.startGroup(`step ${step}`);
        this.#open = step;
      } else {
        // Another step joins the one grouped: from here on lines of both are told apart by their prefix.
        this.close();
      }
      return;
    }
    // `waiting` is a step between its units (a throttle, a dependency of its next chunk): still under way.
    if (state === 'waiting') return;
    this.#running.delete(step);
    if (this.#open === step) this.close();
  }

  close(): void {
    if (this.#open === undefined) return;
    this.#sink.endGroup();
    this.#open = undefined;
  }
}

/** CLI advice the engine's printer adds after a run; the action's own messages replace it. */
const CLI_ADVICE =
  /^(?:\d{4}-\d\d-\d\dT[\d:.]+Z )?(?:resume with: checkpoint run\b|approve with: checkpoint approve\b)/;

/** `out` without the CLI's advice lines; whole lines pass through at once. */
export function actionLog(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _enc, done) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      const kept = lines.filter((l) => !CLI_ADVICE.test(l));
      if (kept.length > 0) out.write(`${kept.join('\n')}\n`);
      done();
    },
    final(done) {
      if (pending !== '' && !CLI_ADVICE.test(pending)) out.write(pending);
      pending = '';
      done();
    },
  });
}

/** A store's and a sync's messages, as the toolkit's annotations and log lines. */
export const coreLog = {
  info: (m: string) => core.info(m),
  warning: (m: string) => core.warning(m),
  notice: (m: string) => core.notice(m),
};
