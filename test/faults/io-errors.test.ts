// Campaign `io-errors`: the disk fails under a running `checkpoint run` — a file size limit (`ulimit -f`, EFBIG)
// at several sizes so it strikes at different writes, a folder made read-only mid-run (EACCES), the journal
// made immutable mid-run (EPERM), a filesystem that fills up mid-run (ENOSPC). Each run must stop with exit
// 1 or 75 and a clear error naming the file and the cause, without a stack trace; once the fault is gone,
// `checkpoint run` must resume and complete, running no unit again that was recorded done and losing none.
//
// Root ignores permission bits, so when the tests run as root the read-only faults run the CLI as another
// user (uid/gid 65534, the project handed to it); `chattr +i` and a size-limited tmpfs need root and are
// skipped (and said so in the figures' note) without it.
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { type Project, tempProject } from '../support/cli.js';
import { recordFigures } from './figures.js';
import {
  allUnits,
  chownTree,
  doneUnitsOf,
  effectUnits,
  type Geometry,
  hasStackTrace,
  runCliWith,
  spawnCli,
  waitWhileRunning,
} from './support/harness.js';

// `prep` prints PREP_OUTPUT bytes (with PREP_FAIL its first try fails, so that output becomes a kept log that
// can outgrow a size limit); `names` freezes a list whose size
// ITEM_PAD sets; work units print a line (a log file each) unless QUIET is set, and from GATE_FROM on wait
// for a `go` file, so a fault can be put in place mid-run (with GATE_REPORT, the last unit waits instead).
const PLAN = `version: 1
name: io
concurrency: 2
steps:
  - id: prep
    run: |
      echo "prep 0" >> effects.log
      head -c "\${PREP_OUTPUT:-10}" /dev/zero | tr '\\0' p; echo
      # PREP_FAIL: its first try fails, so its log is kept (a unit that succeeds keeps none).
      if [ -n "\${PREP_FAIL:-}" ] && [ "$(grep -c '^prep' effects.log)" -le 1 ]; then exit 1; fi
  - id: work
    needs: [prep]
    run: |
      echo "work $CHECKPOINT_BATCH_INDEX" >> effects.log
      [ -n "\${QUIET:-}" ] || echo "unit $CHECKPOINT_BATCH_INDEX"
      if [ "$CHECKPOINT_BATCH_INDEX" -ge "\${GATE_FROM:-99}" ]; then while [ ! -e go ]; do sleep 0.02; done; fi
    batch: { range: { from: 0, to: 24 }, size: 2, parallel: 2 }
  - id: names
    needs: [prep]
    run: echo "names $CHECKPOINT_BATCH_INDEX" >> effects.log
    batch: { items: { command: 'seq 1 60 | sed "s/^/item-\${ITEM_PAD:-}/"' }, size: 10 }
  - id: report
    needs: [work, names]
    run: |
      echo "report 0" >> effects.log
      if [ -n "\${GATE_REPORT:-}" ]; then while [ ! -e go ]; do sleep 0.02; done; fi
`;
const GEOMETRY: Record<string, Geometry> = {
  prep: { from: 0, to: 1, size: 1 },
  work: { from: 0, to: 24, size: 2 },
  names: { from: 0, to: 60, size: 10 },
  report: { from: 0, to: 1, size: 1 },
};
const ALL = allUnits(GEOMETRY);
/** Mid-run faults go in once this many `work` units are recorded done (the next ones wait for `go`). */
const DONE_BEFORE_FAULT = 4;

const isRoot = process.getuid?.() === 0;
/** Root ignores permission bits: the read-only faults run the CLI as `nobody`. */
const other = isRoot ? { uid: 65534, gid: 65534 } : undefined;

interface Fault {
  name: string;
  /** The error must name the file and the cause. */
  file: RegExp;
  cause: RegExp;
  fileLimitKb?: number;
  env?: NodeJS.ProcessEnv;
  asOtherUser?: boolean;
  /** Mid-run faults: put in place once DONE_BEFORE_FAULT units are done; returns what removes it. */
  inject?: (p: Project, runDir: string) => Promise<() => Promise<void>>;
  /** Inject at the end instead: once the last unit (`report`, gated) has started. */
  atEnd?: boolean;
  /** A checkpoint root of its own (a small tmpfs), with its clean-up. */
  root?: () => Promise<{ dir: string; cleanup: () => Promise<void> }>;
  /**
   * A bug outside this campaign's files (src/engine/*, being rewritten), reported rather than fixed: what
   * goes wrong, so the test keeps running the fault and fails once the bug is fixed (drop the entry then).
   */
  knownBug?: {
    what: string;
    /** The message lacks the file's name. */
    unnamedFile?: boolean;
    /** The resume stops with this error; the commands after it are its way out. */
    resumeFails?: { error: RegExp; wayOut: string[][] };
  };
}

const tally = { injected: 0, clean: 0, resumed: 0, lost: 0, repeated: 0 };
const notes: string[] = [];
const hit: string[] = [];
const skipped: string[] = [];

function can(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function chattrWorks(): Promise<boolean> {
  if (!isRoot) return false;
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-chattr-'));
  const f = join(dir, 'f');
  await writeFile(f, '');
  const ok = can('chattr', ['+i', f]) && can('chattr', ['-i', f]);
  await rm(dir, { recursive: true, force: true });
  return ok;
}

async function tmpfsRoot(sizeKb: number): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k,mode=0700`, 'tmpfs', dir]);
  return {
    dir,
    cleanup: async () => {
      if (!can('umount', [dir])) can('umount', ['-l', dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function tmpfsWorks(): Promise<boolean> {
  if (!isRoot) return false;
  try {
    await (await tmpfsRoot(64)).cleanup();
    return true;
  } catch {
    return false;
  }
}

/** Writes to `path` until the filesystem is full (ENOSPC), down to the last block. */
async function fill(path: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const size of [65536, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 0x66);
      for (;;) {
        try {
          await fh.write(chunk);
        } catch {
          break;
        }
      }
    }
  } finally {
    await fh.close();
  }
}

const doneOf = (ck: Checkpoint) => doneUnitsOf(ck, GEOMETRY);

async function latestRun(root: string): Promise<Checkpoint> {
  const id = (await readFile(join(root, 'latest'), 'utf8')).trim();
  return Checkpoint.read(root, id);
}

async function runFault(f: Fault): Promise<void> {
  const p = await tempProject(PLAN, 'ckpt-io-');
  const own = f.root ? await f.root() : undefined;
  try {
    const user = f.asOtherUser ? other : undefined;
    if (user) await chownTree(p.dir, user);
    const root = own?.dir ?? join(p.dir, '.checkpoints');
    const dirArgs = own ? ['--dir', own.dir] : [];
    const gate = f.atEnd ? { GATE_REPORT: '1' } : { GATE_FROM: String(DONE_BEFORE_FAULT) };
    const env = { ...f.env, ...(f.inject ? gate : {}) };
    const run = spawnCli(['run', ...dirArgs], {
      cwd: p.dir,
      env,
      ...(f.fileLimitKb !== undefined ? { fileLimitKb: f.fileLimitKb } : {}),
      ...(user ? { user } : {}),
    });
    let undo: (() => Promise<void>) | undefined;
    if (f.inject) {
      // Gated units wait for `go`: a run that ends before the moment (the fault's set-up broke it) says why.
      const runDir = await waitWhileRunning(
        run,
        async () => {
          const id = (await readFile(join(root, 'latest'), 'utf8').catch(() => '')).trim();
          if (!id) return undefined;
          const journal = await readFile(join(root, id, 'journal.ndjson'), 'utf8').catch(() => '');
          const done = journal.split('\n').filter((l) => l.includes('"type":"done","step":"work"')).length;
          const ready = f.atEnd
            ? journal.includes('"type":"spawned","step":"report"')
            : done >= DONE_BEFORE_FAULT;
          return ready ? join(root, id) : undefined;
        },
        60_000,
        `${f.name}: the moment to inject`,
      );
      undo = await f.inject(p, runDir);
      await writeFile(join(p.dir, 'go'), '');
    }
    const r = await run.result;
    await undo?.();
    tally.injected += 1;
    expect(r.code, `${f.name}: the fault must stop the run\n${r.stdout}${r.stderr}`).not.toBe(0);
    const file = r.stderr.match(
      /(journal\.ndjson|checkpoint\.json|outputs\.json|(?:items|steps|logs)\/[\w/.-]+)/,
    );
    hit.push(`${f.name} → ${file?.[1] ?? 'file not named'}`);
    const named = f.file.test(r.stderr);
    const clean =
      (r.code === 1 || r.code === 75) &&
      !hasStackTrace(r.stdout + r.stderr) &&
      !/internal error/.test(r.stderr) &&
      f.cause.test(r.stderr) &&
      named;
    if (f.knownBug?.unnamedFile) {
      expect(named, `${f.name}: known bug fixed? ${f.knownBug.what}\n${r.stderr}`).toBe(false);
      expect(hasStackTrace(r.stdout + r.stderr), r.stderr).toBe(false);
      expect(r.stderr).toMatch(f.cause);
    } else {
      expect(clean, `${f.name}: not a clean stop (exit ${r.code})\n${r.stderr}`).toBe(true);
    }
    if (clean) tally.clean += 1;

    // The fault is gone: what is recorded done now must never run again, and everything must finish.
    const recorded = await latestRun(root)
      .then(doneOf)
      .catch(() => new Set<string>());
    const before = (await effectUnits(p.effects)).length;
    const again = { cwd: p.dir, env: f.env, ...(user ? { user } : {}) };
    let resumed = await runCliWith(['run', ...dirArgs], again);
    if (f.knownBug?.resumeFails) {
      expect(resumed.stderr, `${f.name}: known bug fixed? ${f.knownBug.what}`).toMatch(
        f.knownBug.resumeFails.error,
      );
      for (const args of f.knownBug.resumeFails.wayOut)
        resumed = await runCliWith([...args, ...dirArgs], again);
    }
    expect(resumed.code, `${f.name}: resume\n${resumed.stdout}${resumed.stderr}`).toBe(0);
    if (!f.knownBug?.resumeFails) tally.resumed += 1;
    const final = doneOf(await latestRun(root));
    const ranAgain = (await effectUnits(p.effects, before)).filter((u) => recorded.has(u));
    const everRan = new Set(await effectUnits(p.effects));
    const lost = [...ALL].filter((u) => !final.has(u) || !everRan.has(u));
    tally.repeated += ranAgain.length;
    tally.lost += lost.length;
    expect(ranAgain, `${f.name}: recorded done, then run again`).toEqual([]);
    expect(lost, `${f.name}: lost`).toEqual([]);
    if (f.knownBug && !notes.includes(f.knownBug.what)) notes.push(f.knownBug.what);
  } finally {
    await own?.cleanup();
    await p.cleanup();
  }
}

async function inParallel<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await fn(item).catch((err: unknown) => failures.push(err));
      }
    }),
  );
  if (failures.length > 0) throw failures[0];
}

const ulimitFaults: Fault[] = [
  {
    // The journal's first batch (attempt + step-init lines, ~1.5 KiB) crosses 1 KiB.
    name: 'ulimit -f 1: journal, first batch',
    fileLimitKb: 1,
    file: /journal\.ndjson/,
    cause: /EFBIG/,
  },
  {
    name: 'ulimit -f 3: journal, mid-run',
    fileLimitKb: 3,
    file: /journal\.ndjson/,
    cause: /EFBIG/,
  },
  {
    name: 'ulimit -f 6: journal, later',
    fileLimitKb: 6,
    file: /journal\.ndjson/,
    cause: /EFBIG/,
  },
  {
    // The journal holds ~1.8 KiB when the failed first unit's 6 KB log is written.
    name: 'ulimit -f 4: a unit log larger than the limit',
    fileLimitKb: 4,
    env: { PREP_OUTPUT: '6000', PREP_FAIL: '1' },
    file: /logs\/prep\/0\.log/,
    cause: /EFBIG/,
  },
  {
    // A 6.6 KB list, written before the journal's first sync (~1.5 KiB).
    name: 'ulimit -f 4: the frozen item list larger than the limit',
    fileLimitKb: 4,
    env: { ITEM_PAD: 'x'.repeat(100) },
    file: /items\/names\.json/,
    cause: /EFBIG/,
  },
];

/** chmod a-w on a folder of the run, mid-run; the CLI runs as another user when we are root. */
function readOnly(sub: string, file: RegExp, atEnd = false): Fault {
  return {
    name: `read-only ${sub || 'run folder'} ${atEnd ? 'as the last unit runs' : 'mid-run'}`,
    atEnd,
    asOtherUser: true,
    file,
    cause: /EACCES/,
    inject: async (_p, runDir) => {
      const dir = join(runDir, sub);
      await chmod(dir, 0o500);
      return () => chmod(dir, 0o700);
    },
  };
}

describe('io-errors', () => {
  afterAll(() => {
    recordFigures(
      'io-errors',
      [
        { name: 'faults injected', value: tally.injected },
        { name: 'clean stops', value: tally.clean },
        { name: 'resumed to completion', value: tally.resumed },
        { name: 'units lost', value: tally.lost, must: '= 0' },
        { name: 'units recorded done then repeated', value: tally.repeated, must: '= 0' },
      ],
      `faults and the file each one hit: ${hit.sort().join('; ')}. Known engine bugs: ${notes.join('; ') || 'none'}` +
        (skipped.length > 0 ? `. Skipped: ${skipped.join('; ')}` : ''),
    );
  });

  it('a file size limit (ulimit -f) at several sizes', async () => {
    await inParallel(ulimitFaults, 3, runFault);
  }, 180_000);

  it('folders made read-only, the journal made immutable, the disk filling up, mid-run', async () => {
    const faults: Fault[] = [
      readOnly('', /outputs\.json/),
      // Every unit done, then the closing writes fail (outputs.json, then the snapshot): the journal says
      // complete, yet the run failed, and `run` must finish that run rather than start a new one.
      readOnly('', /outputs\.json|checkpoint\.json/, true),
      readOnly('steps', /steps\/[\w-]+\.complete/),
      // No read-only logs/ variant: a unit that succeeds keeps no log (src/engine/recorder.ts), so there is no
      // folder to make read-only mid-run; a failed unit's log hitting a limit is the ulimit case above.
    ];
    if (await chattrWorks()) {
      faults.push({
        name: 'chattr +i journal.ndjson mid-run',
        file: /journal\.ndjson/,
        cause: /EPERM/,
        inject: async (_p, runDir) => {
          const j = join(runDir, 'journal.ndjson');
          execFileSync('chattr', ['+i', j]);
          return async () => {
            execFileSync('chattr', ['-i', j]);
          };
        },
      });
    } else skipped.push('chattr +i (needs root and a filesystem with the immutable flag)');
    if (await tmpfsWorks()) {
      faults.push({
        // Units print nothing: with a log file per unit, the first write to need a new block would be a log
        // (the engine's unnamed-file bug above, already shown by `ulimit -f`) or the journal, by timing.
        name: 'tmpfs full mid-run',
        root: () => tmpfsRoot(512),
        env: { QUIET: '1' },
        // The first write to need a new block fails: a step's marker, the journal crossing into a new
        // page, or the outputs file rewritten after a unit (which of them is a matter of timing; each must
        // be reported the same way, naming its file).
        file: /journal\.ndjson|steps\/work\.complete|outputs\.json|checkpoint\.json/,
        cause: /ENOSPC/,
        inject: async (_p, runDir) => {
          const filler = join(runDir, '..', 'filler');
          await fill(filler);
          return () => rm(filler, { force: true });
        },
      });
    } else skipped.push('tmpfs (needs root to mount)');
    await inParallel(faults, 3, runFault);
  }, 180_000);
});
