// Helpers for the journal tests that need real child processes. The children cannot import our
// TypeScript directly (Node 20 has no type stripping), so the low-level journal modules are transpiled
// into a temp folder once per test file; their `.js` import suffixes then resolve as they are.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
/** Paths under src/, without `.ts`: the journal's low-level modules and what they import. */
const MODULES = [
  'errors',
  'exec/ps',
  'journal/crc32',
  'journal/damage',
  'journal/fsutil',
  'journal/intervals',
  'journal/journal-file',
  'journal/lock',
];

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `ckpt-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Transpiles src/journal's low-level modules (and src/errors.ts) into `<dir>/...js`; returns `dir`. */
export async function compileJournalModules(dir: string): Promise<string> {
  for (const sub of ['journal', 'exec']) await mkdir(join(dir, sub), { recursive: true });
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  for (const name of MODULES) {
    const source = await readFile(join(SRC, `${name}.ts`), 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: `${name}.ts`,
    });
    await writeFile(join(dir, `${name}.js`), out.outputText);
  }
  return dir;
}

/** A child process speaking one JSON object per stdout line. */
export class JsonChild {
  readonly process: ChildProcess;
  #messages: unknown[] = [];
  #waiters: ((message: unknown) => void)[] = [];
  #stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(command: string, args: string[]) {
    this.process = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: this.process.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const message: unknown = JSON.parse(line);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(message);
      else this.#messages.push(message);
    });
    this.process.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => {
      this.process.on('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  /** The next stdout message; rejects if the child exits first. */
  next<T = Record<string, unknown>>(): Promise<T> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued as T);
    return new Promise<T>((resolve, reject) => {
      const waiter = (message: unknown) => resolve(message as T);
      this.#waiters.push(waiter);
      void this.exited.then(({ code, signal }) => {
        const index = this.#waiters.indexOf(waiter);
        if (index === -1) return;
        this.#waiters.splice(index, 1);
        reject(
          new Error(
            `child ${this.pid} exited (code ${code}, signal ${signal}) first; stderr:\n${this.#stderr}`,
          ),
        );
      });
    });
  }

  send(line: string): void {
    this.process.stdin?.write(`${line}\n`);
  }

  /** Closes stdin (the children exit on it) and waits for the exit. */
  async end(): Promise<void> {
    this.process.stdin?.end();
    await this.exited;
  }
}

/** Polls `predicate` until it holds (or throws after `timeoutMs`). */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms: ${predicate.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The pid of a process that has exited and been reaped. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid as number;
}
