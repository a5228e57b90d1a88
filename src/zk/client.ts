/**
 * The ZooKeeper client layer: the only module that imports the native `zookeeper` package.
 *
 * It gives the rest of the product a typed promise API under a chroot and an explicit
 * connection-state machine:
 *   CONNECTING → CONNECTED → SUSPENDED (disconnected, session may live) → RECONNECTED (same session)
 *                                      ↘ LOST (session expired, or disconnected for a whole session
 *                                        timeout — the server's expiry notice may never reach us)
 *   LOST → CONNECTING with a brand-new session. close() → CLOSED.
 * Every transition is logged as a `zk.state` event.
 */
import { EventEmitter } from 'node:events';
import { ConnectionLossError, ZK_CLOSE_STATES, ZK_CODES, ZkError, zkError } from './errors';
import { join, validatePath } from './paths';
import { Clock, TimerHandle, systemClock } from '../util/clock';
import { EventLogger, silentLogger } from '../util/logger';
import type { StateSeal } from './sealed';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const NativeZooKeeper = require('zookeeper') as new (config: object) => NativeHandle;

export type ConnectionState = 'CONNECTING' | 'CONNECTED' | 'SUSPENDED' | 'RECONNECTED' | 'LOST' | 'CLOSED';
export type CreateMode = 'persistent' | 'ephemeral' | 'persistent_sequential' | 'ephemeral_sequential' | 'container';

const CREATE_FLAGS: Record<CreateMode, number> = {
  persistent: 0,
  ephemeral: 1,
  persistent_sequential: 2,
  ephemeral_sequential: 3,
  container: 4,
};

export interface Stat {
  czxid: number;
  mzxid: number;
  pzxid: number;
  version: number;
  cversion: number;
  dataLength: number;
  numChildren: number;
  ctime: number;
  mtime: number;
  /** Session id (hex) of an ephemeral node's owner; "0" for persistent nodes. */
  ephemeralOwner: string;
}

export type WatchEventType = 'created' | 'deleted' | 'changed' | 'child' | 'notwatching';
export interface WatchEvent { type: WatchEventType; path: string }

/** ZooKeeper permission bits (ZOO_PERM_*). */
export const ZK_PERMS = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const;

/** One ACL entry: `perms` is a sum of ZK_PERMS; `scheme`/`id` e.g. `world`/`anyone`, `digest`/`user:base64(sha1)`. */
export interface AclEntry { perms: number; scheme: string; id: string }

/**
 * What the client puts on every node it creates (Flink's `high-availability.zookeeper.client.acl`):
 *  - `open`: `world:anyone` with every permission (ZooKeeper's default);
 *  - `creator`: every permission for the session's own authenticated identities only (`auth` scheme,
 *    i.e. the digest credentials), plus `world:anyone` read when `worldReadable`.
 */
export type AclMode = 'open' | 'creator';
export type Watcher = (event: WatchEvent) => void;

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  sessionId: string | null;
  reason?: string;
}

/** What the product needs from ZooKeeper. Unit tests may implement it with a fake. */
export interface ZooKeeperClient {
  readonly state: ConnectionState;
  readonly isConnected: boolean;
  /** Hex id of the current session, or null before the first connect and after LOST. */
  readonly sessionId: string | null;
  /** Negotiated session timeout (falls back to the requested one before connecting). */
  readonly sessionTimeoutMs: number;
  /** The chroot every path is relative to ("/" for none). */
  readonly chroot: string;
  /** Seals and verifies the cluster state this session's stores write and read (src/zk/sealed.ts); absent: unauthenticated. */
  readonly seal?: StateSeal;
  on(event: 'state', listener: (change: StateChange) => void): this;
  off(event: 'state', listener: (change: StateChange) => void): this;
  create(path: string, data?: Buffer | string, mode?: CreateMode): Promise<string>;
  get(path: string, watcher?: Watcher): Promise<{ data: Buffer; stat: Stat }>;
  set(path: string, data: Buffer | string, version?: number): Promise<Stat>;
  delete(path: string, version?: number): Promise<void>;
  exists(path: string, watcher?: Watcher): Promise<Stat | null>;
  getChildren(path: string, watcher?: Watcher): Promise<string[]>;
  /**
   * Children and the parent's stat in one request (ZooKeeper's getChildren2): the stat's `cversion`
   * (child changes so far) and `pzxid` (zxid of the latest) tell which membership the listing shows.
   * The optional watcher fires once on the next membership change. Throws NoNodeError.
   */
  getChildrenWithStat(path: string, watcher?: Watcher): Promise<{ children: string[]; stat: Stat }>;
  sync(path: string): Promise<void>;
  /**
   * Creates the path and any missing parents as persistent nodes; existing nodes are fine. With the
   * `creator` ACL every node of the path (and the chroot) is locked to this identity (see `lockPath`).
   */
  mkdirp(path: string): Promise<void>;
  waitUntilConnected(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface ZooKeeperClientOptions {
  /** "host:port,host:port" */
  connect: string;
  /** Chroot, e.g. "/ha-dispatcher/default"; created on first connect. */
  chroot?: string;
  sessionTimeoutMs?: number;
  logger?: EventLogger;
  clock?: Clock;
  /** Called after every operation: for latency metrics. */
  onOperation?: (op: string, durationMs: number, error: ZkError | null) => void;
  /** Digest credentials "user:password" added to every session (the config's digest-auth, or the content of digest-auth-file). */
  digestAuth?: string;
  /** ACL of every node this client creates; default `open`. `creator` needs `digestAuth`. */
  acl?: AclMode;
  /** With `creator`: also let `world:anyone` read (operators' zkCli without credentials). Default false. */
  worldReadable?: boolean;
  /** The cluster's state seal, handed to every store on this session (src/zk/sealed.ts). */
  seal?: StateSeal;
}

/** The ACL list a client in `mode` puts on the nodes it creates. */
export function aclFor(mode: AclMode, worldReadable = false): AclEntry[] {
  if (mode === 'open') return [{ perms: ZK_PERMS.ALL, scheme: 'world', id: 'anyone' }];
  const acl: AclEntry[] = [{ perms: ZK_PERMS.ALL, scheme: 'auth', id: '' }];
  if (worldReadable) acl.push({ perms: ZK_PERMS.READ, scheme: 'world', id: 'anyone' });
  return acl;
}

interface NativeStat extends Omit<Stat, 'ctime' | 'mtime'> { ctime: Date | number; mtime: Date | number }
type RcCallback = (rc: number, error: string, ...rest: unknown[]) => void;
type NativeWatchCb = (type: number, state: number, path: string) => void;

/** The request methods of the native binding. */
interface NativeOps {
  a_create(path: string, data: Buffer | string, flags: number, cb: RcCallback): number;
  a_get(path: string, watch: boolean, cb: RcCallback): number;
  aw_get(path: string, watchCb: NativeWatchCb, cb: RcCallback): number;
  a_set(path: string, data: Buffer | string, version: number, cb: RcCallback): number;
  a_delete_(path: string, version: number, cb: RcCallback): number;
  a_exists(path: string, watch: boolean, cb: RcCallback): number;
  aw_exists(path: string, watchCb: NativeWatchCb, cb: RcCallback): number;
  a_get_children(path: string, watch: boolean, cb: RcCallback): number;
  aw_get_children(path: string, watchCb: NativeWatchCb, cb: RcCallback): number;
  a_get_children2(path: string, watch: boolean, cb: RcCallback): number;
  aw_get_children2(path: string, watchCb: NativeWatchCb, cb: RcCallback): number;
  a_sync(path: string, cb: RcCallback): number;
  a_get_acl(path: string, cb: RcCallback): number;
  /** Entries as `{perm, scheme, auth}` (the binding's input shape differs from its output `{perms, ...}`). */
  a_set_acl(path: string, version: number, acl: Array<{ perm: number; scheme: string; auth: string }>, cb: RcCallback): number;
}

interface NativeHandle extends EventEmitter, NativeOps {
  init(config: object): NativeHandle;
  close(): void;
  readonly client_id: string;
  readonly client_password: string;
  readonly timeout: number;
  add_auth(scheme: string, auth: string, cb: RcCallback): void;
  /**
   * The binding under the package's JS wrapper. The wrapper formats every request's arguments with
   * util.inspect for a debug log even when no logger is set (a large share of a request's CPU), so
   * requests go to the binding directly; it has the same methods and arguments.
   */
  readonly native?: NativeOps;
}

const WATCH_TYPES: Record<number, WatchEventType> = { 1: 'created', 2: 'deleted', 3: 'changed', 4: 'child', '-2': 'notwatching' };
const SESSION_EVENT = -1;

export class NativeZooKeeperClient extends EventEmitter implements ZooKeeperClient {
  readonly chroot: string;
  readonly seal?: StateSeal;
  private readonly connectString: string;
  private readonly requestedTimeoutMs: number;
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private readonly onOperation?: ZooKeeperClientOptions['onOperation'];
  private readonly digestAuth?: string;
  /** ACL set on every created node; null for `open` (ZooKeeper's default: nothing to set). */
  private readonly createAcl: AclEntry[] | null;
  private handle: NativeHandle | null = null;
  private currentState: ConnectionState = 'CONNECTING';
  private currentSessionId: string | null = null;
  private lostTimer: TimerHandle | null = null;
  private chrootEnsured = false;
  /** Absolute paths mkdirp created or locked (creator ACL) during this client's life: not asked again. */
  private readonly lockedPaths = new Set<string>();
  private closing: Promise<void> | null = null;

  constructor(options: ZooKeeperClientOptions) {
    super();
    this.connectString = options.connect;
    this.chroot = options.chroot ? validatePath(options.chroot) : '/';
    this.requestedTimeoutMs = options.sessionTimeoutMs ?? 30000;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.onOperation = options.onOperation;
    this.digestAuth = options.digestAuth;
    this.seal = options.seal;
    const acl = options.acl ?? 'open';
    if (acl === 'creator' && !this.digestAuth) throw new Error('the creator ACL needs digest credentials (high-availability.zookeeper.client.digest-auth-file or digest-auth)');
    this.createAcl = acl === 'creator' ? aclFor(acl, options.worldReadable) : null;
    this.openSession();
  }

  get state(): ConnectionState { return this.currentState; }
  get isConnected(): boolean { return this.currentState === 'CONNECTED' || this.currentState === 'RECONNECTED'; }
  get sessionId(): string | null { return this.currentSessionId; }
  get sessionTimeoutMs(): number {
    const negotiated = this.handle && this.isConnected ? this.handle.timeout : 0;
    return negotiated > 0 ? negotiated : this.requestedTimeoutMs;
  }

  /** Session credentials, for tests that expire a session from a second connection. */
  get sessionCredentials(): { sessionId: string; password: string } | null {
    if (!this.handle || !this.currentSessionId) return null;
    return { sessionId: this.handle.client_id, password: this.handle.client_password };
  }

  private openSession(): void {
    const handle = new NativeZooKeeper({
      connect: this.connectString,
      timeout: this.requestedTimeoutMs,
      debug_level: Number(process.env.HA_ZK_CLIENT_LOG_LEVEL ?? 0),
      host_order_deterministic: false,
    });
    this.handle = handle;
    handle.on('connect', () => { if (this.handle === handle) this.onNativeConnect(handle); });
    handle.on('connecting', () => { if (this.handle === handle) this.onNativeConnecting(); });
    handle.on('close', (_self: unknown, code: number) => { if (this.handle === handle) this.onNativeClose(code); });
    handle.init({});
  }

  private onNativeConnect(handle: NativeHandle): void {
    this.cancelLostTimer();
    const sessionId = handle.client_id;
    const sameSession = this.currentSessionId === sessionId;
    this.currentSessionId = sessionId;
    if (this.digestAuth) handle.add_auth('digest', this.digestAuth, () => undefined);
    this.setState(sameSession ? 'RECONNECTED' : 'CONNECTED');
  }

  private onNativeConnecting(): void {
    if (!this.isConnected) return;
    this.setState('SUSPENDED');
    // The C client retries forever and only learns of expiry from a server it reaches again; a
    // partitioned client must assume the worst once a whole session timeout has passed.
    const timeoutMs = this.handle?.timeout || this.requestedTimeoutMs;
    this.lostTimer = this.clock.setTimeout(() => {
      this.lostTimer = null;
      if (this.currentState === 'SUSPENDED') this.loseSession(`disconnected for the session timeout (${timeoutMs} ms)`);
    }, timeoutMs);
  }

  /**
   * The binding emits 'close' with the C client's session *state* (ZOO_EXPIRED_SESSION_STATE or
   * ZOO_AUTH_FAILED_STATE), not a result code: compare against ZK_CLOSE_STATES, never ZK_CODES.
   */
  private onNativeClose(code: number): void {
    if (this.closing) return;
    const reason = code === ZK_CLOSE_STATES.EXPIRED_SESSION ? 'session expired' : code === ZK_CLOSE_STATES.AUTH_FAILED ? 'authentication failed' : `closed (${code})`;
    this.handle = null;
    this.loseSession(reason);
  }

  private loseSession(reason: string): void {
    this.cancelLostTimer();
    const old = this.handle;
    this.handle = null;
    this.currentSessionId = null;
    this.setState('LOST', reason);
    if (old) {
      try { old.close(); } catch { /* already closed */ }
    }
    if (this.closing) return;
    this.setState('CONNECTING', 'opening a new session');
    this.openSession();
  }

  private cancelLostTimer(): void {
    if (this.lostTimer) {
      this.clock.clearTimeout(this.lostTimer);
      this.lostTimer = null;
    }
  }

  private setState(state: ConnectionState, reason?: string): void {
    const previous = this.currentState;
    if (previous === state) return;
    this.currentState = state;
    const change: StateChange = { state, previous, sessionId: this.currentSessionId, reason };
    const level = state === 'LOST' || state === 'SUSPENDED' ? 'warn' : 'info';
    this.logger[level]('zk.state', { state, previous, sessionId: this.currentSessionId, reason });
    this.emit('state', change);
  }

  /**
   * Resolves once connected with the chroot in place. A connection loss while making the chroot (a
   * busy ensemble drops a fresh connection now and then) is retried within the same `timeoutMs`
   * budget; only the deadline, a closed client or a non-transient error (e.g. NOAUTH) rejects.
   */
  async waitUntilConnected(timeoutMs: number): Promise<void> {
    const deadline = this.clock.monotonicNow() + timeoutMs;
    for (;;) {
      await this.waitForConnection(Math.max(1, deadline - this.clock.monotonicNow()));
      try {
        return await this.ensureChroot();
      } catch (err) {
        if (!(err instanceof ZkError && err.isConnectionLoss) || this.clock.monotonicNow() >= deadline) throw err;
        this.logger.warn('zk.chroot.retry', { chroot: this.chroot, reason: err.message });
        // The state may still read CONNECTED for a moment after the loss: pause rather than spin.
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 100));
      }
    }
  }

  private async waitForConnection(timeoutMs: number): Promise<void> {
    if (this.isConnected) return;
    await new Promise<void>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.off('state', listener);
        reject(new ConnectionLossError(ZK_CODES.CONNECTIONLOSS, `connect to ${this.connectString} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (change: StateChange): void => {
        if (change.state === 'CONNECTED' || change.state === 'RECONNECTED' || change.state === 'CLOSED') {
          this.clock.clearTimeout(timer);
          this.off('state', listener);
          if (change.state === 'CLOSED') reject(new ZkError(ZK_CODES.CLOSING, 'connect'));
          else resolve();
        }
      };
      this.on('state', listener);
    });
  }

  private async ensureChroot(): Promise<void> {
    if (this.chrootEnsured || this.chroot === '/') return;
    await this.mkdirpAbsolute(this.chroot);
    this.chrootEnsured = true;
  }

  private abs(path: string): string {
    validatePath(path);
    return this.chroot === '/' ? path : path === '/' ? this.chroot : this.chroot + path;
  }

  private rel(absolute: string): string {
    if (this.chroot === '/') return absolute;
    if (absolute === this.chroot) return '/';
    return absolute.startsWith(this.chroot + '/') ? absolute.slice(this.chroot.length) : absolute;
  }

  /** Runs one native call; a call on a dead handle fails like a lost connection. */
  private call<T>(op: string, path: string, invoke: (h: NativeOps, cb: RcCallback) => number, pick: (...rest: unknown[]) => T): Promise<T> {
    const started = this.clock.now();
    return new Promise<T>((resolve, reject) => {
      const finish = (error: ZkError | null, value?: T): void => {
        this.onOperation?.(op, this.clock.now() - started, error);
        if (error) reject(error);
        else resolve(value as T);
      };
      const handle = this.handle;
      if (!handle || this.closing) {
        finish(zkError(this.closing ? ZK_CODES.CLOSING : ZK_CODES.CONNECTIONLOSS, op, path));
        return;
      }
      try {
        const rc = invoke(handle.native ?? handle, (cbRc: number, _msg: string, ...rest: unknown[]) => {
          if (cbRc !== 0) finish(zkError(cbRc, op, path));
          else finish(null, pick(...rest));
        });
        if (typeof rc === 'number' && rc !== 0) finish(zkError(rc, op, path));
      } catch (err) {
        finish(new ZkError(ZK_CODES.BADARGUMENTS, `${op} (${(err as Error).message})`, path));
      }
    });
  }

  private wrapWatcher(watcher: Watcher): NativeWatchCb {
    let fired = false;
    return (type, _state, path) => {
      // Session events are delivered to every registered watcher; only real node events count.
      if (type === SESSION_EVENT || fired) return;
      fired = true;
      const eventType = WATCH_TYPES[type];
      if (!eventType) return;
      try {
        watcher({ type: eventType, path: this.rel(path) });
      } catch (err) {
        this.logger.error('zk.watcher.error', { error: err as Error, path });
      }
    };
  }

  /**
   * Creates a node. With the `creator` ACL the node is locked right behind the create (the binding
   * always creates with the open ACL): for a named node the setACL is pipelined on the same session,
   * for a sequential one it follows the answer. The promise settles only once the node is locked; a
   * node that could not be locked (someone changed its ACL first) rejects, so callers never trust it.
   */
  create(path: string, data: Buffer | string = '', mode: CreateMode = 'persistent'): Promise<string> {
    const p = this.abs(path);
    const created = this.call('create', path, (h, cb) => h.a_create(p, data, CREATE_FLAGS[mode], cb), (c) => String(c));
    const acl = this.createAcl;
    if (!acl) return created.then((c) => this.rel(c));
    if (mode === 'persistent_sequential' || mode === 'ephemeral_sequential') {
      return created.then(async (c) => { await this.setAclAbsolute(c, acl, 0); return this.rel(c); });
    }
    // A just-created node has ACL version 0: a lock that finds another version lost a race to another identity.
    const locked = this.setAclAbsolute(p, acl, 0);
    return Promise.allSettled([created, locked]).then(([c, l]) => {
      if (c.status === 'rejected') throw c.reason;
      if (l.status === 'rejected') throw l.reason;
      return this.rel(c.value);
    });
  }

  /** A node's ACL, e.g. `[{perms: 31, scheme: 'digest', id: 'user:<base64 sha1>'}]`. Throws NoNodeError. */
  async getACL(path: string): Promise<AclEntry[]> {
    const p = this.abs(path);
    return this.call('getACL', path, (h, cb) => h.a_get_acl(p, cb),
      (acl) => ((acl ?? []) as Array<{ perms: number; scheme: string; auth: string }>).map((a) => ({ perms: a.perms, scheme: a.scheme, id: a.auth })));
  }

  /** Replaces a node's ACL (version -1: any ACL version). Throws NoAuthError without ADMIN permission on it. */
  setACL(path: string, acl: AclEntry[], version = -1): Promise<void> {
    return this.setAclAbsolute(this.abs(path), acl, version, path);
  }

  private setAclAbsolute(absolute: string, acl: AclEntry[], version: number, shown = this.rel(absolute)): Promise<void> {
    const entries = acl.map((a) => ({ perm: a.perms, scheme: a.scheme, auth: a.id }));
    return this.call('setACL', shown, (h, cb) => h.a_set_acl(absolute, version, entries, cb), () => undefined);
  }

  get(path: string, watcher?: Watcher): Promise<{ data: Buffer; stat: Stat }> {
    const p = this.abs(path);
    return this.call('get', path,
      (h, cb) => (watcher ? h.aw_get(p, this.wrapWatcher(watcher), cb) : h.a_get(p, false, cb)),
      (stat, data) => ({ data: toBuffer(data), stat: toStat(stat as NativeStat) }));
  }

  set(path: string, data: Buffer | string, version = -1): Promise<Stat> {
    const p = this.abs(path);
    return this.call('set', path, (h, cb) => h.a_set(p, data, version, cb), (stat) => toStat(stat as NativeStat));
  }

  delete(path: string, version = -1): Promise<void> {
    const p = this.abs(path);
    return this.call('delete', path, (h, cb) => h.a_delete_(p, version, cb), () => undefined);
  }

  async exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    const p = this.abs(path);
    try {
      return await this.call('exists', path,
        (h, cb) => (watcher ? h.aw_exists(p, this.wrapWatcher(watcher), cb) : h.a_exists(p, false, cb)),
        (stat) => toStat(stat as NativeStat));
    } catch (err) {
      // A NONODE answer still leaves an exists-watch in place, waiting for the node's creation.
      if (err instanceof ZkError && err.code === 'NONODE') return null;
      throw err;
    }
  }

  getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    const p = this.abs(path);
    return this.call('getChildren', path,
      (h, cb) => (watcher ? h.aw_get_children(p, this.wrapWatcher(watcher), cb) : h.a_get_children(p, false, cb)),
      (children) => (children as string[]) ?? []);
  }

  getChildrenWithStat(path: string, watcher?: Watcher): Promise<{ children: string[]; stat: Stat }> {
    const p = this.abs(path);
    // Measured as `getChildren`: the same request, answered with the stat too.
    return this.call('getChildren', path,
      (h, cb) => (watcher ? h.aw_get_children2(p, this.wrapWatcher(watcher), cb) : h.a_get_children2(p, false, cb)),
      (children, stat) => ({ children: (children as string[]) ?? [], stat: toStat(stat as NativeStat) }));
  }

  sync(path: string): Promise<void> {
    const p = this.abs(path);
    return this.call('sync', path, (h, cb) => h.a_sync(p, cb), () => undefined);
  }

  async mkdirp(path: string): Promise<void> {
    await this.mkdirpAbsolute(this.abs(path));
  }

  private async mkdirpAbsolute(absolute: string): Promise<void> {
    // Nearly always the path exists already (every election check and every recovery asks): one
    // local read answers that, instead of one create round trip through the quorum leader per segment.
    if (this.lockedPaths.has(absolute)) return;
    try {
      await this.call('exists', absolute, (h, cb) => h.a_exists(absolute, false, cb), () => undefined);
      if (!this.createAcl) return;
    } catch (err) {
      if (!(err instanceof ZkError && err.code === 'NONODE')) throw err;
    }
    const parts = absolute.split('/').filter(Boolean);
    const chrootDepth = this.chroot.split('/').filter(Boolean).length;
    for (let i = 1; i <= parts.length; i++) {
      const p = join(...parts.slice(0, i));
      if (this.lockedPaths.has(p)) continue;
      // The chroot and everything below it belong to this cluster: an existing node there (made before
      // the creator ACL was configured) is locked too. Ancestors above the chroot may be shared with other
      // clusters, so only those this client creates are locked.
      const ours = i >= chrootDepth;
      let created = false;
      try {
        await this.call('create', p, (h, cb) => h.a_create(p, '', 0, cb), () => undefined);
        created = true;
      } catch (err) {
        if (err instanceof ZkError && err.code === 'NOAUTH') {
          throw new ZkError(ZK_CODES.NOAUTH, 'create (the parent node refuses this ZooKeeper identity CREATE; grant it, or choose another high-availability.zookeeper.path.root or cluster-id)', p);
        }
        if (!(err instanceof ZkError && err.code === 'NODEEXISTS')) throw err;
      }
      if (!this.createAcl) continue;
      if (created || ours) {
        // A shared ancestor (path.root) stays open to CREATE for everyone, or the first cluster to
        // make it would lock every other cluster (another identity) on the ensemble out of its own chroot.
        const acl = ours ? this.createAcl : [...this.createAcl, { perms: ZK_PERMS.CREATE, scheme: 'world', id: 'anyone' }];
        await this.setAclAbsolute(p, acl, -1).catch((err) => {
          if (err instanceof ZkError && err.code === 'NOAUTH') {
            throw new ZkError(ZK_CODES.NOAUTH, 'lock (setACL: the node belongs to another ZooKeeper identity; check that every replica and TaskManager has the same high-availability.zookeeper.client.digest-auth-file or digest-auth)', p);
          }
          throw err;
        });
      }
      this.lockedPaths.add(p);
    }
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.cancelLostTimer();
      const handle = this.handle;
      this.handle = null;
      if (handle) {
        try { handle.close(); } catch { /* already closed */ }
      }
      this.setState('CLOSED', 'closed by owner');
    })();
    return this.closing;
  }
}

function toBuffer(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data === null || data === undefined) return Buffer.alloc(0);
  return Buffer.from(String(data));
}

function toStat(s: NativeStat): Stat {
  return {
    czxid: s.czxid, mzxid: s.mzxid, pzxid: s.pzxid, version: s.version, cversion: s.cversion,
    dataLength: s.dataLength, numChildren: s.numChildren,
    ctime: s.ctime instanceof Date ? s.ctime.getTime() : Number(s.ctime),
    mtime: s.mtime instanceof Date ? s.mtime.getTime() : Number(s.mtime),
    ephemeralOwner: String(s.ephemeralOwner),
  };
}

/**
 * Expires a session the way ZooKeeper's own tests do: a second connection attaches to the same
 * session with its credentials and closes it, so the server ends the session while the owner's
 * connection stays up. Test and chaos tooling only.
 */
export async function expireSession(connect: string, credentials: { sessionId: string; password: string }, timeoutMs = 10000): Promise<void> {
  const handle = new NativeZooKeeper({
    connect, timeout: 30000, debug_level: 0, client_id: credentials.sessionId, client_password: credentials.password,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`could not attach to session ${credentials.sessionId}`)), timeoutMs);
      handle.once('connect', () => { clearTimeout(timer); resolve(); });
      handle.init({});
    });
  } finally {
    // Also on failure: a native handle left open keeps reconnecting, and keeps the process alive.
    handle.close();
  }
}
