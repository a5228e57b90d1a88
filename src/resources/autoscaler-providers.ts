/**
 * The autoscaler's TaskManager providers (docs/ARCHITECTURE.md, "Autoscaling"):
 *
 * - `local`: `ha-dispatcher taskmanager` processes on this host, each in its own process group and
 *   not tied to the leader (they run on through its crash; a drained one stops itself when released).
 * - `command`: operator commands with templated arguments (`{count}`: the pool size asked for,
 *   `{id}`: the TaskManager id), e.g. `kubectl scale statefulset/taskmanager --replicas={count}`.
 *   A template is split into words once at start-up and each placeholder is replaced inside its word:
 *   no shell ever sees a value, so an id cannot inject anything.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnClean } from '../util/clean-spawn';
import { ManagedChild } from '../util/managed-child';
import { isProcessAlive, stopChild } from '../util/process';
import { packageRoot } from '../util/package-root';
import { LAUNCH_ID_PREFIX, LaunchRecord, ProviderRequest, TaskManagerProvider } from './autoscaler';
import { fillTemplate, parseCommandTemplate } from '../util/command-template';
import type { DispatcherConfig } from '../config';

export interface CommandProviderOptions {
  /** parseCommandTemplate of resourcemanager.autoscaler.command.scale-up. */
  scaleUp: readonly string[];
  /** parseCommandTemplate of resourcemanager.autoscaler.command.scale-down. */
  scaleDown: readonly string[];
}

/** Runs the operator's commands; a command that exits non-zero, cannot start or outlives the deadline rejects. */
export class CommandTaskManagerProvider implements TaskManagerProvider {
  readonly name = 'command';
  readonly namesTaskManagers: boolean;

  constructor(private readonly options: CommandProviderOptions) {
    // Without {id} the TaskManagers name themselves (pods of a StatefulSet): launches are matched by count.
    this.namesTaskManagers = options.scaleUp.some((w) => w.includes('{id}'));
  }

  launch(request: ProviderRequest): Promise<void> {
    return runCommand(fillTemplate(this.options.scaleUp, request), request.deadlineMs);
  }

  release(request: ProviderRequest): Promise<void> {
    return runCommand(fillTemplate(this.options.scaleDown, request), request.deadlineMs);
  }
}

/** Runs `argv` (no shell), resolving on exit 0; rejects with the exit status and the end of stderr, or when it runs past `deadlineMs` (then stopped). */
export function runCommand(argv: readonly string[], deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnClean(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-500); });
    const timer = setTimeout(() => {
      void stopChild(child, 'SIGTERM', 2000);
      reject(new Error(`${argv[0]} did not finish within ${deadlineMs} ms; stopped`));
    }, deadlineMs);
    timer.unref?.();
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${argv[0]} could not start: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${argv[0]} exited with ${signal ?? `code ${code}`}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    });
  });
}

export interface LocalProviderOptions {
  /** The configuration arguments every TaskManager gets (`replicaConfigArgs`), before its own taskmanager.id. */
  configArgs: readonly string[];
  /** The launched TaskManagers' taskmanager.data-dir, `<taskmanager.data-dir>/autoscaled/<clusterId>`; each logs to `<dataDir>/<id>.log`. */
  dataDir: string;
  /** high-availability.cluster-id: which processes on this host are this cluster's launches. */
  clusterId: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts `ha-dispatcher taskmanager` processes on this host (the `local` CLI cluster, tests, a single host). */
export class LocalTaskManagerProvider implements TaskManagerProvider {
  readonly name = 'local';
  readonly namesTaskManagers = true;
  private readonly children = new Map<string, ManagedChild>();

  constructor(private readonly options: LocalProviderOptions) {}

  /** Resolves once the process started; rejects when it could not. */
  async launch(request: ProviderRequest): Promise<void> {
    fs.mkdirSync(this.options.dataDir, { recursive: true });
    const args = [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), 'taskmanager', ...this.options.configArgs,
      '-D', `taskmanager.data-dir=${this.options.dataDir}`, '-D', `taskmanager.id=${request.id}`];
    const child = ManagedChild.spawn(process.execPath, args, { logFile: path.join(this.options.dataDir, `${request.id}.log`), env: this.options.env ?? process.env, outlivesParent: true });
    await new Promise<void>((resolve, reject) => {
      child.child.once('spawn', () => resolve());
      child.child.once('error', (err) => reject(err));
    });
    this.children.set(request.id, child);
  }

  /**
   * Its process runs: this replica's child, else a process of the cluster's launches on this host (one
   * a former leader here started). Undefined for a launch recorded on another host.
   */
  launchAlive(launch: LaunchRecord): boolean | undefined {
    const child = this.children.get(launch.id);
    if (child) return child.running;
    if (launch.host !== os.hostname()) return undefined;
    return localLaunchedTaskManagers(this.options.clusterId).some((p) => p.id === launch.id);
  }

  /** Stops the process when this replica started it and it still runs (a launch that timed out); a released one has stopped itself. */
  async release(request: ProviderRequest): Promise<void> {
    const child = this.children.get(request.id);
    this.children.delete(request.id);
    if (child?.running) await child.stop('SIGTERM', Math.max(1000, request.deadlineMs - 1000));
  }
}

/** Keys a launched TaskManager must not take from its replica's arguments. */
const REPLICA_ONLY = /^(rest\.|replica\.|taskmanager\.(id|rpc-port|advertised-url)$|resourcemanager\.autoscaler\.)/;

/**
 * The configuration arguments of this replica's command line (`ha-dispatcher dispatcher --config F
 * -D k=v …`), as `--config F` and `-D k=v` words for a TaskManager on the same host: the same
 * ZooKeeper, cluster id, tokens and state key. Replica-only keys (rest.*, replica.*) and the
 * TaskManager's own id, port and URL are left out. `argv`: process.argv.
 */
export function replicaConfigArgs(argv: readonly string[]): string[] {
  const start = argv.indexOf('dispatcher');
  if (start < 0) return [];
  const out: string[] = [];
  const define = (kv: string): void => {
    const key = kv.slice(0, Math.max(0, kv.indexOf('='))).trim();
    if (key && !REPLICA_ONLY.test(key)) out.push('-D', kv);
  };
  for (let i = start + 1; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '-D' || a === '--define') && i + 1 < argv.length) define(argv[++i]);
    else if (a.startsWith('--define=')) define(a.slice('--define='.length));
    else if (a.startsWith('-D') && a.length > 2) define(a.slice(2));
    else if ((a === '-c' || a === '--config') && i + 1 < argv.length) out.push('--config', argv[++i]);
    else if (a.startsWith('--config=')) out.push('--config', a.slice('--config='.length));
  }
  return out;
}

/**
 * The provider resourcemanager.autoscaler.provider names. `local` starts TaskManagers with this
 * replica's own configuration arguments (`replicaConfigArgs(process.argv)`), logging to
 * `<taskmanager.data-dir>/<id>.log`. Throws ConfigError-worthy Errors only for templates the
 * configuration already validated.
 */
export function autoscalingProvider(config: DispatcherConfig): TaskManagerProvider {
  if (config['resourcemanager.autoscaler.provider'] === 'command') {
    return new CommandTaskManagerProvider({
      scaleUp: parseCommandTemplate(config['resourcemanager.autoscaler.command.scale-up'] ?? ''),
      scaleDown: parseCommandTemplate(config['resourcemanager.autoscaler.command.scale-down'] ?? ''),
    });
  }
  // Per cluster: two clusters on one host may both launch an `auto-3-1`.
  const dataDir = path.join(config['taskmanager.data-dir'], 'autoscaled', config['high-availability.cluster-id']);
  return new LocalTaskManagerProvider({ configArgs: replicaConfigArgs(process.argv), dataDir, clusterId: config['high-availability.cluster-id'] });
}

/**
 * TaskManager processes on this host that a `local` provider of cluster `clusterId` launched (their
 * command line names `taskmanager.id=auto-…` and the cluster's data directory), by /proc: for the
 * chaos runner's and the tests' clean-up and assertions. `taskmanager.id` is their id.
 */
export function localLaunchedTaskManagers(clusterId: string): Array<{ pid: number; id: string }> {
  const found: Array<{ pid: number; id: string }> = [];
  let pids: string[];
  try { pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)); } catch { return found; }
  for (const pid of pids) {
    let args: string[];
    try { args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    const id = args.find((a) => a.startsWith(`taskmanager.id=${LAUNCH_ID_PREFIX}`))?.slice('taskmanager.id='.length);
    const inCluster = args.some((a) => a.startsWith('taskmanager.data-dir=') && a.endsWith(`${path.sep}autoscaled${path.sep}${clusterId}`));
    if (id && inCluster && args.includes('taskmanager') && isProcessAlive(Number(pid))) found.push({ pid: Number(pid), id });
  }
  return found;
}
