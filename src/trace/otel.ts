// The OpenTelemetry half of tracing, imported only when tracing is on: the tracer provider, the OTLP/HTTP
// exporter and the file exporter, and the bounded flush at the end of the run.
import { hostname } from 'node:os';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type BufferConfig,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { RunHooks, RunOutcome } from '../session/run.js';
import type { TraceSettings } from './config.js';
import { OtlpJsonFileExporter } from './file-exporter.js';
import type { Tracing, TracingSetup } from './index.js';
import { RunTrace } from './spans.js';

/** The longest the end of a run waits for its spans to be exported. */
export const FLUSH_WAIT_MS = 5000;
/**
 * After a SIGINT/SIGTERM the run has promised to end within 5 s (3 s of them for the units' grace): the
 * spans get what is left.
 */
export const FLUSH_WAIT_SIGNALLED_MS = 1500;

type ResultCallback = Parameters<SpanExporter['export']>[1];

/** The first failure of each destination is kept, to be told once at the end. */
class Watched implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #onFailure: (err: unknown) => void;

  constructor(inner: SpanExporter, onFailure: (err: unknown) => void) {
    this.#inner = inner;
    this.#onFailure = onFailure;
  }

  export(spans: ReadableSpan[], resultCallback: ResultCallback): void {
    this.#inner.export(spans, (result) => {
      // ExportResultCode.SUCCESS is 0.
      if (result.code !== 0) this.#onFailure(result.error ?? new Error('export failed'));
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** A short reason for a failed export: the network error's code, the HTTP status, or the message. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    if (typeof code === 'number') return `HTTP ${code}${err.message ? ` ${err.message}` : ''}`;
    return err.message || (typeof code === 'string' ? code : err.name);
  }
  return String(err);
}

interface Destination {
  name: string;
  processor: SpanProcessor;
  failure?: string;
}

class OtelTracing implements Tracing {
  readonly #provider: BasicTracerProvider;
  readonly #destinations: Destination[];
  readonly #setup: TracingSetup;
  #broken = false;

  constructor(provider: BasicTracerProvider, destinations: Destination[], setup: TracingSetup) {
    this.#provider = provider;
    this.#destinations = destinations;
    this.#setup = setup;
  }

  async around(run: (hooks: RunHooks) => Promise<RunOutcome>, inner: RunHooks = {}): Promise<RunOutcome> {
    const rt = new RunTrace(
      this.#provider.getTracer('checkpoint', this.#setup.version),
      this.#setup.startedAt,
    );
    const hooks: RunHooks = {
      onEngine: (ckpt, engine, plan) => {
        this.#guard(() => rt.engine(ckpt, plan));
        inner.onEngine?.(ckpt, engine, plan);
      },
      onEvent: (ev) => {
        this.#guard(() => rt.event(ev));
        inner.onEvent?.(ev);
      },
    };
    let outcome: RunOutcome | undefined;
    let error: unknown;
    try {
      outcome = await run(hooks);
      return outcome;
    } catch (err) {
      error = err ?? new Error('unknown error');
      throw err;
    } finally {
      this.#guard(() => rt.finish(outcome, error));
      await this.#close(rt, outcome?.signal !== undefined);
    }
  }

  /** Tracing never breaks a run: a bug here turns tracing off with one warning. */
  #guard(fn: () => void): void {
    if (this.#broken) return;
    try {
      fn();
    } catch (err) {
      this.#broken = true;
      this.#setup.warn(
        `traces stopped: ${describeError(err)} (set CHECKPOINT_DEBUG=1 for details; please report it); the run goes on`,
      );
      if (process.env.CHECKPOINT_DEBUG === '1') this.#setup.warn(String((err as Error).stack));
    }
  }

  /** Exports what is left and shuts the exporters down, waiting a bounded time; says once what failed. */
  async #close(rt: RunTrace, signalled: boolean): Promise<void> {
    const waitMs = signalled ? FLUSH_WAIT_SIGNALLED_MS : FLUSH_WAIT_MS;
    const finished = new Set<Destination>();
    let timer: NodeJS.Timeout | undefined;
    let onSignal: (() => void) | undefined;
    const work = (async () => {
      await rt.settled();
      await Promise.all(
        this.#destinations.map((d) =>
          d.processor.shutdown().then(
            () => finished.add(d),
            (err: unknown) => {
              d.failure ??= describeError(err);
              finished.add(d);
            },
          ),
        ),
      );
      return 'done' as const;
    })();
    const late = new Promise<'timeout' | 'signal'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), waitMs);
      // The run is over and its exit code decided: another Ctrl-C only cuts the wait short.
      onSignal = () => resolve('signal');
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
    const how = await Promise.race([work, late]);
    clearTimeout(timer);
    if (onSignal) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (how !== 'done') {
      for (const d of this.#destinations) {
        if (!finished.has(d))
          d.failure ??= how === 'timeout' ? `not done within ${waitMs / 1000} s` : 'cut short by a signal';
      }
      // Only the exporter's retries are left; they must not keep a finished command's process alive.
      if (this.#setup.exitWhenStuck) setTimeout(() => process.exit(), 100).unref();
    }
    const failed = this.#destinations.filter((d) => d.failure !== undefined);
    if (failed.length > 0) {
      this.#setup.warn(
        `${failed.map((d) => `could not export traces to ${d.name}: ${d.failure}`).join('; ')} ` +
          '(check that the collector is running and reachable; the run itself is unaffected)',
      );
    }
  }
}

/** Buffer sizes unless OTEL_BSP_* say otherwise: big plans end thousands of units between two exports. */
function bufferConfig(): BufferConfig {
  return process.env.OTEL_BSP_MAX_QUEUE_SIZE ? {} : { maxQueueSize: 16_384 };
}

export function createTracing(settings: TraceSettings, setup: TracingSetup): Tracing {
  const destinations: Destination[] = [];
  const add = (name: string, exporter: SpanExporter) => {
    const d: Destination = { name, processor: undefined as unknown as SpanProcessor };
    d.processor = new BatchSpanProcessor(
      new Watched(exporter, (err) => {
        d.failure ??= describeError(err);
      }),
      bufferConfig(),
    );
    destinations.push(d);
  };
  if (settings.endpoint !== undefined) {
    // Headers (OTEL_EXPORTER_OTLP_HEADERS), compression and a timeout the user set come from the environment
    // through the SDK. Without a timeout, an export gives up when the run's wait for it does.
    const timeoutSet =
      process.env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT || process.env.OTEL_EXPORTER_OTLP_TIMEOUT;
    add(
      `${settings.endpoint} (${settings.endpointVar})`,
      new OTLPTraceExporter({
        url: settings.endpoint,
        ...(timeoutSet ? {} : { timeoutMillis: FLUSH_WAIT_MS }),
      }),
    );
  }
  if (setup.fd !== undefined) add(settings.file ?? 'the trace file', new OtlpJsonFileExporter(setup.fd));
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the environment detector) win over these defaults.
  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: settings.serviceName,
        ...(setup.version !== undefined ? { [ATTR_SERVICE_VERSION]: setup.version } : {}),
        'host.name': hostname(),
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: destinations.map((d) => d.processor),
  });
  return new OtelTracing(provider, destinations, setup);
}
