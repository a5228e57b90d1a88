/**
 * Measurements taken from outside a process: its CPU time from /proc (Linux), and the size of what
 * a cluster keeps in ZooKeeper (every node's data length under its chroot).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { NativeZooKeeperClient } from '../../src/zk/client';
import { NoNodeError } from '../../src/zk/errors';

let ticksPerSecond: number | null = null;

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 on Linux). */
function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * User + system CPU time of process `pid` so far, in ms (resolution one clock tick, 10 ms), from
 * /proc/<pid>/stat; null when the process is gone.
 */
export function processCpuMs(pid: number | null): number | null {
  if (!pid) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may hold spaces): utime is the 14th field, stime the 15th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / clockTicks();
  } catch {
    return null;
  }
}

export interface ZnodeCensus {
  nodes: number;
  /** Sum of every node's data length, bytes. */
  bytes: number;
  /** Bytes and nodes per top-level path under the chroot (e.g. `/jobgraphs`, `/jobs`). */
  byTop: Record<string, { nodes: number; bytes: number }>;
}

/**
 * Walks the tree under `root` (a chroot like `/ha-dispatcher/<cluster-id>`) with its own session and
 * adds up every node's data length; `concurrency` reads in flight. Nodes deleted meanwhile are skipped.
 */
export async function znodeCensus(connect: string, root: string, concurrency = 256): Promise<ZnodeCensus> {
  const client = new NativeZooKeeperClient({ connect, chroot: root, sessionTimeoutMs: 10_000 });
  const census: ZnodeCensus = { nodes: 0, bytes: 0, byTop: {} };
  try {
    await client.waitUntilConnected(15_000);
    let frontier: string[] = ['/'];
    while (frontier.length > 0) {
      const next: string[] = [];
      let i = 0;
      const worker = async (): Promise<void> => {
        while (i < frontier.length) {
          const path = frontier[i++];
          try {
            const stat = await client.exists(path);
            if (!stat) continue;
            if (path !== '/') {
              census.nodes++;
              census.bytes += stat.dataLength;
              const top = `/${path.split('/')[1]}`;
              const t = census.byTop[top] ?? (census.byTop[top] = { nodes: 0, bytes: 0 });
              t.nodes++;
              t.bytes += stat.dataLength;
            }
            if (stat.numChildren > 0) {
              for (const c of await client.getChildren(path)) next.push(path === '/' ? `/${c}` : `${path}/${c}`);
            }
          } catch (err) {
            if (!(err instanceof NoNodeError)) throw err;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, frontier.length) }, worker));
      frontier = next;
    }
  } finally {
    await client.close();
  }
  return census;
}
