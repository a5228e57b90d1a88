/**
 * An in-memory ZooKeeperClient for unit tests of code above the ZooKeeper client layer (never for
 * integration tests). It keeps ZooKeeper's semantics that the product relies on: sequential names
 * from the parent's counter, ephemeral owners, one-shot watches, versions. Failures can be injected
 * per operation and path.
 */
import { EventEmitter } from 'node:events';
import { ConnectionState, CreateMode, Stat, StateChange, Watcher, ZooKeeperClient } from '../../src/zk/client';
import { ZK_CODES, zkError } from '../../src/zk/errors';
import { basename, parent } from '../../src/zk/paths';

interface FakeNode { data: Buffer; version: number; cversion: number; ephemeralOwner: string; sequence: number; czxid: number }

/** The shared "server": several FakeZkClients (sessions) can talk to one tree. */
export class FakeZkServer {
  readonly nodes = new Map<string, FakeNode>([['/', { data: Buffer.alloc(0), version: 0, cversion: 0, ephemeralOwner: '0', sequence: 0, czxid: 0 }]]);
  private readonly dataWatchers = new Map<string, Watcher[]>();
  private readonly childWatchers = new Map<string, Watcher[]>();
  private zxid = 1;
  private nextSession = 1;

  newSessionId(): string { return (this.nextSession++).toString(16); }

  children(path: string): string[] {
    const prefix = path === '/' ? '/' : `${path}/`;
    return [...this.nodes.keys()].filter((p) => p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => basename(p));
  }

  stat(node: FakeNode, path: string): Stat {
    return {
      czxid: node.czxid, mzxid: node.czxid, pzxid: node.czxid, version: node.version, cversion: node.cversion,
      dataLength: node.data.length, numChildren: this.children(path).length, ctime: 0, mtime: 0, ephemeralOwner: node.ephemeralOwner,
    };
  }

  watchData(path: string, w: Watcher): void { this.dataWatchers.set(path, [...(this.dataWatchers.get(path) ?? []), w]); }
  watchChildren(path: string, w: Watcher): void { this.childWatchers.set(path, [...(this.childWatchers.get(path) ?? []), w]); }

  fire(map: 'data' | 'child', path: string, type: 'created' | 'deleted' | 'changed' | 'child'): void {
    const table = map === 'data' ? this.dataWatchers : this.childWatchers;
    const watchers = table.get(path) ?? [];
    table.delete(path);
    for (const w of watchers) queueMicrotask(() => w({ type, path }));
  }

  create(path: string, data: Buffer, mode: CreateMode, owner: string): string {
    const parentPath = parent(path);
    const parentNode = this.nodes.get(parentPath);
    if (!parentNode) throw zkError(ZK_CODES.NONODE, 'create', path);
    let actual = path;
    if (mode.endsWith('sequential')) actual = `${path}${String(parentNode.cversion).padStart(10, '0')}`;
    if (this.nodes.has(actual)) throw zkError(ZK_CODES.NODEEXISTS, 'create', path);
    parentNode.cversion++;
    this.nodes.set(actual, { data, version: 0, cversion: 0, ephemeralOwner: mode.startsWith('ephemeral') ? owner : '0', sequence: parentNode.cversion, czxid: this.zxid++ });
    this.fire('data', actual, 'created');
    this.fire('child', parentPath, 'child');
    return actual;
  }

  remove(path: string): void {
    this.nodes.delete(path);
    const parentNode = this.nodes.get(parent(path));
    if (parentNode) parentNode.cversion++;
    this.fire('data', path, 'deleted');
    this.fire('child', parent(path), 'child');
  }

  /** Ends a session the way the server would on expiry: its ephemeral nodes go. */
  expire(sessionId: string): void {
    for (const [path, node] of [...this.nodes]) if (node.ephemeralOwner === sessionId) this.remove(path);
  }
}

type Op = 'create' | 'get' | 'set' | 'delete' | 'exists' | 'getChildren';

export class FakeZkClient extends EventEmitter implements ZooKeeperClient {
  readonly chroot = '/';
  readonly sessionTimeoutMs = 4000;
  private current: ConnectionState = 'CONNECTED';
  private session: string | null;
  private readonly failures: Array<{ op: Op; path: string; code: number }> = [];
  readonly calls: Array<{ op: Op; path: string }> = [];

  constructor(readonly server: FakeZkServer = new FakeZkServer()) {
    super();
    this.session = server.newSessionId();
  }

  get state(): ConnectionState { return this.current; }
  get isConnected(): boolean { return this.current === 'CONNECTED' || this.current === 'RECONNECTED'; }
  get sessionId(): string | null { return this.session; }

  /** The next `op` on `path` fails with `code` (e.g. ZK_CODES.CONNECTIONLOSS). */
  failNext(op: Op, path: string, code: number): void { this.failures.push({ op, path, code }); }

  private enter(op: Op, path: string): void {
    this.calls.push({ op, path });
    if (!this.isConnected) throw zkError(ZK_CODES.CONNECTIONLOSS, op, path);
    const i = this.failures.findIndex((f) => f.op === op && f.path === path);
    if (i >= 0) {
      const [f] = this.failures.splice(i, 1);
      throw zkError(f.code, op, path);
    }
  }

  private setState(state: ConnectionState, reason?: string): void {
    const change: StateChange = { state, previous: this.current, sessionId: this.session, reason };
    this.current = state;
    this.emit('state', change);
  }

  /** Simulates a disconnect (SUSPENDED) and, optionally, the expiry that follows (LOST, new session). */
  suspend(): void { this.setState('SUSPENDED'); }
  reconnect(): void { this.setState('RECONNECTED'); }
  expire(): void {
    const old = this.session!;
    this.session = null;
    this.setState('LOST', 'session expired');
    this.server.expire(old);
    this.session = this.server.newSessionId();
    this.setState('CONNECTED');
  }

  async create(path: string, data: Buffer | string = '', mode: CreateMode = 'persistent'): Promise<string> {
    this.enter('create', path);
    return this.server.create(path, Buffer.from(data), mode, this.session!);
  }

  async get(path: string, watcher?: Watcher): Promise<{ data: Buffer; stat: Stat }> {
    this.enter('get', path);
    const node = this.server.nodes.get(path);
    if (!node) throw zkError(ZK_CODES.NONODE, 'get', path);
    if (watcher) this.server.watchData(path, watcher);
    return { data: node.data, stat: this.server.stat(node, path) };
  }

  async set(path: string, data: Buffer | string, version = -1): Promise<Stat> {
    this.enter('set', path);
    const node = this.server.nodes.get(path);
    if (!node) throw zkError(ZK_CODES.NONODE, 'set', path);
    if (version !== -1 && version !== node.version) throw zkError(ZK_CODES.BADVERSION, 'set', path);
    node.data = Buffer.from(data);
    node.version++;
    this.server.fire('data', path, 'changed');
    return this.server.stat(node, path);
  }

  async delete(path: string, version = -1): Promise<void> {
    this.enter('delete', path);
    const node = this.server.nodes.get(path);
    if (!node) throw zkError(ZK_CODES.NONODE, 'delete', path);
    if (version !== -1 && version !== node.version) throw zkError(ZK_CODES.BADVERSION, 'delete', path);
    if (this.server.children(path).length > 0) throw zkError(ZK_CODES.NOTEMPTY, 'delete', path);
    this.server.remove(path);
  }

  async exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    this.enter('exists', path);
    if (watcher) this.server.watchData(path, watcher);
    const node = this.server.nodes.get(path);
    return node ? this.server.stat(node, path) : null;
  }

  async getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    this.enter('getChildren', path);
    if (!this.server.nodes.has(path)) throw zkError(ZK_CODES.NONODE, 'getChildren', path);
    if (watcher) this.server.watchChildren(path, watcher);
    return this.server.children(path);
  }

  /** Recorded (and failed by `failNext`) as `getChildren`: the same request, answered with the parent's stat too. */
  async getChildrenWithStat(path: string, watcher?: Watcher): Promise<{ children: string[]; stat: Stat }> {
    const children = await this.getChildren(path, watcher);
    return { children, stat: this.server.stat(this.server.nodes.get(path)!, path) };
  }

  async sync(): Promise<void> { /* one server: always in sync */ }

  async mkdirp(path: string): Promise<void> {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = `/${parts.slice(0, i).join('/')}`;
      if (!this.server.nodes.has(p)) this.server.create(p, Buffer.alloc(0), 'persistent', this.session!);
    }
  }

  async waitUntilConnected(): Promise<void> {
    if (!this.isConnected) throw zkError(ZK_CODES.CONNECTIONLOSS, 'connect');
  }

  async close(): Promise<void> {
    if (this.session) this.server.expire(this.session);
    this.setState('CLOSED');
  }
}
