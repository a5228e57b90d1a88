import { randomBytes } from 'node:crypto';
import { ValidationError } from '../http/errors';
import { DURATION_EXAMPLES, parseDurationMs } from '../util/duration';
import { findCycle } from './graph';
import {
  MAX_ARG_LENGTH, MAX_ATTEMPTS, MAX_ENV_VALUE_LENGTH, MAX_FAIL_MESSAGE_LENGTH, MAX_NAME_LENGTH, MAX_SLEEP_MS,
  MAX_PROGRESS_SHARD_BYTES, MAX_TIMER_MS, MAX_VERTICES, DEFAULT_MAX_SUBTASKS_PER_JOB, progressShardBytesBound, RESERVED_ENV_NAMES,
} from './limits';
import { DEFAULT_PRIORITY_CLASSES, resolvePriority } from './priority';
import { FORBIDDEN_ENV_RULE, forbiddenEnvNames, SECRET_ENV_PREFIX, type EnvValue } from './task-env';
import type { CommandTask, FailTask, JobGraph, JobGraphLimits, JobVertex, RestartStrategyConfig, TaskSpec } from './types';

/** A job id: Flink's JobID form, 32 lowercase hex digits (16 random bytes). */
export const JOB_ID_PATTERN = /^[0-9a-f]{32}$/;
const VERTEX_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

const GRAPH_FIELDS = ['jobId', 'name', 'vertices', 'restartStrategy', 'priority'] as const;
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
 * Every problem of a rejected job graph: a 400 whose body lists each one as `{"errors": [...]}` (each message
 * starts with the JSON path of the field it is about). `message` is the single problem, or all of them joined.
 */
export class JobGraphValidationError extends ValidationError {
  constructor(readonly issues: string[]) {
    super(issues.length === 1 ? issues[0] : `${issues.length} problems: ${issues.join('; ')}`);
    this.name = 'JobGraphValidationError';
    Object.assign(this.extra, { errors: issues });
  }
}

/** One problem, thrown by `fail` and caught by the nearest `Issues.check`, which records it and goes on. */
class Issue extends Error {}

/** The problems found so far; each independent field is checked under `check`, so one bad field hides no other. */
class Issues {
  readonly list: string[] = [];
  /** Runs `parse`; on a problem records it and returns undefined. */
  check<T>(parse: () => T): T | undefined {
    try {
      return parse();
    } catch (err) {
      if (!(err instanceof Issue)) throw err;
      this.list.push(err.message);
      return undefined;
    }
  }
  /** Ends the current check when anything was recorded since `mark` (a value built from broken parts). */
  failIfNew(mark: number): void {
    if (this.list.length > mark) throw new Issue(this.list.pop()!);
  }
}

/**
 * Validates an untrusted job graph (a parsed JSON body) and returns a normalized copy: defaults filled,
 * no extra fields, so `canonicalJson` of two submissions compares their meaning, not their spelling.
 * Throws JobGraphValidationError (a ValidationError, 400) listing every problem found, each message naming
 * the field's JSON path and saying what to change.
 */
export function parseJobGraph(input: unknown, limits: JobGraphLimits): JobGraph {
  const issues = new Issues();
  const graph = issues.check(() => parseGraph(input, limits, issues));
  if (issues.list.length > 0 || graph === undefined) throw new JobGraphValidationError(issues.list);
  return graph;
}

function parseGraph(input: unknown, limits: JobGraphLimits, issues: Issues): JobGraph {
  if (!isObject(input)) fail(`the job graph must be a JSON object, got ${show(input)}`);
  const body = fields(input, 'the job graph', GRAPH_FIELDS, issues);
  const jobId = issues.check(() => {
    const id = body.jobId === undefined ? generateJobId() : body.jobId;
    if (!isJobId(id)) fail(`jobId must be 32 lowercase hexadecimal characters (Flink's JobID form), or omitted to get a generated one; got ${show(id)}`);
    return id;
  });
  const name = issues.check(() => body.name === undefined ? `job-${(jobId ?? '').slice(0, 8)}` : text(body.name, 'name', MAX_NAME_LENGTH));
  const vertices = issues.check(() => parseVertices(body.vertices, limits, issues));
  const restartStrategy = body.restartStrategy === undefined ? undefined : issues.check(() => parseStrategy(body.restartStrategy, 'restartStrategy', issues));
  const priority = body.priority === undefined ? undefined : issues.check(() => {
    try {
      return resolvePriority(body.priority, limits.priorityClasses ?? DEFAULT_PRIORITY_CLASSES);
    } catch (err) {
      return fail((err as Error).message);
    }
  });
  if (jobId === undefined || name === undefined || vertices === undefined || (body.restartStrategy !== undefined && restartStrategy === undefined)
    || (body.priority !== undefined && priority === undefined)) {
    throw new Issue(issues.list.pop() ?? 'the job graph is invalid');
  }
  const graph: JobGraph = { jobId, name, vertices };
  if (restartStrategy !== undefined) graph.restartStrategy = restartStrategy;
  // Stored as the integer: a class renamed later never makes a stored job unreadable.
  if (priority !== undefined) graph.priority = priority;
  return graph;
}

function parseVertices(value: unknown, limits: JobGraphLimits, issues: Issues): JobVertex[] {
  if (!Array.isArray(value) || value.length === 0) fail(`vertices must be a non-empty array of vertex objects, got ${show(value)}`);
  const maxVertices = Math.min(limits.maxVertices ?? MAX_VERTICES, MAX_VERTICES);
  if (value.length > maxVertices) {
    fail(`vertices has ${value.length} entries; at most ${maxVertices} are allowed (dispatcher.max-vertices-per-job), ${value.length - maxVertices} too many`);
  }
  const mark = issues.list.length;
  issues.check(() => rejectForbiddenEnv(value));
  const parsed = value.map((v, i) => issues.check(() => parseVertex(v, `vertices[${i}]`, limits, issues)));

  // Ids and inputs are checked across the vertices that parsed, so a broken vertex does not hide a dangling input.
  const indexById = new Map<string, number>();
  parsed.forEach((v, i) => {
    if (!v) return;
    const first = indexById.get(v.id);
    if (first !== undefined) issues.check(() => fail(`vertices[${i}].id ${JSON.stringify(v.id)} is already the id of vertices[${first}]; vertex ids must be unique`));
    else indexById.set(v.id, i);
  });
  const knownIds = new Set([...indexById.keys(), ...value.map((v) => (isObject(v) ? v.id : undefined)).filter((id): id is string => typeof id === 'string')]);
  parsed.forEach((v, i) => v?.inputs!.forEach((input, j) => issues.check(() => {
    const path = `vertices[${i}].inputs[${j}]`;
    if (input === v.id) fail(`${path} ${JSON.stringify(input)} is the vertex itself; a vertex cannot consume its own output`);
    if (!knownIds.has(input)) fail(`${path} ${JSON.stringify(input)} is not the id of any vertex; known ids: ${listOf([...indexById.keys()])}`);
  })));
  issues.failIfNew(mark);
  const vertices = parsed as JobVertex[];
  const cycle = findCycle(vertices);
  if (cycle) fail(`cycle: ${cycle.join(' -> ')}; remove one of these inputs so the vertices form a DAG`);
  checkStateBounds(vertices, limits);
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

function parseVertex(value: unknown, path: string, limits: JobGraphLimits, issues: Issues): JobVertex {
  const f = fields(value, path, VERTEX_FIELDS, issues);
  const mark = issues.list.length;
  const id = issues.check(() => {
    if (typeof f.id !== 'string' || !VERTEX_ID.test(f.id)) fail(`${path}.id must be 1 to 64 letters, digits, "_" or "-", got ${show(f.id)}`);
    return f.id;
  });
  const inputs = issues.check(() => {
    const list = f.inputs === undefined ? [] : f.inputs;
    if (!Array.isArray(list)) fail(`${path}.inputs must be an array of vertex ids, got ${show(list)}`);
    const before = issues.list.length;
    list.forEach((input, j) => issues.check(() => {
      if (typeof input !== 'string') fail(`${path}.inputs[${j}] must be a vertex id string, got ${show(input)}`);
      if (list.indexOf(input) !== j) fail(`${path}.inputs[${j}] ${JSON.stringify(input)} is listed twice; list each input once`);
    }));
    issues.failIfNew(before);
    return list as string[];
  });
  const name = issues.check(() => f.name === undefined ? (typeof f.id === 'string' ? f.id : '') : text(f.name, `${path}.name`, MAX_NAME_LENGTH));
  const parallelism = issues.check(() => f.parallelism === undefined ? 1 : integer(f.parallelism, `${path}.parallelism`, 1, limits.maxParallelism));
  const task = issues.check(() => parseTask(f.task, `${path}.task`, issues));
  issues.failIfNew(mark);
  return { id: id!, name: name!, parallelism: parallelism!, inputs: inputs!, task: task! };
}

function parseTask(value: unknown, path: string, issues: Issues): TaskSpec {
  const type = typeOf(value, path, TASK_TYPES);
  const mark = issues.list.length;
  let task: TaskSpec;
  switch (type) {
    case 'command': {
      const f = fields(value, path, ['type', 'argv', 'env', 'timeoutMs'], issues);
      const argv = issues.check(() => parseArgv(f.argv, `${path}.argv`, issues));
      const env = issues.check(() => parseEnv(f.env, `${path}.env`, issues));
      const command: CommandTask = { type, argv: argv!, env: env! };
      if (f.timeoutMs !== undefined) issues.check(() => { command.timeoutMs = integer(f.timeoutMs, `${path}.timeoutMs`, 1, MAX_TIMER_MS); });
      task = command;
      break;
    }
    case 'sleep': {
      const f = fields(value, path, ['type', 'ms'], issues);
      task = { type, ms: issues.check(() => integer(f.ms, `${path}.ms`, 0, MAX_SLEEP_MS))! };
      break;
    }
    case 'fail': {
      const f = fields(value, path, ['type', 'afterMs', 'message', 'failAttempts'], issues);
      const failing: FailTask = { type, afterMs: issues.check(() => f.afterMs === undefined ? 0 : integer(f.afterMs, `${path}.afterMs`, 0, MAX_SLEEP_MS))! };
      if (f.message !== undefined) issues.check(() => { failing.message = text(f.message, `${path}.message`, MAX_FAIL_MESSAGE_LENGTH); });
      if (f.failAttempts !== undefined) issues.check(() => { failing.failAttempts = integer(f.failAttempts, `${path}.failAttempts`, 0, MAX_ATTEMPTS); });
      task = failing;
      break;
    }
  }
  issues.failIfNew(mark);
  return task;
}

function parseArgv(value: unknown, path: string, issues: Issues): string[] {
  if (!Array.isArray(value) || value.length === 0) fail(`${path} must be a non-empty array of strings (program first), got ${show(value)}`);
  const mark = issues.list.length;
  value.forEach((arg, i) => issues.check(() => {
    const at = `${path}[${i}]`;
    if (typeof arg !== 'string') fail(`${at} must be a string, got ${show(arg)}`);
    if (arg.length > MAX_ARG_LENGTH) fail(`${at} is ${arg.length} characters long; at most ${MAX_ARG_LENGTH} are allowed`);
    if (arg.includes('\0')) fail(`${at} contains a NUL character; remove it`);
  }));
  if (value[0] === '') issues.check(() => fail(`${path}[0] must name the program to run, got ""`));
  issues.failIfNew(mark);
  return [...(value as string[])];
}

function parseEnv(value: unknown, path: string, issues: Issues): Record<string, EnvValue> {
  if (value === undefined) return {};
  if (!isObject(value)) fail(`${path} must be an object of NAME: "value" strings, got ${show(value)}`);
  const mark = issues.list.length;
  const entries = Object.entries(value).map(([name, v]) => issues.check((): [string, EnvValue] => {
    if (!ENV_NAME.test(name)) fail(`${path} name ${show(name)} is not a valid environment variable name; use letters, digits and "_", not starting with a digit`);
    if (RESERVED_ENV_NAMES.includes(name)) fail(`${path}.${name} is set by the TaskManager itself (${RESERVED_ENV_NAMES.join(', ')}); remove it or rename it`);
    if (isObject(v)) return [name, parseSecretRef(v, `${path}.${name}`)];
    if (typeof v !== 'string') fail(`${path}.${name} must be a string, got ${show(v)}; or a secret: {"fromFile": "/run/secrets/NAME"} or {"fromEnv": "${SECRET_ENV_PREFIX}NAME"}`);
    if (v.length > MAX_ENV_VALUE_LENGTH) fail(`${path}.${name} is ${v.length} characters long; at most ${MAX_ENV_VALUE_LENGTH} are allowed`);
    if (v.includes('\0')) fail(`${path}.${name} contains a NUL character; remove it`);
    return [name, v];
  }));
  issues.failIfNew(mark);
  // fromEntries defines own properties, so a "__proto__" name stays data instead of changing the prototype.
  return Object.fromEntries(entries as [string, EnvValue][]);
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

/**
 * Validates a job's restart strategy (Flink's names); `path` prefixes every message. Delays take
 * milliseconds (`delayMs: 1000`) or, like the configuration, a duration (`delay: "1 s"`); the result
 * always carries the `…Ms` fields. Throws ValidationError listing every problem.
 */
export function parseRestartStrategy(value: unknown, path = 'restartStrategy'): RestartStrategyConfig {
  const issues = new Issues();
  const strategy = issues.check(() => parseStrategy(value, path, issues));
  if (issues.list.length > 0 || strategy === undefined) throw new JobGraphValidationError(issues.list);
  return strategy;
}

function parseStrategy(value: unknown, path: string, issues: Issues): RestartStrategyConfig {
  const type = typeOf(value, path, RESTART_TYPES);
  const mark = issues.list.length;
  const at = (field: string): string => `${path}.${field}`;
  const int = (f: Fields, field: string, min: number, max: number): number => issues.check(() => integer(f[field], at(field), min, max))!;
  /** `<name>Ms` (ms) or `<name>` (a duration such as "1 s", or a number of ms), not both. */
  const ms = (f: Fields, name: string, min: number, optional = false): number | undefined => issues.check(() => {
    const msField = `${name}Ms`;
    if (f[msField] !== undefined && f[name] !== undefined) fail(`${at(name)} and ${at(msField)} say the same thing; give one of them`);
    if (f[name] === undefined) return optional && f[msField] === undefined ? undefined : integer(f[msField], at(msField), min, MAX_TIMER_MS);
    const parsed = parseDurationMs(f[name]);
    if (parsed === undefined || parsed < min || parsed > MAX_TIMER_MS) {
      fail(`${at(name)} must be a duration such as ${DURATION_EXAMPLES} (or a number of ms) between ${min} ms and ${MAX_TIMER_MS} ms, got ${show(f[name])}`);
    }
    return parsed;
  });
  let strategy: RestartStrategyConfig;
  switch (type) {
    case 'none':
      fields(value, path, ['type'], issues);
      strategy = { type };
      break;
    case 'fixed-delay': {
      const f = fields(value, path, ['type', 'attempts', 'delayMs', 'delay'], issues);
      strategy = { type, attempts: int(f, 'attempts', 0, MAX_ATTEMPTS), delayMs: ms(f, 'delay', 0)! };
      break;
    }
    case 'exponential-delay': {
      const f = fields(value, path, ['type', 'initialBackoffMs', 'initialBackoff', 'maxBackoffMs', 'maxBackoff', 'backoffMultiplier', 'attempts'], issues);
      const initialBackoffMs = ms(f, 'initialBackoff', 1)!;
      const maxBackoffMs = ms(f, 'maxBackoff', initialBackoffMs ?? 1)!;
      const exponential: RestartStrategyConfig = {
        type, initialBackoffMs, maxBackoffMs,
        backoffMultiplier: issues.check(() => multiplier(f.backoffMultiplier, at('backoffMultiplier')))!,
      };
      if (f.attempts !== undefined) exponential.attempts = int(f, 'attempts', 0, MAX_ATTEMPTS);
      strategy = exponential;
      break;
    }
    case 'failure-rate': {
      const f = fields(value, path, ['type', 'maxFailuresPerInterval', 'failureRateIntervalMs', 'failureRateInterval', 'delayMs', 'delay'], issues);
      strategy = {
        type,
        maxFailuresPerInterval: int(f, 'maxFailuresPerInterval', 1, MAX_ATTEMPTS),
        failureRateIntervalMs: ms(f, 'failureRateInterval', 1)!,
        delayMs: ms(f, 'delay', 0)!,
      };
      break;
    }
  }
  issues.failIfNew(mark);
  return strategy;
}

function fail(message: string): never {
  throw new Issue(message);
}

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The object's fields. Unknown ones are recorded as problems (a misspelt field must not be silently ignored)
 * while the known ones are still checked.
 */
function fields(value: unknown, path: string, allowed: readonly string[], issues: Issues): Fields {
  if (!isObject(value)) fail(`${path} must be a JSON object, got ${show(value)}`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) issues.check(() => fail(`${path} has unknown field ${show(key)}; allowed fields: ${allowed.join(', ')}`));
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
