// A pass-through in front of Azurite for the blob transfers the `cut` and `truncate` faults act on. The fake
// services hand out Azurite SAS URLs; when a blob fault is set on the method that hands one out, the URL is
// rewritten to this proxy (same path and query, so the SAS signature, which covers the account, container
// and blob but not the host, stays valid) and the proxy misbehaves on that one blob:
//  - `cut` upload: reads half of the request body, then resets the connection (nothing reaches Azurite).
//  - `cut` download: sends the headers with the full Content-Length and half the body, then resets.
//  - `truncate` download: sends the first half of the blob with a Content-Length that matches, cleanly.
//  - `truncate` upload: passed through untouched.
// Everything else (the Azure SDK's block uploads and commits, HEAD requests) is passed through.
import { once } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { BlobFault } from './http.js';

export interface BlobProxy {
  url: string;
  /** A URL for `sasUrl` whose transfers suffer `mode`. */
  route(sasUrl: string, mode: BlobFault): string;
  /** Transfers the proxy broke, by mode and direction, e.g. `cut upload`. */
  broken(): string[];
  /** Requests for faulted blobs, as `METHOD range` (`x-ms-range` / `range`, '' when whole). */
  requests(): string[];
  close(): Promise<void>;
}

/** github.com's blob host: @actions/cache downloads from it with the Azure SDK (see cache-service.ts). */
export const AZURE_BLOB_SUFFIX = '.blob.core.windows.net';

function forwardHeaders(h: IncomingHttpHeaders, host: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && k !== 'host') out[k] = v;
  // A production-style host names the account (Azurite reads it from the first label): keep it.
  const asked = h.host ?? '';
  out.host = asked.split(':')[0]?.endsWith(AZURE_BLOB_SUFFIX) ? asked : host;
  return out;
}

/** How `slow` answers: late, then in small pieces with pauses, never silent for as long as a watchdog. */
const SLOW_FIRST_MS = 1_500;
const SLOW_PIECES = 8;
const SLOW_GAP_MS = 150;

export async function startBlobProxy(azuriteUrl: string): Promise<BlobProxy> {
  const upstream = new URL(azuriteUrl);
  const faults = new Map<string, BlobFault>();
  const broken: string[] = [];
  const sockets = new Set<Socket>();

  const pass = (req: IncomingMessage, res: ServerResponse, shape?: (up: IncomingMessage) => void) => {
    const up = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: forwardHeaders(req.headers, upstream.host),
      },
      (upRes) => {
        if (shape) return shape(upRes);
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  };

  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const mode = faults.get(path);
    if (mode !== undefined)
      seen.push(`${req.method} ${String(req.headers['x-ms-range'] ?? req.headers.range ?? '')}`.trim());
    const upload = req.method === 'PUT';
    if (mode === 'cut' && upload) {
      const declared = Number(req.headers['content-length'] ?? 0);
      let seen = 0;
      req.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen >= declared / 2) {
          broken.push('cut upload');
          req.socket.destroy();
        }
      });
      return;
    }
    if (mode !== undefined && req.method === 'GET') {
      return pass(req, res, (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const body = Buffer.concat(chunks);
          const half = body.subarray(0, Math.floor(body.length / 2));
          const headers = { ...upRes.headers };
          delete headers['content-md5'];
          broken.push(`${mode} download`);
          if (mode === 'slow') {
            const size = Math.ceil(body.length / SLOW_PIECES) || 1;
            let at = 0;
            const next = () => {
              if (at >= body.length) return void res.end();
              res.write(body.subarray(at, at + size));
              at += size;
              setTimeout(next, SLOW_GAP_MS);
            };
            setTimeout(() => {
              res.writeHead(upRes.statusCode ?? 200, headers);
              next();
            }, SLOW_FIRST_MS);
            return;
          }
          if (mode === 'truncate') {
            res.writeHead(upRes.statusCode ?? 200, { ...headers, 'content-length': String(half.length) });
            res.end(half);
          } else {
            res.writeHead(upRes.statusCode ?? 200, { ...headers, 'content-length': String(body.length) });
            res.write(half, () => res.socket?.destroy());
          }
        });
      });
    }
    pass(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  return {
    url: origin,
    route(sasUrl, mode) {
      const u = new URL(sasUrl);
      faults.set(u.pathname, mode);
      // A URL on the Azure host stays on it (only the port changes), so the Azure SDK path still runs.
      if (u.hostname.endsWith(AZURE_BLOB_SUFFIX))
        return `http://${u.hostname}:${port}${u.pathname}${u.search}`;
      return `${origin}${u.pathname}${u.search}`;
    },
    broken: () => [...broken],
    requests: () => [...seen],
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
