export * from './options';
export { loadConfig, publicConfig, parseOverride, parseYamlProperties, PROPERTIES_ENV } from './load';
export type { LoadConfigOptions } from './load';
export { parseDurationMs } from '../util/duration';
