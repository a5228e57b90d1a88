/**
 * HTTP/1.1 over a bare socket, for requests `fetch` refuses to send: malformed request lines, NUL
 * bytes, conflicting or lying Content-Length headers, bodies that trickle in or never end.
 */
import * as net from 'node:net';

export interface RawAnswer {
  /** 0 when the server closed the connection without an answer. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Set when the exchange ended in a socket error or our own timeout. */
  error?: string;
}

export interface RawRequest {
  method?: string;
  path?: string;
  headers?: Array<[string, string]>;
  body?: Buffer | string;
  /** Send exactly these bytes instead of building a request. */
  raw?: Buffer;
  /** Leave out the automatic Content-Length header. */
  noContentLength?: boolean;
  /** Send the body in this many pieces with `delayMs` between them. */
  slow?: { pieces: number; delayMs: number };
  /** Stop sending after the headers and this many body bytes, and keep the socket open. */
  stallAfterBytes?: number;
  timeoutMs?: number;
}

export function buildRequest(req: RawRequest): { head: Buffer; body: Buffer } {
  if (req.raw) return { head: req.raw, body: Buffer.alloc(0) };
  const body = req.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
  const headers: Array<[string, string]> = [['Host', '127.0.0.1'], ['Connection', 'close'], ...(req.headers ?? [])];
  if (!req.noContentLength && (req.body !== undefined) && !headers.some(([k]) => k.toLowerCase() === 'content-length')) {
    headers.push(['Content-Length', String(body.length)]);
  }
  const lines = [`${req.method ?? 'GET'} ${req.path ?? '/'} HTTP/1.1`, ...headers.map(([k, v]) => `${k}: ${v}`)];
  // latin1 keeps raw bytes (NUL, 0xff) as they were written in the strings.
  return { head: Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body };
}

export function rawRequest(port: number, req: RawRequest): Promise<RawAnswer> {
  const { head, body } = buildRequest(req);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = net.connect({ host: '127.0.0.1', port });
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseResponse(Buffer.concat(chunks)), ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish('timed out waiting for the answer'), req.timeoutMs ?? 15_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (err) => finish((err as NodeJS.ErrnoException).code ?? err.message));
    socket.on('connect', () => {
      void (async () => {
        socket.write(head);
        if (req.stallAfterBytes !== undefined) {
          socket.write(body.subarray(0, req.stallAfterBytes));
          return;
        }
        if (!req.slow || body.length === 0) {
          socket.write(body);
          return;
        }
        const size = Math.ceil(body.length / req.slow.pieces);
        for (let i = 0; i < body.length && !socket.destroyed; i += size) {
          socket.write(body.subarray(i, i + size));
          await new Promise((r) => setTimeout(r, req.slow!.delayMs));
        }
      })();
    });
  });
}

export function parseResponse(data: Buffer): Omit<RawAnswer, 'error'> {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/') || end < 0) return { status: 0, headers: {}, body: text };
  const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
  const status = Number(statusLine.split(' ')[1]) || 0;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = data.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  return { status, headers, body: body.toString('utf8') };
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < data.length) {
    const lineEnd = data.indexOf('\r\n', i, 'latin1');
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(i, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    i = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}
