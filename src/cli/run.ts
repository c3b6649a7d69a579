// `checkpoint run`: the session's run (src/session/run.ts), traced when asked.
import { executeRun, type Io, type RunCliOptions } from '../session/run.js';
import { startTracing } from '../trace/index.js';

export type { Io } from '../session/io.js';
export type { RunCliOptions } from '../session/run.js';

export async function runCommand(opts: RunCliOptions, io: Io): Promise<number> {
  // Traced when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or --trace says so; a dry run starts no engine.
  const tracing = opts.dryRun
    ? undefined
    : await startTracing(io, {
        ...(opts.trace !== undefined ? { file: opts.trace } : {}),
        exitWhenStuck: true,
      });
  if (!tracing) return (await executeRun(opts, io)).exitCode;
  return (await tracing.around((hooks) => executeRun(opts, io, hooks))).exitCode;
}
