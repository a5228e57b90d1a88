import * as net from 'node:net';
import * as tls from 'node:tls';

/**
 * Sends a ZooKeeper four-letter command (srvr, ruok, mntr) and returns the whole answer. With `overTls`
 * it goes to a secureClientPort: the server is verified against `ca` (as `localhost`) and `cert`/`key` presented.
 */
export function fourLetterWord(host: string, port: number, command: string, timeoutMs = 2000,
  overTls?: { ca: string; cert: string; key: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = overTls ? tls.connect({ host, port, servername: 'localhost', ...overTls }) : net.connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${command} to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on(overTls ? 'secureConnect' : 'connect', () => socket.end(command));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('utf8')); });
  });
}
