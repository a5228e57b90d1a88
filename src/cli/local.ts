/**
 * `ha-dispatcher local`: the embedded default cluster for newcomers and drills — a 3-server
 * ZooKeeper ensemble, 3 dispatcher replicas and 2 TaskManagers as separate processes on loopback,
 * plus a demo job submitted through a standby. Ctrl-C stops everything.
 *
 * Secure like a production cluster: a throwaway CA under `<dir>/tls` signs each process's
 * certificate (https REST API, mutual TLS on the internal RPC, TaskManager ids in the certificates),
 * and both surfaces need their token. The banner prints how the CLI trusts the CA and sends the token.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalEnsemble } from '../ensemble/local-ensemble';
import { packageRoot } from '../util/package-root';
import { ManagedChild } from '../util/managed-child';
import { sleep } from '../util/clock';
import { RestClient } from '../client/rest-client';
import type { ClientTls } from '../http/client';
import { generateCa, generateCertificate, writeCertificate } from '../security/certificates';

export interface LocalClusterOptions {
  dir?: string;
  basePort: number;
  replicas?: number;
  taskManagers?: number;
  demo: boolean;
}

const BIN = (): string => path.join(packageRoot(), 'bin', 'ha-dispatcher.js');
/** A replica's graceful stop hands leadership over at once; beyond this it is killed. */
const CHILD_STOP_GRACE_MS = 15_000;
const EXIT_INTERRUPTED = 130;

export async function runLocalCluster(options: LocalClusterOptions): Promise<void> {
  const dir = path.resolve(options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ha-local-')));
  const out = (s: string): boolean => process.stdout.write(`${s}\n`);
  out(`Starting a local 3-server ZooKeeper ensemble in ${dir} ...`);
  const ensemble = await LocalEnsemble.start({ dir: path.join(dir, 'zookeeper'), servers: 3, tickTime: 500 });
  out(`ZooKeeper: ${ensemble.connectString}`);

  const children: ManagedChild[] = [];
  let stopping = false;
  // First Ctrl-C: stop in order (a drill may have killed or frozen some children; ManagedChild.stop copes with
  // both). A second one: exit now; the exit hooks SIGKILL every child and ZooKeeper server.
  const onSignal = (): void => {
    if (stopping) {
      out('Stopping at once (second signal).');
      process.exit(EXIT_INTERRUPTED);
    }
    stopping = true;
    out('\nStopping replicas, TaskManagers and ZooKeeper ... (Ctrl-C again to kill them at once)');
    void Promise.all(children.map((c) => c.stop('SIGTERM', CHILD_STOP_GRACE_MS)))
      .then(() => ensemble.stop())
      .then(() => {
        out('Stopped.');
        process.exit(0);
      });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Both surfaces run commands on TaskManagers: even the local cluster has tokens (in files, not argv) and TLS.
  const tokenFile = path.join(dir, 'internal-token');
  fs.writeFileSync(tokenFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const restToken = randomBytes(32).toString('hex');
  const restTokenFile = path.join(dir, 'rest-token');
  fs.writeFileSync(restTokenFile, `${restToken}\n`, { mode: 0o600 });
  const tlsDir = path.join(dir, 'tls');
  const ca = await generateCa('ha-dispatcher local CA');
  fs.mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  const caFile = path.join(tlsDir, 'ca.crt');
  fs.writeFileSync(caFile, ca.cert);
  const tlsSettings = async (role: 'replica' | 'taskmanager', id: string): Promise<string[]> => {
    const files = writeCertificate(tlsDir, id, await generateCertificate(ca, role, id), caFile);
    const internal = ['-D', 'security.ssl.internal.enabled=true', '-D', `security.ssl.internal.cert-file=${files.certFile}`,
      '-D', `security.ssl.internal.key-file=${files.keyFile}`, '-D', `security.ssl.internal.ca-file=${caFile}`];
    // A replica presents the same certificate on its REST API (where TaskManagers call it) as on internal calls.
    return role === 'taskmanager' ? internal : [...internal, '-D', 'security.ssl.rest.enabled=true',
      '-D', `security.ssl.rest.cert-file=${files.certFile}`, '-D', `security.ssl.rest.key-file=${files.keyFile}`, '-D', `security.ssl.rest.ca-file=${caFile}`];
  };
  const common = [
    '-D', `security.internal.token-file=${tokenFile}`,
    '-D', `security.rest.token-file=${restTokenFile}`,
    '-D', `high-availability.zookeeper.quorum=${ensemble.connectString}`,
    '-D', 'high-availability.zookeeper.client.session-timeout=6000',
    '-D', 'heartbeat.interval=1000', '-D', 'heartbeat.timeout=5000',
  ];
  const urls: string[] = [];
  for (let i = 0; i < (options.replicas ?? 3); i++) {
    const port = options.basePort + i;
    urls.push(`https://127.0.0.1:${port}`);
    const id = `replica-${i + 1}`;
    children.push(startProcess(dir, id, ['dispatcher', ...common, ...await tlsSettings('replica', id), '-D', `rest.port=${port}`, '-D', `replica.id=${id}`]));
  }
  for (let i = 0; i < (options.taskManagers ?? 2); i++) {
    const id = `taskmanager-${i + 1}`;
    const tm = startProcess(dir, id, ['taskmanager', ...common, ...await tlsSettings('taskmanager', id), '-D', `taskmanager.id=${id}`,
      '-D', 'taskmanager.numberOfTaskSlots=4', '-D', `taskmanager.data-dir=${path.join(dir, id)}`]);
    children.push(tm);
  }

  const access = { token: restToken, tls: { ca: ca.cert } satisfies ClientTls };
  const client = new RestClient({ url: urls[0], deadlineMs: 60_000, ...access });
  const leader = (await client.request('GET', '/leader')).body as { replicaId: string; restUrl: string; epoch: number };
  out('');
  out(`Replicas:     ${urls.join('  ')}`);
  out(`Leader:       ${leader.replicaId} at ${leader.restUrl} (epoch ${leader.epoch})`);
  out(`Dashboard:    ${urls[0]}/#token=${restToken}   (a throwaway CA: import ${caFile} into the browser or accept the warning)`);
  out(`Logs:         ${dir}/*.log`);
  out(`TLS and token: https with the CA ${caFile}; the REST token is in ${restTokenFile}`);
  out(`Try:          ha-dispatcher list --url ${urls[0]} --ca-file ${caFile} --token-file ${restTokenFile}`);
  out(`   or:        export HA_DISPATCHER_URL=${urls[0]} HA_DISPATCHER_CA_FILE=${caFile} HA_DISPATCHER_TOKEN_FILE=${restTokenFile}; ha-dispatcher list`);
  out('Press Ctrl-C to stop everything.');

  if (options.demo) await runDemo(urls.find((u) => u !== leader.restUrl) ?? urls[0], access, out);
  while (!stopping) await sleep(1000);
}

function startProcess(dir: string, name: string, args: string[]): ManagedChild {
  const logFile = path.join(dir, `${name}.log`);
  // Own process group: a terminal's Ctrl-C reaches only us, and we stop the children in order.
  const child = ManagedChild.spawn(process.execPath, [BIN(), ...args], { logFile, detached: true });
  child.child.once('exit', (code, signal) => {
    if (code !== 0 && signal === null) process.stderr.write(`${name} exited with code ${code}; see ${logFile}\n`);
  });
  return child;
}

/** Submits a small three-stage job through a standby and prints its progress until it ends. */
async function runDemo(standbyUrl: string, access: { token: string; tls: ClientTls }, out: (s: string) => void): Promise<void> {
  const graph = {
    name: 'demo-etl',
    vertices: [
      { id: 'extract', parallelism: 4, task: { type: 'command', argv: [process.execPath, '-e', 'setTimeout(() => console.log("extracted", process.env.SUBTASK_INDEX), 300)'] } },
      { id: 'transform', parallelism: 2, inputs: ['extract'], task: { type: 'sleep', ms: 500 } },
      { id: 'load', parallelism: 1, inputs: ['transform'], task: { type: 'command', argv: [process.execPath, '-e', 'console.log("loaded")'] } },
    ],
    restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 500 },
  };
  const client = new RestClient({ url: standbyUrl, deadlineMs: 60_000, ...access });
  const submitted = (await client.request('POST', '/jobs', graph)).body as { jobid: string };
  out(`\nDemo job ${submitted.jobid} submitted through standby ${standbyUrl}`);
  let last = '';
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const detail = (await client.request('GET', `/jobs/${submitted.jobid}`)).body as { state: string; vertices: Array<{ id: string; status: string }> };
    const line = `  ${detail.state.padEnd(10)} ${detail.vertices.map((v) => `${v.id}:${v.status}`).join('  ')}`;
    if (line !== last) out(line);
    last = line;
    if (['FINISHED', 'FAILED', 'CANCELED'].includes(detail.state)) {
      out(`Demo job ended ${detail.state}.`);
      return;
    }
    await sleep(250);
  }
  out('Demo job did not finish within 2 minutes; check the TaskManager logs.');
}
