import { describe, expect, it } from 'vitest';
import { type UnitBackend, type UnitExit, UnitProcess } from '../../src/engine/process.js';

type Feed = (chunk: string, stream: 'stdout' | 'stderr') => void;

/** A backend driven by the test: output arrives in exactly the chunks and order the test gives. */
function scripted(): { backend: UnitBackend; feed: Feed; exit: () => void } {
  let sink: ((chunk: Buffer, stream: 'stdout' | 'stderr') => void) | undefined;
  let resolve: ((e: Omit<UnitExit, 'ms' | 'endedBy'>) => void) | undefined;
  const exited = new Promise<Omit<UnitExit, 'ms' | 'endedBy'>>((r) => {
    resolve = r;
  });
  return {
    backend: {
      pid: undefined,
      setOutput: (fn) => {
        sink = fn;
      },
      exited,
    },
    feed: (chunk, stream) => sink?.(Buffer.from(chunk), stream),
    exit: () => resolve?.({ code: 0, signal: null }),
  };
}

describe('the kept output tail', () => {
  it('never splices a line of one stream into a line the other stream has not finished', async () => {
    const s = scripted();
    const proc = new UnitProcess({ argv: ['x'], cwd: '/', env: {} }, s.backend);
    s.feed('out-1\nout-2 first half ', 'stdout');
    s.feed('err-1\n', 'stderr');
    s.feed('second half\nout-3', 'stdout');
    s.feed('err-2 no newline', 'stderr');
    s.exit();
    await proc.exited;
    expect(proc.tail().split('\n')).toEqual([
      'out-1',
      'err-1',
      'out-2 first half second half',
      'out-3',
      'err-2 no newline',
    ]);
  });

  it('keeps memory bounded: a line longer than the tail goes in before its newline arrives', async () => {
    const s = scripted();
    const proc = new UnitProcess({ argv: ['x'], cwd: '/', env: {}, tailBytes: 100 }, s.backend);
    for (let i = 0; i < 50; i++) s.feed('x'.repeat(10), 'stdout');
    expect(proc.hasOutput).toBe(true);
    s.exit();
    await proc.exited;
    expect(proc.tail()).toBe('x'.repeat(100));
  });

  it('reports no output for a silent unit', async () => {
    const s = scripted();
    const proc = new UnitProcess({ argv: ['x'], cwd: '/', env: {} }, s.backend);
    s.exit();
    await proc.exited;
    expect(proc.hasOutput).toBe(false);
    expect(proc.tail()).toBe('');
  });
});
