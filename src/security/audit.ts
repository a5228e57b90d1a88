/**
 * The audit log: one JSON line (event `audit`) per security-relevant action — a job submitted or
 * cancelled, the configuration read, a replica stopped over REST, a TaskManager registered — and per
 * refused request (401/403). Lines carry who (principal, or "anonymous"), what (action, target), the
 * outcome and status, the remote address and an ISO-8601 timestamp; never a token, a certificate or
 * a request body.
 *
 * With `security.audit.file` the lines go to that file through their own winston logger (append,
 * created 0600); without it they go to the process log under the event name `audit`.
 */
import * as fs from 'node:fs';
import winston from 'winston';
import type { EventLogger } from '../util/logger';

/** Stable event name of every audit line, in the file and in the process log alike. */
export const AUDIT_EVENT = 'audit';

/** Actions with their own name; any other refused request is named `<METHOD> <route>`. */
export type AuditAction = 'job.submit' | 'job.cancel' | 'config.read' | 'cluster.shutdown' | 'taskmanager.register' | 'taskmanager.drain';

export interface AuditEntry {
  /** Principal name, or "anonymous". */
  principal: string;
  action: AuditAction | string;
  /** Job id, TaskManager id or request path. */
  target: string;
  outcome: 'allowed' | 'denied';
  /** The HTTP status answered. */
  status: number;
  /** The peer's address (a standby, when it forwarded the request). */
  remoteAddress: string;
  /** `X-Forwarded-For` as received (informational: a client can write anything there). */
  forwardedFor?: string;
}

export interface AuditLog {
  record(entry: AuditEntry): void;
  /** Flushes and closes the audit file, if any. */
  close(): Promise<void>;
}

/** Writes nothing: library use and unit tests. */
export const silentAuditLog: AuditLog = { record: () => undefined, close: async () => undefined };

export interface AuditLogOptions {
  /** security.audit.file; unset: the lines go to `logger`. */
  file?: string;
  /** The process log (fallback sink, and where a failing audit file is reported). */
  logger: EventLogger;
  /** Fields every line carries, e.g. `{ replicaId }`. */
  fields?: Record<string, unknown>;
}

/**
 * The audit log of one process. Opens `options.file` for appending (created with mode 0600).
 * @throws Error when the file cannot be opened.
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const fields = options.fields ?? {};
  if (options.file === undefined) {
    return {
      record: (entry) => options.logger.info(AUDIT_EVENT, { ...fields, ...entry, timestamp: new Date().toISOString() }),
      close: async () => undefined,
    };
  }
  // Opened here, synchronously, so a path that cannot be written stops the start instead of losing lines.
  const fd = fs.openSync(options.file, 'a', 0o600);
  const stream = fs.createWriteStream(options.file, { fd, flags: 'a' });
  stream.on('error', (err) => options.logger.error('audit.write-failed', { file: options.file, error: err }));
  const file = winston.createLogger({
    level: 'info',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return {
    record: (entry) => { file.info(AUDIT_EVENT, { event: AUDIT_EVENT, ...fields, ...entry, timestamp: new Date().toISOString() }); },
    // winston hands lines to the stream within the tick queue; end the file once they are written.
    close: () => new Promise<void>((resolve) => setImmediate(() => {
      file.close();
      stream.end(() => resolve());
    })),
  };
}
