// Plumbing shared by the fake cache and artifact services: a node:http server on an ephemeral port,
// Twirp-style JSON replies, per-method request counts and runtime-switchable faults.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * - `outage`: HTTP 500 with a Twirp `internal` body (both libraries retry it 5 times with backoff).
 * - `unreachable`: the connection is reset before any reply, as when the service is down or blocked
 *   (the client sees ECONNRESET, which both Twirp clients treat as a network error and do not retry).
 * - `throttle`: HTTP 429 with `Retry-After`, a Twirp `resource_exhausted` body.
 * - `write-denied` / `read-denied`: what the service answers a read-only (or no-cache) runtime token;
 *   only meaningful for the methods that write or read, the others answer normally.
 * - `hang`: the request is read and never answered (the connection stays open), so only a client-side
 *   timeout ends it. Hung requests end when the service is closed.
 * - `cut`: the connection closes in the middle of the transfer that matters. For a method that hands out a
 *   blob URL (cache CreateCacheEntry / GetCacheEntryDownloadURL, artifact CreateArtifact /
 *   GetSignedArtifactURL / downloadArtifact) the method answers normally and the blob upload or download
 *   through that URL is cut halfway (see blob-proxy.ts); any other method sends its status line and half
 *   its body, then resets the connection.
 * - `truncate`: like `cut`, but the transfer ends cleanly, short: a download is served as its first half
 *   with a Content-Length that matches (so the client's own length check passes); any other method
 *   answers half its JSON body. On an upload URL it has no effect (the fake stores what it is sent).
 */
export type FaultMode =
  | 'none'
  | 'outage'
  | 'unreachable'
  | 'throttle'
  | 'write-denied'
  | 'read-denied'
  | 'hang'
  | 'cut'
  | 'truncate'
  /** A blob download that answers late and trickles (still moving, never silent for long). */
  | 'slow';

/** The modes that act on a blob transfer when the method hands out a blob URL. */
export type BlobFault = 'cut' | 'truncate' | 'slow';
export function isBlobFault(mode: FaultMode): mode is BlobFault {
  return mode === 'cut' || mode === 'truncate' || mode === 'slow';
}

/** Faults switchable while a test runs: one mode for every method, overridable per method. */
export class FaultSwitch<M extends string> {
  #all: FaultMode = 'none';
  readonly #perMethod = new Map<M, FaultMode>();

  /** With `methods`, only those change; without, the mode applies to every method (per-method ones reset). */
  set(mode: FaultMode, methods?: Iterable<M>): void {
    if (methods === undefined) {
      this.#all = mode;
      this.#perMethod.clear();
      return;
    }
    for (const m of methods) this.#perMethod.set(m, mode);
  }

  for(method: M): FaultMode {
    return this.#perMethod.get(method) ?? this.#all;
  }
}

/** How many requests each method received, faulted ones included (that is what retry tests count). */
export class RequestCounter<M extends string> {
  readonly #counts = new Map<M, number>();

  hit(method: M): void {
    this.#counts.set(method, (this.#counts.get(method) ?? 0) + 1);
  }

  get(method: M): number {
    return this.#counts.get(method) ?? 0;
  }

  snapshot(): Partial<Record<M, number>> {
    return Object.fromEntries(this.#counts) as Partial<Record<M, number>>;
  }

  reset(): void {
    this.#counts.clear();
  }
}

/**
 * Faults that shape the reply rather than replace it (`cut`, `truncate` on methods without a blob URL):
 * set on a response before the method's handler answers; sendJson applies them.
 */
const replyFaults = new WeakMap<ServerResponse, BlobFault>();

export function shapeReply(res: ServerResponse, mode: BlobFault): void {
  replyFaults.set(res, mode);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = Buffer.from(JSON.stringify(body));
  const fault = replyFaults.get(res);
  const half = text.subarray(0, Math.floor(text.length / 2));
  res.writeHead(status, {
    'content-type': 'application/json',
    // `cut` promises the whole body and breaks off; `truncate` announces the short body it sends.
    'content-length': fault === 'truncate' ? half.length : text.length,
    ...headers,
  });
  if (fault === 'cut') {
    res.write(half, () => res.socket?.destroy());
    return;
  }
  res.end(fault === 'truncate' ? half : text);
}

/** Twirp's error shape: the clients read `msg` (and look for stable prefixes in it). */
export function twirpError(
  res: ServerResponse,
  status: number,
  code: string,
  msg: string,
  headers?: Record<string, string>,
): void {
  sendJson(res, status, { code, msg }, headers);
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = (await readBody(req)).toString('utf8');
  if (raw === '') return {};
  const parsed: unknown = JSON.parse(raw);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('request body is not a JSON object');
  }
  return parsed as Record<string, unknown>;
}

export function str(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  return typeof v === 'string' ? v : '';
}

/**
 * Answers the transport-level faults the same way for every service; returns true when it did.
 * `write-denied` / `read-denied` are left to the service, whose answer depends on the method.
 */
export function applyTransportFault(
  mode: FaultMode,
  req: IncomingMessage,
  res: ServerResponse,
  kind: 'twirp' | 'rest',
): boolean {
  switch (mode) {
    case 'unreachable':
      // Drop the connection without a status line: the client's request fails with ECONNRESET.
      req.socket.destroy();
      return true;
    case 'outage':
      if (kind === 'twirp') twirpError(res, 500, 'internal', 'injected outage: internal error');
      else sendJson(res, 500, { message: 'Server Error' });
      return true;
    case 'hang':
      // Read nothing, answer nothing; the socket is destroyed by the client's timeout or by close().
      req.resume();
      return true;
    case 'throttle':
      if (kind === 'twirp') {
        twirpError(res, 429, 'resource_exhausted', 'injected throttle: too many requests', {
          'retry-after': '60',
        });
      } else {
        // Octokit's retry plugin waits its own schedule; a Retry-After would not shorten it.
        sendJson(res, 429, { message: 'API rate limit exceeded' }, { 'x-ratelimit-remaining': '0' });
      }
      return true;
    default:
      return false;
  }
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export interface HttpService {
  /** Origin, e.g. `http://127.0.0.1:40123` (no trailing slash). */
  url: string;
  /** Requests no handler claimed, so tests can assert a library never called something unexpected. */
  unhandled(): string[];
  close(): Promise<void>;
}

/** Serves `handlers` in order until one claims the request; 404 otherwise. */
export async function startHttpService(handlers: Handler[]): Promise<HttpService> {
  const unhandled: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      for (const h of handlers) {
        if (await h(req, res)) return;
      }
      unhandled.push(`${req.method} ${req.url}`);
      sendJson(res, 404, { message: 'Not Found' });
    })().catch((err: unknown) => {
      // A bug in a fake must surface as a loud 500 the test can see, not as a hung request.
      if (!res.headersSent) sendJson(res, 500, { code: 'internal', msg: `fake service bug: ${String(err)}` });
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    unhandled: () => [...unhandled],
    async close() {
      // Keep-alive sockets would hold close() open until they time out.
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
