/**
 * `ha-dispatcher local`: the embedded default cluster for newcomers and drills — a 3-server
 * ZooKeeper ensemble, 3 dispatcher replicas and 2 TaskManagers as separate processes on loopback,
 * plus a demo job submitted through a standby. It refuses to start when a replica port is taken (a
 * second `npm start` must not join the first cluster's ports), prints every process's command line and
 * log file, takes `stop NAME` / `restart NAME` / `ps` on stdin for the runbooks' drills, and removes its
 * temporary folder on exit (a `--dir` folder is kept). Ctrl-C stops everything.
 *
 * Secure like a production cluster: a throwaway CA under `<dir>/tls` signs each process's
 * certificate (https REST API, mutual TLS on the internal RPC, TaskManager ids in the certificates),
 * and both surfaces need their token. The banner prints how the CLI trusts the CA and sends the token.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { Command } from 'commander';
import { LocalEnsemble } from '../ensemble/local-ensemble';
import { packageRoot } from '../util/package-root';
import { ManagedChild } from '../util/managed-child';
import { sleep } from '../util/clock';
import { CliError, EXIT, RestClient } from '../client/rest-client';
import { type CliIo, type Done, positiveInt, subcommand } from './program';
import type { ClientTls } from '../http/client';
import { generateCa, generateCertificate, writeCertificate } from '../security/certificates';
import { generateStateKey } from '../zk/sealed';

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

/** Adds `local` to the program. */
export function addLocalCommands(program: Command, io: CliIo, done: Done): void {
  subcommand(program, 'local', io)
    .description('ZooKeeper ensemble + 3 replicas + 2 TaskManagers + a demo job on loopback (what `npm start` runs)')
    .option('--dir <dir>', 'keep logs and data in this folder (default: a temporary folder, removed on exit)')
    .option('--port <port>', 'REST port of replica-1; replica-2 and -3 take the next ones', positiveInt('--port'), 8081)
    .option('--no-demo', 'do not submit the demo job')
    .addHelpText('after', `
While it runs, type on its terminal (stdin):
  ps                 each process: name, pid, state, log file
  stop NAME          stop one process gracefully, e.g. "stop replica-3" (a runbook's failure)
  kill NAME          SIGKILL it (a crash)
  restart NAME       start it again with the same command line, e.g. "restart replica-3"
NAME is replica-1..3 or taskmanager-1..2. Ctrl-C stops everything.`)
    .action(async (options: { dir?: string; port: number; demo: boolean }) => {
      await runLocalCluster({ dir: options.dir, basePort: options.port, demo: options.demo });
      done(null);
    });
}

/** One process of the local cluster, restartable with the same command line. */
interface LocalProcess {
  name: string;
  args: string[];
  logFile: string;
  child: ManagedChild;
}

/** Resolves with the first of `ports` that cannot be bound on 127.0.0.1, or undefined when all are free. */
export async function firstBusyPort(ports: readonly number[]): Promise<number | undefined> {
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!free) return port;
  }
  return undefined;
}

export async function runLocalCluster(options: LocalClusterOptions): Promise<void> {
  const replicaCount = options.replicas ?? 3;
  const ports = Array.from({ length: replicaCount }, (_, i) => options.basePort + i);
  // Before anything starts: a second `local` must not start replicas that cannot bind (and would join the first one's ensemble view).
  const busy = await firstBusyPort(ports);
  if (busy !== undefined) {
    throw new CliError(EXIT.USAGE, `port ${busy} (rest.port of replica-${busy - options.basePort + 1}) is already in use on 127.0.0.1; nothing was started`,
      { hint: `is another \`npm start\` / \`ha-dispatcher local\` running? Use it (npx ha-dispatcher list), stop it, or pick other ports: --port ${options.basePort + 100}` });
  }
  const keep = options.dir !== undefined;
  const dir = path.resolve(options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ha-local-')));
  fs.mkdirSync(dir, { recursive: true });
  const out = (s: string): boolean => process.stdout.write(`${s}\n`);
  out(`Starting a local 3-server ZooKeeper ensemble in ${path.join(dir, 'zookeeper')} ...`);
  const ensemble = await LocalEnsemble.start({ dir: path.join(dir, 'zookeeper'), servers: 3, tickTime: 500 });
  out(`ZooKeeper: ${ensemble.connectString}`);

  const processes = new Map<string, LocalProcess>();
  let stopping = false;
  const removeDir = (): void => {
    if (keep) out(`Logs and data kept in ${dir}`);
    else {
      fs.rmSync(dir, { recursive: true, force: true });
      out(`Removed ${dir} (use --dir DIR to keep logs and data).`);
    }
  };
  // First Ctrl-C: stop in order (a drill may have killed or frozen some children; ManagedChild.stop copes with
  // both). A second one: exit now; the exit hooks SIGKILL every child and ZooKeeper server.
  const onSignal = (): void => {
    if (stopping) {
      out('Stopping at once (second signal).');
      process.exit(EXIT_INTERRUPTED);
    }
    stopping = true;
    out('\nStopping replicas, TaskManagers and ZooKeeper ... (Ctrl-C again to kill them at once)');
    void Promise.all([...processes.values()].map((p) => p.child.stop('SIGTERM', CHILD_STOP_GRACE_MS)))
      .then(() => ensemble.stop())
      .then(() => {
        removeDir();
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
  // Sealed ZooKeeper state: a node written by anyone without this key is never acted on.
  const stateKeyFile = path.join(dir, 'state-key');
  fs.writeFileSync(stateKeyFile, `${generateStateKey()}\n`, { mode: 0o600 });
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
    '-D', `high-availability.zookeeper.state-key-file=${stateKeyFile}`,
    '-D', `high-availability.zookeeper.quorum=${ensemble.connectString}`,
    '-D', 'heartbeat.interval=1000', '-D', 'heartbeat.timeout=5000',
  ];
  const start = (name: string, args: string[]): void => {
    const proc: LocalProcess = { name, args, logFile: path.join(dir, `${name}.log`), child: startProcess(dir, name, args) };
    processes.set(name, proc);
  };
  const urls = ports.map((port) => `https://127.0.0.1:${port}`);
  for (const [i, port] of ports.entries()) {
    const name = `replica-${i + 1}`;
    start(name, ['dispatcher', ...common, ...await tlsSettings('replica', name), '-D', `rest.port=${port}`, '-D', `replica.id=${name}`]);
  }
  for (let i = 0; i < (options.taskManagers ?? 2); i++) {
    const name = `taskmanager-${i + 1}`;
    start(name, ['taskmanager', ...common, ...await tlsSettings('taskmanager', name), '-D', `taskmanager.id=${name}`,
      '-D', 'taskmanager.numberOfTaskSlots=4', '-D', `taskmanager.data-dir=${path.join(dir, name)}`]);
  }
  out('');
  out('Processes (command line, then log file):');
  for (const p of processes.values()) out(`  ${p.name.padEnd(14)} ${commandLine(p.args)}\n  ${''.padEnd(14)} log: ${p.logFile}`);

  const access = { token: restToken, tls: { ca: ca.cert } satisfies ClientTls };
  const client = new RestClient({ url: urls, deadlineMs: 60_000, ...access });
  const leader = (await client.request('GET', '/leader')).body as { replicaId: string; restUrl: string; epoch: number };
  const urlList = urls.join(',');
  out('');
  out(`Replicas:     ${urls.join('  ')}`);
  out(`Leader:       ${leader.replicaId} at ${leader.restUrl} (epoch ${leader.epoch})`);
  out(`Dashboard:    ${urls[0]}/#token=${restToken}   (a throwaway CA: import ${caFile} into the browser or accept the warning)`);
  out(`Logs:         ${dir}/*.log${keep ? '' : ' (removed on exit; --dir DIR keeps them)'}`);
  out(`TLS, token:   https with the CA ${caFile}; the REST token is in ${restTokenFile}`);
  const flags = `--url ${urlList} --ca-file ${caFile} --token-file ${restTokenFile}`;
  out(`Try:          npx ha-dispatcher list ${flags}`);
  out(`              npx ha-dispatcher submit examples/etl.json --wait ${flags}`);
  out(`   or:        export HA_DISPATCHER_URL=${urlList} HA_DISPATCHER_CA_FILE=${caFile} HA_DISPATCHER_TOKEN_FILE=${restTokenFile}; npx ha-dispatcher list`);
  out(`Drills:       npx ha-dispatcher drill health ${flags}   (drill --list; runbooks/README.md)`);
  out('Type "ps", "stop NAME", "kill NAME" or "restart NAME" here (e.g. restart replica-3); Ctrl-C stops everything.');

  controlFromStdin(processes, dir, out, () => stopping);
  if (options.demo) await runDemo(urls.find((u) => u !== leader.restUrl) ?? urls[0], access, out);
  while (!stopping) await sleep(1000);
}

/** `ps`, `stop NAME`, `kill NAME`, `restart NAME` typed on stdin (when there is one): the drills' manual steps. */
function controlFromStdin(processes: Map<string, LocalProcess>, dir: string, out: (s: string) => void, stopping: () => boolean): void {
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  lines.on('line', (line) => {
    const [verb, name] = line.trim().split(/\s+/);
    if (!verb || stopping()) return;
    if (verb === 'ps') {
      for (const p of processes.values()) {
        out(`${p.name.padEnd(14)} ${String(p.child.pid ?? '-').padEnd(8)} ${p.child.running ? (p.child.paused ? 'paused' : 'running') : 'exited'}  ${p.logFile}`);
      }
      return;
    }
    const proc = name ? processes.get(name) : undefined;
    if (!['stop', 'kill', 'restart'].includes(verb) || !proc) {
      out(`usage: ps | stop NAME | kill NAME | restart NAME   (NAME: ${[...processes.keys()].join(', ')})`);
      return;
    }
    if (verb === 'kill') {
      proc.child.kill('SIGKILL');
      out(`${proc.name} killed`);
    } else if (verb === 'stop') {
      void proc.child.stop('SIGTERM', CHILD_STOP_GRACE_MS).then(() => out(`${proc.name} stopped`));
    } else if (proc.child.running) {
      out(`${proc.name} is still running (pid ${proc.child.pid}); "stop ${proc.name}" first`);
    } else {
      proc.child = startProcess(dir, proc.name, proc.args);
      out(`${proc.name} restarted (pid ${proc.child.pid}); log: ${proc.logFile}`);
    }
  });
}

/** The command line as a user would type it from the repository root. */
function commandLine(args: string[]): string {
  const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['npx', 'ha-dispatcher', ...args].map(quote).join(' ');
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
