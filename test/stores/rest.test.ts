// The REST helper against a local server: `Retry-After` honoured on 429, a denial told from an outage.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { listCaches, RestError, rest, retryAfterMs } from '../../src/stores/rest.js';

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function serve(answers: Array<{ status: number; headers?: Record<string, string>; body?: unknown }>) {
  const seen: Array<{ at: number; url: string }> = [];
  server = createServer((req, res) => {
    seen.push({ at: Date.now(), url: req.url ?? '' });
    const a = answers[Math.min(seen.length - 1, answers.length - 1)] ?? { status: 500 };
    res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
    res.end(JSON.stringify(a.body ?? {}));
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { seen, o: { apiUrl: `http://127.0.0.1:${port}`, token: 't', repository: 'o/r' } };
}

describe('rest', () => {
  it('waits out a 429 for its Retry-After, then succeeds', async () => {
    const { seen, o } = await serve([
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 200, body: { actions_caches: [] } },
    ]);
    const res = await rest(o, 'GET', '/actions/caches');
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(2);
    expect((seen[1]?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('does not wait longer than allowed: fails as throttled, naming the wait', async () => {
    const { seen, o } = await serve([{ status: 429, headers: { 'retry-after': '3600' } }]);
    await expect(rest({ ...o, maxWaitMs: 1000 }, 'GET', '/actions/caches')).rejects.toThrow(
      /HTTP 429.*retry after 3600 s/,
    );
    expect(seen).toHaveLength(1);
  });

  it('a 403 is a denial (the token may not), a 500 is not', async () => {
    const denied = await serve([
      { status: 403, body: { message: 'Resource not accessible by integration' } },
    ]);
    const err = await rest(denied.o, 'DELETE', '/actions/caches/1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestError);
    expect((err as RestError).denied).toBe(true);
  });

  it('retryAfterMs reads seconds, dates and the rate-limit reset', () => {
    const h = (o: Record<string, string>) => new Headers(o);
    expect(retryAfterMs({ status: 429, headers: h({ 'retry-after': '7' }) })).toBe(7000);
    expect(
      retryAfterMs({ status: 429, headers: h({ 'retry-after': new Date(61_000).toUTCString() }) }, 1000),
    ).toBe(60_000);
    expect(
      retryAfterMs(
        { status: 403, headers: h({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '10' }) },
        4000,
      ),
    ).toBe(6000);
    expect(retryAfterMs({ status: 403, headers: h({}) })).toBeUndefined();
    expect(retryAfterMs({ status: 500, headers: h({ 'retry-after': '1' }) })).toBeUndefined();
  });

  it('listCaches keeps only keys under the prefix, newest first, ties by id', async () => {
    const { o, seen } = await serve([
      {
        status: 200,
        body: {
          actions_caches: [
            {
              id: 1,
              key: 'checkpoint-v1-k-1-1-1',
              ref: 'refs/heads/main',
              created_at: '2026-01-01T00:00:00Z',
            },
            {
              id: 3,
              key: 'checkpoint-v1-k-2-1-1',
              ref: 'refs/heads/main',
              created_at: '2026-01-02T00:00:00Z',
            },
            {
              id: 2,
              key: 'checkpoint-v1-k-1-1-2',
              ref: 'refs/heads/main',
              created_at: '2026-01-02T00:00:00Z',
            },
            { id: 4, key: 'other', ref: 'refs/heads/main', created_at: '2026-01-03T00:00:00Z' },
          ],
        },
      },
    ]);
    const list = await listCaches(o, 'checkpoint-v1-k-');
    expect(list.map((c) => c.id)).toEqual([3, 2, 1]);
    expect(seen[0]?.url).toMatch(/^\/repos\/o\/r\/actions\/caches\?key=checkpoint-v1-k-&per_page=100/);
  });
});
