/** `ha-dispatcher` command line: process verbs (dispatcher, taskmanager, zookeeper, local) and client verbs. */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config';
import { ConfigError } from '../util/errors';
import { LocalEnsemble } from '../ensemble/local-ensemble';
import { CLIENT_VERBS, EXIT, runClientCommand } from './client-commands';
import { runLocalCluster } from './local';
import { VERSION } from '../version';

const USAGE = `ha-dispatcher ${VERSION} — highly-available job dispatcher

Processes:
  ha-dispatcher dispatcher  --config FILE [-D key=value ...]   run one dispatcher replica
  ha-dispatcher taskmanager --config FILE [-D key=value ...]   run one TaskManager
  ha-dispatcher zookeeper start|stop|status --servers 3 --dir DIR   a local ZooKeeper ensemble
  ha-dispatcher local [--dir DIR] [--port 8081] [--no-demo]    ensemble + 3 replicas + 2 TaskManagers + demo job

Client (any replica; follows 307 to the leader, retries 503):
  ha-dispatcher submit FILE [--wait] | list | status JOBID | cancel JOBID | leader | overview
      [--url URL] [--token-file FILE] [--ca-file FILE] [--json] [--timeout MS]

Testing and operations:
  ha-dispatcher chaos [--scenario NAME,...|all|short] [--seconds S] [--seed N]   fault scenarios + safety checker
  ha-dispatcher drill NAME [--url URL] [--no-kill]             rehearse a runbook against a running cluster

Exit codes: 0 ok · 1 job failed/canceled · 2 usage · 3 rejected · 4 not found · 5 unavailable`;

export async function main(argv: string[]): Promise<void> {
  const [verb, ...rest] = argv;
  try {
    const code = await run(verb, rest);
    if (code !== null) process.exitCode = code;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ha-dispatcher: invalid configuration: ${err.message}\n`);
      process.exitCode = EXIT.USAGE;
      return;
    }
    process.stderr.write(`ha-dispatcher: ${(err as Error).message}\n`);
    process.exitCode = (err as { exitCode?: number }).exitCode ?? 1;
  }
}

/** Returns an exit code for verbs that finish, or null for long-running processes. */
async function run(verb: string | undefined, args: string[]): Promise<number | null> {
  const io = { stdout: (s: string) => process.stdout.write(s), stderr: (s: string) => process.stderr.write(s) };
  if (verb && (CLIENT_VERBS as readonly string[]).includes(verb)) return runClientCommand(verb, args, io);
  switch (verb) {
    case 'dispatcher': {
      const { Replica } = await import('../replica/replica');
      const { createExecutionBackend } = await import('../jobmaster/execution-backend');
      const config = loadConfig(processOptions(args));
      const replica = await Replica.start(config, { execution: (parts) => createExecutionBackend(parts) });
      process.stdout.write(`replica ${replica.replicaId} serving ${replica.restUrl}\n`);
      stopOnSignals(() => replica.close());
      return null;
    }
    case 'taskmanager': {
      const { TaskManager } = await import('../taskmanager/task-manager');
      const options = processOptions(args);
      const config = loadConfig(options);
      const tm = await TaskManager.start(TaskManager.optionsFrom(config, undefined, { configFile: options.file }));
      process.stdout.write(`taskmanager ${tm.id} serving ${tm.rpcAddress} with ${config['taskmanager.numberOfTaskSlots']} slots\n`);
      stopOnSignals(() => tm.close());
      return null;
    }
    case 'zookeeper':
      return zookeeperCommand(args);
    case 'chaos': {
      const { chaosCommand } = await import('../chaos/runner');
      return chaosCommand(args);
    }
    case 'drill': {
      const { drillCommand } = await import('../chaos/drills');
      return drillCommand(args);
    }
    case 'local': {
      const { values } = parseArgs({ args, options: { dir: { type: 'string' }, port: { type: 'string' }, 'no-demo': { type: 'boolean' } } });
      await runLocalCluster({ dir: values.dir, basePort: values.port ? Number(values.port) : 8081, demo: !values['no-demo'] });
      return null;
    }
    case '--version':
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return verb === undefined ? EXIT.USAGE : 0;
    default:
      process.stderr.write(`ha-dispatcher: unknown command ${JSON.stringify(verb)}\n\n${USAGE}\n`);
      return EXIT.USAGE;
  }
}

function processOptions(args: string[]): { file?: string; overrides: string[] } {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, D: { type: 'string', short: 'D', multiple: true } },
  });
  return { file: values.config, overrides: values.D ?? [] };
}

async function zookeeperCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { servers: { type: 'string', default: '3' }, dir: { type: 'string', default: '.zk-local' }, 'tick-time': { type: 'string' } },
  });
  const action = positionals[0];
  if (action === 'start') {
    const ensemble = await LocalEnsemble.start({
      dir: values.dir, servers: Number(values.servers), detached: true,
      tickTime: values['tick-time'] ? Number(values['tick-time']) : undefined,
    });
    process.stdout.write(`ZooKeeper ensemble serving at ${ensemble.connectString} (data in ${ensemble.dir})\n`);
    return 0;
  }
  if (action === 'stop') {
    await LocalEnsemble.attach(values.dir).stop();
    process.stdout.write('ZooKeeper ensemble stopped\n');
    return 0;
  }
  if (action === 'status') {
    const ensemble = LocalEnsemble.attach(values.dir);
    const status = await ensemble.status();
    for (const s of status) process.stdout.write(`server ${s.id}  127.0.0.1:${s.clientPort}  pid ${s.pid ?? '-'}  ${s.mode}\n`);
    return status.filter((s) => s.mode === 'leader' || s.mode === 'follower' || s.mode === 'standalone').length > status.length / 2 ? 0 : EXIT.UNAVAILABLE;
  }
  process.stderr.write('usage: ha-dispatcher zookeeper start|stop|status --servers 3 --dir DIR\n');
  return EXIT.USAGE;
}

/** SIGTERM/SIGINT → graceful stop once; a second signal exits at once. */
export function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    stopping = true;
    stop().then(() => process.exit(0), (err) => {
      process.stderr.write(`ha-dispatcher: error while stopping on ${signal}: ${(err as Error).message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
