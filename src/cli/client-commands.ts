import { readFileSync } from 'node:fs';
import { isTerminalJobStatus } from '../jobgraph/status';
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CliError, EXIT, RestClient, type RestResponse } from '../client/rest-client';
import { isJobId } from '../jobgraph';
import { cell, formatDuration, formatKeyValues, formatTable, formatTime } from './format';

export { CliError, EXIT, type ExitCode } from '../client/rest-client';

export interface ClientIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Defaults to process.env; tests pass their own so HA_DISPATCHER_URL on the host cannot leak in. */
  env?: Record<string, string | undefined>;
  /** Read by `submit -`; defaults to process.stdin. */
  stdin?: AsyncIterable<string | Buffer>;
}

export const CLIENT_VERBS = ['submit', 'list', 'status', 'cancel', 'leader', 'overview'] as const;
export const DEFAULT_URL = 'http://127.0.0.1:8081';

const COMMON_USAGE = '[--url URL] [--token-file FILE] [--ca-file FILE] [--json] [--timeout MS]';
const USAGE: Record<string, string> = {
  submit: `submit FILE|- [--wait] [--wait-timeout MS] ${COMMON_USAGE}`,
  list: `list ${COMMON_USAGE}`,
  status: `status JOBID ${COMMON_USAGE}`,
  cancel: `cancel JOBID ${COMMON_USAGE}`,
  leader: `leader ${COMMON_USAGE}`,
  overview: `overview ${COMMON_USAGE}`,
};
const POSITIONALS: Record<string, number> = { submit: 1, list: 0, status: 1, cancel: 1, leader: 0, overview: 0 };

const POLL_MIN_MS = 100;
const POLL_MAX_MS = 1_000;

interface Ctx {
  client: RestClient;
  json: boolean;
  io: ClientIo;
}

interface Options {
  url?: string;
  'token-file'?: string;
  'ca-file'?: string;
  json?: boolean;
  timeout?: string;
  help?: boolean;
  wait?: boolean;
  'wait-timeout'?: string;
}

/**
 * Runs one client verb and resolves with the process exit code (see EXIT). Failures are reported on stderr; with
 * --json stdout still carries exactly one JSON document, `{"errors": [...], "exitCode": n}` on failure.
 */
export async function runClientCommand(verb: string, argv: string[], io: ClientIo): Promise<number> {
  const json = argv.includes('--json');
  try {
    return await run(verb, argv, io);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    io.stderr(`error: ${err.message}\n` + err.errors.map((m) => `  ${m}\n`).join(''));
    if (err.exitCode === EXIT.USAGE && USAGE[verb]) io.stderr(`usage: ha-dispatcher ${USAGE[verb]}\n`);
    if (json) {
      const doc = { errors: err.errors.length ? err.errors : [err.message], message: err.message, exitCode: err.exitCode,
        status: err.status, url: err.url };
      io.stdout(JSON.stringify(doc) + '\n');
    }
    return err.exitCode;
  }
}

async function run(verb: string, argv: string[], io: ClientIo): Promise<number> {
  if (!(CLIENT_VERBS as readonly string[]).includes(verb)) {
    throw new CliError(EXIT.USAGE, `unknown command "${verb}"; expected one of ${CLIENT_VERBS.join(', ')}`);
  }
  const { values, positionals } = parse(verb, argv);
  if (values.help) {
    io.stdout(`usage: ha-dispatcher ${USAGE[verb]}\n`);
    return EXIT.OK;
  }
  if (positionals.length !== POSITIONALS[verb]) {
    throw new CliError(EXIT.USAGE, `${verb} takes ${POSITIONALS[verb] || 'no'} argument(s), got ${positionals.length}`);
  }
  const env = io.env ?? process.env;
  const client = new RestClient({
    url: values.url ?? env.HA_DISPATCHER_URL ?? DEFAULT_URL,
    deadlineMs: positiveMs('--timeout', values.timeout),
    token: restToken(values['token-file'], env),
    tls: trustedCa(values['ca-file'], env),
  });
  const ctx: Ctx = { client, json: values.json ?? false, io };
  switch (verb) {
    case 'submit': return submit(ctx, positionals[0], values);
    case 'list': return list(ctx);
    case 'status': return status(ctx, jobIdArg(positionals[0]));
    case 'cancel': return cancel(ctx, jobIdArg(positionals[0]));
    case 'leader': return leader(ctx);
    default: return overview(ctx);
  }
}

function parse(verb: string, argv: string[]): { values: Options; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        'token-file': { type: 'string' },
        'ca-file': { type: 'string' },
        json: { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...(verb === 'submit' ? { wait: { type: 'boolean' }, 'wait-timeout': { type: 'string' } } as const : {}),
      },
    });
    if (values['wait-timeout'] !== undefined && !values.wait) throw new Error('--wait-timeout needs --wait');
    return { values: values as Options, positionals };
  } catch (err) {
    throw new CliError(EXIT.USAGE, (err as Error).message);
  }
}

/** security.rest.token for a secured cluster: --token-file, else $HA_DISPATCHER_TOKEN_FILE, else $HA_DISPATCHER_TOKEN. */
function restToken(file: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const path = file ?? env.HA_DISPATCHER_TOKEN_FILE;
  if (path === undefined) return env.HA_DISPATCHER_TOKEN || undefined;
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token === '') throw new Error('the file is empty');
    return token;
  } catch (err) {
    throw new CliError(EXIT.USAGE, `token file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The CA of a cluster with security.ssl.rest.enabled: --ca-file, else $HA_DISPATCHER_CA_FILE; none: the system's CAs. */
function trustedCa(file: string | undefined, env: NodeJS.ProcessEnv): { ca: Buffer } | undefined {
  const path = file ?? (env.HA_DISPATCHER_CA_FILE || undefined);
  if (path === undefined) return undefined;
  try {
    return { ca: readFileSync(path) };
  } catch (err) {
    throw new CliError(EXIT.USAGE, `CA file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function positiveMs(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) <= 0) {
    throw new CliError(EXIT.USAGE, `${name} must be a positive number of milliseconds, got "${value}"`);
  }
  return Number(value);
}

/** Checked locally so a typo never turns into a request (or a confusing 404). */
function jobIdArg(value: string): string {
  if (!isJobId(value)) {
    throw new CliError(EXIT.USAGE, `"${value}" is not a job id; a job id is 32 lowercase hex characters`);
  }
  return value;
}

/** A 2xx body, or the CliError that the status means. */
function expectOk(res: RestResponse, what: string): any {
  if (res.status >= 200 && res.status < 300) return res.body;
  const opts = { errors: res.errors, status: res.status, url: res.url };
  if (res.status === 404) throw new CliError(EXIT.NOT_FOUND, `${what}: not found (404 from ${res.url})`, opts);
  if (res.status >= 400 && res.status < 500) {
    throw new CliError(EXIT.REJECTED, `${what}: rejected by the server (${res.status} from ${res.url})`, opts);
  }
  throw new CliError(EXIT.UNAVAILABLE, `${what}: unexpected answer ${res.status} from ${res.url}`, opts);
}

function unexpected(res: RestResponse, what: string): CliError {
  return new CliError(EXIT.UNAVAILABLE, `${what}: unexpected answer from ${res.url}: ${JSON.stringify(res.body)}`);
}

function printJson(ctx: Ctx, doc: unknown): void {
  ctx.io.stdout(JSON.stringify(doc, null, 2) + '\n');
}

async function submit(ctx: Ctx, file: string, values: Options): Promise<number> {
  let text: string;
  try {
    text = file === '-' ? await readAll(ctx.io.stdin ?? process.stdin) : await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.USAGE, `cannot read ${file}: ${(err as Error).message}`);
  }
  let graph: unknown;
  try {
    graph = JSON.parse(text);
  } catch (err) {
    throw new CliError(EXIT.USAGE, `${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (graph === null || typeof graph !== 'object' || Array.isArray(graph)) {
    throw new CliError(EXIT.USAGE, `${file} must hold a JobGraph JSON object`);
  }
  const res = await ctx.client.request('POST', '/jobs', graph);
  const accepted = expectOk(res, 'submit');
  const jobid = accepted?.jobid;
  if (typeof jobid !== 'string' || !isJobId(jobid)) throw unexpected(res, 'submit');
  if (!values.wait) {
    if (ctx.json) printJson(ctx, accepted);
    else ctx.io.stdout(`${jobid}\n`);
    return EXIT.OK;
  }
  if (!ctx.json) ctx.io.stdout(`${jobid}\n`);
  const detail = await waitForTerminal(ctx, jobid, positiveMs('--wait-timeout', values['wait-timeout']));
  if (ctx.json) printJson(ctx, detail);
  if (detail.state === 'FINISHED') return EXIT.OK;
  ctx.io.stderr(`job ${jobid} ended ${detail.state}\n`);
  return EXIT.JOB_FAILED;
}

/** Polls the job until it is terminal, printing each state it is seen in (not every transition: polling samples). */
async function waitForTerminal(ctx: Ctx, jobid: string, waitTimeoutMs: number | undefined): Promise<any> {
  const until = waitTimeoutMs === undefined ? Infinity : Date.now() + waitTimeoutMs;
  let interval = POLL_MIN_MS;
  let last: string | undefined;
  for (;;) {
    const res = await ctx.client.request('GET', `/jobs/${jobid}`);
    const detail = expectOk(res, `job ${jobid}`);
    const state = detail?.state;
    if (typeof state !== 'string') throw unexpected(res, `job ${jobid}`);
    if (state !== last && !ctx.json) ctx.io.stdout(`${formatTime(Date.now())}  ${state}\n`);
    last = state;
    if (isTerminalJobStatus(state)) return detail;
    const left = until - Date.now();
    if (left <= 0) {
      throw new CliError(EXIT.UNAVAILABLE, `job ${jobid} still ${state} after ${waitTimeoutMs} ms (--wait-timeout); it keeps running`);
    }
    await delay(Math.min(interval, left));
    interval = Math.min(interval * 2, POLL_MAX_MS);
  }
}

async function list(ctx: Ctx): Promise<number> {
  const res = await ctx.client.request('GET', '/jobs/overview');
  const body = expectOk(res, 'list');
  if (!Array.isArray(body?.jobs)) throw unexpected(res, 'list');
  if (ctx.json) {
    printJson(ctx, body);
    return EXIT.OK;
  }
  const rows = body.jobs.map((j: any) =>
    [cell(j.jid), cell(j.name), cell(j.state), formatTime(j['start-time']), formatDuration(j.duration)]);
  ctx.io.stdout(formatTable(['JOB ID', 'NAME', 'STATE', 'START', 'DURATION'], rows));
  return EXIT.OK;
}

async function status(ctx: Ctx, jobid: string): Promise<number> {
  const res = await ctx.client.request('GET', `/jobs/${jobid}`);
  const job = expectOk(res, `job ${jobid}`);
  if (job === null || typeof job !== 'object') throw unexpected(res, `job ${jobid}`);
  if (ctx.json) {
    printJson(ctx, job);
    return EXIT.OK;
  }
  let out = formatKeyValues([
    ['Job ID', cell(job.jid)],
    ['Name', cell(job.name)],
    ['State', cell(job.state)],
    ['Start', formatTime(job['start-time'])],
    ['End', formatTime(job['end-time'])],
    ['Duration', formatDuration(job.duration)],
  ]);
  const vertices: any[] = Array.isArray(job.vertices) ? job.vertices : [];
  if (vertices.length > 0) {
    const rows = vertices.map((v) => [cell(v.name ?? v.id), cell(v.parallelism), cell(v.status ?? v.state), taskCounts(v)]);
    out += '\n' + formatTable(['VERTEX', 'PARALLELISM', 'STATUS', 'TASKS'], rows);
  }
  ctx.io.stdout(out);
  return EXIT.OK;
}

/** `RUNNING=2 FINISHED=1`, from Flink's per-state counts (`tasks: {STATE: n}`) or a list of subtasks. */
export function taskCounts(vertex: any): string {
  const counts = new Map<string, number>();
  const subtasks = Array.isArray(vertex?.subtasks) ? vertex.subtasks : Array.isArray(vertex?.tasks) ? vertex.tasks : undefined;
  if (subtasks) {
    for (const t of subtasks) {
      const s = String(t?.status ?? t?.state ?? 'UNKNOWN');
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
  } else if (vertex?.tasks && typeof vertex.tasks === 'object') {
    for (const [s, n] of Object.entries(vertex.tasks)) if (typeof n === 'number' && n > 0) counts.set(s, n);
  }
  return counts.size ? [...counts].map(([s, n]) => `${s}=${n}`).join(' ') : '-';
}

async function cancel(ctx: Ctx, jobid: string): Promise<number> {
  const res = await ctx.client.request('PATCH', `/jobs/${jobid}?mode=cancel`);
  const body = expectOk(res, `cancel job ${jobid}`);
  if (ctx.json) printJson(ctx, body !== null && typeof body === 'object' ? body : { jobid, status: res.status });
  else ctx.io.stdout(`cancellation of job ${jobid} requested\n`);
  return EXIT.OK;
}

async function leader(ctx: Ctx): Promise<number> {
  const res = await ctx.client.request('GET', '/leader');
  const body = expectOk(res, 'leader');
  if (body === null || typeof body !== 'object') throw unexpected(res, 'leader');
  if (ctx.json) {
    printJson(ctx, body);
    return EXIT.OK;
  }
  const readyAt = typeof body.readyAt === 'number' ? formatTime(body.readyAt) : cell(body.readyAt);
  ctx.io.stdout(formatKeyValues([
    ['replicaId', cell(body.replicaId)],
    ['restUrl', cell(body.restUrl)],
    ['epoch', cell(body.epoch)],
    ['readyAt', readyAt],
  ]));
  return EXIT.OK;
}

const OVERVIEW_KEYS = [
  'taskmanagers', 'slots-total', 'slots-available', 'jobs-running', 'jobs-finished', 'jobs-cancelled', 'jobs-failed', 'version',
];

async function overview(ctx: Ctx): Promise<number> {
  const res = await ctx.client.request('GET', '/overview');
  const body = expectOk(res, 'overview');
  if (body === null || typeof body !== 'object') throw unexpected(res, 'overview');
  if (ctx.json) printJson(ctx, body);
  else ctx.io.stdout(formatKeyValues(OVERVIEW_KEYS.map((k) => [k, cell(body[k])] as const)));
  return EXIT.OK;
}

async function readAll(stream: AsyncIterable<string | Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
