/**
 * The shipped load-balancer recipe, deploy/haproxy/haproxy.cfg, run by the real `haproxy` in front of
 * a running cluster (the `haproxy` drill). The file is used unchanged: only the environment variables
 * it documents are set (REPLICA1…5, HAPROXY_BIND, for https replicas HAPROXY_REPLICA_CA_FILE and
 * HAPROXY_TLS_CERT, and the "any healthy replica" pattern's HAPROXY_HEALTH_CHECK,
 * HAPROXY_ABSOLUTE_REDIRECTS and leader entrance HAPROXY_LEADER_BIND/HAPROXY_LEADER_URL), so what the drill rehearses is exactly what an operator deploys. The
 * `haproxy` benchmark scenario (bench/scenarios/haproxy.ts) starts it the same way.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from 'selfsigned';
import { type ClientTls, requestJson } from '../http/client';
import { ManagedChild } from '../util/managed-child';
import { packageRoot } from '../util/package-root';
import { eventually } from '../util/poll';
import { freePorts } from '../util/ports';

/** The recipe: one source of truth for compose, the tests and the drill. */
export const HAPROXY_RECIPE = path.join(packageRoot(), 'deploy', 'haproxy', 'haproxy.cfg');
/** The recipe has server lines REPLICA1 … REPLICA5. */
export const RECIPE_MAX_REPLICAS = 5;
/** Where Debian and most distributions install it (often not on an unprivileged user's PATH). */
const SBIN_DIRS = ['/usr/sbin', '/usr/local/sbin'];
const STOP_GRACE_MS = 5_000;

export interface BalancerOptions {
  /** The haproxy program (a path, or a name looked up on PATH). */
  binary: string;
  /** `host:port` of each replica's REST port, in the order of the recipe's REPLICA1, REPLICA2, … */
  replicas: string[];
  /**
   * For replicas with security.ssl.rest.enabled: the CA that signed their certificates (PEM). HAProxy then
   * verifies them against it, and serves clients https itself with a throwaway certificate.
   */
  replicaCa?: Buffer | string;
  /** The recipe's HAPROXY_HEALTH_CHECK: the check path, default the leader-only `/health`; `/health?standbyok=true` for "any healthy replica". */
  healthCheck?: string;
  /** The recipe's HAPROXY_ABSOLUTE_REDIRECTS=1: keep a 307's Location (standbyok with rest.standby-mode redirect). */
  absoluteRedirects?: boolean;
  /**
   * The recipe's leader entrance (HAPROXY_LEADER_BIND and HAPROXY_LEADER_URL on a second free 127.0.0.1
   * port): standbys' 307s are rewritten to it (standbyok with rest.standby-mode redirect).
   */
  leaderEntrance?: boolean;
  /** A folder the balancer may write into (its configuration's files and its log); the caller removes it. */
  dir: string;
  /** How long (ms) to wait for HAProxy to listen. */
  startTimeoutMs?: number;
}

/** The `haproxy` program: on PATH, else in an sbin folder; null when not installed. */
export function findHaproxy(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of [...(env.PATH ?? '').split(':').filter(Boolean), ...SBIN_DIRS]) {
    const file = path.join(dir, 'haproxy');
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch { /* not here */ }
  }
  return null;
}

/** A self-signed certificate for 127.0.0.1 and localhost (1 day): what clients of a drill's balancer trust. */
async function throwawayCertificate(): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }],
    { keySize: 2048, algorithm: 'sha256', notAfterDate: new Date(Date.now() + 86_400_000) });
  return { cert: pems.cert, key: pems.private };
}

/** One HAProxy process serving the recipe on a free 127.0.0.1 port. */
export class HaproxyBalancer {
  private constructor(
    /** Where clients connect: `http(s)://127.0.0.1:<port>`. */
    readonly url: string,
    /** The leader entrance, `http(s)://127.0.0.1:<port>`, when started with `leaderEntrance`; else null. */
    readonly leaderUrl: string | null,
    /** What a client of the balancer trusts (https only): its throwaway certificate. */
    readonly tls: ClientTls | undefined,
    /** `haproxy -v`'s first line. */
    readonly version: string,
    private readonly logFile: string,
    private readonly child: ManagedChild,
  ) {}

  /**
   * Checks the recipe with `haproxy -c` for these variables, starts `haproxy -db` and resolves once it
   * listens. Throws when there are no or too many replicas, the check fails (its output in the message),
   * or HAProxy does not listen within `startTimeoutMs` (default 10 000 ms).
   */
  static async start(options: BalancerOptions): Promise<HaproxyBalancer> {
    if (options.replicas.length === 0 || options.replicas.length > RECIPE_MAX_REPLICAS) {
      throw new Error(`the recipe takes 1 to ${RECIPE_MAX_REPLICAS} replicas (REPLICA1…${RECIPE_MAX_REPLICAS}), not ${options.replicas.length}`);
    }
    const [port, entrancePort] = await freePorts(2);
    const scheme = options.replicaCa !== undefined ? 'https' : 'http';
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HAPROXY_BIND: `127.0.0.1:${port}`,
      ...(options.leaderEntrance ? { HAPROXY_LEADER_BIND: `127.0.0.1:${entrancePort}`, HAPROXY_LEADER_URL: `${scheme}://127.0.0.1:${entrancePort}` } : {}),
      ...Object.fromEntries(options.replicas.map((hostPort, i) => [`REPLICA${i + 1}`, hostPort])),
      ...(options.healthCheck !== undefined ? { HAPROXY_HEALTH_CHECK: options.healthCheck } : {}),
      ...(options.absoluteRedirects ? { HAPROXY_ABSOLUTE_REDIRECTS: '1' } : {}),
    };
    let tls: ClientTls | undefined;
    if (options.replicaCa !== undefined) {
      env.HAPROXY_REPLICA_CA_FILE = path.join(options.dir, 'replica-ca.crt');
      fs.writeFileSync(env.HAPROXY_REPLICA_CA_FILE, options.replicaCa);
      const own = await throwawayCertificate();
      env.HAPROXY_TLS_CERT = path.join(options.dir, 'haproxy.pem');
      fs.writeFileSync(env.HAPROXY_TLS_CERT, `${own.cert.trim()}\n${own.key.trim()}\n`, { mode: 0o600 });
      tls = { ca: own.cert };
    }
    const version = spawnSync(options.binary, ['-v'], { encoding: 'utf8' });
    if (version.status !== 0) throw new Error(`${options.binary} -v failed: ${version.error?.message ?? version.stderr}`);
    const check = spawnSync(options.binary, ['-c', '-f', HAPROXY_RECIPE], { env, encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`haproxy -c -f ${HAPROXY_RECIPE} refused the recipe: ${`${check.stdout}${check.stderr}`.trim()}`);
    const logFile = path.join(options.dir, 'haproxy.log');
    const child = ManagedChild.spawn(options.binary, ['-f', HAPROXY_RECIPE, '-db'], { env, logFile });
    const balancer = new HaproxyBalancer(`${scheme}://127.0.0.1:${port}`, env.HAPROXY_LEADER_URL ?? null, tls, version.stdout.split('\n')[0].trim(), logFile, child);
    try {
      await eventually('HAProxy listens', async () => {
        if (!child.running) throw new Error(`haproxy exited: ${balancer.logTail(1000)}`);
        return requestJson('GET', `${balancer.url}/haproxy-health`, undefined, { timeoutMs: 2000, tls }).then(() => true);
      }, options.startTimeoutMs ?? 10_000, 50);
    } catch (err) {
      await balancer.stop();
      throw err;
    }
    return balancer;
  }

  get running(): boolean { return this.child.running; }

  /** The last `chars` characters of HAProxy's own output (its request and health-check log). */
  logTail(chars = 4000): string {
    try {
      const text = fs.readFileSync(this.logFile, 'utf8');
      return text.slice(-chars);
    } catch {
      return '';
    }
  }

  /** SIGTERM (SIGKILL after 5 s); resolves once HAProxy exited. */
  async stop(): Promise<void> {
    await this.child.stop('SIGTERM', STOP_GRACE_MS);
  }
}
