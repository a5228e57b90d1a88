/**
 * `ha-dispatcher local`: the embedded default cluster for newcomers and drills — a 3-server
 * ZooKeeper ensemble, 3 dispatcher replicas and 2 TaskManagers as separate processes on loopback,
 * plus a demo job submitted through a standby. Ctrl-C stops everything.
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

  // The internal RPC runs commands on TaskManagers: even the local cluster shares a token (in a file, not argv).
  const tokenFile = path.join(dir, 'internal-token');
  fs.writeFileSync(tokenFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const common = [
    '-D', `security.internal.token-file=${tokenFile}`,
    '-D', `high-availability.zookeeper.quorum=${ensemble.connectString}`,
    '-D', 'high-availability.zookeeper.client.session-timeout=6000',
    '-D', 'heartbeat.interval=1000', '-D', 'heartbeat.timeout=5000',
  ];
  const urls: string[] = [];
  for (let i = 0; i < (options.replicas ?? 3); i++) {
    const port = options.basePort + i;
    urls.push(`http://127.0.0.1:${port}`);
    children.push(startProcess(dir, `replica-${i + 1}`, ['dispatcher', ...common, '-D', `rest.port=${port}`, '-D', `replica.id=replica-${i + 1}`]));
  }
  for (let i = 0; i < (options.taskManagers ?? 2); i++) {
    const tm = startProcess(dir, `taskmanager-${i + 1}`, ['taskmanager', ...common, '-D', 'taskmanager.numberOfTaskSlots=4',
      '-D', `taskmanager.data-dir=${path.join(dir, `taskmanager-${i + 1}`)}`]);
    children.push(tm);
  }

  const client = new RestClient({ url: urls[0], deadlineMs: 60_000 });
  const leader = (await client.request('GET', '/leader')).body as { replicaId: string; restUrl: string; epoch: number };
  out('');
  out(`Replicas:     ${urls.join('  ')}`);
  out(`Leader:       ${leader.replicaId} at ${leader.restUrl} (epoch ${leader.epoch})`);
  out(`Dashboard:    ${urls[0]}/`);
  out(`Logs:         ${dir}/*.log`);
  out(`Try:          ha-dispatcher list --url ${urls[0]}`);
  out('Press Ctrl-C to stop everything.');

  if (options.demo) await runDemo(urls.find((u) => u !== leader.restUrl) ?? urls[0], out);
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
async function runDemo(standbyUrl: string, out: (s: string) => void): Promise<void> {
  const graph = {
    name: 'demo-etl',
    vertices: [
      { id: 'extract', parallelism: 4, task: { type: 'command', argv: [process.execPath, '-e', 'setTimeout(() => console.log("extracted", process.env.SUBTASK_INDEX), 300)'] } },
      { id: 'transform', parallelism: 2, inputs: ['extract'], task: { type: 'sleep', ms: 500 } },
      { id: 'load', parallelism: 1, inputs: ['transform'], task: { type: 'command', argv: [process.execPath, '-e', 'console.log("loaded")'] } },
    ],
    restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 500 },
  };
  const client = new RestClient({ url: standbyUrl, deadlineMs: 60_000 });
  const submitted = (await client.request('POST', '/jobs', graph)).body as { jobid: string };
  out(`\nDemo job ${submitted.jobid} submitted through standby ${standbyUrl}`);
  let last = '';
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const detail = (await client.request('GET', `/jobs/${submitted.jobid}`)).body as { state: string; vertices: Array<{ id: string; name: string; status: string }> };
    const line = `  ${detail.state.padEnd(10)} ${detail.vertices.map((v) => `${v.name}:${v.status}`).join('  ')}`;
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
