import { describe, expect, it } from 'vitest';
import { OutputSyntaxError, parseOutputFile } from '../../src/engine/outputs.js';
import { retryDelayMs } from '../../src/engine/retry.js';

describe('parseOutputFile', () => {
  it('reads key=value lines and heredocs, later keys win', () => {
    const text = 'a=1\nb=x=y\nnotes<<EOF\nline 1\n\nline 3\nEOF\na=2\n';
    expect(parseOutputFile(text, 'f')).toEqual({ a: '2', b: 'x=y', notes: 'line 1\n\nline 3' });
  });
  it('names the file, the line and the fix for bad lines and unclosed heredocs', () => {
    expect(() => parseOutputFile('just text\n', 'out')).toThrow(OutputSyntaxError);
    expect(() => parseOutputFile('just text\n', 'out')).toThrow(
      /^out:1: expected key=value or key<<DELIMITER, got "just text"/,
    );
    expect(() => parseOutputFile('k<<END\nabc\n', 'out')).toThrow(
      /out:1: output "k" opens a heredoc .* never closed; end it with a line holding only END/,
    );
  });
});

describe('retryDelayMs', () => {
  const policy = { attempts: 5, delayMs: 1000, backoff: 2, maxDelayMs: 5000 };
  it('grows exponentially, is capped, and keeps half of the delay fixed (equal jitter)', () => {
    expect(retryDelayMs(policy, 2, () => 0)).toBe(500);
    expect(retryDelayMs(policy, 2, () => 1)).toBe(1000);
    expect(retryDelayMs(policy, 3, () => 1)).toBe(2000);
    expect(retryDelayMs(policy, 4, () => 0.5)).toBe(3000);
    expect(retryDelayMs(policy, 10, () => 1)).toBe(5000);
  });
});
