import winston from 'winston';

/** Structured fields every event may carry; `event` is the stable dotted name runbooks quote. */
export interface EventFields {
  [key: string]: unknown;
}

export interface EventLogger {
  debug(event: string, fields?: EventFields): void;
  info(event: string, fields?: EventFields): void;
  warn(event: string, fields?: EventFields): void;
  error(event: string, fields?: EventFields): void;
  /** A logger whose events all carry `fields` (e.g. replicaId). */
  child(fields: EventFields): EventLogger;
}

export interface LoggerOptions {
  level?: string;
  /** Where JSON lines go; defaults to stderr so stdout stays free for CLI output. */
  stream?: NodeJS.WritableStream;
  silent?: boolean;
}

class WinstonEventLogger implements EventLogger {
  /**
   * Checked first: winston formats (timestamp, JSON) every line before its transport drops a disabled
   * level. Read once: the level is fixed when the logger is created (children share it).
   */
  private readonly debugEnabled: boolean;
  /**
   * A child's fields are merged here rather than through winston's `child()`, which builds a new
   * prototype object per child (one per JobMaster) and copies every line once per nesting level; a
   * line's own fields win over its logger's, as there.
   */
  constructor(private readonly base: winston.Logger, private readonly fields: EventFields = {}, debugEnabled?: boolean) {
    this.debugEnabled = debugEnabled ?? (!base.silent && base.isDebugEnabled());
  }
  debug(event: string, fields?: EventFields): void { if (this.debugEnabled) this.base.log('debug', event, { ...this.fields, event, ...fields }); }
  info(event: string, fields?: EventFields): void { this.base.log('info', event, { ...this.fields, event, ...fields }); }
  warn(event: string, fields?: EventFields): void { this.base.log('warn', event, { ...this.fields, event, ...fields }); }
  error(event: string, fields?: EventFields): void { this.base.log('error', event, { ...this.fields, event, ...fields }); }
  child(fields: EventFields): EventLogger { return new WinstonEventLogger(this.base, { ...this.fields, ...fields }, this.debugEnabled); }
}

export function createLogger(options: LoggerOptions = {}): EventLogger {
  const level = options.level ?? process.env.HA_LOG_LEVEL ?? 'info';
  const transport = new winston.transports.Stream({ stream: options.stream ?? process.stderr });
  const base = winston.createLogger({
    level,
    silent: options.silent ?? level === 'silent',
    format: winston.format.combine(winston.format.timestamp(), errorsToJson(), winston.format.json()),
    transports: [transport],
  });
  return new WinstonEventLogger(base);
}

/** Errors inside fields would serialise as `{}`; keep their name and message. */
const errorsToJson = winston.format((info) => {
  for (const [key, value] of Object.entries(info)) {
    if (value instanceof Error) {
      (info as Record<string, unknown>)[key] = { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
    }
  }
  return info;
});

/** A logger that drops everything: the default for library use and unit tests. */
export const silentLogger: EventLogger = createLogger({ silent: true });
