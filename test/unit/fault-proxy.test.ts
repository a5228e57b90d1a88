import test from 'ava';
import * as net from 'node:net';
import { FaultProxy } from '../helpers/fault-proxy';
import { eventually } from '../helpers/ensemble';

/** An echo server that remembers how many bytes it received and keeps its sockets for server-side pushes. */
class EchoServer {
  bytesReceived = 0;
  readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server, readonly port: number) {}

  static async start(): Promise<EchoServer> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const echo = new EchoServer(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (socket) => {
      echo.sockets.add(socket);
      socket.on('data', (chunk) => {
        echo.bytesReceived += chunk.length;
        socket.write(chunk);
      });
      socket.on('error', () => {});
      socket.on('close', () => echo.sockets.delete(socket));
    });
    return echo;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A client socket that records what it receives and how it ended. */
class Client {
  received = '';
  error: NodeJS.ErrnoException | null = null;
  readonly closed: Promise<void>;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => (this.received += chunk.toString()));
    socket.on('error', (err) => (this.error = err));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new Client(socket));
      });
    });
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  async roundTrip(text: string): Promise<void> {
    const expected = this.received + text;
    this.socket.write(text);
    await eventually(`echo of "${text}"`, () => this.received === expected, 5000);
  }
}

/** Connects, writes, and reports what came back once the connection is over. */
async function attemptRoundTrip(port: number, text: string): Promise<{ received: string; error: string | undefined }> {
  let client: Client;
  try {
    client = await Client.connect(port);
  } catch (err) {
    return { received: '', error: (err as NodeJS.ErrnoException).code };
  }
  client.socket.write(text);
  await client.closed;
  return { received: client.received, error: client.error?.code };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<{ echo: EchoServer; proxy: FaultProxy }> {
  const echo = await EchoServer.start();
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port: echo.port });
  t.teardown(async () => {
    await proxy.close();
    await echo.close();
  });
  return { echo, proxy };
}

test('pass forwards both ways and counts connections and bytes', async (t) => {
  const { echo, proxy } = await setup(t);
  t.is(proxy.address, `127.0.0.1:${proxy.port}`);
  t.is(proxy.mode, 'pass');
  const client = await Client.connect(proxy.port);
  await client.roundTrip('hello');
  t.is(echo.bytesReceived, 5);
  t.is(proxy.bytesForwarded, 10);
  t.is(proxy.connectionCount, 1);

  client.socket.end();
  await client.closed;
  await eventually('proxy forgets the closed connection', () => proxy.connectionCount === 0 && echo.sockets.size === 0, 5000);
  t.is(client.error, null);
});

test('cut resets open connections while new ones still work', async (t) => {
  const { echo, proxy } = await setup(t);
  const first = await Client.connect(proxy.port);
  await first.roundTrip('before');
  proxy.cut();
  await first.closed;
  t.is(first.error?.code, 'ECONNRESET');
  await eventually('upstream side closed too', () => echo.sockets.size === 0, 5000);
  t.is(proxy.mode, 'pass');

  const second = await Client.connect(proxy.port);
  await second.roundTrip('after');
  t.is(proxy.connectionCount, 1);
});

test('blackhole keeps sockets open but loses data both ways; pass resumes on the same socket', async (t) => {
  const { echo, proxy } = await setup(t);
  const old = await Client.connect(proxy.port);
  await old.roundTrip('ping');
  const receivedBefore = echo.bytesReceived;

  proxy.blackhole();
  t.is(proxy.mode, 'blackhole');
  old.socket.write('lost-upstream');
  const fresh = await Client.connect(proxy.port);
  fresh.socket.write('also-lost');
  // Waiting for the proxy to have dropped the bytes bounds the wait without guessing a delay.
  await eventually('client bytes dropped', () => proxy.bytesDropped === 'lost-upstream'.length + 'also-lost'.length, 5000);
  t.is(echo.bytesReceived, receivedBefore);

  await eventually('upstream has both connections', () => echo.sockets.size === 2, 5000);
  const droppedBefore = proxy.bytesDropped;
  for (const socket of echo.sockets) socket.write('push');
  await eventually('server pushes dropped', () => proxy.bytesDropped === droppedBefore + 2 * 'push'.length, 5000);
  t.is(old.received, 'ping');
  t.is(fresh.received, '');
  t.false(old.isClosed);
  t.false(fresh.isClosed);
  t.is(proxy.connectionCount, 2);

  proxy.pass();
  await old.roundTrip('again');
  t.is(old.received, 'pingagain', 'data lost in the blackhole never arrives later');
});

test('stall holds data both ways on open sockets and delivers all of it, in order, after pass', async (t) => {
  const { echo, proxy } = await setup(t);
  const old = await Client.connect(proxy.port);
  await old.roundTrip('ping');
  const receivedBefore = echo.bytesReceived;

  proxy.stall();
  t.is(proxy.mode, 'stall');
  old.socket.write('held-');
  old.socket.write('in-order');
  const fresh = await Client.connect(proxy.port);
  fresh.socket.write('late');
  await eventually('upstream has both connections', () => echo.sockets.size === 2, 5000);
  for (const socket of echo.sockets) socket.write('push-');
  // Nothing crosses while stalled: a bounded poll that must stay false, then the counters.
  await t.throwsAsync(eventually('anything crossing the stall', () => echo.bytesReceived > receivedBefore || old.received !== 'ping' || fresh.received !== '', 500, 50));
  t.is(proxy.bytesDropped, 0);
  t.false(old.isClosed);
  t.false(fresh.isClosed);

  proxy.pass();
  // Server pushes arrive first (they were held upstream of the echo), then the echoes, in order.
  await eventually('held bytes delivered', () => old.received === 'pingpush-held-in-order' && fresh.received === 'push-late', 5000);
  t.is(proxy.bytesDropped, 0);
  await old.roundTrip('again');
  t.is(old.received, 'pingpush-held-in-orderagain');
});

test('a client closing during a stall is propagated upstream after pass, behind the data it sent', async (t) => {
  const { echo, proxy } = await setup(t);
  const client = await Client.connect(proxy.port);
  await client.roundTrip('x');
  proxy.stall();
  const before = echo.bytesReceived;
  client.socket.end('bye');
  await t.throwsAsync(eventually('the bytes or the close crossing the stall', () => echo.bytesReceived > before || echo.sockets.size === 0, 500, 50));
  proxy.pass();
  await eventually('upstream got the held bytes and the close', () => echo.bytesReceived === before + 3 && echo.sockets.size === 0, 5000);
});

test('a client closing during a blackhole is propagated upstream only after pass', async (t) => {
  const { echo, proxy } = await setup(t);
  const client = await Client.connect(proxy.port);
  await client.roundTrip('x');
  proxy.blackhole();
  client.socket.destroy();
  await client.closed;
  await eventually('proxy sees the client gone', () => proxy.connectionCount === 0, 5000);
  t.is(echo.sockets.size, 1, 'the upstream still believes the connection is alive');
  proxy.pass();
  await eventually('upstream connection closed after pass', () => echo.sockets.size === 0, 5000);
});

test('reject resets existing and new connections until pass', async (t) => {
  const { echo, proxy } = await setup(t);
  const existing = await Client.connect(proxy.port);
  await existing.roundTrip('up');
  proxy.reject();
  t.is(proxy.mode, 'reject');
  await existing.closed;
  t.is(existing.error?.code, 'ECONNRESET');

  // The reset may even beat the client's connect completion; either way nothing gets through.
  const refused = await attemptRoundTrip(proxy.port, 'anyone?');
  t.is(refused.received, '');
  t.true(['ECONNRESET', 'EPIPE'].includes(refused.error ?? ''), `refused with ${refused.error}`);
  t.is(proxy.connectionCount, 0);
  t.is(echo.bytesReceived, 2);

  proxy.mode = 'pass';
  const later = await Client.connect(proxy.port);
  await later.roundTrip('back');
});

test('an upstream that is down resets the client', async (t) => {
  const echo = await EchoServer.start();
  const deadPort = echo.port;
  await echo.close();
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port: deadPort });
  t.teardown(() => proxy.close());
  const client = await Client.connect(proxy.port);
  await client.closed;
  t.is(client.received, '');
  await eventually('link forgotten', () => proxy.connectionCount === 0, 5000);
});

test('close resets connections, stops listening and is idempotent', async (t) => {
  const { proxy } = await setup(t);
  const client = await Client.connect(proxy.port);
  await client.roundTrip('bye');
  const closing = proxy.close();
  t.is(proxy.close(), closing);
  await closing;
  await client.closed;
  t.true(client.isClosed);
  const err = await t.throwsAsync(Client.connect(proxy.port));
  t.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
});
