/**
 * The JSON Schemas of the Flink-compatible REST responses (test/schemas/flink/*.json, one per
 * response shape) and the catalogue of which endpoint answers with which, so unit and integration
 * tests check every served endpoint the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { ValidateFunction } from 'ajv';
import { packageRoot } from '../../src/util/package-root';

export type FlinkSchema =
  | 'dashboard-config' | 'cluster-overview' | 'job-ids' | 'jobs-overview' | 'job-details' | 'job-status' | 'job-plan' | 'job-config'
  | 'job-accumulators' | 'job-exceptions' | 'execution-result' | 'vertex-details' | 'subtask-attempt' | 'subtask-times'
  | 'vertex-taskmanagers' | 'taskmanagers' | 'taskmanager-details' | 'jobmanager-config' | 'log-list' | 'aggregated-metrics'
  | 'errors' | 'submit-response' | 'empty';

const SCHEMA_DIR = path.join(packageRoot(), 'test', 'schemas', 'flink');
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const validators = new Map<string, ValidateFunction>();
for (const file of fs.readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.json'))) {
  validators.set(path.basename(file, '.json'), ajv.compile(JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, file), 'utf8'))));
}

/** Why `body` does not match the schema `name` (empty when it does). */
export function schemaViolations(name: FlinkSchema, body: unknown): string[] {
  const validate = validators.get(name);
  if (!validate) throw new Error(`no schema ${name} in ${SCHEMA_DIR}`);
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

/** A GET endpoint and the schema of its 200 answer. */
export interface FlinkEndpoint { path: string; schema: FlinkSchema }

/** Every cluster-level GET endpoint that answers JSON. */
export function clusterEndpoints(taskManagerId?: string): FlinkEndpoint[] {
  return [
    { path: '/config', schema: 'dashboard-config' },
    { path: '/overview', schema: 'cluster-overview' },
    { path: '/jobs', schema: 'job-ids' },
    { path: '/jobs/overview', schema: 'jobs-overview' },
    { path: '/jobs/metrics', schema: 'aggregated-metrics' },
    { path: '/taskmanagers', schema: 'taskmanagers' },
    { path: '/taskmanagers/metrics', schema: 'aggregated-metrics' },
    { path: '/jobmanager/config', schema: 'jobmanager-config' },
    { path: '/jobmanager/logs', schema: 'log-list' },
    ...(taskManagerId ? [
      { path: `/taskmanagers/${taskManagerId}`, schema: 'taskmanager-details' as const },
      { path: `/taskmanagers/${taskManagerId}/logs`, schema: 'log-list' as const },
    ] : []),
  ];
}

/** Every per-job GET endpoint that answers JSON; the vertex ones when the job has a vertex (Flink id). */
export function jobEndpoints(jobId: string, vertexId?: string): FlinkEndpoint[] {
  const job = `/jobs/${jobId}`;
  return [
    { path: job, schema: 'job-details' },
    { path: `${job}/status`, schema: 'job-status' },
    { path: `${job}/plan`, schema: 'job-plan' },
    { path: `${job}/config`, schema: 'job-config' },
    { path: `${job}/accumulators`, schema: 'job-accumulators' },
    { path: `${job}/exceptions`, schema: 'job-exceptions' },
    { path: `${job}/exceptions?maxExceptions=1`, schema: 'job-exceptions' },
    { path: `${job}/execution-result`, schema: 'execution-result' },
    ...(vertexId ? [
      { path: `${job}/vertices/${vertexId}`, schema: 'vertex-details' as const },
      { path: `${job}/vertices/${vertexId}/subtasktimes`, schema: 'subtask-times' as const },
      { path: `${job}/vertices/${vertexId}/taskmanagers`, schema: 'vertex-taskmanagers' as const },
      { path: `${job}/vertices/${vertexId}/subtasks/0`, schema: 'subtask-attempt' as const },
    ] : []),
  ];
}
