/**
 * Leader liveness as a standby sees it: the leader named in `/leader/info` stays there until its
 * ZooKeeper session expires, which for a SIGKILLed or frozen process is a whole session timeout. So a
 * standby probes the published leader's `GET /livez` every `intervalMs` over one kept-alive connection
 * (one probe in flight at a time, never one per client request) and counts a forwarded request that
 * got an answer as a probe success too. The REST leader gate asks `alive(target)` before it sends a
 * client there; the new leader's metrics ask `lastSeenAt(epoch)` for the predecessor's last sign of life.
 *
 * Dead or frozen (docs/ARCHITECTURE.md, "Standbys"):
 * - A process that dies (crash, SIGKILL) has its sockets closed by the kernel: the kept-alive connection
 *   closes under the tracker, which probes again at once instead of waiting for the next interval, and
 *   a refused connection (nothing listens on the port: the process is gone) is conclusive — unreachable
 *   at once. So a standby stops sending clients to a dead leader within a loopback round trip of
 *   hearing the connection close.
 * - A frozen process (SIGSTOP, a stalled host) keeps its connections and port: probes time out, and the
 *   leader is unreachable after `failuresToDown` consecutive failed probes, or when nothing answered for
 *   `staleAfterMs`.
 * - A leader stopping gracefully keeps its port open while it drains (`rest.shutdown-drain`, answers
 *   with `Connection: close`): it still answers, so it is alive until its port closes.
 * A newly published leader counts as alive (it just wrote `/leader/info` with a live session) and is
 * probed at once. Logs `leader.unreachable` (with the reason) and `leader.reachable` on transitions.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { EventEmitter } from 'node:events';
import { type ClientTls, socketErrorCode } from '../http/client';
import { EventLogger, silentLogger } from '../util/logger';
import { Clock, systemClock } from '../util/clock';
import type { LeaderInfo } from './leader-info';

/** The leader a standby would send clients to. */
export interface LeaderTarget { replicaId: string; restUrl: string; epoch: number }

/** What the REST layer needs of the tracker. */
export interface LeaderLivenessView {
  /** False when `target` is the tracked leader and it stopped answering; true otherwise. */
  alive(target: LeaderTarget): boolean;
  /**
   * `alive`, judged one event-loop turn later: a close of the liveness connection that arrived together
   * with the caller's request is heard first, and the probe it starts (at most `timeoutMs`) decides. For
   * the leader gate, so a standby whose loop was busy when the leader died does not answer the requests
   * queued meanwhile with 307s to it.
   */
  aliveNow(target: LeaderTarget): Promise<boolean>;
  /** An HTTP answer from `target` (e.g. to a forwarded request) is a sign of life. */
  recordSuccess(target: LeaderTarget): void;
  /**
   * No HTTP answer from `target`. `'refused'` (the connection was refused: nothing listens on its port)
   * makes it unreachable at once; `'failed'` (reset, deadline) counts as one failed probe.
   */
  recordFailure(target: LeaderTarget, cause?: FailureCause): void;
}

/** Where the tracker learns the published leader: leader retrieval (`current` plus `change` events). */
export interface LeaderSource {
  readonly current: LeaderInfo | null;
  on(event: 'change', listener: (leader: LeaderInfo | null) => void): unknown;
  off(event: 'change', listener: (leader: LeaderInfo | null) => void): unknown;
}

/** Why a leader did not answer: its port refused the connection, or anything else (reset, deadline). */
export type FailureCause = 'refused' | 'failed';

/** What one probe saw: any HTTP answer within the deadline, or why there was none. */
export type ProbeOutcome = 'answered' | FailureCause;

/**
 * One probe of `<restUrl>/livez` within `timeoutMs`; never rejects. `onConnectionLost` is called (at most
 * once per connection) when a kept-alive connection that carried an answer closes later: the signal
 * that the leader's process may be gone.
 */
export type LivenessProbe = (restUrl: string, timeoutMs: number, onConnectionLost: () => void, fresh?: boolean) => Promise<ProbeOutcome>;

export interface LeaderLivenessOptions {
  /** This replica: when it is the published leader there is nothing to probe. */
  selfId: string;
  /** Pause between two probes, in ms. Default 250. */
  intervalMs?: number;
  /** Deadline of one probe, in ms. Default 500. */
  timeoutMs?: number;
  /** Consecutive failed probes (timeouts, resets) after which the leader is unreachable. Default 2. A refused connection needs one. */
  failuresToDown?: number;
  /** Unreachable when no answer came for this long, in ms. Default 1500. */
  staleAfterMs?: number;
  logger?: EventLogger;
  clock?: Clock;
  /** For an https leader: the CA(s) its REST certificate chains to (default: the system's CAs). */
  tls?: ClientTls;
  /** For tests; default: `GET <restUrl>/livez` over a kept-alive node:http(s) Agent. */
  probe?: LivenessProbe;
}

interface Tracked {
  target: LeaderTarget;
  /** Epoch-ms: when tracking began, then the last answer. */
  lastSeenAt: number;
  /** True once the leader really answered (not just published). */
  answered: boolean;
  failures: number;
  reachable: boolean;
  /** Its kept-alive connection closed, and no probe started since has settled. */
  connectionLost: boolean;
}

export class LeaderLiveness extends EventEmitter implements LeaderLivenessView {
  private tracked: Tracked | null = null;
  /** The last leader other than this replica that really answered, kept after it is replaced. */
  private lastAnswered: { epoch: number; at: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  /** Settles when the probe in flight settles (null while none is). */
  private probeSettled: Promise<void> | null = null;
  /** The tracked leader's connection closed while a probe was in flight: probe again at once. */
  private probeAgain = false;
  private running = false;
  private readonly selfId: string;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly failuresToDown: number;
  private readonly staleAfterMs: number;
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private readonly agents: { http: http.Agent; https: https.Agent };
  private readonly probe: LivenessProbe;
  private readonly onChange = (leader: LeaderInfo | null): void => this.follow(leader);

  constructor(private readonly source: LeaderSource, options: LeaderLivenessOptions) {
    super();
    this.intervalMs = options.intervalMs ?? 250;
    this.timeoutMs = options.timeoutMs ?? 500;
    this.failuresToDown = options.failuresToDown ?? 2;
    this.staleAfterMs = options.staleAfterMs ?? 1500;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.agents = keptAliveAgents(1, options.tls);
    this.probe = options.probe ?? ((url, ms, lost, fresh) => probeLivez(url, ms, fresh ? null : this.agents, lost));
    this.selfId = options.selfId;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.source.on('change', this.onChange);
    this.follow(this.source.current);
  }

  stop(): void {
    this.running = false;
    this.source.off('change', this.onChange);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  alive(target: LeaderTarget): boolean {
    const t = this.tracked;
    if (!t || !sameLeader(t.target, target)) return true;
    if (t.reachable && this.clock.now() - t.lastSeenAt > this.staleAfterMs) this.setReachable(t, false, 'no answer within the window');
    return t.reachable;
  }

  async aliveNow(target: LeaderTarget): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    // A few rounds at most: a probe in flight when the connection closed is followed by one more.
    for (let round = 0; round < 3; round++) {
      const t = this.tracked;
      if (!t || !sameLeader(t.target, target) || !t.connectionLost || !this.probeSettled) break;
      await this.probeSettled;
    }
    return this.alive(target);
  }

  recordSuccess(target: LeaderTarget): void {
    const t = this.tracked;
    if (!t || !sameLeader(t.target, target)) return;
    t.failures = 0;
    t.lastSeenAt = this.clock.now();
    t.answered = true;
    this.lastAnswered = { epoch: t.target.epoch, at: t.lastSeenAt };
    if (!t.reachable) this.setReachable(t, true);
  }

  recordFailure(target: LeaderTarget, cause: FailureCause = 'failed'): void {
    const t = this.tracked;
    if (!t || !sameLeader(t.target, target)) return;
    t.failures++;
    if (!t.reachable) return;
    if (cause === 'refused') this.setReachable(t, false, 'connection refused: nothing listens on its port');
    else if (t.failures >= this.failuresToDown) this.setReachable(t, false, `${t.failures} consecutive probes failed`);
  }

  /**
   * Epoch-ms of the last answer of the leader that preceded a term with `epoch`: the last leader this
   * replica probed whose epoch is lower. Undefined when none answered (first election, or this replica
   * never saw the predecessor).
   */
  lastSeenAt(epoch: number): number | undefined {
    const last = this.lastAnswered;
    return last && last.epoch < epoch ? last.at : undefined;
  }

  /** The tracked leader and whether it answers (for /health and tests). */
  get state(): { target: LeaderTarget; reachable: boolean; lastSeenAt: number | null } | null {
    const t = this.tracked;
    return t ? { target: t.target, reachable: t.reachable, lastSeenAt: t.answered ? t.lastSeenAt : null } : null;
  }

  private follow(leader: LeaderInfo | null): void {
    const target = leader && leader.replicaId !== this.selfId ? { replicaId: leader.replicaId, restUrl: leader.restUrl, epoch: leader.epoch } : null;
    if (target && this.tracked && sameLeader(this.tracked.target, target)) return;
    this.tracked = target ? { target, lastSeenAt: this.clock.now(), answered: false, failures: 0, reachable: true, connectionLost: false } : null;
    this.probeAgain = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (target && this.running) this.schedule(0);
  }

  /**
   * A kept-alive connection to `restUrl` closed: if that is the tracked leader, probe it now (or right
   * after the probe in flight). A closed connection alone is no transition (a draining leader closes
   * idle connections too): the probe's outcome decides.
   */
  private connectionLost(restUrl: string): void {
    const t = this.tracked;
    if (!this.running || !t || t.target.restUrl !== restUrl) return;
    t.connectionLost = true;
    if (this.probing) {
      this.probeAgain = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.probeOnce(true);
  }

  private schedule(delayMs: number): void {
    if (this.timer || this.probing) return;
    this.timer = setTimeout(() => { this.timer = null; void this.probeOnce(); }, delayMs);
    this.timer.unref();
  }

  /**
   * One probe. `afterLoss`: started because the kept-alive connection ended — on a connection of its
   * own: the HTTP agent drops the ended socket only when it is closed, a phase of the event loop later,
   * and a probe sent on it failed instead of being refused (seen in half of the kills).
   */
  private async probeOnce(afterLoss = false): Promise<void> {
    const t = this.tracked;
    if (!t || !this.running) return;
    this.probing = true;
    let settled!: () => void;
    this.probeSettled = new Promise<void>((resolve) => { settled = resolve; });
    const restUrl = t.target.restUrl;
    let outcome: ProbeOutcome;
    try {
      outcome = await this.probe(restUrl, this.timeoutMs, () => this.connectionLost(restUrl), afterLoss);
    } finally {
      this.probing = false;
    }
    if (outcome === 'answered') this.recordSuccess(t.target);
    else this.recordFailure(t.target, outcome);
    // The connection closed under this probe: one that starts now tells whether the leader is gone. So
    // does one after a probe that followed a lost connection and was reset: a process being torn down
    // closes its connections before its listening port, which accepts and then resets meanwhile.
    const resetAfterLoss = afterLoss && outcome === 'failed' && t.reachable;
    const again = this.probeAgain || resetAfterLoss;
    this.probeAgain = false;
    if (!again) t.connectionLost = false;
    this.probeSettled = null;
    // Probing again at once starts before waiters (aliveNow) resume, so they wait for that verdict too.
    if (again && this.running && this.tracked === t) void this.probeOnce(resetAfterLoss);
    settled();
    if (this.running && this.tracked && !this.probing) this.schedule(this.tracked === t && !again ? this.intervalMs : 0);
  }

  private setReachable(t: Tracked, reachable: boolean, reason?: string): void {
    t.reachable = reachable;
    const fields = { leader: t.target.replicaId, leaderEpoch: t.target.epoch, restUrl: t.target.restUrl,
      lastSeenAt: t.answered ? new Date(t.lastSeenAt).toISOString() : null };
    if (reachable) this.logger.info('leader.reachable', fields);
    else this.logger.warn('leader.unreachable', { ...fields, reason });
    this.emit(reachable ? 'reachable' : 'unreachable', t.target);
  }
}

function sameLeader(a: LeaderTarget, b: LeaderTarget): boolean {
  return a.replicaId === b.replicaId && a.epoch === b.epoch && a.restUrl === b.restUrl;
}

/** One kept-alive Agent per scheme, at most `maxSockets` connections per leader; https trusts `tls.ca` when given. */
export function keptAliveAgents(maxSockets: number, tls?: ClientTls): { http: http.Agent; https: https.Agent } {
  return { http: new http.Agent({ keepAlive: true, maxSockets }),
    https: new https.Agent({ keepAlive: true, maxSockets, ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}) }) };
}

/** Connections whose close is already watched (an Agent reuses a socket for many probes). */
const watchedSockets = new WeakSet<object>();
/** Connections a probe destroyed itself (its deadline passed): their close says nothing about the leader. */
const destroyedByProbe = new WeakSet<object>();

/**
 * `GET <restUrl>/livez` within `timeoutMs`: 'answered' on any HTTP answer (a replica that answers at all
 * is alive), 'refused' when the connection is refused (ECONNREFUSED), else 'failed'. Never rejects.
 * `agents` null: a connection of its own, closed after the answer. `onConnectionLost` is attached to a
 * connection that carried an answer and stays kept alive (not one answered with `Connection: close`,
 * as a draining server does), and fires once when it ends (the peer's FIN: 'end'), fails (a reset) or
 * closes — whichever comes first: 'end' and 'error' are heard in the event-loop phase that read them,
 * 'close' only in a later one — unless a probe's own deadline closed it (a frozen leader: that is a
 * failed probe, not a lost connection).
 */
export function probeLivez(restUrl: string, timeoutMs: number, agents: { http: http.Agent; https: https.Agent } | null,
  onConnectionLost?: () => void): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let req: http.ClientRequest;
    try {
      const url = new URL(`${restUrl.replace(/\/$/, '')}/livez`);
      const get = url.protocol === 'https:' ? https.get : http.get;
      const agent = agents ? (url.protocol === 'https:' ? agents.https : agents.http) : false;
      req = get(url, { agent }, (res) => {
        const socket = res.socket;
        const closing = /(^|,)\s*close\s*(,|$)/i.test(String(res.headers.connection ?? ''));
        if (onConnectionLost && agent && socket && !closing && !watchedSockets.has(socket)) {
          watchedSockets.add(socket);
          let heard = false;
          const lost = (): void => {
            if (heard || destroyedByProbe.has(socket)) return;
            heard = true;
            onConnectionLost();
          };
          socket.once('end', lost);
          socket.once('error', lost);
          socket.once('close', lost);
        }
        res.resume();
        res.on('end', () => resolve('answered'));
        res.on('error', () => resolve('answered'));
      });
    } catch {
      resolve('failed');
      return;
    }
    const timer = setTimeout(() => {
      if (req.socket) destroyedByProbe.add(req.socket);
      req.destroy(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => resolve(socketErrorCode(err) === 'ECONNREFUSED' ? 'refused' : 'failed'));
    req.on('close', () => clearTimeout(timer));
  });
}
