/**
 * A TCP proxy in front of one upstream server (a ZooKeeper server in integration tests and chaos runs)
 * that simulates network faults: connection resets, a partition TCP rides out (everything held, then
 * delivered in order), a middlebox that silently loses bytes mid-stream, and a server that is down. In front of ZooKeeper it also reads the session id and password from each
 * connection's handshake answer, so chaos tooling can expire that session from outside the process
 * (see `expireSession` in src/zk/client.ts) — test and chaos tooling only.
 */
import * as net from 'node:net';

export type FaultMode = 'pass' | 'stall' | 'blackhole' | 'reject';

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  /** The first bytes from upstream, until the ZooKeeper handshake answer is complete. */
  handshake: Buffer | null;
}

/** A ZooKeeper session as the C client names it: id in hex (no leading zeros), password as 32 hex digits. */
export interface ZkSessionCredentials { sessionId: string; password: string; seenAt: number }

export class FaultProxy {
  private current: FaultMode = 'pass';
  private readonly links = new Set<Link>();
  private forwarded = 0;
  private dropped = 0;
  private closing?: Promise<void>;
  private session: ZkSessionCredentials | null = null;

  private constructor(
    private readonly server: net.Server,
    private readonly upstream: { host: string; port: number },
    readonly port: number,
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Listens on 127.0.0.1 on an ephemeral port. */
  static async start(upstream: { host: string; port: number }): Promise<FaultProxy> {
    // Half-open allowed so that, during a blackhole, a client's FIN is not answered behind the partition's back.
    const server = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FaultProxy(server, upstream, (server.address() as net.AddressInfo).port);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get mode(): FaultMode {
    return this.current;
  }

  set mode(mode: FaultMode) {
    if (mode === 'pass') this.pass();
    else if (mode === 'stall') this.stall();
    else if (mode === 'blackhole') this.blackhole();
    else this.reject();
  }

  /** Client connections the client has not closed (including those stuck behind a blackhole). */
  get connectionCount(): number {
    let n = 0;
    for (const { client } of this.links) if (!client.destroyed && !client.readableEnded) n++;
    return n;
  }

  /** Bytes delivered, both directions together. */
  get bytesForwarded(): number {
    return this.forwarded;
  }

  /** Bytes that arrived during a blackhole and were thrown away, both directions together. */
  get bytesDropped(): number {
    return this.dropped;
  }

  /** The session established most recently through this proxy (if the upstream speaks ZooKeeper). */
  get lastSession(): ZkSessionCredentials | null {
    return this.session;
  }

  /**
   * Forwards again: what a stall held arrives now, in order; closes and resets that happened during a
   * stall or blackhole reach the other side after it.
   */
  pass(): void {
    this.current = 'pass';
    for (const link of [...this.links]) {
      if (!link.upstream.writableNeedDrain) link.client.resume();
      if (!link.client.writableNeedDrain) link.upstream.resume();
      this.propagate(link);
    }
  }

  /**
   * Holds everything in both directions but keeps sockets open, like a partition that TCP rides out:
   * nothing is read, so the bytes wait in the kernel's buffers (the sender's window fills as it would)
   * and arrive in order after pass(). A peer that gave up meanwhile sees only what it sent before.
   */
  stall(): void {
    this.current = 'stall';
    for (const link of this.links) {
      link.client.pause();
      link.upstream.pause();
    }
  }

  /** Resets every open connection; the mode is unchanged, so new connections follow it as before. */
  cut(): void {
    for (const link of [...this.links]) this.resetLink(link);
  }

  /**
   * Drops everything in both directions but keeps sockets open, like a middlebox that lost the
   * connection's state: bytes vanish mid-stream and never arrive, even after pass().
   */
  blackhole(): void {
    this.current = 'blackhole';
  }

  /** Resets existing connections and every new one, like a server that is down. */
  reject(): void {
    this.current = 'reject';
    this.cut();
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.cut();
    });
    return this.closing;
  }

  private accept(client: net.Socket): void {
    if (this.current === 'reject' || this.closing) {
      client.on('error', () => {});
      reset(client);
      return;
    }
    // Connected even in blackhole mode: the client saw its connection accepted, only the packets get lost.
    const upstream = net.connect({ host: this.upstream.host, port: this.upstream.port, allowHalfOpen: true });
    const link: Link = { client, upstream, handshake: Buffer.alloc(0) };
    this.links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.wire(link, client, upstream);
    this.wire(link, upstream, client);
    if (this.current === 'stall') {
      client.pause();
      upstream.pause();
    }
  }

  private wire(link: Link, from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.current === 'blackhole' || this.current === 'reject') {
        this.dropped += chunk.length;
        return;
      }
      this.forwarded += chunk.length;
      if (from === link.upstream && link.handshake) this.sniff(link, chunk);
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => { if (this.current === 'pass') from.resume(); });
      }
    });
    // Errors surface as 'close' with hadError; propagate() turns them into a reset of the peer.
    from.on('error', () => {});
    from.on('end', () => this.propagate(link));
    from.on('close', () => this.propagate(link));
  }

  /**
   * ZooKeeper's ConnectResponse, the first frame a server sends: int32 length, int32 protocolVersion,
   * int32 timeOut, int64 sessionId, buffer passwd (int32 length + bytes), optional bool readOnly.
   */
  private sniff(link: Link, chunk: Buffer): void {
    const data = Buffer.concat([link.handshake!, chunk]);
    if (data.length < 4) {
      link.handshake = data;
      return;
    }
    const length = data.readInt32BE(0);
    if (length < 24 || length > 1024) {
      link.handshake = null; // not ZooKeeper
      return;
    }
    if (data.length < 4 + length) {
      link.handshake = data;
      return;
    }
    link.handshake = null;
    const sessionId = data.readBigInt64BE(12);
    const passwordLength = data.readInt32BE(20);
    if (sessionId === 0n || passwordLength <= 0 || 24 + passwordLength > 4 + length) return; // refused (e.g. expired)
    this.session = {
      sessionId: BigInt.asUintN(64, sessionId).toString(16),
      // Upper case: the native client's hex decoder reads only upper-case digits.
      password: data.subarray(24, 24 + passwordLength).toString('hex').toUpperCase(),
      seenAt: Date.now(),
    };
  }

  /** Mirrors a FIN or a reset of one side onto the other — only while passing, a partition would hide it. */
  private propagate(link: Link): void {
    if (this.current === 'pass') {
      for (const [a, b] of [[link.client, link.upstream], [link.upstream, link.client]] as const) {
        if (b.destroyed) continue;
        if (a.readableEnded) b.end();
        else if (a.destroyed) reset(b);
      }
    }
    if (link.client.destroyed && link.upstream.destroyed) this.links.delete(link);
  }

  private resetLink(link: Link): void {
    this.links.delete(link);
    reset(link.client);
    reset(link.upstream);
  }
}

/** RST rather than FIN, so the peer sees ECONNRESET as after a real network fault. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  // Node 20: resetAndDestroy() after end() fails with EINVAL yet marks the socket closing, leaving it
  // open forever (the process then never exits); a plain destroy() is the only safe way out there.
  if (socket.connecting || socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}
