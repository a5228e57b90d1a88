/** A configuration value that cannot be used; the message names the key and what to change. */
export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`configuration key "${key}": ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}
