/**
 * A small keep-alive HTTP client for the benchmarks. node:http rather than fetch: fetch's per-request
 * overhead would be measured as the product's, and redirects must never be followed here.
 */
import * as http from 'node:http';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export class HttpClient {
  private readonly agent: http.Agent;

  constructor(maxSockets = 1, private readonly timeoutMs = 15_000) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request(method: string, url: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return new Promise<Answer>((resolve, reject) => {
      const req = http.request(url, {
        method,
        agent: this.agent,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`${method} ${url}: no answer within ${this.timeoutMs} ms`)));
      // A reset on a reused keep-alive socket is the race Node's documentation tells clients to retry.
      // The local port names the connection in the server's (or HAProxy's) own log.
      req.on('error', (err: Error & { reusedSocket?: boolean; localPort?: number }) => {
        err.reusedSocket = req.reusedSocket;
        err.localPort = req.socket?.localPort;
        reject(err);
      });
      req.end(payload);
    });
  }

  /** Like request, but a refused or reset connection is an answer of status 0 instead of an error. */
  async tryRequest(method: string, url: string, body?: unknown): Promise<Answer> {
    try {
      return await this.request(method, url, body);
    } catch (err) {
      return { status: 0, headers: {}, text: (err as Error).message };
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

export function parseJson<T = any>(text: string): T | null {
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}
