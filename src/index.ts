/**
 * The package's public surface (`main` in package.json): run a dispatcher replica or a TaskManager
 * in-process, load their configuration, parse JobGraphs, and talk to a cluster over REST. The CLI
 * (`bin/ha-dispatcher.js`) is built from the same parts.
 */
export { VERSION } from './version';
export { loadConfig, publicConfig, parseDurationMs } from './config';
export type { DispatcherConfig, LoadConfigOptions } from './config';
export { Replica } from './replica/replica';
export type { ReplicaOptions, ExecutionBackend } from './replica/replica';
export { TaskManager } from './taskmanager/task-manager';
export type { TaskManagerOptions } from './taskmanager/task-manager';
export * from './jobgraph';
export { RestClient, CliError, EXIT } from './client/rest-client';
export type { RestClientOptions, RestResponse, ExitCode } from './client/rest-client';
export { requestJson, HttpTransportError } from './http/client';
export type { JsonRequestOptions, JsonResponse } from './http/client';
