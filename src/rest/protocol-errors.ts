/**
 * Answers for requests that never reach Koa: ones Node's HTTP parser rejects (malformed request
 * line, unknown method, NUL in a header, conflicting Content-Length, headers too large, a body that
 * stalls past the request timeout) and CONNECT/upgrade requests. Node's defaults answer a bare
 * status without a body, or silently close the socket; the REST contract promises every error as
 * `{"errors": ["message"]}` with the right status.
 */
import type * as http from 'node:http';
import type { Duplex } from 'node:stream';

const REASONS: Record<number, string> = { 400: 'Bad Request', 405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large' };

export function installProtocolErrorHandlers(server: http.Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Duplex) => {
    // Nothing can be said to a peer that is gone, or in the middle of an answer already under way.
    const pending = (socket as Duplex & { _httpMessage?: http.ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, message] = describe(err);
    writeAndClose(socket, status, message);
  });
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
    writeAndClose(socket, 405, 'CONNECT is not supported: this is a REST API, not a proxy');
  });
  server.on('upgrade', (_req: http.IncomingMessage, socket: Duplex) => {
    writeAndClose(socket, 400, 'protocol upgrades (e.g. WebSocket) are not supported; send plain HTTP/1.1 requests');
  });
}

function describe(err: NodeJS.ErrnoException): [number, string] {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'request headers are too large; send fewer or shorter headers'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'the request (headers and body) did not arrive in time; send it at once'];
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return [413, 'chunk extensions are too large'];
    case 'HPE_INVALID_METHOD':
      return [400, 'unknown HTTP method; use GET, POST, PATCH or DELETE'];
    default:
      return [400, `malformed HTTP request (${err.code ?? 'parse error'}: ${String(err.message).slice(0, 200)}); send a well-formed HTTP/1.1 request`];
  }
}

function writeAndClose(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ errors: [message] });
  socket.end(`HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  // A peer that never reads must not keep the socket: end() waits for the write to drain.
  setTimeout(() => socket.destroy(), 5000).unref();
}

/**
 * HTTP/1.1 requires a Host header. Node's own check answers a bare 400, so the server is created with
 * `requireHostHeader: false` and this wrapper gives the same refusal a JSON message.
 */
export function requireHostHeader(handler: http.RequestListener): http.RequestListener {
  return (req, res) => {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && !req.headers.host) {
      const body = JSON.stringify({ errors: ['HTTP/1.1 requests need a Host header; add "Host: <host>:<port>"'] });
      res.writeHead(400, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
      res.end(body);
      return;
    }
    handler(req, res);
  };
}
