// A local OTLP/HTTP trace receiver for tests: `POST /v1/traces` with OTLP JSON (what
// @opentelemetry/exporter-trace-otlp-http sends) or OTLP protobuf (decoded by the small wire-format reader
// below), optionally gzipped. It keeps every span, flattened with its resource, and the request headers.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type AttrValue = string | number | boolean | AttrValue[] | { [k: string]: AttrValue } | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  /** Unix nanoseconds. */
  start: bigint;
  end: bigint;
  attributes: Record<string, AttrValue>;
  status: { code: number; message?: string };
  events: Array<{ name: string; time: bigint; attributes: Record<string, AttrValue> }>;
  resource: Record<string, AttrValue>;
  scope: string;
}

// ---- OTLP JSON (the protobuf JSON mapping: hex ids, int64 as strings or numbers) ----

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
  bytesValue?: string;
}
interface JsonKeyValue {
  key: string;
  value?: JsonAnyValue;
}
interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: JsonKeyValue[];
  status?: { code?: number; message?: string };
  events?: Array<{ name: string; timeUnixNano: string | number; attributes?: JsonKeyValue[] }>;
}
export interface ExportTraceServiceRequestJson {
  resourceSpans?: Array<{
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string; version?: string }; spans?: JsonSpan[] }>;
  }>;
}

function anyValue(v: JsonAnyValue | undefined): AttrValue {
  if (v === undefined) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue !== undefined) return attrs(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return v.bytesValue;
  return null;
}

function attrs(kvs: JsonKeyValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of kvs ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

/** The spans of one ExportTraceServiceRequest in OTLP JSON (a POST body, or one line of a `--trace` file). */
export function spansFromJson(req: ExportTraceServiceRequestJson): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ? s.parentSpanId : undefined,
          name: s.name,
          start: BigInt(s.startTimeUnixNano),
          end: BigInt(s.endTimeUnixNano),
          attributes: attrs(s.attributes),
          status: {
            code: s.status?.code ?? 0,
            ...(s.status?.message ? { message: s.status.message } : {}),
          },
          events: (s.events ?? []).map((e) => ({
            name: e.name,
            time: BigInt(e.timeUnixNano),
            attributes: attrs(e.attributes),
          })),
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

// ---- OTLP protobuf: just enough of the wire format for ExportTraceServiceRequest ----

type Field = { no: number; wire: number; int: bigint; bytes: Uint8Array };

function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[pos++];
      if (b === undefined) throw new Error('protobuf: truncated varint');
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  const fixed = (n: number): bigint => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[pos + i] ?? 0);
    pos += n;
    return v;
  };
  const none = new Uint8Array(0);
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield { no, wire, int: varint(), bytes: none };
    else if (wire === 1) yield { no, wire, int: fixed(8), bytes: none };
    else if (wire === 5) yield { no, wire, int: fixed(4), bytes: none };
    else if (wire === 2) {
      const len = Number(varint());
      const bytes = buf.subarray(pos, pos + len);
      pos += len;
      yield { no, wire, int: 0n, bytes };
    } else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
}

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function pbAnyValue(buf: Uint8Array): JsonAnyValue {
  for (const f of fields(buf)) {
    if (f.no === 1) return { stringValue: text(f.bytes) };
    if (f.no === 2) return { boolValue: f.int !== 0n };
    if (f.no === 3) return { intValue: BigInt.asIntN(64, f.int).toString() };
    if (f.no === 4) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(f.int);
      return { doubleValue: b.readDoubleLE() };
    }
    if (f.no === 5) {
      const values: JsonAnyValue[] = [];
      for (const g of fields(f.bytes)) if (g.no === 1) values.push(pbAnyValue(g.bytes));
      return { arrayValue: { values } };
    }
    if (f.no === 6) {
      const values: JsonKeyValue[] = [];
      for (const g of fields(f.bytes)) if (g.no === 1) values.push(pbKeyValue(g.bytes));
      return { kvlistValue: { values } };
    }
    if (f.no === 7) return { bytesValue: Buffer.from(f.bytes).toString('base64') };
  }
  return {};
}

function pbKeyValue(buf: Uint8Array): JsonKeyValue {
  const kv: JsonKeyValue = { key: '' };
  for (const f of fields(buf)) {
    if (f.no === 1) kv.key = text(f.bytes);
    else if (f.no === 2) kv.value = pbAnyValue(f.bytes);
  }
  return kv;
}

function pbSpan(buf: Uint8Array): JsonSpan {
  const s: JsonSpan = { traceId: '', spanId: '', name: '', startTimeUnixNano: '0', endTimeUnixNano: '0' };
  const attributes: JsonKeyValue[] = [];
  const events: NonNullable<JsonSpan['events']> = [];
  for (const f of fields(buf)) {
    if (f.no === 1) s.traceId = hex(f.bytes);
    else if (f.no === 2) s.spanId = hex(f.bytes);
    else if (f.no === 4) s.parentSpanId = hex(f.bytes);
    else if (f.no === 5) s.name = text(f.bytes);
    else if (f.no === 7) s.startTimeUnixNano = f.int.toString();
    else if (f.no === 8) s.endTimeUnixNano = f.int.toString();
    else if (f.no === 9) attributes.push(pbKeyValue(f.bytes));
    else if (f.no === 11) {
      const e = { name: '', timeUnixNano: '0', attributes: [] as JsonKeyValue[] };
      for (const g of fields(f.bytes)) {
        if (g.no === 1) e.timeUnixNano = g.int.toString();
        else if (g.no === 2) e.name = text(g.bytes);
        else if (g.no === 3) e.attributes.push(pbKeyValue(g.bytes));
      }
      events.push(e);
    } else if (f.no === 15) {
      const st: { code?: number; message?: string } = {};
      for (const g of fields(f.bytes)) {
        if (g.no === 2) st.message = text(g.bytes);
        else if (g.no === 3) st.code = Number(g.int);
      }
      s.status = st;
    }
  }
  s.attributes = attributes;
  s.events = events;
  return s;
}

/** An ExportTraceServiceRequest in protobuf, turned into its OTLP JSON form. */
export function decodeProtobufRequest(buf: Uint8Array): ExportTraceServiceRequestJson {
  const resourceSpans: NonNullable<ExportTraceServiceRequestJson['resourceSpans']> = [];
  for (const f of fields(buf)) {
    if (f.no !== 1) continue;
    const rs: (typeof resourceSpans)[number] = { scopeSpans: [] };
    for (const g of fields(f.bytes)) {
      if (g.no === 1) {
        const attributes: JsonKeyValue[] = [];
        for (const h of fields(g.bytes)) if (h.no === 1) attributes.push(pbKeyValue(h.bytes));
        rs.resource = { attributes };
      } else if (g.no === 2) {
        const ss: { scope?: { name?: string }; spans: JsonSpan[] } = { spans: [] };
        for (const h of fields(g.bytes)) {
          if (h.no === 1) {
            for (const k of fields(h.bytes)) if (k.no === 1) ss.scope = { name: text(k.bytes) };
          } else if (h.no === 2) ss.spans.push(pbSpan(h.bytes));
        }
        rs.scopeSpans?.push(ss);
      }
    }
    resourceSpans.push(rs);
  }
  return { resourceSpans };
}

// ---- the server ----

export interface OtlpReceiver {
  /** Base URL, for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends `/v1/traces`). */
  url: string;
  spans: ReceivedSpan[];
  /** Headers and content type of every accepted request. */
  requests: Array<{ headers: IncomingHttpHeaders; contentType: string }>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type =
        String(req.headers['content-type'] ?? '')
          .split(';')[0]
          ?.trim() ?? '';
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        let doc: ExportTraceServiceRequestJson;
        if (type === 'application/json')
          doc = JSON.parse(body.toString('utf8')) as ExportTraceServiceRequestJson;
        else if (type === 'application/x-protobuf') doc = decodeProtobufRequest(body);
        else {
          res.writeHead(415).end();
          return;
        }
        spans.push(...spansFromJson(doc));
        requests.push({ headers: req.headers, contentType: type });
        res.writeHead(200, { 'content-type': type }).end(type === 'application/json' ? '{}' : undefined);
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A local port nothing listens on (bound, then released): a dead collector. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The spans as a tree: the roots, and each span's children (ordered by start time). */
export function spanTree(spans: ReceivedSpan[]): {
  roots: ReceivedSpan[];
  children: (s: ReceivedSpan) => ReceivedSpan[];
} {
  const byStart = (a: ReceivedSpan, b: ReceivedSpan) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);
  const kids = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    if (s.parentSpanId === undefined) continue;
    const list = kids.get(s.parentSpanId) ?? [];
    list.push(s);
    kids.set(s.parentSpanId, list);
  }
  return {
    roots: spans.filter((s) => s.parentSpanId === undefined).sort(byStart),
    children: (s) => [...(kids.get(s.spanId) ?? [])].sort(byStart),
  };
}
