// The pieces of tracing that need no run: when tracing is on, what a unit's end says about its process,
// and the test receiver's protobuf reader (checked against the SDK's own JSON and protobuf serializers).

import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { traceConfig } from '../../src/trace/config.js';
import { describeError } from '../../src/trace/otel.js';
import { exitFacts } from '../../src/trace/spans.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';

describe('traceConfig', () => {
  it('is off without an endpoint or a file', () => {
    expect(traceConfig({})).toEqual({ warnings: [] });
    expect(traceConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toEqual({ warnings: [] });
  });

  it('appends v1/traces to the generic endpoint and takes the traces endpoint as it is', () => {
    expect(traceConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).settings).toEqual({
      serviceName: 'checkpoint',
      endpoint: 'http://c:4318/v1/traces',
      endpointVar: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    });
    expect(traceConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/otlp/' }).settings?.endpoint).toBe(
      'http://c:4318/otlp/v1/traces',
    );
    expect(
      traceConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t/x',
        OTEL_SERVICE_NAME: 'svc',
      }).settings,
    ).toEqual({
      serviceName: 'svc',
      endpoint: 'https://t/x',
      endpointVar: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    });
  });

  it('honours OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none for the environment, never for --trace', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    expect(traceConfig({ ...env, OTEL_SDK_DISABLED: 'true' }).settings).toBeUndefined();
    expect(traceConfig({ ...env, OTEL_TRACES_EXPORTER: 'none' }).settings).toBeUndefined();
    expect(traceConfig({ ...env, OTEL_SDK_DISABLED: 'true' }, 't.jsonl').settings).toEqual({
      serviceName: 'checkpoint',
      file: 't.jsonl',
    });
  });

  it('warns about an endpoint that is not an http(s) URL and leaves it out', () => {
    const r = traceConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://c:4317' }, 'f');
    expect(r.settings).toEqual({ serviceName: 'checkpoint', file: 'f' });
    expect(r.warnings).toEqual([
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "grpc://c:4317" is not an http(s) URL; traces are not sent. Set it to the collector\'s OTLP/HTTP address, e.g. http://localhost:4318',
    ]);
  });
});

describe('exitFacts', () => {
  const unit = { step: 's', start: 0, end: 1, index: 0 };
  it('reads the exit code or the signal from the engine’s failure detail', () => {
    expect(exitFacts({ type: 'unit-end', unit, result: 'done', ms: 1 })).toEqual({ code: 0 });
    expect(exitFacts({ type: 'unit-end', unit, result: 'yielded', ms: 1 })).toEqual({ code: 75 });
    expect(exitFacts({ type: 'unit-end', unit, result: 'interrupted', ms: 1, detail: 'x' })).toEqual({});
    expect(
      exitFacts({
        type: 'unit-end',
        unit,
        result: 'failed',
        ms: 1,
        detail: 'b [0, 5): exit code 3 (try 2 of 2)',
      }),
    ).toEqual({ code: 3 });
    expect(
      exitFacts({
        type: 'unit-end',
        unit,
        result: 'retry',
        ms: 1,
        detail: 'b: killed by SIGKILL (try 1 of 3); retrying in 1s',
      }),
    ).toEqual({ signal: 'SIGKILL' });
    expect(
      exitFacts({
        type: 'unit-end',
        unit,
        result: 'failed',
        ms: 1,
        detail: 'b: timed out after 1s (try 1 of 1)',
      }),
    ).toEqual({});
  });
});

describe('describeError', () => {
  it('names the network error, the HTTP status or the message', () => {
    const refused = Object.assign(new Error(''), { code: 'ECONNREFUSED' });
    expect(describeError(new AggregateError([refused], ''))).toBe('ECONNREFUSED');
    expect(describeError(Object.assign(new Error('Not Found'), { code: 404 }))).toBe('HTTP 404 Not Found');
    expect(describeError(new Error('connect ECONNREFUSED 127.0.0.1:9'))).toBe(
      'connect ECONNREFUSED 127.0.0.1:9',
    );
  });
});

describe('the test receiver', () => {
  let receiver: OtlpReceiver | undefined;
  afterEach(async () => {
    await receiver?.close();
  });

  it('decodes protobuf requests to the same spans as JSON ones', async () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'svc' }),
      spanProcessors: [new SimpleSpanProcessor(memory)],
    });
    const tracer = provider.getTracer('scope');
    const root = tracer.startSpan('root', { startTime: 1_700_000_000_123.25 });
    const child = tracer.startSpan(
      'child',
      { attributes: { s: 'x', i: -7, d: 1.5, b: true, arr: ['a', 'b'] } },
      trace.setSpan(ROOT_CONTEXT, root),
    );
    child.addEvent('note', { message: 'hello' });
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    child.end();
    root.end();
    const spans = memory.getFinishedSpans();
    receiver = await startOtlpReceiver();
    for (const [type, body] of [
      ['application/json', JsonTraceSerializer.serializeRequest(spans)],
      ['application/x-protobuf', ProtobufTraceSerializer.serializeRequest(spans)],
    ] as const) {
      const res = await fetch(`${receiver.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': type },
        body: body as Uint8Array<ArrayBuffer>,
      });
      expect(res.status).toBe(200);
    }
    const got = receiver.spans;
    expect(got).toHaveLength(4);
    expect(got.slice(2)).toEqual(got.slice(0, 2));
    const c = got.find((s) => s.name === 'child');
    expect(c).toMatchObject({
      attributes: { s: 'x', i: -7, d: 1.5, b: true, arr: ['a', 'b'] },
      status: { code: 2, message: 'boom' },
      resource: { 'service.name': 'svc' },
      scope: 'scope',
    });
    expect(c?.events.map((e) => [e.name, e.attributes])).toEqual([['note', { message: 'hello' }]]);
    expect(got.find((s) => s.name === 'root')?.start).toBe(1_700_000_000_123_250_000n);
    expect(c?.parentSpanId).toBe(got.find((s) => s.name === 'root')?.spanId);
    await provider.shutdown();
  });
});
