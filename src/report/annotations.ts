// Error annotations for failed units: one per failed range, shaped for `core.error(message, properties)`.
// Pure; the action passes each entry to @actions/core itself.
import type { RunStats } from './stats.js';
import { type FailedRange, failedRanges, type LogTails, logKey, rangeLabel } from './summary.js';

/** GitHub shows at most 10 error annotations per step; more are dropped without a word. */
const DEFAULT_MAX_ANNOTATIONS = 10;
const DEFAULT_LOG_LINES = 20;
/** Annotation messages are shown inline in the run view: keep them a screenful. */
const DEFAULT_MAX_MESSAGE_CHARS = 4000;

/** The subset of @actions/core's AnnotationProperties used here (structurally compatible with it). */
export interface AnnotationProperties {
  title: string;
  /** A repository-relative path, e.g. the plan file, when the caller wants the annotation on it. */
  file?: string;
}

export interface Annotation {
  title: string;
  message: string;
  properties: AnnotationProperties;
}

export interface AnnotationOptions {
  /** Most annotations returned, the "N more" one included. Default 10. */
  max?: number;
  /** Log lines per message. Default 20. */
  logLines?: number;
  /** Message length cap in characters; the log's start is cut first. Default 4000. */
  maxMessageChars?: number;
  /** Set as `properties.file` on every annotation. */
  file?: string;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function exitText(r: FailedRange): string {
  // The reason already names the exit code or signal ("exit code 3", "killed by SIGKILL", "timed out after 10m").
  const tries = plural(r.tries, 'try', 'tries');
  return r.units > 1
    ? `${r.reason} after ${tries} (${r.units} chunks from #${r.index}; log of chunk #${r.index})`
    : `${r.reason} after ${tries}`;
}

function bound(head: string, logLines: string[], maxChars: number): string {
  if (logLines.length === 0) return head;
  const lines = [...logLines];
  let text = `${head}\n${lines.join('\n')}`;
  // Keep the end of the log: the error is usually there.
  while (text.length > maxChars && lines.length > 1) {
    lines.shift();
    text = `${head}\n…\n${lines.join('\n')}`;
  }
  return text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
}

/**
 * One annotation per failed range (adjacent failed units with the same reason merged), in plan order. When
 * there are more than `max`, the first `max - 1` are returned and a last one says how many more failed.
 */
export function annotationsFor(stats: RunStats, logs?: LogTails, opts: AnnotationOptions = {}): Annotation[] {
  const max = Math.max(1, opts.max ?? DEFAULT_MAX_ANNOTATIONS);
  const logLines = opts.logLines ?? DEFAULT_LOG_LINES;
  const maxChars = opts.maxMessageChars ?? DEFAULT_MAX_MESSAGE_CHARS;
  const props = (title: string): AnnotationProperties =>
    opts.file === undefined ? { title } : { title, file: opts.file };

  const all = stats.steps.flatMap((s) => failedRanges(s).map((r) => ({ step: s, range: r })));
  const shown = all.length > max ? all.slice(0, max - 1) : all;
  const out: Annotation[] = shown.map(({ step, range }) => {
    const where = rangeLabel(step, range.start, range.end, range.items);
    const title = where ? `step ${step.id}, ${where} failed` : `step ${step.id} failed`;
    const log = logs?.get(logKey(step.id, range.index));
    const tail = log ? log.lines.slice(-logLines) : [];
    const head = `${exitText(range)}${tail.length > 0 ? '. Last output:' : '. No output was recorded.'}`;
    return { title, message: bound(head, tail, maxChars), properties: props(title) };
  });
  if (all.length > shown.length) {
    const rest = all.slice(shown.length);
    const units = rest.reduce((a, r) => a + r.range.units, 0);
    const steps = [...new Set(rest.map((r) => r.step.id))];
    const title = `${plural(rest.length, 'more failed range')} not annotated`;
    const message =
      `${plural(units, 'more unit')} failed in ${steps.join(', ')}. ` +
      'The job summary shows their logs; `checkpoint status --json` lists every failed unit.';
    out.push({ title, message, properties: props(title) });
  }
  return out;
}
