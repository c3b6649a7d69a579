// CHECKPOINT_OUTPUT files use GITHUB_OUTPUT's syntax: `key=value` lines and `key<<DELIM` heredocs.
import { CheckpointError, EXIT_FAILED } from '../errors.js';

export class OutputSyntaxError extends CheckpointError {
  override name = 'OutputSyntaxError';
  readonly exitCode = EXIT_FAILED;
}

export function parseOutputFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    const heredoc = /^([^=<\s][^=<]*?)<<(.+)$/.exec(line);
    if (heredoc) {
      const key = heredoc[1] as string;
      const delim = heredoc[2] as string;
      const body: string[] = [];
      let j = i + 1;
      for (; j < lines.length && lines[j] !== delim; j++) body.push(lines[j] ?? '');
      if (j >= lines.length) {
        throw new OutputSyntaxError(
          `${file}:${i + 1}: output "${key}" opens a heredoc with delimiter "${delim}" that is never closed; end it with a line holding only ${delim}`,
        );
      }
      out[key] = body.join('\n');
      i = j;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) {
      throw new OutputSyntaxError(
        `${file}:${i + 1}: expected key=value or key<<DELIMITER, got ${JSON.stringify(line.slice(0, 60))}`,
      );
    }
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}
