import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The native ZooKeeper client opens its sockets without close-on-exec. A child spawned by a process
 * holding a session inherits those sockets and keeps them open after the parent closes its copy;
 * epoll in the parent then keeps reporting the dead description under a reused descriptor number,
 * and the client tears its next session down as "expired" in a loop. So every long-lived child
 * (ZooKeeper servers, tasks, replicas started by tests) is started through bash, which closes every
 * inherited descriptor above stderr before exec'ing the real program. Node's spawn options cannot do
 * this (libuv leaves descriptors above the stdio ones alone), and `detached` only gives the process group.
 *
 * bash runs non-interactive with `options.env`, so it reads no profile or rc file, but it does honour
 * BASH_ENV, ENV, SHELLOPTS, BASHOPTS and BASH_FUNC_* from that env: callers passing an untrusted env must
 * leave those out (the task sandbox refuses them, see src/taskmanager/task-sandbox.ts).
 */
const CLOSE_INHERITED_FDS_THEN_EXEC =
  'for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done; exec "$@"';

/** spawn(command, args, options) through the descriptor-closing exec; a relative command resolves against `options.cwd`. */
export function spawnClean(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const executable = resolveExecutable(command, (options.env ?? process.env).PATH, options.cwd === undefined ? undefined : String(options.cwd));
  // Unknown programs go to a plain spawn, which reports ENOENT the usual way.
  if (!executable) return spawn(command, [...args], options);
  return spawn('/bin/bash', ['-c', CLOSE_INHERITED_FDS_THEN_EXEC, path.basename(command), executable, ...args], options);
}

function resolveExecutable(command: string, searchPath: string | undefined, cwd: string | undefined): string | null {
  const candidates = command.includes('/') ? [command] : (searchPath ?? '').split(':').filter(Boolean).map((dir) => path.join(dir, command));
  for (const candidate of candidates) {
    const file = path.resolve(cwd ?? '', candidate);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch { /* not this one */ }
  }
  return null;
}
