// The job summary (GITHUB_STEP_SUMMARY): GitHub-flavoured Markdown built from a run's checkpoint and its
// stats. Rendering is pure; the only I/O is `readLogTails`, which the caller runs first, so the action, the
// `report` command and the tests all feed the same function. No @actions/core here: the action writes the
// string itself.
import { open } from 'node:fs/promises';
import type { Checkpoint } from '../journal/checkpoint.js';
import type { AttemptRecord, CheckpointState } from '../journal/state.js';
import { formatDuration } from '../plan/duration.js';
import { describeItems, ITEMS_LISTED, nameItems, type UnitItems } from './items.js';
import { blockedSteps, etaUnknowable, type RunStats, type StepStats, type StepStatus } from './stats.js';

/** GitHub refuses a step summary above 1 MiB (and then shows nothing at all). */
export const SUMMARY_LIMIT_BYTES = 1024 * 1024;
/** Default budget: under the limit with room for whatever else the job appends to the same file. */
const DEFAULT_MAX_BYTES = 1_000_000;
const DEFAULT_LOG_LINES = 20;
/** Longer lines are cut: one minified-JSON line must not eat the whole budget. */
const MAX_LINE_CHARS = 400;
/** Units' logs are bounded by the engine (64 KiB); read no more than that even if a file is bigger. */
const MAX_LOG_READ_BYTES = 64 * 1024;
const DEFAULT_MAX_FAILED_RANGES = 100;
const MAX_TIMELINE_ATTEMPTS = 40;

// ---------------------------------------------------------------------------------------------------------
// Escaping

const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** For text inside raw HTML (`<summary>`): Markdown is not parsed there, so backslash escapes would show. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => HTML_ENTITIES[c] ?? c).replace(/\r\n|\r|\n/g, ' ');
}

/** For text in Markdown flow (headings, paragraphs, quotes): HTML and the Markdown punctuation that formats. */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_[\]~]/g, '\\$&')
    .replace(/[&<>"]/g, (c) => HTML_ENTITIES[c] ?? c)
    .replace(/\r\n|\r|\n/g, ' ');
}

/**
 * For a table cell: as `escapeMarkdown`, and `|` as an entity (GFM splits cells on `|` before anything else,
 * and `\|` is ambiguous after a literal backslash); newlines become `<br>` so a row stays one line.
 */
export function escapeCell(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => escapeMarkdown(line).replace(/\|/g, '&#124;'))
    .join('<br>');
}

/** Inline code whose delimiters outnumber any backtick run inside (CommonMark code spans). */
export function inlineCode(text: string): string {
  const flat = text.replace(/\r\n|\r|\n/g, ' ');
  const ticks = '`'.repeat(longestRun(flat, '`') + 1);
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${flat}${pad}${ticks}`;
}

function longestRun(text: string, ch: string): number {
  let best = 0;
  let run = 0;
  for (const c of text) {
    run = c === ch ? run + 1 : 0;
    if (run > best) best = run;
  }
  return best;
}

/** A fenced code block that the content cannot close: the fence is longer than any backtick run inside. */
export function fencedBlock(text: string, info = ''): string {
  const fence = '`'.repeat(Math.max(3, longestRun(text, '`') + 1));
  return `${fence}${info}\n${text}\n${fence}`;
}

// ---------------------------------------------------------------------------------------------------------
// Log tails

export interface LogTail {
  /** The last lines, cleaned of terminal control sequences, each at most MAX_LINE_CHARS. */
  lines: string[];
  /** Lines before these that were left out. */
  omitted: number;
}

/** Log tails keyed by `logKey(step, index)`. */
export type LogTails = ReadonlyMap<string, LogTail>;

export function logKey(step: string, index: number): string {
  return `${step}#${index}`;
}

// CSI (colours, cursor moves) and OSC (titles, hyperlinks) sequences, then any other C0 control but tab.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal control characters is the point
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-_]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: as above
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** The last `maxLines` lines of a unit's output, as a reader would have seen them on a terminal. */
export function tailLines(text: string, maxLines = DEFAULT_LOG_LINES): LogTail {
  const all = text.replace(/\r\n/g, '\n').split('\n');
  if (all.length > 0 && all[all.length - 1] === '') all.pop();
  const start = Math.max(0, all.length - maxLines);
  const lines = all.slice(start).map((raw) => {
    // A progress bar redraws its line with \r: what stayed on screen is the last redraw.
    const shown = raw.slice(raw.lastIndexOf('\r') + 1);
    const clean = shown.replace(ANSI, '').replace(CONTROL, '');
    return clean.length > MAX_LINE_CHARS ? `${clean.slice(0, MAX_LINE_CHARS)}…` : clean;
  });
  return { lines, omitted: start };
}

async function readTail(path: string): Promise<string | undefined> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const length = Math.min(size, MAX_LOG_READ_BYTES);
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    let text = buf.toString('utf8');
    // Started mid-file: the first line is partial (and may start mid-character).
    if (length < size) text = text.slice(text.indexOf('\n') + 1);
    return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  } finally {
    await fh?.close();
  }
}

export interface ReadLogTailsOptions {
  /** Lines kept per log. Default 20. */
  maxLines?: number;
  /** Logs read at most (first unit of each failed range, in step order). Default: as many as are rendered. */
  maxLogs?: number;
}

/**
 * Reads the tail of the log of the first unit of every failed range (`logs/<step>/<index>.log`, named by
 * `Checkpoint.logPath`). A unit that printed nothing has no log file and no entry.
 */
export async function readLogTails(
  ckpt: Pick<Checkpoint, 'logPath'>,
  stats: RunStats,
  opts: ReadLogTailsOptions = {},
): Promise<Map<string, LogTail>> {
  const out = new Map<string, LogTail>();
  let budget = opts.maxLogs ?? DEFAULT_MAX_FAILED_RANGES;
  for (const step of stats.steps) {
    for (const range of failedRanges(step)) {
      if (budget-- <= 0) return out;
      const text = await readTail(ckpt.logPath(step.id, range.index));
      if (text !== undefined) out.set(logKey(step.id, range.index), tailLines(text, opts.maxLines));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Failed ranges

export interface FailedRange {
  step: string;
  /** Half-open [start, end) over the step's numbers or item indices. */
  start: number;
  end: number;
  /** Chunk number of the first unit in the range: its log stands for the range. */
  index: number;
  units: number;
  exit: number | null;
  reason: string;
  /** Most tries any unit of the range had. */
  tries: number;
  /** The range's items (the first ten and the count), for a step over an item list whose list was read. */
  items?: UnitItems;
}

/**
 * A step's failed units, adjacent ones with the same reason merged: 400 chunks that all failed on the same
 * missing table are one range with one log, not 400 sections or annotations.
 */
export function failedRanges(step: Pick<StepStats, 'id' | 'failed'>): FailedRange[] {
  const sorted = [...step.failed].sort((a, b) => a.start - b.start);
  const out: FailedRange[] = [];
  for (const f of sorted) {
    const last = out[out.length - 1];
    if (last && last.end === f.start && last.reason === f.reason && last.exit === f.exit) {
      last.end = f.end;
      last.units += 1;
      last.tries = Math.max(last.tries, f.tries);
      if (last.items && f.items) {
        last.items = {
          count: last.items.count + f.items.count,
          first: [...last.items.first, ...f.items.first].slice(0, ITEMS_LISTED),
        };
      }
      continue;
    }
    out.push({
      step: step.id,
      start: f.start,
      end: f.end,
      index: f.index,
      units: 1,
      exit: f.exit,
      reason: f.reason,
      tries: f.tries,
      ...(f.items ? { items: f.items } : {}),
    });
  }
  return out;
}

/**
 * What the range covers, in the user's terms (inclusive, as people say "rows 40000–49999"), or '' for a
 * plain step, which is one unit.
 */
export function rangeLabel(
  step: Pick<StepStats, 'batch' | 'items'>,
  start: number,
  end: number,
  items?: UnitItems,
): string {
  if (!step.batch) return '';
  const noun = step.items ? 'item' : 'unit';
  const where = end - start <= 1 ? `${noun} ${start}` : `${noun}s ${start}–${end - 1}`;
  // Items by name (DESIGN §2): `item 39 (data/b.csv)`, `items 0–9 (a.csv, b.csv, c.csv and 7 more)`.
  return items && items.count > 0 ? `${where} (${describeItems(items)})` : where;
}

// ---------------------------------------------------------------------------------------------------------
// The summary

export interface SummaryInput {
  /** The checkpoint's model, as `Checkpoint.read` loads it or as the engine left it: attempts come from here. */
  state: CheckpointState;
  /** `runStats(ckpt, plan)`: steps in plan order with units, time and ETA. */
  stats: RunStats;
  /** Defaults: the stats' plan name and run id. */
  planName?: string;
  runId?: string;
  /** Whether the run is complete. Default: `stats.complete`. */
  complete?: boolean;
  /** Whether this attempt restored earlier progress. Default: what the last attempt recorded. */
  resumed?: boolean;
  /** This attempt's exit code (0, 1, 75) and reason, as the engine returned them. */
  exitCode?: number;
  reason?: string;
  /** Problems worth a reader's attention that did not stop the run, e.g. "cache save failed: …". */
  warnings?: readonly string[];
  /** From `readLogTails`; failed ranges without an entry say that no output was recorded. */
  logs?: LogTails;
  /** Lines of log shown per failed range. Default 20. */
  logLines?: number;
  /** Size cap in bytes (UTF-8). Default 1,000,000, under GitHub's 1 MiB. */
  maxBytes?: number;
  /** Most failed ranges shown before the rest are summed up in a note. Default 100. */
  maxFailedRanges?: number;
  /** The end of an attempt still running (the last one, with no end recorded). Default: now. */
  now?: number;
}

type Outcome = 'complete' | 'failed' | 'incomplete';

export const STATE_ICON: Record<StepStatus, string> = {
  done: '✅',
  failed: '❌',
  running: '🔄',
  interrupted: '⚠️',
  partial: '⏳',
  pending: '⏸️',
  waiting: '✋',
};

function outcomeOf(input: SummaryInput): Outcome {
  if (input.complete ?? input.stats.complete) return 'complete';
  // An attempt stopped by its budget may leave failed units of an earlier attempt behind: it did not fail.
  if (input.exitCode !== undefined) return input.exitCode === 1 ? 'failed' : 'incomplete';
  return input.stats.unitsFailed > 0 ? 'failed' : 'incomplete';
}

function pct(done: number, total: number): number {
  return total === 0 ? 100 : Math.floor((done / total) * 100);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function listSteps(steps: StepStats[], count: (s: StepStats) => number, max = 8): string {
  // One step: the count is already in the sentence.
  if (steps.length === 1) return escapeMarkdown((steps[0] as StepStats).id);
  const parts = steps.slice(0, max).map((s) => `${escapeMarkdown(s.id)} (${count(s)})`);
  if (steps.length > max) parts.push(`${steps.length - max} more`);
  return parts.join(', ');
}

function headline(input: SummaryInput, outcome: Outcome): string[] {
  const stats = input.stats;
  const plan = escapeMarkdown(input.planName ?? stats.plan);
  const lines: string[] = [];
  if (outcome === 'complete') {
    lines.push(`## ✅ ${plan}: complete`);
    lines.push(
      '',
      `All ${plural(stats.unitsTotal, 'unit')} of ${plural(stats.steps.length, 'step')} are done.`,
    );
  } else if (outcome === 'failed') {
    const failing = stats.steps.filter((s) => s.unitsFailed > 0);
    lines.push(`## ❌ ${plan}: failed`);
    const what =
      failing.length > 0
        ? `${plural(stats.unitsFailed, 'unit')} failed in ${listSteps(failing, (s) => s.unitsFailed)}`
        : 'The run failed';
    lines.push(
      '',
      `${what}; ${stats.unitsDone} of ${stats.unitsTotal} units done (${pct(stats.unitsDone, stats.unitsTotal)}%). ` +
        'The next attempt retries the failed units first.',
    );
  } else {
    const left = stats.steps.filter((s) => s.status !== 'done');
    lines.push(`## ⏸️ ${plan}: incomplete`);
    // The run's ETA is a finish time only when every step left can finish at its pace: a failed unit
    // needs a retry that may fail again, an approval needs a person, and what needs either waits on them.
    const stuck = stats.steps.some((s) => etaUnknowable(s, false));
    const eta =
      stats.etaMs === undefined || stats.etaMs <= 0 || stuck ? '' : ` · ETA ${formatDuration(stats.etaMs)}`;
    // "Left" is every unit not done, failed ones included, as `status --json` counts `remaining`.
    const failedNote = stats.unitsFailed > 0 ? ` (${stats.unitsFailed} of them failed)` : '';
    lines.push(
      '',
      `${stats.unitsDone} of ${stats.unitsTotal} units done (${pct(stats.unitsDone, stats.unitsTotal)}%); ` +
        `${stats.unitsRemaining} left${failedNote} in ${listSteps(left, (s) => s.unitsRemaining)}${eta}. ` +
        'The next attempt resumes from here.',
    );
  }
  // A failed run's reason repeats the sentence above unless no unit failed (a fatal error).
  const reasonAdds = outcome === 'incomplete' || (outcome === 'failed' && stats.unitsFailed === 0);
  if (input.reason && reasonAdds) lines.push('', `Ended: ${escapeMarkdown(input.reason)}.`);
  return lines;
}

function metaLine(input: SummaryInput): string {
  const state = input.state;
  const last = state.attempts[state.attempts.length - 1];
  const resumed = input.resumed ?? last?.resumed ?? false;
  const parts = [`Run ${inlineCode(input.runId ?? input.stats.runId)}`];
  if (state.shard) parts.push(`shard ${state.shard.index}/${state.shard.total}`);
  if (last) parts.push(`attempt ${last.attempt}${resumed ? ' (resumed)' : ' (fresh start)'}`);
  else if (resumed) parts.push('resumed');
  const unitTime = input.stats.steps.reduce((a, s) => a + s.timeMs, 0);
  parts.push(`${formatDuration(unitTime)} of unit time across attempts`);
  if (input.exitCode !== undefined) parts.push(`exit ${input.exitCode}`);
  return parts.join(' · ');
}

export function warningBlock(warnings: readonly string[]): string[] {
  if (warnings.length === 0) return [];
  const lines = ['> [!WARNING]'];
  for (const w of warnings) lines.push(`> - ${escapeCell(w)}`);
  return lines;
}

function stepCell(s: StepStats): string {
  return s.name && s.name !== s.id ? `${escapeCell(s.name)} (${escapeCell(s.id)})` : escapeCell(s.id);
}

/** The ETA cell: `—` where no pace can tell it (stats.ts `etaUnknowable`), `?` before any unit finished. */
function etaCell(s: StepStats, blocked: boolean): string {
  if (s.status === 'done' || etaUnknowable(s, blocked)) return '—';
  return s.etaMs === undefined ? '?' : formatDuration(s.etaMs);
}

function stepRow(s: StepStats, blocked: boolean): string {
  const cells = [
    stepCell(s),
    `${STATE_ICON[s.status]} ${s.status === 'waiting' ? 'waiting for approval' : s.status}`,
    `${s.unitsDone} / ${s.unitsTotal}`,
    String(s.unitsFailed),
    String(s.unitsRemaining),
    formatDuration(s.timeMs),
    etaCell(s, blocked),
  ];
  return `| ${cells.join(' | ')} |`;
}

// Remaining is every unit not done, failed ones included: the figure `status --json` (`remaining`) and the
// `units-remaining` output give, so the three never disagree; the header says so.
const TABLE_HEAD = [
  '| Step | State | Done | Failed | Remaining (incl. failed) | Time | ETA |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
];

const MAX_MARKS_SHOWN = 5;
const MAX_RANGES_SHOWN = 6;
const GONE_NAMED = 5;

/**
 * `✍️ **import**: marked done by hand by alice at 2026-…Z: items 20–29 (a.csv, …), unit 50`: one line per
 * mark (who and when), as `status` prints them, at most five a step; a plain step's line has no ranges.
 */
function manualLines(s: StepStats): string[] {
  const marks = s.manual ?? [];
  const groups: Array<{ by: string | undefined; at: number; ranges: NonNullable<StepStats['manual']> }> = [];
  for (const m of marks) {
    const last = groups[groups.length - 1];
    if (last && last.by === m.by && last.at === m.at) last.ranges.push(m);
    else groups.push({ by: m.by, at: m.at, ranges: [m] });
  }
  const lines = groups.slice(0, MAX_MARKS_SHOWN).map((g) => {
    const who = g.by !== undefined ? ` by ${escapeCell(g.by)}` : '';
    const head = `✍️ **${escapeCell(s.id)}**: marked done by hand${who} at ${new Date(g.at).toISOString()}`;
    if (!s.batch) return head;
    const parts = g.ranges
      .slice(0, MAX_RANGES_SHOWN)
      .map((m) => escapeCell(rangeLabel(s, m.start, m.end, m.items)));
    if (g.ranges.length > MAX_RANGES_SHOWN) parts.push(`${g.ranges.length - MAX_RANGES_SHOWN} more ranges`);
    return `${head}: ${parts.join(', ')}`;
  });
  if (groups.length > MAX_MARKS_SHOWN)
    lines.push(
      `✍️ **${escapeCell(s.id)}**: ${plural(groups.length - MAX_MARKS_SHOWN, 'more mark')} by hand ` +
        '(`checkpoint status --json` lists them all)',
    );
  return lines;
}

/** `refresh: true`: the items that left the source before they ran, named (the first few) or by index. */
function goneLine(s: StepStats): string | undefined {
  const g = s.gone;
  if (!g || g.count === 0) return undefined;
  const which =
    g.first.length > 0
      ? nameItems(g.first, g.count, GONE_NAMED)
      : g.ranges
          .slice(0, MAX_RANGES_SHOWN)
          .map(([a, b]) => (b - a <= 1 ? `item ${a}` : `items ${a}–${b - 1}`))
          .concat(
            g.ranges.length > MAX_RANGES_SHOWN ? [`${g.ranges.length - MAX_RANGES_SHOWN} more ranges`] : [],
          )
          .join(', ');
  return (
    `🗑️ **${escapeCell(s.id)}**: ${plural(g.count, 'item')} left the source before ${g.count === 1 ? 'it' : 'they'} ` +
    `ran and will not run: ${escapeCell(which)}`
  );
}

/** Which chunks a range is, when the numbers alone do not say it (chunks of more than one number). */
function chunkNote(range: FailedRange): string {
  if (range.units > 1) return ` (${range.units} chunks from #${range.index})`;
  return range.end - range.start > 1 ? ` (chunk #${range.index})` : '';
}

export function failedSection(
  step: StepStats,
  range: FailedRange,
  tail: LogTail | undefined,
  maxLines: number,
  open: boolean,
): string {
  const log = tail && {
    lines: tail.lines.slice(-maxLines),
    omitted: tail.omitted + Math.max(0, tail.lines.length - maxLines),
  };
  const where = rangeLabel(step, range.start, range.end, range.items);
  const summary = [
    `❌ ${escapeHtml(step.id)}`,
    where && `${escapeHtml(where)}${chunkNote(range)}`,
    escapeHtml(range.reason),
    plural(range.tries, 'try', 'tries'),
  ]
    .filter(Boolean)
    .join(' · ');
  const lines = [`<details${open ? ' open' : ''}><summary>${summary}</summary>`, ''];
  if (!log || log.lines.length === 0) {
    lines.push('_No output was recorded._');
  } else {
    const which = range.units > 1 ? ` of chunk #${range.index}` : '';
    const cut = log.omitted > 0 ? `last ${plural(log.lines.length, 'line')}` : 'full output';
    lines.push(`Log${which} (${cut}):`, '', fencedBlock(log.lines.join('\n'), 'text'));
  }
  lines.push('', '</details>');
  return lines.join('\n');
}

/** Mermaid's gantt grammar reserves `:`, `;` and `#`; keep labels to plain ASCII words, `max` chars. */
function ganttText(text: string, max: number): string {
  const clean = text
    .replace(/:/g, ' -')
    .replace(/[^A-Za-z0-9 .,()/+=-]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length > max ? `${clean.slice(0, max - 3).trimEnd()}...` : clean;
}

/**
 * Ticks of the timeline's axis, finest first: the first that puts at most MAX_TICKS ticks on the span of
 * the attempts is used, with a format that tells its ticks apart (`%H:%M` alone labels every tick of a
 * 20-second run `17:28`). Mermaid's gantt takes `tickInterval` as `<n><unit>`, unit millisecond, second
 * (Mermaid 10.5 on), minute, hour, day, week or month, and `axisFormat` as a d3-time-format string,
 * rendered in the reader's time zone. A Mermaid that does not know the interval ignores it and picks its
 * own ticks: the format still shows seconds where they matter.
 */
const AXIS_TICKS: ReadonlyArray<{ ms: number; interval: string; format: string }> = [
  ...[1, 2, 5, 10, 15, 30].map((n) => ({ ms: n * 1000, interval: `${n}second`, format: '%H:%M:%S' })),
  ...[1, 2, 5, 10, 15, 30].map((n) => ({ ms: n * 60_000, interval: `${n}minute`, format: '%H:%M' })),
  ...[1, 2, 3, 6].map((n) => ({ ms: n * 3_600_000, interval: `${n}hour`, format: '%H:%M' })),
  ...[1, 2].map((n) => ({ ms: n * 86_400_000, interval: `${n}day`, format: '%b %d' })),
  { ms: 7 * 86_400_000, interval: '1week', format: '%b %d' },
  ...[1, 3, 6, 12].map((n) => ({ ms: n * 30 * 86_400_000, interval: `${n}month`, format: '%b %Y' })),
];
/** Eight labels of at most 12 characters fit side by side in the width GitHub gives a diagram. */
const MAX_TICKS = 8;
const DAY_MS = 86_400_000;

/** `tickInterval` and `axisFormat` for attempts spread over `spanMs`. */
export function timelineAxis(spanMs: number): { tickInterval: string; axisFormat: string } {
  const pick =
    AXIS_TICKS.find((t) => spanMs / t.ms <= MAX_TICKS) ??
    (AXIS_TICKS[AXIS_TICKS.length - 1] as (typeof AXIS_TICKS)[number]);
  // Hour ticks over more than a day repeat their times: the day tells them apart.
  const format = pick.format === '%H:%M' && spanMs > DAY_MS ? '%b %d %H:%M' : pick.format;
  return { tickInterval: pick.interval, axisFormat: format };
}

interface AttemptEnd {
  end: number;
  /** One word or two for the bar: the bar's text must fit beside a bar of any width. */
  word: string;
  /** The whole story, for the list under the chart. */
  how: string;
  tag: string;
}

function attemptEnd(a: AttemptRecord, next: AttemptRecord | undefined, now: number): AttemptEnd {
  if (a.endedAt !== undefined) {
    const word =
      a.exit === 0 ? 'done' : a.exit === 1 ? 'failed' : a.exit === 75 ? 'stopped' : `exit ${a.exit}`;
    const how = `exit ${a.exit}: ${a.reason ?? 'no reason recorded'}`;
    const tag = a.exit === 0 ? 'done, ' : a.exit === 1 ? 'crit, ' : '';
    return { end: a.endedAt, word, how, tag };
  }
  // No end recorded: killed, cancelled or crashed; the next attempt's start bounds it.
  if (next)
    return {
      end: next.startedAt,
      word: 'cut off',
      how: `no end recorded (killed, cancelled or crashed) before attempt ${next.attempt} started`,
      tag: 'crit, ',
    };
  return {
    end: Math.max(now, a.startedAt),
    word: 'no end yet',
    how: 'no end recorded yet (still running, or stopped without recording it)',
    tag: 'active, ',
  };
}

/** Reasons are engine messages; one pathological reason must not take the list's room. */
const MAX_REASON_CHARS = 200;

function timeline(state: CheckpointState, now: number): string[] {
  const attempts = state.attempts;
  if (attempts.length === 0) return [];
  const shown = attempts.slice(-MAX_TIMELINE_ATTEMPTS);
  const first = shown[0] as AttemptRecord;
  const rows: string[] = [];
  const notes: string[] = [];
  let lastEnd = first.startedAt;
  for (let i = 0; i < shown.length; i++) {
    const a = shown[i] as AttemptRecord;
    const { end, word, how, tag } = attemptEnd(a, shown[i + 1], now);
    // A zero-length bar is drawn as nothing at all.
    const stop = Math.max(end, a.startedAt + 1000);
    lastEnd = Math.max(lastEnd, stop);
    // Short, so that a bar too narrow for its text shows it beside the bar on its own row, clear of the
    // others; the why is in the list under the chart.
    const label = `Attempt ${a.attempt} ${word}, ${plural(a.unitsDone, 'unit')}`;
    rows.push(`    ${ganttText(label, 40)} :${tag}a${a.attempt}, ${a.startedAt}, ${stop}`);
    const took = a.endedAt !== undefined ? `, ${formatDuration(Math.max(0, a.endedAt - a.startedAt))}` : '';
    const cut = how.length > MAX_REASON_CHARS ? `${how.slice(0, MAX_REASON_CHARS)}…` : how;
    notes.push(
      `- Attempt ${a.attempt} (${a.resumed ? 'resumed' : 'fresh start'}${took}): ${escapeMarkdown(cut)}; ` +
        `${plural(a.unitsDone, 'unit')} done.`,
    );
  }
  const axis = timelineAxis(lastEnd - first.startedAt);
  const lines = [
    '### Timeline',
    '',
    '```mermaid',
    'gantt',
    `    title ${plural(attempts.length, 'attempt')}`,
    '    dateFormat x',
    `    axisFormat ${axis.axisFormat}`,
    `    tickInterval ${axis.tickInterval}`,
    '    todayMarker off',
    '    section Attempts',
    ...rows,
    '```',
    '',
    ...notes,
  ];
  if (attempts.length > shown.length)
    lines.push('', `_${attempts.length - shown.length} earlier attempts are not shown._`);
  return lines;
}

function bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * The job summary for one run. Sections: headline (complete / failed / incomplete with what is left), store
 * warnings, a table of steps, failed ranges with their log tails, and a Mermaid timeline of attempts. Stays
 * under `maxBytes` by leaving out failed-range sections (with a note) and, only for absurdly long plans,
 * table rows.
 */
export function renderSummary(input: SummaryInput): string {
  const maxBytes = input.maxBytes ?? DEFAULT_MAX_BYTES;
  const outcome = outcomeOf(input);
  const head = [...headline(input, outcome), '', metaLine(input)];
  const warnings = warningBlock([
    ...(input.warnings ?? []),
    ...input.stats.steps.flatMap((s) => s.warnings ?? []),
  ]);
  if (warnings.length > 0) head.push('', ...warnings);
  const headText = `${head.join('\n')}\n`;

  const stats = input.stats;
  const timelineText = (() => {
    const t = timeline(input.state, input.now ?? Date.now());
    return t.length > 0 ? `\n${t.join('\n')}\n` : '';
  })();

  // Room kept for the notes that say what was left out.
  const NOTE_RESERVE = 400;
  let used = bytes(headText) + bytes(timelineText) + NOTE_RESERVE;

  const tableLines = ['', '### Steps', '', ...TABLE_HEAD];
  used += bytes(`${tableLines.join('\n')}\n`);
  let rowsLeft = 0;
  const blocked = blockedSteps(stats.steps);
  for (let i = 0; i < stats.steps.length; i++) {
    const step = stats.steps[i] as StepStats;
    const row = stepRow(step, blocked.has(step.id));
    if (used + bytes(row) + 1 > maxBytes) {
      rowsLeft = stats.steps.length - i;
      break;
    }
    tableLines.push(row);
    used += bytes(row) + 1;
  }
  if (rowsLeft > 0) tableLines.push('', `_${plural(rowsLeft, 'more step')} not shown (summary size limit)._`);
  if (stats.steps.some((s) => etaCell(s, blocked.has(s.id)) === '—' && s.status !== 'done'))
    tableLines.push(
      '',
      '_ETA: time to finish at the pace so far; — when no pace can tell: the step failed (its failed units ' +
        'run again on the next attempt), waits for approval, or needs a step that did either._',
    );
  // Done work that no unit ran, and items that went away before running: what `status` says of them.
  let notesLeft = 0;
  for (const st of stats.steps) {
    const gone = goneLine(st);
    for (const line of [...manualLines(st), ...(gone ? [gone] : [])]) {
      if (notesLeft > 0 || used + bytes(line) + 2 > maxBytes) {
        notesLeft += 1;
        continue;
      }
      tableLines.push('', line);
      used += bytes(line) + 2;
    }
  }
  if (notesLeft > 0)
    tableLines.push(
      '',
      `_${plural(notesLeft, 'more line')} on marks by hand and gone items not shown (summary size limit); ` +
        '`checkpoint status` shows them._',
    );
  // `batch.throttle`: why units did not start, said once per step (a few short lines at most).
  for (const st of stats.steps) {
    const t = st.throttle;
    if (!t || (!t.held && t.count === 0)) continue;
    const line =
      `⏳ **${escapeCell(st.id)}** ${t.held ? 'is held back by its throttle' : 'was held back by its throttle'} ` +
      `${plural(t.count, 'time')}, ${formatDuration(t.heldMs)} in all${t.reason ? `: ${inlineCode(t.reason)}` : ''}`;
    tableLines.push('', line);
    used += bytes(line) + 2;
  }
  // `approval: true`: the steps the run stopped before, and how to let them start.
  for (const st of stats.steps) {
    if (st.status !== 'waiting') continue;
    const line =
      `✋ **${escapeCell(st.id)}** is waiting for approval: run the workflow again with the action input ` +
      `${inlineCode(`approve: ${st.id}`)} (for example from a \`workflow_dispatch\` input), or approve it with ` +
      `${inlineCode(`checkpoint approve ${st.id}`)} where the checkpoint is and run again.`;
    tableLines.push('', line);
    used += bytes(line) + 2;
  }
  const tableText = `${tableLines.join('\n')}\n`;

  const sections: string[] = [];
  const all = stats.steps.flatMap((s) => failedRanges(s).map((r) => ({ step: s, range: r })));
  const maxRanges = input.maxFailedRanges ?? DEFAULT_MAX_FAILED_RANGES;
  let cutBy: 'size' | 'count' | undefined;
  for (const { step, range } of all) {
    if (sections.length >= maxRanges) {
      cutBy = 'count';
      break;
    }
    const section = failedSection(
      step,
      range,
      input.logs?.get(logKey(step.id, range.index)),
      input.logLines ?? DEFAULT_LOG_LINES,
      sections.length === 0,
    );
    const cost = bytes(section) + 2;
    if (used + cost > maxBytes) {
      cutBy = 'size';
      break;
    }
    sections.push(section);
    used += cost;
  }
  let failedText = '';
  if (all.length > 0) {
    const lines = ['', '### Failed units', '', sections.join('\n\n')];
    const left = all.length - sections.length;
    if (left > 0) {
      const why = cutBy === 'size' ? 'to keep the summary under its size limit' : 'to keep the summary short';
      lines.push(
        '',
        '> [!NOTE]',
        `> ${plural(left, 'more failed range')} not shown ${why}; \`checkpoint status --json\` lists them all.`,
      );
    }
    failedText = `${lines.join('\n')}\n`;
  }
  return headText + tableText + failedText + timelineText;
}
