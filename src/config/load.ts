import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { ConfigError } from '../util/errors';
import { CONFIG_KEYS, DispatcherConfig, SECRET_KEYS, validateConfig } from './options';

/** Flat YAML properties from the environment, like Flink's FLINK_PROPERTIES in its container images. */
export const PROPERTIES_ENV = 'HA_DISPATCHER_PROPERTIES';

export interface LoadConfigOptions {
  /** YAML file of flat keys; nested maps are flattened with dots. */
  file?: string;
  /** "key=value" strings from `-D key=value`; they win over everything else. */
  overrides?: readonly string[];
  /** Where HA_DISPATCHER_PROPERTIES is read from (between file and overrides); defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Defaults < file < HA_DISPATCHER_PROPERTIES < -D overrides, then the one validator. */
export function loadConfig(options: LoadConfigOptions = {}): DispatcherConfig {
  const raw = new Map<string, unknown>();
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${options.file}: ${(err as Error).message}`);
    }
    mergeInto(raw, parseYamlProperties(text, options.file));
  }
  const properties = (options.env ?? process.env)[PROPERTIES_ENV];
  if (properties) mergeInto(raw, parseYamlProperties(properties, `$${PROPERTIES_ENV}`));
  for (const override of options.overrides ?? []) {
    const [key, value] = parseOverride(override);
    raw.set(key, value);
  }
  // fromEntries keeps a "__proto__" key as data, so it is reported as unknown instead of being swallowed.
  return validateConfig(Object.fromEntries(raw));
}

/** Splits one `-D` argument ("key=value"; a leading "-D" is tolerated). */
export function parseOverride(argument: string): [key: string, value: string] {
  const text = argument.startsWith('-D') ? argument.slice(2) : argument;
  const eq = text.indexOf('=');
  const key = eq < 0 ? text.trim() : text.slice(0, eq).trim();
  if (eq < 0 || key === '') throw new ConfigError(key || argument, `malformed override ${JSON.stringify(argument)}; write -D key=value`);
  return [key, text.slice(eq + 1)];
}

/** A YAML document of flat keys and/or nested maps, flattened to dotted keys. */
export function parseYamlProperties(text: string, source: string): Map<string, unknown> {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new ConfigError('--config', `${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const flat = new Map<string, unknown>();
  if (doc === null || doc === undefined) return flat;
  if (!isMap(doc)) throw new ConfigError('--config', `${source} must be a YAML map of "key: value" lines`);
  flatten(doc, '', flat, source);
  return flat;
}

/** Config as a flat key → value object for `GET /config`: secrets redacted, unset keys left out. */
export function publicConfig(config: DispatcherConfig): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const key of CONFIG_KEYS) {
    const value = config[key];
    if (value === undefined) continue;
    // Map-valued keys in Flink's own map form, `name:value,name:value`.
    out[key] = SECRET_KEYS.has(key) ? '******' : typeof value === 'object' ? Object.entries(value).map(([k, v]) => `${k}:${v}`).join(',') : value;
  }
  return out;
}

/** Keys whose value is itself a map (`scheduler.priority-classes: {low: 0}`): a YAML map there is the value, not nesting. */
const MAP_VALUED_KEYS: ReadonlySet<string> = new Set(['scheduler.priority-classes', 'resourcemanager.reserved-slots']);

function flatten(map: Record<string, unknown>, prefix: string, out: Map<string, unknown>, source: string): void {
  for (const [name, value] of Object.entries(map)) {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    if (isMap(value) && !MAP_VALUED_KEYS.has(key)) {
      flatten(value, key, out, source);
    } else if (out.has(key)) {
      throw new ConfigError(key, `is set twice in ${source} (once flat, once as a nested map); keep one`);
    } else {
      out.set(key, value);
    }
  }
}

function mergeInto(target: Map<string, unknown>, source: Map<string, unknown>): void {
  for (const [key, value] of source) target.set(key, value);
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
