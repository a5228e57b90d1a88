/**
 * A local ZooKeeper ensemble of real servers on loopback, started from the installed Apache
 * ZooKeeper. Used by `ha-dispatcher zookeeper`, `ha-dispatcher local`, the tests and the
 * benchmarks; chaos tooling stops, kills, pauses, resumes and restarts single servers.
 */
import { ChildProcess } from 'node:child_process';
import { spawnClean } from '../util/clean-spawn';
import { isProcessAlive, killOnExit } from '../util/process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fourLetterWord } from './four-letter-word';
import { findZooKeeperInstall, ZooKeeperInstall } from './install';
import { freePorts } from '../util/ports';
import { packageRoot } from '../util/package-root';
import { sleep } from '../util/clock';

export interface EnsembleOptions {
  /** Folder for configs, data and logs of every server. */
  dir: string;
  servers?: number;
  tickTime?: number;
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
  /** Servers outlive this process (the CLI's `zookeeper start`). */
  detached?: boolean;
  heapMb?: number;
  startTimeoutMs?: number;
  /**
   * Extra `zoo.cfg` properties for every server, appended after the template's, e.g.
   * `{'enforce.auth.enabled': 'true', 'enforce.auth.schemes': 'digest'}` (refuse unauthenticated sessions).
   */
  serverProperties?: Record<string, string>;
  /**
   * TLS-only client port: every server listens on ZooKeeper's `secureClientPort` (Netty) and has no
   * plaintext `clientPort`. The native client speaks no TLS, so clients reach it through a TLS tunnel
   * (docs/ARCHITECTURE.md, "Encrypted ZooKeeper connection"); `connectString` then names TLS ports.
   */
  clientTls?: ClientPortTls;
}

/** PEM files for a TLS-only client port (ZooKeeper 3.8 reads PEM key and trust stores). */
export interface ClientPortTls {
  /** The server's private key (unencrypted PKCS#8, `BEGIN PRIVATE KEY`) followed by its certificate chain. */
  keyStoreFile: string;
  /** The CA certificate(s) a client certificate must chain to (`ssl.clientAuth=need`). */
  trustStoreFile: string;
  /** What the readiness probe (`srvr` over TLS) presents and trusts: PEM files of a client certificate, its key and the CA. */
  probe: { caFile: string; certFile: string; keyFile: string };
}

export interface ServerSpec {
  id: number;
  clientPort: number;
  quorumPort: number;
  electionPort: number;
  dataDir: string;
  configFile: string;
  logFile: string;
  pid: number | null;
  /** `clientPort` is ZooKeeper's secureClientPort: TLS only, no plaintext port (EnsembleOptions.clientTls). */
  clientTls?: boolean;
}

export type ServerMode = 'leader' | 'follower' | 'standalone' | 'not serving' | 'down';

export interface ServerStatus { id: number; clientPort: number; pid: number | null; alive: boolean; paused: boolean; mode: ServerMode }

interface StateFile { tickTime: number; servers: ServerSpec[]; probeTls?: ClientPortTls['probe'] }

const STATE_FILE = 'ensemble.json';

export class LocalEnsemble {
  private readonly children = new Map<number, ChildProcess>();
  private readonly paused = new Set<number>();
  private readonly install: ZooKeeperInstall;

  private constructor(
    readonly dir: string,
    readonly servers: ServerSpec[],
    private readonly options: Required<Pick<EnsembleOptions, 'detached' | 'heapMb' | 'startTimeoutMs'>> & { probeTls?: ClientPortTls['probe'] },
  ) {
    this.install = findZooKeeperInstall();
  }

  /** Writes configs for a new ensemble, starts every server and waits for a serving quorum. */
  static async start(options: EnsembleOptions): Promise<LocalEnsemble> {
    const count = options.servers ?? 3;
    if (!Number.isInteger(count) || count < 1 || count > 9) throw new Error(`--servers must be 1..9, got ${count}`);
    const tickTime = options.tickTime ?? 200;
    const dir = path.resolve(options.dir);
    fs.mkdirSync(dir, { recursive: true });
    findZooKeeperInstall(); // fail early, with the install hint, before writing anything
    const ports = await freePorts(count * 3);
    const servers: ServerSpec[] = [];
    for (let i = 0; i < count; i++) {
      const id = i + 1;
      const serverDir = path.join(dir, `server${id}`);
      servers.push({
        id,
        clientPort: ports[i * 3],
        quorumPort: ports[i * 3 + 1],
        electionPort: ports[i * 3 + 2],
        dataDir: path.join(serverDir, 'data'),
        configFile: path.join(serverDir, 'zoo.cfg'),
        logFile: path.join(serverDir, 'server.log'),
        pid: null,
        ...(options.clientTls ? { clientTls: true } : {}),
      });
    }
    const template = fs.readFileSync(path.join(packageRoot(), 'zk-config', 'zoo.cfg.template'), 'utf8');
    const serverLines = servers.map((s) => `server.${s.id}=127.0.0.1:${s.quorumPort}:${s.electionPort}`).join('\n');
    for (const s of servers) {
      fs.mkdirSync(s.dataDir, { recursive: true });
      fs.writeFileSync(path.join(s.dataDir, 'myid'), `${s.id}\n`);
      const values: Record<string, string> = {
        tickTime: String(tickTime),
        minSessionTimeout: String(options.minSessionTimeoutMs ?? tickTime * 2),
        maxSessionTimeout: String(options.maxSessionTimeoutMs ?? Math.max(tickTime * 20, 60000)),
        dataDir: s.dataDir,
        clientPort: String(s.clientPort),
        standaloneEnabled: count === 1 ? 'true' : 'false',
        servers: count === 1 ? '' : serverLines,
      };
      const extra = Object.entries(options.serverProperties ?? {}).map(([key, value]) => {
        if (!/^[A-Za-z0-9_.]+$/.test(key) || /[\r\n]/.test(value)) throw new Error(`invalid ZooKeeper server property ${JSON.stringify(key)}`);
        return `${key}=${value}\n`;
      }).join('');
      let config = template.replace(/\$\{(\w+)\}/g, (_, key: string) => values[key] ?? '');
      if (options.clientTls) {
        config = config.replace(/^clientPort=.*$/m, secureClientPortProperties(s.clientPort, options.clientTls)).replace(/^clientPortAddress=.*\n/m, '');
      }
      fs.writeFileSync(s.configFile, config + extra);
    }
    const ensemble = new LocalEnsemble(dir, servers, {
      detached: options.detached ?? false,
      heapMb: options.heapMb ?? 256,
      startTimeoutMs: options.startTimeoutMs ?? 60000,
      probeTls: options.clientTls?.probe,
    });
    ensemble.writeState(tickTime);
    for (const s of servers) ensemble.spawnServer(s);
    ensemble.writeState(tickTime);
    await ensemble.waitForQuorum(ensemble.options.startTimeoutMs);
    return ensemble;
  }

  /** Attaches to an ensemble started earlier (possibly by another process) from its folder. */
  static attach(dir: string): LocalEnsemble {
    const file = path.join(path.resolve(dir), STATE_FILE);
    if (!fs.existsSync(file)) throw new Error(`no local ensemble in ${dir} (missing ${STATE_FILE}); start one with "ha-dispatcher zookeeper start --dir ${dir}"`);
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as StateFile;
    return new LocalEnsemble(path.resolve(dir), state.servers, { detached: true, heapMb: 256, startTimeoutMs: 60000, probeTls: state.probeTls });
  }

  get connectString(): string {
    return this.servers.map((s) => `127.0.0.1:${s.clientPort}`).join(',');
  }

  server(id: number): ServerSpec {
    const s = this.servers.find((x) => x.id === id);
    if (!s) throw new Error(`no ZooKeeper server ${id} in this ensemble (have ${this.servers.map((x) => x.id).join(', ')})`);
    return s;
  }

  private writeState(tickTime: number): void {
    const state: StateFile = { tickTime, servers: this.servers, ...(this.options.probeTls ? { probeTls: this.options.probeTls } : {}) };
    fs.writeFileSync(path.join(this.dir, STATE_FILE), JSON.stringify(state, null, 2));
  }

  private spawnServer(s: ServerSpec): void {
    const logFd = fs.openSync(s.logFile, 'a');
    const child = spawnClean(this.install.java, [
      `-Xmx${this.options.heapMb}m`,
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Dzookeeper.admin.enableServer=false',
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-cp', this.install.classpath,
      'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      s.configFile,
    ], { stdio: ['ignore', logFd, logFd], detached: this.options.detached });
    fs.closeSync(logFd);
    s.pid = child.pid ?? null;
    this.recordPid(s);
    this.paused.delete(s.id);
    if (this.options.detached) {
      child.unref();
    } else {
      this.children.set(s.id, child);
      child.once('exit', () => { if (this.children.get(s.id) === child) this.children.delete(s.id); });
      killOnExit(child);
    }
  }

  /**
   * Keeps the state file's pid of `s` current, so that another process attached to this folder (a drill
   * restarting a server of `local`'s ensemble) and the process that started it agree on who runs it.
   */
  private recordPid(s: ServerSpec): void {
    const file = path.join(this.dir, STATE_FILE);
    try {
      const state = JSON.parse(fs.readFileSync(file, 'utf8')) as StateFile;
      const entry = state.servers.find((x) => x.id === s.id);
      if (!entry || entry.pid === s.pid) return;
      entry.pid = s.pid;
      fs.writeFileSync(file, JSON.stringify(state, null, 2));
    } catch { /* no state file yet: start() writes it */ }
  }

  /** The pid the state file names for `s`, when another process restarted it: alive and running `s`'s config. */
  private refreshPid(s: ServerSpec): void {
    try {
      const state = JSON.parse(fs.readFileSync(path.join(this.dir, STATE_FILE), 'utf8')) as StateFile;
      const pid = state.servers.find((x) => x.id === s.id)?.pid;
      if (!pid || pid === s.pid || !isProcessAlive(pid)) return;
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(s.configFile)) s.pid = pid;
    } catch { /* no state file, or no /proc: keep ours */ }
  }

  private async signalAndWait(id: number, signal: NodeJS.Signals, timeoutMs = 15000): Promise<void> {
    const s = this.server(id);
    if (!s.pid || !isProcessAlive(s.pid)) this.refreshPid(s);
    if (!s.pid || !isProcessAlive(s.pid)) return;
    if (this.paused.has(id)) {
      process.kill(s.pid, 'SIGCONT');
      this.paused.delete(id);
    }
    try { process.kill(s.pid, signal); } catch { return; }
    const deadline = Date.now() + timeoutMs;
    while (isProcessAlive(s.pid) && Date.now() < deadline) await sleep(25);
    if (isProcessAlive(s.pid)) process.kill(s.pid, 'SIGKILL');
    while (isProcessAlive(s.pid)) await sleep(25);
  }

  /** Graceful stop of one server (SIGTERM). */
  stopServer(id: number): Promise<void> { return this.signalAndWait(id, 'SIGTERM'); }
  /** Crash one server (SIGKILL). */
  killServer(id: number): Promise<void> { return this.signalAndWait(id, 'SIGKILL'); }

  /** Freeze one server (SIGSTOP): its sockets stay open but it answers nothing. */
  pauseServer(id: number): void {
    const s = this.server(id);
    if (s.pid && isProcessAlive(s.pid)) { process.kill(s.pid, 'SIGSTOP'); this.paused.add(id); }
  }

  resumeServer(id: number): void {
    const s = this.server(id);
    if (s.pid && isProcessAlive(s.pid)) { process.kill(s.pid, 'SIGCONT'); this.paused.delete(id); }
  }

  /** Starts a stopped or killed server again with its old config and data. */
  async restartServer(id: number): Promise<void> {
    const s = this.server(id);
    if (s.pid && isProcessAlive(s.pid)) await this.stopServer(id);
    this.spawnServer(s);
  }

  async status(): Promise<ServerStatus[]> {
    return Promise.all(this.servers.map(async (s) => {
      const alive = s.pid !== null && isProcessAlive(s.pid);
      const paused = this.paused.has(s.id);
      let mode: ServerMode = 'down';
      if (alive && !paused) {
        try {
          const out = await fourLetterWord('127.0.0.1', s.clientPort, 'srvr', 1000, s.clientTls ? this.probeCredentials() : undefined);
          const m = /Mode: (\w+)/.exec(out);
          mode = m ? (m[1] as ServerMode) : 'not serving';
        } catch {
          mode = 'not serving';
        }
      }
      return { id: s.id, clientPort: s.clientPort, pid: s.pid, alive, paused, mode };
    }));
  }

  /** PEM texts for `srvr` over TLS (clientTls), read from the probe's files. */
  private probeCredentials(): { ca: string; cert: string; key: string } | undefined {
    const probe = this.options.probeTls;
    if (!probe) return undefined;
    return { ca: fs.readFileSync(probe.caFile, 'utf8'), cert: fs.readFileSync(probe.certFile, 'utf8'), key: fs.readFileSync(probe.keyFile, 'utf8') };
  }

  /** The id of the server currently leading the ZooKeeper quorum, or null. */
  async leaderId(): Promise<number | null> {
    const st = await this.status();
    return st.find((s) => s.mode === 'leader' || s.mode === 'standalone')?.id ?? null;
  }

  /** Waits until a majority of servers serve requests and one of them leads. */
  async waitForQuorum(timeoutMs = 60000): Promise<void> {
    const majority = Math.floor(this.servers.length / 2) + 1;
    const deadline = Date.now() + timeoutMs;
    let last: ServerStatus[] = [];
    while (Date.now() < deadline) {
      last = await this.status();
      const serving = last.filter((s) => s.mode === 'leader' || s.mode === 'follower' || s.mode === 'standalone');
      const hasLeader = serving.some((s) => s.mode === 'leader' || s.mode === 'standalone');
      if (hasLeader && serving.length >= majority) return;
      await sleep(100);
    }
    const logs = this.servers.map((s) => `server ${s.id}: ${tail(s.logFile, 5)}`).join('\n');
    throw new Error(`ZooKeeper quorum not serving after ${timeoutMs} ms: ${JSON.stringify(last)}\n${logs}`);
  }

  /** Stops every server (SIGTERM, then SIGKILL) and optionally removes the folder. */
  async stop(options: { removeData?: boolean } = {}): Promise<void> {
    await Promise.all(this.servers.map((s) => this.signalAndWait(s.id, 'SIGTERM', 5000)));
    if (options.removeData) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** zoo.cfg lines replacing `clientPort`: a TLS-only client port on loopback (Netty, PEM stores, client certificates required). */
function secureClientPortProperties(port: number, tls: ClientPortTls): string {
  for (const file of [tls.keyStoreFile, tls.trustStoreFile]) {
    if (/[\r\n]/.test(file)) throw new Error(`invalid ZooKeeper TLS file path ${JSON.stringify(file)}`);
  }
  return [
    `secureClientPort=${port}`,
    'secureClientPortAddress=127.0.0.1',
    'serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory',
    `ssl.keyStore.location=${tls.keyStoreFile}`,
    'ssl.keyStore.type=PEM',
    `ssl.trustStore.location=${tls.trustStoreFile}`,
    'ssl.trustStore.type=PEM',
    'ssl.clientAuth=need',
  ].join('\n');
}

function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '(no log)';
  }
}
