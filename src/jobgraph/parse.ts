import { randomBytes } from 'node:crypto';
import { ValidationError } from '../http/errors';
import { findCycle } from './graph';
import {
  MAX_ARG_LENGTH, MAX_ATTEMPTS, MAX_ENV_VALUE_LENGTH, MAX_FAIL_MESSAGE_LENGTH, MAX_NAME_LENGTH, MAX_SLEEP_MS,
  MAX_PROGRESS_SHARD_BYTES, MAX_TIMER_MS, MAX_VERTICES, DEFAULT_MAX_SUBTASKS_PER_JOB, progressShardBytesBound, RESERVED_ENV_NAMES,
} from './limits';
import { FORBIDDEN_ENV_RULE, forbiddenEnvNames, SECRET_ENV_PREFIX, type EnvValue } from './task-env';
import type { JobGraph, JobGraphLimits, JobVertex, RestartStrategyConfig, TaskSpec } from './types';

/** A job id: Flink's JobID form, 32 lowercase hex digits (16 random bytes). */
export const JOB_ID_PATTERN = /^[0-9a-f]{32}$/;
const VERTEX_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

const GRAPH_FIELDS = ['jobId', 'name', 'vertices', 'restartStrategy'] as const;
const VERTEX_FIELDS = ['id', 'name', 'parallelism', 'inputs', 'task'] as const;
const TASK_TYPES = ['command', 'sleep', 'fail'] as const;
const RESTART_TYPES = ['none', 'fixed-delay', 'exponential-delay', 'failure-rate'] as const;

type Fields = Record<string, unknown>;

/** Flink's JobID form; the only job ids that may become ZooKeeper node names or URL segments. */
export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && JOB_ID_PATTERN.test(value);
}

export function generateJobId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Validates an untrusted job graph (a parsed JSON body) and returns a normalized copy: defaults filled,
 * no extra fields, so `canonicalJson` of two submissions compares their meaning, not their spelling.
 * Throws ValidationError whose message names the field and says what to change.
 */
export function parseJobGraph(input: unknown, limits: JobGraphLimits): JobGraph {
  if (!isObject(input)) fail(`the job graph must be a JSON object, got ${show(input)}`);
  const body = fields(input, 'the job graph', GRAPH_FIELDS);
  const jobId = body.jobId === undefined ? generateJobId() : body.jobId;
  if (!isJobId(jobId)) fail(`jobId must be 32 lowercase hexadecimal characters (Flink's JobID form), or omitted to get a generated one; got ${show(jobId)}`);
  const graph: JobGraph = {
    jobId,
    name: body.name === undefined ? `job-${jobId.slice(0, 8)}` : text(body.name, 'name', MAX_NAME_LENGTH),
    vertices: parseVertices(body.vertices, limits),
  };
  if (body.restartStrategy !== undefined) graph.restartStrategy = parseRestartStrategy(body.restartStrategy);
  return graph;
}

function parseVertices(value: unknown, limits: JobGraphLimits): JobVertex[] {
  if (!Array.isArray(value) || value.length === 0) fail(`vertices must be a non-empty array of vertex objects, got ${show(value)}`);
  const maxVertices = Math.min(limits.maxVertices ?? MAX_VERTICES, MAX_VERTICES);
  if (value.length > maxVertices) {
    fail(`vertices has ${value.length} entries; at most ${maxVertices} are allowed (dispatcher.max-vertices-per-job), ${value.length - maxVertices} too many`);
  }
  rejectForbiddenEnv(value);
  const vertices = value.map((v, i) => parseVertex(v, `vertices[${i}]`, limits));
  checkStateBounds(vertices, limits);

  const indexById = new Map<string, number>();
  vertices.forEach((v, i) => {
    const first = indexById.get(v.id);
    if (first !== undefined) fail(`vertices[${i}].id ${JSON.stringify(v.id)} is already the id of vertices[${first}]; vertex ids must be unique`);
    indexById.set(v.id, i);
  });
  vertices.forEach((v, i) =>
    v.inputs!.forEach((input, j) => {
      const path = `vertices[${i}].inputs[${j}]`;
      if (input === v.id) fail(`${path} ${JSON.stringify(input)} is the vertex itself; a vertex cannot consume its own output`);
      if (!indexById.has(input)) fail(`${path} ${JSON.stringify(input)} is not the id of any vertex; known ids: ${listOf([...indexById.keys()])}`);
    }),
  );
  const cycle = findCycle(vertices);
  if (cycle) fail(`cycle: ${cycle.join(' -> ')}; remove one of these inputs so the vertices form a DAG`);
  return vertices;
}

/**
 * What the job's state will need, before it is stored: the sum of parallelism against
 * `dispatcher.max-subtasks-per-job`, and the largest vertex's progress shard against
 * MAX_PROGRESS_SHARD_BYTES (a job whose state could not be written must never be accepted).
 */
function checkStateBounds(vertices: JobVertex[], limits: JobGraphLimits): void {
  const maxSubtasks = limits.maxSubtasks ?? DEFAULT_MAX_SUBTASKS_PER_JOB;
  let subtasks = 0;
  let widest = 0;
  vertices.forEach((v, i) => {
    subtasks += v.parallelism;
    if (v.parallelism > vertices[widest].parallelism) widest = i;
  });
  if (subtasks > maxSubtasks) {
    fail(`the job has ${subtasks} subtasks (sum of every vertex's parallelism), ${subtasks - maxSubtasks} more than the ${maxSubtasks} allowed (dispatcher.max-subtasks-per-job); lower parallelism or split the job`);
  }
  const shard = progressShardBytesBound(vertices[widest].parallelism);
  if (shard > MAX_PROGRESS_SHARD_BYTES) {
    fail(`vertices[${widest}].parallelism ${vertices[widest].parallelism} implies a progress shard of up to ${shard} bytes, ${shard - MAX_PROGRESS_SHARD_BYTES} more than the ${MAX_PROGRESS_SHARD_BYTES} allowed (one ZooKeeper node per vertex); lower its parallelism`);
  }
}

function parseVertex(value: unknown, path: string, limits: JobGraphLimits): JobVertex {
  const f = fields(value, path, VERTEX_FIELDS);
  const id = f.id;
  if (typeof id !== 'string' || !VERTEX_ID.test(id)) fail(`${path}.id must be 1 to 64 letters, digits, "_" or "-", got ${show(id)}`);
  const inputs = f.inputs === undefined ? [] : f.inputs;
  if (!Array.isArray(inputs)) fail(`${path}.inputs must be an array of vertex ids, got ${show(inputs)}`);
  inputs.forEach((input, j) => {
    if (typeof input !== 'string') fail(`${path}.inputs[${j}] must be a vertex id string, got ${show(input)}`);
    if (inputs.indexOf(input) !== j) fail(`${path}.inputs[${j}] ${JSON.stringify(input)} is listed twice; list each input once`);
  });
  return {
    id,
    name: f.name === undefined ? id : text(f.name, `${path}.name`, MAX_NAME_LENGTH),
    parallelism: f.parallelism === undefined ? 1 : integer(f.parallelism, `${path}.parallelism`, 1, limits.maxParallelism),
    inputs: inputs as string[],
    task: parseTask(f.task, `${path}.task`),
  };
}

function parseTask(value: unknown, path: string): TaskSpec {
  const type = typeOf(value, path, TASK_TYPES);
  switch (type) {
    case 'command': {
      const f = fields(value, path, ['type', 'argv', 'env', 'timeoutMs']);
      const task: TaskSpec = { type, argv: parseArgv(f.argv, `${path}.argv`), env: parseEnv(f.env, `${path}.env`) };
      if (f.timeoutMs !== undefined) task.timeoutMs = integer(f.timeoutMs, `${path}.timeoutMs`, 1, MAX_TIMER_MS);
      return task;
    }
    case 'sleep': {
      const f = fields(value, path, ['type', 'ms']);
      return { type, ms: integer(f.ms, `${path}.ms`, 0, MAX_SLEEP_MS) };
    }
    case 'fail': {
      const f = fields(value, path, ['type', 'afterMs', 'message', 'failAttempts']);
      const task: TaskSpec = { type, afterMs: f.afterMs === undefined ? 0 : integer(f.afterMs, `${path}.afterMs`, 0, MAX_SLEEP_MS) };
      if (f.message !== undefined) task.message = text(f.message, `${path}.message`, MAX_FAIL_MESSAGE_LENGTH);
      if (f.failAttempts !== undefined) task.failAttempts = integer(f.failAttempts, `${path}.failAttempts`, 0, MAX_ATTEMPTS);
      return task;
    }
  }
}

function parseArgv(value: unknown, path: string): string[] {
  if (!Array.isArray(value) || value.length === 0) fail(`${path} must be a non-empty array of strings (program first), got ${show(value)}`);
  value.forEach((arg, i) => {
    const at = `${path}[${i}]`;
    if (typeof arg !== 'string') fail(`${at} must be a string, got ${show(arg)}`);
    if (arg.length > MAX_ARG_LENGTH) fail(`${at} is ${arg.length} characters long; at most ${MAX_ARG_LENGTH} are allowed`);
    if (arg.includes('\0')) fail(`${at} contains a NUL character; remove it`);
  });
  if (value[0] === '') fail(`${path}[0] must name the program to run, got ""`);
  return [...(value as string[])];
}

function parseEnv(value: unknown, path: string): Record<string, EnvValue> {
  if (value === undefined) return {};
  if (!isObject(value)) fail(`${path} must be an object of NAME: "value" strings, got ${show(value)}`);
  const entries = Object.entries(value).map(([name, v]): [string, EnvValue] => {
    if (!ENV_NAME.test(name)) fail(`${path} name ${show(name)} is not a valid environment variable name; use letters, digits and "_", not starting with a digit`);
    if (RESERVED_ENV_NAMES.includes(name)) fail(`${path}.${name} is set by the TaskManager itself (${RESERVED_ENV_NAMES.join(', ')}); remove it or rename it`);
    if (isObject(v)) return [name, parseSecretRef(v, `${path}.${name}`)];
    if (typeof v !== 'string') fail(`${path}.${name} must be a string, got ${show(v)}; or a secret: {"fromFile": "/run/secrets/NAME"} or {"fromEnv": "${SECRET_ENV_PREFIX}NAME"}`);
    if (v.length > MAX_ENV_VALUE_LENGTH) fail(`${path}.${name} is ${v.length} characters long; at most ${MAX_ENV_VALUE_LENGTH} are allowed`);
    if (v.includes('\0')) fail(`${path}.${name} contains a NUL character; remove it`);
    return [name, v];
  });
  // fromEntries defines own properties, so a "__proto__" name stays data instead of changing the prototype.
  return Object.fromEntries(entries);
}

/** A secret the TaskManager resolves at launch: `{fromFile: absolute path}` or `{fromEnv: TASK_SECRET_*}`. */
function parseSecretRef(value: Fields, path: string): EnvValue {
  const keys = Object.keys(value);
  if (keys.length !== 1 || !['fromFile', 'fromEnv'].includes(keys[0])) {
    fail(`${path} must be a string or exactly one of {"fromFile": "/run/secrets/NAME"}, {"fromEnv": "${SECRET_ENV_PREFIX}NAME"}; got fields ${keys.map(show).join(', ') || 'none'}`);
  }
  const ref = value[keys[0]];
  if (keys[0] === 'fromFile') {
    if (typeof ref !== 'string' || !ref.startsWith('/') || ref.length > MAX_ARG_LENGTH || ref.includes('\0')) {
      fail(`${path}.fromFile must be an absolute file path on the TaskManager (under taskmanager.task.secrets-dir), got ${show(ref)}`);
    }
    return { fromFile: ref };
  }
  if (typeof ref !== 'string' || !ENV_NAME.test(ref) || !ref.startsWith(SECRET_ENV_PREFIX)) {
    fail(`${path}.fromEnv must name a TaskManager variable starting with ${SECRET_ENV_PREFIX} (only those are handed to tasks), got ${show(ref)}`);
  }
  return { fromEnv: ref };
}

/** Every forbidden env name of every command vertex at once, each with its JSON path, so one round trip fixes them all. */
function rejectForbiddenEnv(vertices: unknown[]): void {
  const paths = vertices.flatMap((v, i) => {
    const env = isObject(v) && isObject(v.task) && v.task.type === 'command' ? v.task.env : undefined;
    return isObject(env) ? forbiddenEnvNames(env).map((name) => `vertices[${i}].task.env.${name}`) : [];
  });
  if (paths.length > 0) fail(`forbidden environment variables: ${paths.join(', ')}; ${FORBIDDEN_ENV_RULE}`);
}

/** Validates a job's restart strategy (Flink's names); `path` prefixes every message. */
export function parseRestartStrategy(value: unknown, path = 'restartStrategy'): RestartStrategyConfig {
  const type = typeOf(value, path, RESTART_TYPES);
  const at = (field: string): string => `${path}.${field}`;
  switch (type) {
    case 'none':
      fields(value, path, ['type']);
      return { type };
    case 'fixed-delay': {
      const f = fields(value, path, ['type', 'attempts', 'delayMs']);
      return { type, attempts: integer(f.attempts, at('attempts'), 0, MAX_ATTEMPTS), delayMs: integer(f.delayMs, at('delayMs'), 0, MAX_TIMER_MS) };
    }
    case 'exponential-delay': {
      const f = fields(value, path, ['type', 'initialBackoffMs', 'maxBackoffMs', 'backoffMultiplier', 'attempts']);
      const initialBackoffMs = integer(f.initialBackoffMs, at('initialBackoffMs'), 1, MAX_TIMER_MS);
      const strategy: RestartStrategyConfig = {
        type,
        initialBackoffMs,
        maxBackoffMs: integer(f.maxBackoffMs, at('maxBackoffMs'), initialBackoffMs, MAX_TIMER_MS),
        backoffMultiplier: multiplier(f.backoffMultiplier, at('backoffMultiplier')),
      };
      if (f.attempts !== undefined) strategy.attempts = integer(f.attempts, at('attempts'), 0, MAX_ATTEMPTS);
      return strategy;
    }
    case 'failure-rate': {
      const f = fields(value, path, ['type', 'maxFailuresPerInterval', 'failureRateIntervalMs', 'delayMs']);
      return {
        type,
        maxFailuresPerInterval: integer(f.maxFailuresPerInterval, at('maxFailuresPerInterval'), 1, MAX_ATTEMPTS),
        failureRateIntervalMs: integer(f.failureRateIntervalMs, at('failureRateIntervalMs'), 1, MAX_TIMER_MS),
        delayMs: integer(f.delayMs, at('delayMs'), 0, MAX_TIMER_MS),
      };
    }
  }
}

function fail(message: string): never {
  throw new ValidationError(message);
}

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object's fields, after rejecting unknown ones so a misspelt field cannot be silently ignored. */
function fields(value: unknown, path: string, allowed: readonly string[]): Fields {
  if (!isObject(value)) fail(`${path} must be a JSON object, got ${show(value)}`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(`${path} has unknown field ${show(key)}; allowed fields: ${allowed.join(', ')}`);
  }
  return value;
}

function typeOf<T extends string>(value: unknown, path: string, types: readonly T[]): T {
  if (!isObject(value)) fail(`${path} must be a JSON object with a "type" field, got ${show(value)}`);
  if (!types.includes(value.type as T)) fail(`${path}.type must be one of ${types.map((t) => `"${t}"`).join(', ')}, got ${show(value.type)}`);
  return value.type as T;
}

function integer(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`${path} must be an integer between ${min} and ${max}, got ${show(value)}`);
  }
  return value;
}

function multiplier(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1) fail(`${path} must be a number of at least 1, got ${show(value)}`);
  return value;
}

function text(value: unknown, path: string, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    fail(`${path} must be a string of 1 to ${maxLength} characters, got ${show(value)}`);
  }
  if (CONTROL_CHARS.test(value)) fail(`${path} must not contain control characters (newlines, tabs, NUL), got ${show(value)}`);
  return value;
}

/** A short, escaped rendering of a rejected value: NUL, newlines and huge strings stay readable. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function listOf(ids: string[]): string {
  return ids.length > 10 ? `${ids.slice(0, 10).join(', ')}, ...` : ids.join(', ');
}
