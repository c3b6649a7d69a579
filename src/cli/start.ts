import { main } from './main.js';

/** Wires the process to `main`: real streams and environment in, exit code out. */
export function start(): void {
  // A file size limit (ulimit -f) must surface as a write error we can report, not kill the process.
  process.on('SIGXFSZ', () => {});
  // A reader that went away (`checkpoint status | head`) makes writes fail with EPIPE. Like other tools we
  // go on quietly rather than die with a stack trace; `run` keeps running and recording its units.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', onStreamError);
  main(process.argv.slice(2), { out: process.stdout, err: process.stderr, env: process.env }).then(
    (code) => {
      // The command is over and only the exit is left: a late Ctrl-C or SIGTERM must not turn its exit
      // code into 130/143.
      process.on('SIGINT', () => {});
      process.on('SIGTERM', () => {});
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`checkpoint: internal error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

let reported = false;
function onStreamError(e: NodeJS.ErrnoException): void {
  if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || reported) return;
  reported = true;
  try {
    process.stderr.write(
      `checkpoint: warning: could not write output: ${e.message}; output is dropped from here on\n`,
    );
  } catch {
    // stderr itself is the broken one.
  }
}
