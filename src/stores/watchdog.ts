// A service that accepts a connection and never answers holds the toolkit's HTTP clients for a long time:
// @actions/http-client gives up on a silent request after 3 minutes and the Twirp clients of @actions/cache and
// @actions/artifact then retry it, 5 attempts in all, so one hung save or restore blocks the action for about
// 15 minutes (the end-of-main save, and post's save after it, count against the job's timeout). Neither
// library takes a timeout for those calls, so the watchdog works one level down: every TCP connection opened
// while a store operation runs is watched, and one that moves no byte in either direction for `idleMs` is
// destroyed with ETIMEDOUT. Both Twirp clients treat ETIMEDOUT as a network error and do not retry it, so a
// hung service costs one idle period, and the operation fails the way an unreachable service does.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

/** Long enough for any server-side pause of a healthy service; @actions/cache's own download uses 5 s. */
export const DEFAULT_IDLE_MS = 30_000;

const CHANNEL = 'net.client.socket';

interface Watch {
  idleMs: number;
  /** Socket → [bytes moved at the last check, when that count last changed]. */
  sockets: Map<Socket, [number, number]>;
  /** Set when a connection was ended for silence, so the caller can say why the operation failed. */
  fired: boolean;
}

const active = new Set<Watch>();

function onSocket(message: unknown): void {
  const socket = (message as { socket?: Socket } | undefined)?.socket;
  if (!socket) return;
  for (const w of active) w.sockets.set(socket, [-1, Date.now()]);
}

function check(w: Watch): void {
  const now = Date.now();
  for (const [socket, [bytes, since]] of w.sockets) {
    if (socket.destroyed) {
      w.sockets.delete(socket);
      continue;
    }
    const moved = socket.bytesRead + socket.bytesWritten;
    if (moved !== bytes) {
      w.sockets.set(socket, [moved, now]);
    } else if (now - since >= w.idleMs) {
      w.fired = true;
      w.sockets.delete(socket);
      const err = new Error(`no data in either direction for ${Math.round(w.idleMs / 1000)} s`);
      socket.destroy(Object.assign(err, { code: 'ETIMEDOUT' }));
    }
  }
}

/**
 * Runs `fn` with every connection it opens watched for silence (see above). `timedOut` says whether a
 * connection was ended for it (the operation's own error or warning then tells only half the story).
 */
export async function withIdleTimeout<T>(
  idleMs: number,
  fn: () => Promise<T>,
): Promise<{ result: T; timedOut: boolean }> {
  const w: Watch = { idleMs, sockets: new Map(), fired: false };
  if (active.size === 0) subscribe(CHANNEL, onSocket);
  active.add(w);
  const timer = setInterval(() => check(w), Math.max(50, Math.min(1_000, idleMs / 4)));
  // Only the operation's own sockets should keep the process alive.
  timer.unref();
  try {
    return { result: await fn(), timedOut: w.fired };
  } catch (err) {
    if (w.fired && err instanceof Error)
      err.message += ` (a connection was silent for ${Math.round(idleMs / 1000)} s)`;
    throw err;
  } finally {
    clearInterval(timer);
    active.delete(w);
    if (active.size === 0) unsubscribe(CHANNEL, onSocket);
  }
}
