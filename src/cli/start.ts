import { main } from './main.js';

/** Wires the process to `main`: real streams and environment in, exit code out. */
export function start(): void {
  // A file size limit (ulimit -f) must surface as a write error we can report, not kill the process.
  process.on('SIGXFSZ', () => {});
  main(process.argv.slice(2), { out: process.stdout, err: process.stderr, env: process.env }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`checkpoint: internal error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
