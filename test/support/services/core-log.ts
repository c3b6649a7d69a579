// Captures what @actions/core prints while a library call runs. core writes workflow commands
// (`::warning::`, `::error::`, `::debug::`, `::add-mask::`) and plain info lines straight to
// process.stdout, so that is where "did it warn or stay silent" can be observed.
export interface CoreLog {
  /** Every line written, in order. */
  lines: string[];
  warnings(): string[];
  errors(): string[];
  /** Plain lines (core.info), workflow commands excluded. */
  infos(): string[];
  restore(): void;
}

function commandLines(lines: string[], command: string): string[] {
  const prefix = `::${command}`;
  return lines
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(l.indexOf('::', prefix.length) + 2))
    .map((l) => l.replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%'));
}

/** Swallows stdout until restore(); pass `echo: true` to keep printing it too. */
export function captureCore(opts: { echo?: boolean } = {}): CoreLog {
  const lines: string[] = [];
  let partial = '';
  const original = process.stdout.write;
  const patched = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    // rest is write's optional (encoding, callback) pair, forwarded untouched.
    if (opts.echo) return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    const cb = rest.find((r): r is () => void => typeof r === 'function');
    cb?.();
    return true;
  };
  process.stdout.write = patched as typeof process.stdout.write;
  return {
    lines,
    warnings: () => commandLines(lines, 'warning'),
    errors: () => commandLines(lines, 'error'),
    infos: () => lines.filter((l) => !l.startsWith('::')),
    restore() {
      if (partial) lines.push(partial);
      partial = '';
      process.stdout.write = original;
    },
  };
}

/** Runs `fn` with stdout captured and always restores it. */
export async function withCoreLog<T>(fn: () => Promise<T>): Promise<{ result: T; log: CoreLog }> {
  const log = captureCore();
  try {
    return { result: await fn(), log };
  } finally {
    log.restore();
  }
}

/** Like withCoreLog, for calls expected to reject: the rejection is returned, not thrown. */
export async function settleWithCoreLog<T>(
  fn: () => Promise<T>,
): Promise<{ result?: T; error?: Error; log: CoreLog }> {
  const log = captureCore();
  try {
    return { result: await fn(), log };
  } catch (err) {
    return { error: err instanceof Error ? err : new Error(String(err)), log };
  } finally {
    log.restore();
  }
}
