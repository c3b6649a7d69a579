// `--trace FILE`: each batch of finished spans becomes one line of the file, an OTLP
// ExportTraceServiceRequest in OTLP/JSON — the very bytes the OTLP/HTTP exporter would POST (the SDK's own
// serializer makes them), so any OTLP tool reads the file line by line.
import { closeSync, writeSync } from 'node:fs';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

type ResultCallback = Parameters<SpanExporter['export']>[1];
type ExportResult = Parameters<ResultCallback>[0];

// ExportResultCode (from @opentelemetry/core, which the SDK uses but this package does not depend on).
const SUCCESS = 0 as ExportResult['code'];
const FAILED = 1 as ExportResult['code'];

const NEWLINE = Buffer.from('\n');

export class OtlpJsonFileExporter implements SpanExporter {
  #fd: number | undefined;

  /** `fd`: the file, opened for appending by the caller (so a bad path is a usage error before the run). */
  constructor(fd: number) {
    this.#fd = fd;
  }

  export(spans: ReadableSpan[], resultCallback: ResultCallback): void {
    const fd = this.#fd;
    if (fd === undefined) {
      resultCallback({ code: FAILED, error: new Error('the trace file is already closed') });
      return;
    }
    try {
      const body = JsonTraceSerializer.serializeRequest(spans);
      if (body === undefined) throw new Error('the spans could not be serialized as OTLP JSON');
      // One write per line: lines of runs appending to the same file at once do not interleave.
      const line = Buffer.concat([body, NEWLINE]);
      let off = 0;
      while (off < line.length) off += writeSync(fd, line, off, line.length - off);
      resultCallback({ code: SUCCESS });
    } catch (err) {
      resultCallback({ code: FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) closeSync(fd);
  }
}
