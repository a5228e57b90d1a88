/**
 * Bounded task logs. The TaskManager reads a command's stdout and stderr through pipes and writes them
 * here, rather than handing the child a file descriptor: only the writer can enforce a cap, since a
 * child holding the file could keep writing into a file we rotated or truncated (and a size check on a
 * timer lets a fast writer overshoot by whatever it writes between checks).
 *
 * Files of one attempt: `<file>` (current), `<file>.1` … `<file>.<maxFiles-1>` (older), and `<file>.dropped`
 * holding the number of bytes deleted by rotation, so whoever serves the log can say it was cut.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface LogLimits {
  /** Bytes a file may hold before it is rotated (taskmanager.log.max-bytes). */
  maxBytes: number;
  /** Files kept, the current one included (taskmanager.log.max-files). */
  maxFiles: number;
}

export const DEFAULT_LOG_LIMITS: LogLimits = { maxBytes: 10 * 1024 * 1024, maxFiles: 3 };

const TAIL_KEEP_BYTES = 4096;

/**
 * Appends to `file` and rotates it at `maxBytes` (splitting a chunk at the byte boundary), so the files of
 * one attempt never hold more than maxBytes × maxFiles. Synchronous writes: a chunk is at most one pipe
 * read (64 KiB), and ordering between stdout and stderr stays exact. Write errors (disk full) are counted
 * as dropped bytes and never thrown: a task is not failed because its log could not be kept.
 */
export class RotatingLog {
  private fd: number | null = null;
  private size = 0;
  private dropped = 0;
  private tailBuf = Buffer.alloc(0);

  constructor(readonly file: string, private readonly limits: LogLimits = DEFAULT_LOG_LIMITS) {
    try {
      this.fd = fs.openSync(file, 'a', 0o640);
      this.size = fs.fstatSync(this.fd).size;
    } catch {
      this.fd = null;
    }
  }

  /** Bytes deleted by rotation so far. */
  get droppedBytes(): number { return this.dropped; }

  write(chunk: Buffer | string): void {
    let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.keepTail(data);
    while (data.length > 0) {
      if (this.size >= this.limits.maxBytes) this.rotate();
      const room = this.limits.maxBytes - this.size;
      const part = data.subarray(0, room);
      data = data.subarray(part.length);
      if (this.fd === null) {
        this.drop(part.length);
        continue;
      }
      try {
        fs.writeSync(this.fd, part);
        this.size += part.length;
      } catch {
        this.drop(part.length);
      }
    }
  }

  /** The last non-empty line written (at most 500 characters), for failure messages. */
  lastLine(): string {
    const lines = this.tailBuf.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    return (lines[lines.length - 1] ?? '').slice(0, 500);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private keepTail(data: Buffer): void {
    this.tailBuf = Buffer.concat([this.tailBuf, data.subarray(Math.max(0, data.length - TAIL_KEEP_BYTES))]);
    if (this.tailBuf.length > TAIL_KEEP_BYTES) this.tailBuf = this.tailBuf.subarray(this.tailBuf.length - TAIL_KEEP_BYTES);
  }

  /** current → .1 → .2 …; the file that would become `.<maxFiles>` is deleted and its size counted as dropped. */
  private rotate(): void {
    this.close();
    const { maxFiles } = this.limits;
    const name = (i: number): string => (i === 0 ? this.file : `${this.file}.${i}`);
    try {
      this.drop(sizeOf(name(maxFiles - 1)));
      fs.rmSync(name(maxFiles - 1), { force: true });
      for (let i = maxFiles - 2; i >= 0; i--) {
        if (fs.existsSync(name(i))) fs.renameSync(name(i), name(i + 1));
      }
      this.fd = fs.openSync(this.file, 'a', 0o640);
    } catch {
      this.fd = null;
    }
    this.size = 0;
  }

  private drop(bytes: number): void {
    if (bytes <= 0) return;
    this.dropped += bytes;
    try {
      fs.writeFileSync(`${this.file}.dropped`, String(this.dropped));
    } catch { /* the count is advisory */ }
  }
}

/** What GET /logs serves: the last `maxBytes` of an attempt's kept output, and how many bytes are not in it. */
export interface LogTail {
  text: string;
  /** Bytes written by the task but not in `text`: rotated away, or older than the tail. */
  omittedBytes: number;
}

/** Reads the tail across `<file>.N` … `<file>`; null when the attempt has no log here. */
export async function readLogTail(file: string, maxBytes: number): Promise<LogTail | null> {
  if (!fs.existsSync(file)) return null;
  const parts = [file];
  for (let i = 1; fs.existsSync(`${file}.${i}`); i++) parts.unshift(`${file}.${i}`);
  const sizes = parts.map(sizeOf);
  const total = sizes.reduce((a, b) => a + b, 0);
  let skip = Math.max(0, total - maxBytes);
  const chunks: Buffer[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (skip >= sizes[i]) { skip -= sizes[i]; continue; }
    try {
      const handle = await fs.promises.open(parts[i], 'r');
      try {
        const buf = Buffer.alloc(sizes[i] - skip);
        const { bytesRead } = await handle.read(buf, 0, buf.length, skip);
        chunks.push(buf.subarray(0, bytesRead));
      } finally {
        await handle.close();
      }
    } catch { /* rotated while we read: serve the rest */ }
    skip = 0;
  }
  const text = Buffer.concat(chunks);
  let dropped = 0;
  try { dropped = Number(fs.readFileSync(`${file}.dropped`, 'utf8')) || 0; } catch { /* nothing dropped */ }
  return { text: text.toString('utf8'), omittedBytes: dropped + (total - text.length) };
}

/**
 * Deletes the logs (every file of the attempt) under `logDir/<job>/` last written before `olderThan`
 * (epoch-ms, wall clock like file mtimes), except those `isLive(file)` says belong to a running attempt;
 * then removes job directories left empty. Returns the attempt log files deleted.
 */
export function sweepLogs(logDir: string, olderThan: number, isLive: (file: string) => boolean): string[] {
  const deleted: string[] = [];
  for (const job of readdir(logDir)) {
    const jobDir = path.join(logDir, job);
    const groups = new Map<string, string[]>();
    for (const name of readdir(jobDir)) {
      const m = /^(.*\.log)(\.\d+|\.dropped)?$/.exec(name);
      if (!m) continue;
      groups.set(m[1], [...(groups.get(m[1]) ?? []), name]);
    }
    for (const [base, names] of groups) {
      const file = path.join(jobDir, base);
      if (isLive(file)) continue;
      const newest = Math.max(...names.map((n) => mtimeOf(path.join(jobDir, n))));
      if (newest >= olderThan) continue;
      for (const n of names) fs.rmSync(path.join(jobDir, n), { force: true });
      deleted.push(file);
    }
    try { fs.rmdirSync(jobDir); } catch { /* not empty, or not a directory */ }
  }
  return deleted;
}

function readdir(dir: string): string[] {
  try { return fs.readdirSync(dir); } catch { return []; }
}

function sizeOf(file: string): number {
  try { return fs.statSync(file).size; } catch { return 0; }
}

function mtimeOf(file: string): number {
  try { return fs.statSync(file).mtimeMs; } catch { return 0; }
}
