/**
 * Drives a Node request listener (e.g. a Koa `app.callback()`) in-process: no port, no socket I/O.
 * The request is a real `http.IncomingMessage` fed from memory; the response a real
 * `http.ServerResponse` whose written bytes are captured instead of sent.
 */
import * as http from 'node:http';
import * as net from 'node:net';

export interface InProcessRequest {
  method?: string;
  /** Path and query, e.g. `/jobs?x=1`. */
  path: string;
  headers?: Record<string, string>;
  /** Sent with a matching Content-Length unless `chunked` is set. */
  body?: string | Buffer;
  /** Leave out Content-Length, as a chunked upload would. */
  chunked?: boolean;
}

export interface InProcessResponse {
  status: number;
  /** Response headers, names lower-cased. */
  headers: Record<string, string>;
  text: string;
  /** The body parsed as JSON (throws if it is not JSON). */
  json(): any;
}

export function inject(listener: http.RequestListener, request: InProcessRequest): Promise<InProcessResponse> {
  const req = new http.IncomingMessage(new net.Socket());
  req.method = request.method ?? 'GET';
  req.url = request.path;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const headers: Record<string, string> = { host: 'replica.test' };
  for (const [k, v] of Object.entries(request.headers ?? {})) headers[k.toLowerCase()] = v;
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  if (body && !request.chunked) headers['content-length'] = String(body.length);
  req.headers = headers;
  if (body) req.push(body);
  req.push(null);

  const res = new http.ServerResponse(req);
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    res.write = ((chunk: string | Buffer) => {
      chunks.push(Buffer.from(chunk));
      return true;
    }) as typeof res.write;
    res.end = ((chunk?: string | Buffer | (() => void)) => {
      if (chunk !== undefined && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
      const answer: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.getHeaders())) answer[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ status: res.statusCode, headers: answer, text, json: () => JSON.parse(text) });
      res.emit('finish');
      return res;
    }) as typeof res.end;
    listener(req, res);
  });
}
