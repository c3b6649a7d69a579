// A checkpoint is evidence, not orders (DESIGN §4): forged records with valid checksums are refused as damage
// naming the file, the line and the way out; a bad `latest` is warned about and the run resumed; links inside
// a run folder are refused and nothing is written through them. Real CLI runs make the base checkpoint.
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint, CheckpointDamageError } from '../../src/journal/checkpoint.js';
import { CheckpointCorruptError } from '../../src/journal/damage.js';
import { CheckpointLinkError } from '../../src/journal/fsutil.js';
import { encodeLine } from '../../src/journal/journal-file.js';
import { validateCheckpoint } from '../../src/journal/plan-check.js';
import { resolveLatest } from '../../src/journal/runs.js';
import { serializeSnapshot } from '../../src/journal/snapshot.js';
import { loadPlan } from '../../src/plan/load.js';
import { runCli, status } from '../support/cli.js';

const PLAN = `version: 1
name: evidence
steps:
  - id: w
    run: |
      echo "w $CHECKPOINT_BATCH_INDEX" >> effects.log
      if [ -e stop-late ] && [ "$CHECKPOINT_BATCH_INDEX" -ge 6 ]; then exit 3; fi
    batch: { range: { from: 0, to: 10 }, size: 1 }
`;

let scratch: string;
/** A project whose run `evidence-base` has units 0-5 done and 6-9 failed. */
let base: string;
const RUN = 'evidence-base';
let n = 0;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ckpt-evidence-'));
  base = join(scratch, 'base');
  await mkdir(base);
  await writeFile(join(base, 'checkpoint.yml'), PLAN);
  await writeFile(join(base, 'stop-late'), '');
  const r = await runCli(['run', '--run', RUN], { cwd: base });
  expect(r.code, r.stderr).toBe(1);
  await rm(join(base, 'stop-late'));
  await rm(join(base, 'effects.log'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

interface Copy {
  dir: string;
  root: string;
  run: string;
  journal: string;
}

async function copy(): Promise<Copy> {
  const dir = join(scratch, `c${++n}`);
  await cp(base, dir, { recursive: true });
  const root = join(dir, '.checkpoints');
  return { dir, root, run: join(root, RUN), journal: join(root, RUN, 'journal.ndjson') };
}

/** Appends CRC-valid lines continuing the journal's seq; returns the line number of the first. */
async function forge(c: Copy, events: Record<string, unknown>[]): Promise<number> {
  const text = await readFile(c.journal, 'utf8');
  const lines = text.split('\n').filter(Boolean);
  const last = JSON.parse(lines[lines.length - 1] as string) as { seq: number };
  const out = events.map((e, i) => encodeLine({ seq: last.seq + 1 + i, t: Date.now(), ...e })).join('');
  await writeFile(c.journal, text + out);
  return lines.length + 1;
}

async function damageOf(c: Copy): Promise<unknown> {
  const plan = await loadPlan(join(c.dir, 'checkpoint.yml'));
  return validateCheckpoint(c.root, RUN, plan).then(
    () => undefined,
    (e: unknown) => e,
  );
}

const unit = (start: number, end = start + 1, index = start) => ({ step: 'w', start, end, index });

describe('forged journal lines', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['start 1e308', { type: 'start', ...unit(0), start: 1e308, try: 1, attempt: 2 }],
    ['start "7"', { type: 'start', ...unit(7), start: '7', try: 1, attempt: 2 }],
    ['start 7.5', { type: 'start', ...unit(7), start: 7.5, try: 1, attempt: 2 }],
    ['start "NaN"', { type: 'start', ...unit(7), start: 'NaN', try: 1, attempt: 2 }],
    ['done [100, 200)', { type: 'done', ...unit(100, 200, 100), ms: 1 }],
    ['done [-1000000, 1000000)', { type: 'done', ...unit(-1e6, 1e6, 0), ms: 1 }],
    ['done [6, 9) on size 1', { type: 'done', ...unit(6, 9), ms: 1 }],
    ['done with a wrong index', { type: 'done', ...unit(7, 8, 3), ms: 1 }],
    ['an unknown event type', { type: 'obey', step: 'w' }],
    ['spawned pid "1"', { type: 'spawned', ...unit(7), pid: '1', host: 'h' }],
  ];
  for (const [name, ev] of cases) {
    it(`${name}: damage naming journal.ndjson:<line> and the way out`, async () => {
      const c = await copy();
      const line = await forge(c, [ev]);
      const err = await damageOf(c);
      expect(err).toBeInstanceOf(CheckpointDamageError);
      const d = err as CheckpointDamageError;
      expect(d.line).toBe(line);
      expect(d.message).toContain(`journal.ndjson:${line}`);
      expect(d.message).toContain('checkpoint reset --all');
      expect(d.message).toContain('checkpoint run --new');
    });
  }

  it("a step-init whose space differs from the plan's, same fingerprint: damage at its line", async () => {
    for (const change of [{ to: 20 }, { from: -5 }, { to: 1e15 }, { size: 3 }, { from: 5, to: 4 }]) {
      const c = await copy();
      const ckpt = await Checkpoint.read(c.root, RUN);
      const rec = ckpt.state.steps.get('w');
      const line = await forge(c, [
        {
          type: 'step-init',
          step: 'w',
          fingerprint: rec?.fingerprint,
          from: 0,
          to: 10,
          size: 1,
          reason: 'forged',
          ...change,
        },
      ]);
      const err = await damageOf(c);
      expect(err, JSON.stringify(change)).toBeInstanceOf(CheckpointDamageError);
      expect((err as Error).message).toContain(`journal.ndjson:${line}`);
    }
  });

  it('the CLI refuses it: exit 1, file:line and way out, no internal error, nothing run; reset --all recovers', async () => {
    const c = await copy();
    const rec = (await Checkpoint.read(c.root, RUN)).state.steps.get('w');
    const line = await forge(c, [
      { type: 'step-init', step: 'w', fingerprint: rec?.fingerprint, from: 0, to: 20, size: 1, reason: 'x' },
    ]);
    const r = await runCli(['run'], { cwd: c.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`journal.ndjson:${line}`);
    expect(r.stderr).toContain('checkpoint reset --all');
    expect(r.stderr).not.toContain('internal error');
    expect(await readFile(join(c.dir, 'effects.log'), 'utf8').catch(() => '')).toBe('');
    const st = await runCli(['status'], { cwd: c.dir });
    expect(st.stderr).not.toContain('internal error');
    expect((await runCli(['reset', '--all'], { cwd: c.dir })).code).toBe(0);
    const again = await runCli(['run'], { cwd: c.dir });
    expect(again.code, again.stderr).toBe(0);
    const ran = (await readFile(join(c.dir, 'effects.log'), 'utf8')).split('\n').filter(Boolean);
    expect(ran.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `w ${i}`).sort());
  });

  it('counts never leave [0, total]: a forged unitsDone is refused in the snapshot', async () => {
    const c = await copy();
    const ckpt = await Checkpoint.read(c.root, RUN);
    const rec = ckpt.state.steps.get('w');
    if (!rec) throw new Error('no record');
    rec.unitsDone = 50;
    // A compacted journal: the snapshot is all there is, so it cannot be rebuilt.
    await writeFile(join(c.run, 'checkpoint.json'), serializeSnapshot(ckpt.state));
    await writeFile(c.journal, '');
    const err = await damageOf(c);
    expect(err).toBeInstanceOf(CheckpointCorruptError);
    expect((err as Error).message).toMatch(/checkpoint\.json.*50 units done of 10/);
    expect((err as Error).message).toContain('checkpoint reset --all');
  });

  it('a snapshot with done ranges outside the space, history in the journal: rebuilt from the journal', async () => {
    const c = await copy();
    const ckpt = await Checkpoint.read(c.root, RUN);
    ckpt.state.steps.get('w')?.done.add(-1_000_000, 1_000_000);
    await writeFile(join(c.run, 'checkpoint.json'), serializeSnapshot(ckpt.state));
    const back = await Checkpoint.read(c.root, RUN);
    expect(back.loadReport.rebuiltFrom).toMatch(/outside its space/);
    expect(back.state.steps.get('w')?.done.toJSON()).toEqual([[0, 6]]);
    const s = await status({ dir: c.dir, plan: '', effects: '', cleanup: async () => {} });
    expect(s.steps[0]?.units).toMatchObject({ total: 10, done: 6 });
  });
});

describe('latest', () => {
  const hostile = ['../../etc', '/etc', '..', '', 'a\0b', 'no-such-run'];
  for (const value of hostile) {
    it(`holding ${JSON.stringify(value)}: a warning, and the run of this plan is resumed`, async () => {
      const c = await copy();
      await writeFile(join(c.root, 'latest'), value);
      const found = await resolveLatest(c.root, 'evidence');
      expect(found.runId).toBe(RUN);
      expect(found.warning).toMatch(/latest/);
      const r = await runCli(['run'], { cwd: c.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/warning: .*latest/);
      expect(r.stdout).toContain(`resuming run ${RUN}`);
      // Only the four failed units ran again; the six done did not.
      const ran = (await readFile(join(c.dir, 'effects.log'), 'utf8')).split('\n').filter(Boolean);
      expect(ran.sort()).toEqual(['w 6', 'w 7', 'w 8', 'w 9']);
    });
  }

  it('a missing latest with runs there, and a symlinked latest, are damage too', async () => {
    const c = await copy();
    await rm(join(c.root, 'latest'));
    expect(await resolveLatest(c.root, 'evidence')).toMatchObject({ runId: RUN, warning: /is missing/ });
    await symlink('/etc/hostname', join(c.root, 'latest'));
    expect(await resolveLatest(c.root, 'evidence')).toMatchObject({ runId: RUN, warning: /symbolic link/ });
  });

  it('no run of this plan readable: stops with the way out', async () => {
    const c = await copy();
    await writeFile(join(c.root, 'latest'), '../x');
    await writeFile(join(c.run, 'checkpoint.json'), '{"broken": true}');
    await writeFile(c.journal, '');
    await expect(resolveLatest(c.root, 'evidence')).rejects.toThrow(/checkpoint run --new/);
  });
});

describe('links inside a run folder', () => {
  for (const name of ['logs', 'state', 'steps', 'tmp', 'items']) {
    it(`${name} as a link: refused by name, nothing written outside`, async () => {
      const c = await copy();
      const outside = join(c.dir, 'outside');
      await mkdir(outside);
      await rm(join(c.run, name), { recursive: true, force: true });
      await symlink(outside, join(c.run, name));
      const r = await runCli(['run'], { cwd: c.dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${name} is a symbolic link`);
      expect(r.stderr).not.toContain('internal error');
      expect(await readdir(outside)).toEqual([]);
      expect(await readFile(join(c.dir, 'effects.log'), 'utf8').catch(() => '')).toBe('');
    });
  }

  it('state/<step> and outputs.json as links: refused by name', async () => {
    const c = await copy();
    const outside = join(c.dir, 'outside');
    await mkdir(outside);
    await rm(join(c.run, 'state', 'w'), { recursive: true, force: true });
    await symlink(outside, join(c.run, 'state', 'w'));
    const r = await runCli(['run'], { cwd: c.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/state\/w is a symbolic link/);
    expect(await readdir(outside)).toEqual([]);
    await rm(join(c.run, 'state', 'w'));
    await rm(join(c.run, 'outputs.json'), { force: true });
    await symlink(join(outside, 'o.json'), join(c.run, 'outputs.json'));
    const r2 = await runCli(['run'], { cwd: c.dir });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/outputs\.json is a symbolic link/);
    expect(await readdir(outside)).toEqual([]);
  });

  it('a unit log planted as a link is not written through', async () => {
    const dir = join(scratch, 'logs-link');
    await mkdir(dir);
    await writeFile(
      join(dir, 'checkpoint.yml'),
      `version: 1
name: logs
steps:
  - id: w
    run: |
      echo "output of $CHECKPOINT_BATCH_INDEX"
      if [ -e fail-now ]; then exit 3; fi
    batch: { range: { from: 0, to: 2 }, size: 1 }
`,
    );
    await writeFile(join(dir, 'fail-now'), '');
    expect((await runCli(['run', '--run', 'l'], { cwd: dir })).code).toBe(1);
    await rm(join(dir, 'fail-now'));
    const outside = join(dir, 'outside.txt');
    await writeFile(outside, 'untouched\n');
    const log = join(dir, '.checkpoints', 'l', 'logs', 'w', '1.log');
    await rm(log, { force: true });
    await symlink(outside, log);
    const r = await runCli(['run', '--run', 'l'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/logs\/w\/1\.log is a symbolic link/);
    expect(r.stderr).not.toContain('internal error');
    expect(await readFile(outside, 'utf8')).toBe('untouched\n');
  });

  it('a run folder that is a link: refused before its lock is written', async () => {
    const c = await copy();
    const elsewhere = join(c.dir, 'elsewhere');
    await cp(c.run, elsewhere, { recursive: true });
    await rm(c.run, { recursive: true });
    await symlink(elsewhere, c.run);
    const r = await runCli(['run', '--run', RUN], { cwd: c.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${RUN} is a symbolic link`);
    expect(await readdir(elsewhere)).not.toContain('lock');
    expect(await readFile(join(c.dir, 'effects.log'), 'utf8').catch(() => '')).toBe('');
  });

  it('journal.ndjson and checkpoint.json as links: named errors on read', async () => {
    const c = await copy();
    const elsewhere = join(c.dir, 'elsewhere.ndjson');
    await cp(c.journal, elsewhere);
    await rm(c.journal);
    await symlink(elsewhere, c.journal);
    await expect(Checkpoint.read(c.root, RUN)).rejects.toBeInstanceOf(CheckpointLinkError);
  });
});
