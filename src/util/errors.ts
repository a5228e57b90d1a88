/**
 * Domain errors carry their own HTTP meaning (status, expose) the way Koa's errors do, so the REST
 * layer maps them in one place.
 */
export class DispatcherError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly headers: Record<string, string>;
  constructor(message: string, opts: { status: number; code: string; expose?: boolean; headers?: Record<string, string> }) {
    super(message);
    this.name = 'DispatcherError';
    this.status = opts.status;
    this.code = opts.code;
    // Domain errors are written for the client; internal failures are not DispatcherErrors.
    this.expose = opts.expose ?? true;
    this.headers = opts.headers ?? {};
  }
}

export class ValidationError extends DispatcherError {
  constructor(message: string) {
    super(message, { status: 400, code: 'INVALID' });
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends DispatcherError {
  constructor(message: string) {
    super(message, { status: 404, code: 'NOT_FOUND' });
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends DispatcherError {
  constructor(message: string) {
    super(message, { status: 409, code: 'CONFLICT' });
    this.name = 'ConflictError';
  }
}

/** Raised when an operation needs leadership this replica does not (or no longer) hold. */
export class NotLeaderError extends DispatcherError {
  constructor(message = 'this replica is not the ready leader; retry against the leader') {
    super(message, { status: 503, code: 'NOT_LEADER', expose: true, headers: { 'Retry-After': '1' } });
    this.name = 'NotLeaderError';
  }
}

export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`configuration key "${key}": ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}
