// Traces of `checkpoint run` (README.md, "Traces"): with OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, or `--trace FILE`, a run emits one span per attempt, per step
// and per unit try. This module is loaded by every run and loads no OpenTelemetry package itself: those are
// imported (a separate chunk in dist/) only when tracing is on, so untraced runs start as fast as before.
import { closeSync, openSync } from 'node:fs';
import { UsageError } from '../session/context.js';
import type { Io, RunHooks, RunOutcome } from '../session/run.js';
import { traceConfig } from './config.js';

// Replaced by scripts/build.mjs with package.json's version (in the entry bundle, which holds this module).
const VERSION = '__CHECKPOINT_VERSION__';

export interface Tracing {
  /**
   * Runs `run` with hooks that feed the spans (and then call `inner`'s), ends the spans with the run's
   * outcome and flushes them with a bounded wait: a slow or dead collector costs a warning, never the run.
   */
  around(run: (hooks: RunHooks) => Promise<RunOutcome>, inner?: RunHooks): Promise<RunOutcome>;
}

export interface TracingOptions {
  /** `--trace FILE` (the CLI only; the action traces through the environment alone). */
  file?: string;
  /** How warnings are shown; default: a `checkpoint: warning: ...` line on `io.err`. */
  warn?: (message: string) => void;
  /**
   * The process ends when the command returns (the CLI): if the exporter is still retrying a dead collector
   * after the bounded wait, its timers must not keep the finished process alive.
   */
  exitWhenStuck?: boolean;
}

/** Internals handed to the lazily loaded half (src/trace/otel.ts). */
export interface TracingSetup {
  fd?: number;
  warn: (message: string) => void;
  startedAt: number;
  version?: string;
  exitWhenStuck: boolean;
}

function openTraceFile(file: string): number {
  if (file.trim() === '')
    throw new UsageError('--trace: expected a file path, got ""; e.g. --trace trace.jsonl');
  try {
    return openSync(file, 'a', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(
      `--trace: cannot write "${file}" (${code}); pick a file in an existing folder you can write to`,
    );
  }
}

/** Undefined when tracing is off (nothing loaded, nothing to do). */
export async function startTracing(io: Io, opts: TracingOptions = {}): Promise<Tracing | undefined> {
  const startedAt = performance.timeOrigin + performance.now();
  const warn = opts.warn ?? ((m: string) => io.err.write(`checkpoint: warning: ${m}\n`));
  const { settings, warnings } = traceConfig(io.env, opts.file);
  for (const w of warnings) warn(w);
  if (!settings) return undefined;
  const fd = settings.file !== undefined ? openTraceFile(settings.file) : undefined;
  try {
    const { createTracing } = await import('./otel.js');
    return createTracing(settings, {
      ...(fd !== undefined ? { fd } : {}),
      warn,
      startedAt,
      ...(VERSION.startsWith('__') ? {} : { version: VERSION }),
      exitWhenStuck: opts.exitWhenStuck === true,
    });
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    warn(
      `traces are off: the OpenTelemetry packages did not load (${(err as Error).message}); the run goes on without them`,
    );
    return undefined;
  }
}
