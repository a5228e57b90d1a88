/**
 * `ha-dispatcher local` as a test runs it: the CLI as a child process with nothing from this environment
 * but PATH, on consecutive free ports, with helpers to find what it started and to end all of it.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnClean } from '../../src/util/clean-spawn';
import { packageRoot } from '../../src/util/package-root';
import { killOnExit } from '../../src/util/process';
import { type ClientTls } from '../../src/http/client';
import { eventually } from './ensemble';

export const CLI = (): string => path.join(packageRoot(), 'bin', 'ha-dispatcher.js');

/** The CLI with nothing from this environment but PATH (no HA_DISPATCHER_* of the host), plus `env`. */
export function cli(args: string[], timeoutMs = 60_000, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI(), ...args], { timeout: timeoutMs, env: { PATH: process.env.PATH, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** The lowest port the kernel hands out for `listen(0)` and outgoing connections (Linux default 32768). */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * `count` consecutive free loopback ports (local takes a base port and counts up), below the ephemeral
 * range: local's own ZooKeeper servers, every `listen(0)` and every outgoing connection of the
 * machine take ports from that range, so one of them could take a replica's port between this probe
 * and the replica's bind.
 */
export async function consecutiveFreePorts(count: number): Promise<number> {
  const span = ephemeralLow() - count - 10_000;
  for (let tries = 0; tries < 50; tries++) {
    const base = 10_000 + Math.floor(Math.random() * span);
    const held: net.Server[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const server = net.createServer();
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(base + i, '127.0.0.1', () => resolve());
        });
        held.push(server);
      }
      return base;
    } catch {
      // taken: try another base
    } finally {
      await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    }
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** Every process below `root`, from the parent links in /proc. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) for (const pid of children.get(queue.shift()!) ?? []) { out.push(pid); queue.push(pid); }
  return out;
}

/** A process's command line, '' once it is gone. */
export function commandLine(pid: number): string {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '); } catch { return ''; }
}

/**
 * What to read when a wait on `local` times out: the tail of what it printed, and every line above
 * info of each process's log (start-up warnings every run prints left out), newest last.
 */
export function diagnosis(local: Pick<LocalRun, 'dir' | 'output'>, lines = 8): string {
  const routine = /"event":"(security\.state\.unauthenticated|taskmanager\.task\.runs-as-root)"/;
  const logs = fs.existsSync(local.dir) ? fs.readdirSync(local.dir).filter((f) => f.endsWith('.log')) : [];
  const notable = logs.map((f) => {
    const text = fs.readFileSync(path.join(local.dir, f), 'utf8').split('\n');
    const picked = text.filter((l) => l && !/"level":"(info|debug)"/.test(l) && !routine.test(l)).slice(-lines);
    return `--- ${f}: ${text.length} lines, last: ${text.filter(Boolean).slice(-1)[0]?.slice(0, 400) ?? ''}\n${picked.map((l) => l.slice(0, 300)).join('\n')}`;
  });
  return `--- local printed (tail):\n${local.output().slice(-1500)}\n${notable.join('\n')}`;
}

/** A running `ha-dispatcher local`. */
export interface LocalRun {
  child: ChildProcess;
  dir: string;
  /** rest.port of replica-1; replica-2 and -3 take the next ones. */
  base: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Its replicas' https URLs, comma-separated, as the banner prints them. */
  urlList: string;
  caFile: string;
  tokenFile: string;
  /** The REST token and the throwaway CA, for direct REST calls. */
  access: { token: string; tls: ClientTls };
  /** A line typed on its terminal (ps, stop NAME, kill NAME, restart NAME). */
  type(line: string): void;
  /** SIGKILLs local, everything below it and any process of its folder (a server a drill restarted), and removes `dir`. */
  destroy(): Promise<void>;
}

/**
 * Starts `ha-dispatcher local --dir DIR --port BASE ...args` and resolves once its banner printed the
 * "Try:" line (the leader is ready). On a timeout it is destroyed and the error carries its output.
 */
export async function startLocal(dir: string, args: string[] = [], timeoutMs = 150_000): Promise<LocalRun> {
  const base = await consecutiveFreePorts(3);
  const child = spawnClean(process.execPath, [CLI(), 'local', '--dir', dir, '--port', String(base), ...args],
    { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  killOnExit(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const run: LocalRun = {
    child, dir, base, output: () => output, exited,
    urlList: [0, 1, 2].map((i) => `https://127.0.0.1:${base + i}`).join(','),
    caFile: path.join(dir, 'tls', 'ca.crt'),
    tokenFile: path.join(dir, 'rest-token'),
    access: { token: '', tls: { ca: '' } },
    type: (line) => { child.stdin!.write(`${line}\n`); },
    destroy: async () => {
      const ofDir = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => pid !== process.pid && commandLine(pid).includes(dir));
      for (const pid of new Set([...descendants(child.pid!), ...ofDir, child.pid!])) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await eventually('local printed its banner', () => /Try: +npx ha-dispatcher list/.test(output), timeoutMs, 200);
  } catch (err) {
    await run.destroy();
    throw new Error(`${(err as Error).message}\n${output}`);
  }
  run.access = { token: fs.readFileSync(run.tokenFile, 'utf8').trim(), tls: { ca: fs.readFileSync(run.caFile) } };
  return run;
}
