import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The native ZooKeeper client opens its sockets without close-on-exec. A child spawned by a process
 * holding a session inherits those sockets and keeps them open after the parent closes its copy;
 * epoll in the parent then keeps reporting the dead description under a reused descriptor number,
 * and the client tears its next session down as "expired" in a loop. So every long-lived child
 * (ZooKeeper servers, tasks, replicas started by tests) is started through bash, which closes every
 * inherited descriptor above stderr before exec'ing the real program.
 */
const CLOSE_INHERITED_FDS_THEN_EXEC =
  'for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done; exec "$@"';

export function spawnClean(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const executable = resolveExecutable(command, (options.env ?? process.env).PATH);
  // Unknown programs go to a plain spawn, which reports ENOENT the usual way.
  if (!executable) return spawn(command, [...args], options);
  return spawn('/bin/bash', ['-c', CLOSE_INHERITED_FDS_THEN_EXEC, path.basename(command), executable, ...args], options);
}

function resolveExecutable(command: string, searchPath: string | undefined): string | null {
  const candidates = command.includes('/') ? [command] : (searchPath ?? '').split(':').filter(Boolean).map((dir) => path.join(dir, command));
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return path.resolve(candidate);
    } catch { /* not this one */ }
  }
  return null;
}
