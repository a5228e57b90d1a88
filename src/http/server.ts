/**
 * Creating, listening and graceful closing of the project's HTTP servers (a replica's REST server, a
 * TaskManager's RPC server), so both speak TLS and stop the same way.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { httpsServerOptions, ServerTls } from '../security/tls';

/** A plain or TLS server; both have the same request and close API. */
export type HttpServer = http.Server | https.Server;

/**
 * An HTTPS server when `tls` is given (mutual TLS offered when it has a `clientCa`), else plain HTTP.
 * Plain HTTP sent to a TLS port fails the handshake, so no request reaches the app.
 */
export function createServer(tls: ServerTls | undefined, options: http.ServerOptions = {}): HttpServer {
  return tls ? https.createServer({ ...options, ...httpsServerOptions(tls) }) : http.createServer(options);
}

/** `http` or `https`: the scheme of the URLs a server is reached at. */
export function schemeOf(tls: ServerTls | undefined): 'http' | 'https' {
  return tls ? 'https' : 'http';
}

/** Binds `server` to `host:port` (port 0: any free port); rejects with the listen error (e.g. EADDRINUSE). */
export function listen(server: HttpServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A server could not bind its port; the message names the configuration key that chose it. */
export class BindError extends Error {
  override readonly name = 'BindError';
  readonly code: string | undefined;
  constructor(readonly key: string, host: string, port: number, cause: NodeJS.ErrnoException) {
    super(`cannot listen on ${host}:${port} (${key}): ${cause.code === 'EADDRINUSE' ? 'the port is already in use; is another process (a second `npm start`?) serving it? Stop it or choose another ' + key
      : cause.code === 'EACCES' ? `permission denied; choose a ${key} above 1023` : cause.message}`);
    this.code = cause.code;
  }
}

/** How long open requests may still finish once a close began, in ms. */
export const CLOSE_GRACE_MS = 1000;

/**
 * Stops accepting connections, closes idle keep-alive connections at once and every remaining one
 * after `graceMs`. Resolves once the server closed; at once for one that never listened.
 */
export function closeServer(server: HttpServer, graceMs = CLOSE_GRACE_MS): Promise<void> {
  server.off('request', closeAfterResponse);
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), graceMs).unref();
  });
}

function closeAfterResponse(_req: unknown, res: { headersSent: boolean; setHeader(name: string, value: string): unknown }): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
}

/**
 * Lame duck before a close: for `drainMs` ms the server keeps accepting and answering, but every
 * answer carries `Connection: close`, so a load balancer (or client pool) moves to fresh connections
 * that its health checks route elsewhere, instead of meeting a refused port. Idle keep-alive
 * connections are left open until the close: closing one at the start raced with a client sending
 * its next request on it (a reset it cannot tell from a crash); by the end of the drain nobody is
 * sent here any more. Resolves after `drainMs`.
 */
export async function drainServer(server: HttpServer, drainMs: number): Promise<void> {
  if (drainMs <= 0 || !server.listening) return;
  server.on('request', closeAfterResponse);
  await new Promise<void>((resolve) => setTimeout(resolve, drainMs));
}
