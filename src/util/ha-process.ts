/**
 * One `ha-dispatcher <role>` process (a dispatcher replica or a TaskManager) of a cluster started on
 * this machine by a chaos run, an integration test or a benchmark. It keeps its id (and a replica its
 * REST URL) across restarts; each start is a new incarnation of a ManagedChild, logging its JSON events
 * to a file the helpers read back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ManagedChild, DEFAULT_STOP_GRACE_MS } from './managed-child';
import { packageRoot } from './package-root';

export type ProcessKind = 'dispatcher' | 'taskmanager';

export interface HaProcessOptions {
  /** Node.js flags before the script (e.g. --trace-gc). */
  nodeFlags?: string[];
  /** Each incarnation logs to `<id>.<incarnation>.log` instead of appending to `<id>.log`. */
  logPerIncarnation?: boolean;
  /** Extra environment variables of every incarnation (e.g. LD_PRELOAD of libfaketime in tests). */
  env?: Record<string, string>;
}

/** One JSON log line of a process (winston's format: `event`, `timestamp` as ISO text, and fields). */
export type LogRecord = Record<string, any>;

export class HaProcess {
  /** Starts so far; the current incarnation's number. */
  incarnation = 0;
  private current: ManagedChild | null = null;

  constructor(
    readonly id: string,
    readonly kind: ProcessKind,
    protected readonly args: string[],
    protected readonly dir: string,
    /** REST base URL (replicas); '' when unknown or not a replica. */
    public url = '',
    protected readonly options: HaProcessOptions = {},
  ) {}

  /** The log of incarnation `incarnation` (default: the current one). */
  logFile(incarnation = this.incarnation): string {
    return path.join(this.dir, this.options.logPerIncarnation ? `${this.id}.${Math.max(1, incarnation)}.log` : `${this.id}.log`);
  }

  /** Arguments after the role; subclasses may derive them from what earlier incarnations learned. */
  protected startArgs(): string[] {
    return this.args;
  }

  /** Launches a new incarnation; throws when the previous one still runs. */
  start(): void {
    if (this.running) throw new Error(`${this.id} is already running`);
    this.incarnation++;
    // The caller may hold ZooKeeper sockets (tests, chaos runner, benchmarks): ManagedChild spawns clean.
    this.current = ManagedChild.spawn(process.execPath,
      [...(this.options.nodeFlags ?? []), path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), this.kind, ...this.startArgs()],
      { logFile: this.logFile(), env: { ...process.env, HA_LOG_LEVEL: 'info', ...this.options.env } });
  }

  /** The current incarnation's Node.js child, null before the first start. */
  get child(): ChildProcess | null { return this.current?.child ?? null; }
  get pid(): number | null { return this.current?.pid ?? null; }
  get running(): boolean { return this.current?.running ?? false; }
  get paused(): boolean { return this.current?.paused ?? false; }

  /** Sends a signal without waiting. */
  kill(sig: NodeJS.Signals): void {
    this.current?.kill(sig);
  }

  /** SIGSTOP/SIGCONT return at once; any other signal is a stop (see ManagedChild.stop) bounded by `graceMs`. */
  async signal(sig: NodeJS.Signals, graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    if (sig === 'SIGSTOP' || sig === 'SIGCONT') this.kill(sig);
    else await this.stop(sig, graceMs);
  }

  /** SIGCONT, `sig`, SIGKILL after `graceMs`; resolves once exited. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    await this.current?.stop(sig, graceMs);
  }

  /** Waits up to `timeoutMs` for the exit, then SIGKILLs. */
  async waitForExit(timeoutMs = 15_000): Promise<void> {
    await this.current?.waitForExit(timeoutMs);
  }

  /** Bytes logged so far: pass to `events` to see only what came after. */
  logSize(incarnation = this.incarnation): number {
    try { return fs.statSync(this.logFile(incarnation)).size; } catch { return 0; }
  }

  /** The JSON events the process logged (named `name`, when given) from byte `fromByte` of the log on. */
  events(name?: string, fromByte = 0, incarnation = this.incarnation): LogRecord[] {
    return readJsonLines(this.logFile(incarnation), fromByte).filter((e) => !name || e.event === name);
  }

  /** The log from byte `fromByte` on ('' when it cannot be read). */
  readLog(fromByte = 0, incarnation = this.incarnation): string {
    return readFrom(this.logFile(incarnation), fromByte);
  }

  tail(lines = 30): string {
    return this.readLog().trim().split('\n').slice(-lines).join('\n');
  }
}

/** JSON lines of a log from byte `fromByte` on; other lines, and a last line cut by SIGKILL, are skipped. */
export function readJsonLines(file: string, fromByte = 0): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of readFrom(file, fromByte).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogRecord);
    } catch {
      // a line cut by SIGKILL, or still being written
    }
  }
  return out;
}

function readFrom(file: string, fromByte: number): string {
  try {
    if (fromByte === 0) return fs.readFileSync(file, 'utf8');
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, size - fromByte));
      fs.readSync(fd, buf, 0, buf.length, fromByte);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}
