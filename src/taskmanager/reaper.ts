/**
 * Commands run in their own process groups, so they would outlive a TaskManager killed with SIGKILL
 * and keep writing outputs the leader has already failed over. The reaper is a tiny sidecar process
 * holding a pipe from the TaskManager: when the pipe closes (the TaskManager died, however), it kills
 * every process group still registered with it.
 */
import { ChildProcess } from 'node:child_process';
import { spawnClean } from '../util/clean-spawn';
import { EventLogger } from '../util/logger';

const REAPER_SCRIPT = `
const groups = new Set();
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    const pid = Number(line.slice(1));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (line[0] === '+') groups.add(pid); else if (line[0] === '-') groups.delete(pid);
  }
});
const reap = () => {
  for (const g of groups) { try { process.kill(-g, 'SIGTERM'); } catch {} }
  setTimeout(() => { for (const g of groups) { try { process.kill(-g, 'SIGKILL'); } catch {} } process.exit(0); }, groups.size ? 2000 : 0);
};
process.stdin.on('end', reap);
process.stdin.on('error', reap);
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});
`;

export class Reaper {
  private constructor(private readonly child: ChildProcess, private readonly logger: EventLogger) {}

  static start(logger: EventLogger): Reaper | null {
    try {
      const child = spawnClean(process.execPath, ['-e', REAPER_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      child.unref();
      child.on('error', (err) => logger.warn('taskmanager.reaper.failed', { error: err }));
      child.stdin?.on('error', () => undefined);
      return new Reaper(child, logger);
    } catch (err) {
      logger.warn('taskmanager.reaper.failed', { error: err as Error });
      return null;
    }
  }

  track(pgid: number): void { this.write(`+${pgid}\n`); }
  untrack(pgid: number): void { this.write(`-${pgid}\n`); }

  /** Graceful stop: the TaskManager canceled its tasks itself; the reaper exits with nothing to do. */
  stop(): void {
    this.child.stdin?.end();
  }

  private write(line: string): void {
    if (this.child.stdin?.writable) this.child.stdin.write(line);
    else this.logger.debug('taskmanager.reaper.gone', {});
  }
}
