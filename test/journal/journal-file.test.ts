import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeLine,
  encodeLine,
  JournalCorruptError,
  JournalWriteError,
  JournalWriter,
  readJournal,
  truncateTo,
} from '../../src/journal/journal-file.js';
import { compileJournalModules, JsonChild, makeTempDir, removeDir } from './support.js';

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await makeTempDir('journal');
  path = join(dir, 'journal.ndjson');
});
afterEach(async () => {
  await removeDir(dir);
});

/**
 * Routes every FileHandle.datasync through `wrap` (given the real sync) until the returned function is
 * called: the writer's fdatasyncs, watched or held by a test.
 */
async function wrapDatasync(wrap: (sync: () => Promise<void>) => Promise<void>): Promise<() => void> {
  const { open } = await import('node:fs/promises');
  const probe = await open(path, 'r');
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const original = proto.datasync;
  proto.datasync = function (this: unknown) {
    return wrap(() => original.call(this));
  };
  return () => {
    proto.datasync = original;
  };
}

describe('encodeLine / decodeLine', () => {
  it('round-trips events with a trailing crc key', () => {
    const events = [
      {},
      { type: 'done', step: 'migrate', unit: 3, outputs: { rows: '12' } },
      { text: 'héllo ☃ \u2028 "quoted" \n newline', nested: [1, { a: null }], n: -0.5 },
      { 10: 'integer-like keys', b: true },
    ];
    for (const event of events) {
      const line = encodeLine(event);
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      expect(line).toMatch(/"crc":"[0-9a-f]{8}"\}\n$/);
      expect(decodeLine(line)).toEqual(event);
      expect(decodeLine(line.slice(0, -1))).toEqual(event);
    }
  });

  it('ignores a crc key on the event itself', () => {
    const line = encodeLine({ a: 1, crc: 'bogus' });
    expect(line.match(/"crc"/g)).toHaveLength(1);
    expect(decodeLine(line)).toEqual({ a: 1 });
  });

  it('rejects tampered, unchecksummed and non-object lines', () => {
    const line = encodeLine({ type: 'done', unit: 41 });
    expect(decodeLine(line.replace('41', '42'))).toBeUndefined();
    expect(decodeLine(line.replace(/"crc":"(.)/, '"crc":"z'))).toBeUndefined();
    expect(decodeLine('{"type":"done"}')).toBeUndefined();
    expect(decodeLine('')).toBeUndefined();
    expect(decodeLine('[1,"crc":"00000000"}')).toBeUndefined();
    expect(decodeLine('garbage')).toBeUndefined();
  });
});

/** Polls a condition on every turn of the event loop (no fixed sleep); fails after 10 s naming it. */
async function waitUntil(ok: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('JournalWriter', () => {
  it('writes events that readJournal reads back, to a 0600 file', async () => {
    const writer = await JournalWriter.open(path);
    await writer.append({ seq: 1, type: 'start' });
    await writer.append({ seq: 2, type: 'done', unit: 0 });
    expect(writer.bytesWritten).toBe((await stat(path)).size);
    await writer.close();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const journal = await readJournal(path);
    expect(journal.events).toEqual([
      { seq: 1, type: 'start' },
      { seq: 2, type: 'done', unit: 0 },
    ]);
    expect(journal.tornTail).toBe(false);
    expect(journal.validBytes).toBe((await stat(path)).size);

    // Reopening appends after what is there.
    const again = await JournalWriter.open(path);
    expect(again.size).toBe(journal.validBytes);
    await again.append({ seq: 3 });
    await again.close();
    expect((await readJournal(path)).events.map((e) => e.seq)).toEqual([1, 2, 3]);
  });

  it('group-commits concurrent appends: 200 appends, all on disk in order, a handful of fdatasyncs', async () => {
    const writer = await JournalWriter.open(path);
    const appends = Array.from({ length: 200 }, (_, i) => writer.append({ seq: i }));
    await Promise.all(appends);
    expect(writer.syncCount).toBeLessThanOrEqual(2);
    // Appends arriving while a sync is in flight share the next one.
    const first = writer.append({ seq: 200 });
    await Promise.resolve();
    await Promise.resolve();
    const more = Array.from({ length: 50 }, (_, i) => writer.append({ seq: 201 + i }));
    await Promise.all([first, ...more]);
    expect(writer.syncCount).toBeLessThanOrEqual(4);
    await writer.close();
    const { events } = await readJournal(path);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 251 }, (_, i) => i));
  });

  it('resolves each append only after its line is on disk', async () => {
    const writer = await JournalWriter.open(path);
    for (let i = 0; i < 20; i++) {
      await writer.append({ seq: i, pad: 'x'.repeat(i * 50) });
      const { events, tornTail } = await readJournal(path);
      expect(tornTail).toBe(false);
      expect(events).toHaveLength(i + 1);
    }
    await writer.close();
  });

  it('appendLater keeps order with append and is synced by the next append or flush', async () => {
    const writer = await JournalWriter.open(path);
    writer.appendLater({ seq: 1, type: 'running' });
    await writer.append({ seq: 2, type: 'done' });
    writer.appendLater({ seq: 3, type: 'running' });
    writer.appendLater({ seq: 4, type: 'running' });
    const syncsBefore = writer.syncCount;
    await writer.flush();
    expect(writer.syncCount).toBe(syncsBefore + 1);
    await writer.flush(); // nothing new: no extra fdatasync
    expect(writer.syncCount).toBe(syncsBefore + 1);
    expect((await readJournal(path)).events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    await writer.close();
    await expect(writer.append({ seq: 5 })).rejects.toThrow(/already closed/);
  });

  it('writes lines while an fdatasync is in flight: a line is in the file before the sync ahead returns', async () => {
    const writer = await JournalWriter.open(path);
    // Hold the writer's fdatasync calls until the test lets them go: a slow disk, on demand.
    const gates: Array<() => void> = [];
    const restore = await wrapDatasync((sync) =>
      new Promise<void>((resolve) => gates.push(resolve)).then(sync),
    );
    try {
      let firstDurable = false;
      const first = writer.append({ seq: 1 }).then(() => {
        firstDurable = true;
      });
      await waitUntil(() => gates.length === 1, 'the first fdatasync to start');
      let secondWritten = false;
      const second = writer.append({ seq: 2 }, () => {
        secondWritten = true;
      });
      await waitUntil(() => secondWritten, 'the second line to be written');
      // Written while the first sync is still held, and readable by another process right away.
      expect(firstDurable).toBe(false);
      expect((await readJournal(path)).events.map((e) => e.seq)).toEqual([1, 2]);
      for (let i = 0; i < 2; i++) {
        await waitUntil(() => gates.length > 0, 'an fdatasync to wait at the gate');
        gates.shift()?.();
      }
      await Promise.all([first, second]);
      expect(writer.syncCount).toBe(2);
    } finally {
      restore();
      for (const g of gates) g();
    }
    await writer.close();
  });

  it('spaces fdatasyncs at least 5 ms apart; lines written meanwhile are in the file at once and share the next', async () => {
    const writer = await JournalWriter.open(path);
    const starts: number[] = [];
    const restore = await wrapDatasync((sync) => {
      starts.push(performance.now());
      return sync();
    });
    try {
      const durable: Promise<void>[] = [];
      // Ends of units arriving one after another, each once the line before it is written.
      for (let i = 0; i < 30; i++) {
        await new Promise<void>((written) => durable.push(writer.append({ seq: i }, written)));
        expect((await readJournal(path)).events).toHaveLength(i + 1);
      }
      await Promise.all(durable);
    } finally {
      restore();
    }
    expect(starts.length).toBe(writer.syncCount);
    // Measured a few microseconds after the writer's own clock reading.
    for (let i = 1; i < starts.length; i++)
      expect((starts[i] ?? 0) - (starts[i - 1] ?? 0)).toBeGreaterThanOrEqual(4.9);
    await writer.close();
  });

  it('a caller blocked on its line (no onWritten: a failure, a flush) does not wait for the spacing', async () => {
    // A spacing of a minute: the patient line's sync could only start early because of the blocked caller.
    const writer = await JournalWriter.open(path, { syncSpacingMs: 60_000 });
    await writer.append({ seq: 1 }, () => {});
    let patientDurable = false;
    let written = false;
    const patient = writer
      .append({ seq: 2 }, () => {
        written = true;
      })
      .then(() => {
        patientDurable = true;
      });
    while (!written) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(patientDurable).toBe(false);
    await writer.append({ seq: 3, type: 'fail' });
    await patient;
    expect(patientDurable).toBe(true);
    expect(writer.syncCount).toBe(2);
    await writer.close();
  });

  it('rejects an event that cannot be serialised without breaking the writer', async () => {
    const writer = await JournalWriter.open(path);
    await expect(writer.append({ n: 1n })).rejects.toThrow(TypeError);
    await writer.append({ ok: true });
    await writer.close();
    expect((await readJournal(path)).events).toEqual([{ ok: true }]);
  });
});

describe('readJournal', () => {
  const events = [
    { seq: 1, type: 'start' },
    { seq: 2, type: 'done', unit: 7 },
    { seq: 3, note: 'ünïcødé ☃ tail' },
  ];
  const lines = events.map((e) => encodeLine(e));
  const full = Buffer.from(lines.join(''), 'utf8');
  const lastStart = Buffer.byteLength(lines[0] as string) + Buffer.byteLength(lines[1] as string);

  it('reads a missing file as empty', async () => {
    expect(await readJournal(join(dir, 'nope.ndjson'))).toEqual({
      events: [],
      lines: [],
      tornTail: false,
      validBytes: 0,
    });
  });

  it('ignores a torn last line cut at every byte offset', async () => {
    for (let cut = lastStart; cut < full.length; cut++) {
      await writeFile(path, full.subarray(0, cut));
      const journal = await readJournal(path);
      expect(journal.events, `cut at ${cut}`).toEqual(events.slice(0, 2));
      expect(journal.tornTail, `cut at ${cut}`).toBe(cut > lastStart);
      expect(journal.validBytes).toBe(lastStart);
    }
    await writeFile(path, full);
    expect(await readJournal(path)).toEqual({
      events,
      lines: [1, 2, 3],
      tornTail: false,
      validBytes: full.length,
    });
  });

  it('treats a complete last line with a bad checksum (or trailing junk) as a torn tail', async () => {
    const damaged = Buffer.concat([
      full.subarray(0, lastStart),
      Buffer.from(lines[2]?.replace('tail', 'tall') ?? ''),
    ]);
    await writeFile(path, damaged);
    expect(await readJournal(path)).toEqual({
      events: events.slice(0, 2),
      lines: [1, 2],
      tornTail: true,
      validBytes: lastStart,
    });
    await writeFile(path, Buffer.concat([full, Buffer.alloc(300)])); // zero-filled blocks after a power cut
    expect(await readJournal(path)).toEqual({
      events,
      lines: [1, 2, 3],
      tornTail: true,
      validBytes: full.length,
    });
  });

  it('throws JournalCorruptError for a damaged line followed by intact ones', async () => {
    const corrupt = [lines[0], lines[1]?.replace('"done"', '"dune"'), lines[2]].join('');
    await writeFile(path, corrupt);
    const error = await readJournal(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(JournalCorruptError);
    const corruptError = error as JournalCorruptError;
    expect(corruptError.name).toBe('JournalCorruptError');
    expect(corruptError.line).toBe(2);
    expect(corruptError.message).toContain(path);
    expect(corruptError.message).toContain('line 2');
    expect(corruptError.message).toContain('checkpoint reset --all');
    expect(corruptError.message).toContain('restore the previous checkpoint entry');
  });

  it('handles a journal larger than one read chunk', async () => {
    const many = Array.from({ length: 30_000 }, (_, i) => ({ seq: i, pad: 'p'.repeat(i % 97) }));
    await writeFile(path, many.map((e) => encodeLine(e)).join(''));
    const journal = await readJournal(path);
    expect(journal.events).toEqual(many);
    expect(journal.tornTail).toBe(false);
  });

  it('truncateTo cuts a torn tail so appends continue cleanly', async () => {
    await writeFile(path, full.subarray(0, lastStart + 5));
    const { validBytes, tornTail } = await readJournal(path);
    expect(tornTail).toBe(true);
    await truncateTo(path, validBytes);
    const writer = await JournalWriter.open(path);
    await writer.append({ seq: 3, again: true });
    await writer.close();
    expect(await readJournal(path)).toEqual({
      events: [...events.slice(0, 2), { seq: 3, again: true }],
      lines: [1, 2, 3],
      tornTail: false,
      validBytes: (await stat(path)).size,
    });
  });
});

describe('write failures', () => {
  let childDir: string;
  beforeAll(async () => {
    childDir = await compileJournalModules(await makeTempDir('journal-child'));
    await writeFile(
      join(childDir, 'writer.mjs'),
      `import { JournalWriter } from './journal/journal-file.js';
const [path, count] = process.argv.slice(2);
const writer = await JournalWriter.open(path);
const acked = [];
let error;
// Batches of 10 concurrent appends, like units finishing together.
for (let i = 0; i < Number(count) && !error; i += 10) {
  const batch = [];
  for (let j = i; j < i + 10; j++) {
    batch.push(writer.append({ seq: j, pad: 'x'.repeat(100) }).then(() => acked.push(j), (e) => { error ??= e; }));
  }
  await Promise.all(batch);
}
const later = await writer.append({ seq: -1 }).then(() => 'resolved', (e) => e.name);
const closed = await writer.close().then(() => 'resolved', (e) => e.name);
process.stdout.write(JSON.stringify({ acked, later, closed, error: error && { name: error.name, code: error.code, message: error.message } }) + '\\n');
`,
    );
  });
  afterAll(async () => {
    await removeDir(childDir);
  });

  it('rejects every pending and later append with JournalWriteError when the file size limit is hit', async () => {
    // bash's `ulimit -f 4` caps files at 4 KiB: the write that crosses it is cut short, the next fails EFBIG.
    const child = new JsonChild('bash', [
      '-c',
      'ulimit -f 4 && exec "$0" "$@"',
      process.execPath,
      join(childDir, 'writer.mjs'),
      path,
      '1000',
    ]);
    const result = await child.next<{
      acked: number[];
      later: string;
      closed: string;
      error?: { name: string; code: string; message: string };
    }>();
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(result.error?.name).toBe('JournalWriteError');
    expect(result.error?.code).toBe('EFBIG');
    expect(result.error?.message).toContain(path);
    expect(result.error?.message).toContain('EFBIG');
    expect(result.error?.message).toContain(
      'run `checkpoint run` again; work recorded before this point is kept',
    );
    expect(result.later).toBe('JournalWriteError');
    expect(result.closed).toBe('JournalWriteError');
    // Exactly the acknowledged appends are on disk: the failed batch's partial write was cut off again.
    expect(result.acked.length).toBeGreaterThan(0);
    const journal = await readJournal(path);
    expect(journal.tornTail).toBe(false);
    expect(journal.events.map((e) => e.seq)).toEqual(result.acked);
    expect(result.acked).toEqual(result.acked.slice().sort((a, b) => a - b));
  });

  it('rejects with JournalWriteError ENOSPC on a full device', async () => {
    if (!existsSync('/dev/full')) return; // Linux's always-full device; nothing equivalent elsewhere
    const writer = await JournalWriter.open('/dev/full');
    writer.appendLater({ a: 1 });
    const results = await Promise.allSettled([writer.append({ b: 2 }), writer.append({ c: 3 })]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as JournalWriteError;
      expect(reason).toBeInstanceOf(JournalWriteError);
      expect(reason.code).toBe('ENOSPC');
      expect(reason.message).toMatch(/\/dev\/full: ENOSPC .*free disk space and run `checkpoint run` again/);
    }
    expect(writer.error?.code).toBe('ENOSPC');
    await expect(writer.append({ d: 4 })).rejects.toBeInstanceOf(JournalWriteError);
    await expect(writer.flush()).rejects.toBeInstanceOf(JournalWriteError);
    writer.appendLater({ e: 5 }); // a no-op now, not a throw
    await expect(writer.close()).rejects.toBeInstanceOf(JournalWriteError);
  });

  it('names the file when it cannot be opened', async () => {
    const missing = join(dir, 'no-such-dir', 'journal.ndjson');
    await expect(JournalWriter.open(missing)).rejects.toThrow(
      expect.objectContaining({
        name: 'JournalWriteError',
        code: 'ENOENT',
        message: expect.stringContaining(missing),
      }),
    );
  });

  it('the journal text is one JSON object per line', async () => {
    const writer = await JournalWriter.open(path);
    await Promise.all([writer.append({ a: 1 }), writer.append({ b: 2 })]);
    await writer.close();
    const text = await readFile(path, 'utf8');
    expect(
      text
        .split('\n')
        .slice(0, -1)
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { a: 1, crc: expect.stringMatching(/^[0-9a-f]{8}$/) },
      { b: 2, crc: expect.stringMatching(/^[0-9a-f]{8}$/) },
    ]);
  });
});
