import { describe, expect, it } from 'vitest';
import { LineSplitter, Tail } from '../../src/exec/output.js';

function lines(max?: number): { s: LineSplitter; got: string[] } {
  const got: string[] = [];
  return { s: new LineSplitter((l) => got.push(l), max), got };
}

describe('the kept output tail', () => {
  it('never splices a line of one stream into a line the other stream has not finished', () => {
    const t = new Tail(64 * 1024);
    t.push(Buffer.from('out-1\nout-2 first half '), 'stdout');
    t.push(Buffer.from('err-1\n'), 'stderr');
    t.push(Buffer.from('second half\nout-3'), 'stdout');
    t.push(Buffer.from('err-2 no newline'), 'stderr');
    t.end();
    expect(t.toString().split('\n')).toEqual([
      'out-1',
      'err-1',
      'out-2 first half second half',
      'out-3',
      'err-2 no newline',
    ]);
  });

  it('keeps memory bounded: a line longer than the tail goes in before its newline arrives', () => {
    const t = new Tail(100);
    for (let i = 0; i < 50; i++) t.push(Buffer.from('x'.repeat(10)), 'stdout');
    expect(t.empty).toBe(false);
    t.end();
    expect(t.toString()).toBe('x'.repeat(100));
  });

  it('reports no output for a silent process', () => {
    const t = new Tail(100);
    t.end();
    expect(t.empty).toBe(true);
    expect(t.bytes().length).toBe(0);
  });

  it('keeps raw bytes within the limit, whatever they are', () => {
    const t = new Tail(1024);
    const noise = Buffer.alloc(10_000);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 256;
    t.push(noise, 'stdout');
    t.end();
    expect(t.bytes().length).toBeLessThanOrEqual(1024);
    expect(t.bytes().length).toBeGreaterThan(1020);
  });

  it('starts the kept bytes at a character, not inside a multi-byte sequence', () => {
    const t = new Tail(10);
    t.push(Buffer.from('ééééééééé\n'), 'stdout');
    t.end();
    expect(t.toString()).not.toContain('\uFFFD');
  });
});

describe('line splitting', () => {
  it('decodes multi-byte characters split across chunks', () => {
    const { s, got } = lines();
    const b = Buffer.from('héllo wörld\n');
    for (let i = 0; i < b.length; i++) s.push(b.subarray(i, i + 1));
    s.end();
    expect(got).toEqual(['héllo wörld']);
  });

  it('hands out the last line without a newline at the end', () => {
    const { s, got } = lines();
    s.push(Buffer.from('a\nb\nc'));
    s.end();
    expect(got).toEqual(['a', 'b', 'c']);
  });

  it('cuts a long line at the cap and skips its rest, then goes on', () => {
    const { s, got } = lines(8);
    s.push(Buffer.from('0123456789'));
    s.push(Buffer.from('abcdef'));
    s.push(Buffer.from('ghi\nnext\n'));
    s.end();
    expect(got).toEqual(['01234567 …[line cut]', 'next']);
  });

  it('is linear: a 64 MB line in 64 KiB chunks keeps at most the cap', () => {
    const { s, got } = lines(1000);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const t0 = performance.now();
    for (let i = 0; i < 1024; i++) s.push(chunk);
    s.push(Buffer.from('\n'));
    s.end();
    expect(got).toHaveLength(1);
    expect(got[0]?.startsWith('a'.repeat(1000))).toBe(true);
    // Not a timing assertion on speed, only a bound that a quadratic join (minutes) could never meet.
    expect(performance.now() - t0).toBeLessThan(20_000);
  });
});
