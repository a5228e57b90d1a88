/** `ha-dispatcher` command line: process verbs (dispatcher, taskmanager, zookeeper, local), client verbs, chaos and drills. */
import { Command } from 'commander';
import { loadConfig, logIgnoredFlinkKeys } from '../config';
import { LocalEnsemble } from '../ensemble/local-ensemble';
import { createLogger } from '../util/logger';
import { addClientCommands, EXIT } from './client-commands';
import { addLocalCommands } from './local';
import { type CliIo, type Outcome, newProgram, positiveInt, runProgram, subcommand } from './program';
import { VERSION } from '../version';
import { hashToken } from '../security/credentials';

const EPILOG = `
Job files: README "Job files", examples/*.json, docs/jobgraph.schema.json; check one with "ha-dispatcher validate FILE".
Client verbs talk to --url or -m HOST:PORT (comma-separated replicas) or $HA_DISPATCHER_URL, default http://127.0.0.1:8081.
Secured clusters: --token-file FILE and --ca-file FILE (or $HA_DISPATCHER_TOKEN_FILE, $HA_DISPATCHER_CA_FILE).

Exit codes: 0 ok · 1 job failed/canceled · 2 usage · 3 rejected · 4 not found · 5 unavailable`;

export async function main(argv: string[]): Promise<void> {
  const io: CliIo = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };
  const outcome: { value: Outcome } = { value: EXIT.OK };
  try {
    const code = await runProgram(buildProgram(io, (o) => { outcome.value = o; }), argv, io, outcome);
    if (code !== null) process.exitCode = code;
  } catch (err) {
    process.stderr.write(`ha-dispatcher: ${(err as Error).message}\n`);
    process.exitCode = (err as { exitCode?: number }).exitCode ?? 1;
  }
}

/** The whole command line; `done` receives each action's exit code (null: a long-running process started). */
export function buildProgram(io: CliIo, done: (o: Outcome) => void): Command {
  const program = newProgram(io, 'highly-available job dispatcher: ZooKeeper leader election, durable JobGraphs, JobMasters and TaskManagers', VERSION)
    .addHelpText('after', EPILOG);

  const processCommand = (name: string, description: string): Command => subcommand(program, name, io)
    .description(description)
    .option('-c, --config <file>', 'YAML configuration file (Flink-style keys; see README "Configuration")')
    .option('-D, --define <key=value>', 'set one configuration key, e.g. -D rest.port=8081 (repeatable; wins over --config)',
      (value: string, previous: string[]) => [...previous, value], [] as string[]);

  processCommand('dispatcher', 'run one dispatcher replica (REST on rest.port, election through ZooKeeper)')
    .action(async (options: { config?: string; define: string[] }) => {
      const { Replica } = await import('../replica/replica');
      const { createExecutionBackend } = await import('../jobmaster/execution-backend');
      const config = loadConfig({ file: options.config, overrides: options.define });
      // DELETE /cluster stops the process exactly as SIGTERM does (stopOnSignals below).
      const replica = await Replica.start(config, { execution: (parts) => createExecutionBackend(parts), shutdown: () => process.kill(process.pid, 'SIGTERM') });
      // A JSON line like the replica's log (test helpers and runbooks read the URL from it).
      createLogger({ stream: process.stdout, level: 'info' }).info('replica.serving',
        { replicaId: replica.replicaId, restUrl: replica.restUrl, summary: `replica ${replica.replicaId} serving ${replica.restUrl}` });
      stopOnSignals(() => replica.close());
      done(null);
    });

  processCommand('taskmanager', 'run one TaskManager (RPC on taskmanager.rpc-port; finds the leader through ZooKeeper)')
    .action(async (options: { config?: string; define: string[] }) => {
      const { TaskManager } = await import('../taskmanager/task-manager');
      const config = loadConfig({ file: options.config, overrides: options.define });
      const tmOptions = TaskManager.optionsFrom(config, undefined, { configFile: options.config });
      if (tmOptions.logger) logIgnoredFlinkKeys(config, tmOptions.logger.child({ taskManagerId: tmOptions.id, component: 'taskmanager' }));
      // Released after a drain: stop exactly as SIGTERM does.
      const tm = await TaskManager.start({ ...tmOptions, onReleased: () => process.kill(process.pid, 'SIGTERM') });
      createLogger({ stream: process.stdout, level: 'info' }).info('taskmanager.serving', {
        taskManagerId: tm.id, address: tm.rpcAddress, slots: config['taskmanager.numberOfTaskSlots'],
        summary: `taskmanager ${tm.id} serving ${tm.rpcAddress} with ${config['taskmanager.numberOfTaskSlots']} slots`,
      });
      stopOnSignals(() => tm.close());
      done(null);
    });

  subcommand(program, 'zookeeper <action>', io)
    .description('a local ZooKeeper ensemble for development: start | stop | status')
    .option('--servers <n>', 'number of servers', positiveInt('--servers'), 3)
    .option('--dir <dir>', 'data and configuration directory', '.zk-local')
    .option('--tick-time <ms>', 'ZooKeeper tickTime', positiveInt('--tick-time'))
    .action(async (action: string, options: { servers: number; dir: string; tickTime?: number }) => {
      done(await zookeeperCommand(action, options, io));
    });

  addLocalCommands(program, io, done);
  addClientCommands(program, io, done);

  // chaos and drill parse their own options (and print their own --help).
  subcommand(program, 'chaos', io)
    .description('fault scenarios against a throw-away cluster, checked by the safety checker (chaos --help)')
    .helpOption(false).allowUnknownOption().allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { chaosCommand } = await import('../chaos/runner');
      done(await chaosCommand(args));
    });
  subcommand(program, 'drill', io)
    .description('rehearse a runbook against a running cluster (drill --help, drill --list)')
    .helpOption(false).allowUnknownOption().allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { drillCommand } = await import('../chaos/drills');
      done(await drillCommand(args));
    });
  subcommand(program, 'hash-token', io)
    .description('print the sha-256 of a token read from stdin, as security.rest.credentials-file lists it (token-sha256)')
    .addHelpText('after', '\nExample: openssl rand -hex 32 | tee alice.token | ha-dispatcher hash-token')
    .action(async () => { done(await hashTokenCommand(io)); });
  subcommand(program, 'version', io).description('print the version').action(() => {
    io.stdout(`${VERSION}\n`);
    done(EXIT.OK);
  });
  return program;
}

/** `hash-token`: the token is the first line of stdin (never an argument: it would show in `ps` and shell history). */
async function hashTokenCommand(io: CliIo): Promise<number> {
  let text = '';
  for await (const chunk of io.stdin ?? process.stdin) text += chunk.toString();
  try {
    io.stdout(`${hashToken(text.split(/\r?\n/)[0].trim())}\n`);
    return EXIT.OK;
  } catch (err) {
    io.stderr(`error: ${(err as Error).message}\n`);
    return EXIT.USAGE;
  }
}

async function zookeeperCommand(action: string, values: { servers: number; dir: string; tickTime?: number }, io: CliIo): Promise<number> {
  if (action === 'start') {
    const ensemble = await LocalEnsemble.start({ dir: values.dir, servers: values.servers, detached: true, tickTime: values.tickTime });
    io.stdout(`ZooKeeper ensemble serving at ${ensemble.connectString} (data in ${ensemble.dir})\n`);
    return 0;
  }
  if (action === 'stop') {
    await LocalEnsemble.attach(values.dir).stop();
    io.stdout('ZooKeeper ensemble stopped\n');
    return 0;
  }
  if (action === 'status') {
    const ensemble = LocalEnsemble.attach(values.dir);
    const status = await ensemble.status();
    for (const s of status) io.stdout(`server ${s.id}  127.0.0.1:${s.clientPort}  pid ${s.pid ?? '-'}  ${s.mode}\n`);
    return status.filter((s) => s.mode === 'leader' || s.mode === 'follower' || s.mode === 'standalone').length > status.length / 2 ? 0 : EXIT.UNAVAILABLE;
  }
  io.stderr(`error: unknown zookeeper action "${action}"; use start, stop or status\nusage: ha-dispatcher zookeeper start|stop|status [--servers 3] [--dir DIR]\n`);
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
