/**
 * The client verbs of `ha-dispatcher` (submit, list, info, status, cancel, leader, overview, logs, exceptions,
 * validate): commander commands over the cluster's REST client. Where they fit, they keep Flink's CLI habits
 * (`flink list -r/-s/-a`, `flink info`, `-m host:port`, `submit -d`). Exit codes: see EXIT in src/client/rest-client.ts.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { isTerminalJobStatus } from '../jobgraph/status';
import { CliError, EXIT, RestClient, type RestResponse } from '../client/rest-client';
import { restToken, trustedCa } from '../client/credentials';
import { generateJobId, isJobId, parseJobGraph } from '../jobgraph';
import { JobGraphValidationError } from '../jobgraph/parse';
import { cell, formatDuration, formatKeyValues, formatTable, formatTime } from './format';
import { JsonSyntaxError, parseJsonText } from './json-text';
import { type CliIo, type Done, type Outcome, newProgram, positiveInt, runProgram, subcommand } from './program';
import { VERSION } from '../version';

export { CliError, EXIT, type ExitCode } from '../client/rest-client';

export type ClientIo = CliIo;

export const CLIENT_VERBS = ['submit', 'list', 'info', 'status', 'cancel', 'leader', 'overview', 'logs', 'exceptions', 'validate'] as const;
export const DEFAULT_URL = 'http://127.0.0.1:8081';
/**
 * Without --timeout, a request gives up after this long (ms) when no replica accepts a connection at all, so
 * a missing cluster or a wrong --url fails fast; a cluster that answers (e.g. 503 during a failover) gets
 * the full deadline.
 */
export const DEFAULT_UNREACHABLE_BUDGET_MS = 1_500;

const POLL_MIN_MS = 100;
const POLL_MAX_MS = 1_000;
const FOLLOW_INTERVAL_MS = 1_000;

interface Ctx {
  client: RestClient;
  json: boolean;
  io: ClientIo;
}

interface CommonOptions {
  url?: string;
  jobmanager?: string;
  tokenFile?: string;
  caFile?: string;
  json?: boolean;
  timeout?: number;
}

/**
 * Runs one client verb and resolves with the process exit code (see EXIT). Failures are reported on stderr; with
 * --json stdout still carries exactly one JSON document, `{"errors": [...], "exitCode": n}` on failure.
 */
export async function runClientCommand(verb: string, argv: string[], io: ClientIo): Promise<number> {
  const outcome: { value: Outcome } = { value: EXIT.OK };
  const program = newProgram(io, 'ha-dispatcher client verbs', VERSION);
  addClientCommands(program, io, (o) => { outcome.value = o; });
  return (await runProgram(program, [verb, ...argv], io, outcome)) ?? EXIT.OK;
}

/** The options every verb that talks to the cluster takes. */
function withConnection(command: Command): Command {
  return command
    .option('--url <urls>', `replica REST URLs, comma-separated; the next is tried when one is unreachable (default: $HA_DISPATCHER_URL, else ${DEFAULT_URL})`)
    .option('-m, --jobmanager <host:port>', 'Flink\'s spelling of --url: replica addresses, comma-separated; http:// is assumed without a scheme')
    .option('--token-file <file>', 'file holding security.rest.token (default: $HA_DISPATCHER_TOKEN_FILE, else $HA_DISPATCHER_TOKEN)')
    .option('--ca-file <file>', 'PEM CA certificate to trust for https replicas (default: $HA_DISPATCHER_CA_FILE, else the system CAs)')
    .option('--json', 'print the answer as JSON (on failure: {"errors": [...], "exitCode": n})')
    .option('--timeout <ms>', `give up after this many ms (default 30000; ${DEFAULT_UNREACHABLE_BUDGET_MS} when no replica is reachable at all)`, positiveInt('--timeout'));
}

/** Adds every client verb to `program`; each action records its exit code through `done`. */
export function addClientCommands(program: Command, io: ClientIo, done: Done): void {
  const verb = (nameAndArgs: string, description: string): Command =>
    withConnection(subcommand(program, nameAndArgs, io).description(description));
  const run = (action: (ctx: Ctx, ...args: any[]) => Promise<number>) => async (...args: any[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    done(await action(context(command.opts<CommonOptions>(), io), ...args.slice(0, -2), command.opts()));
  };

  verb('submit <file>', 'submit a job file ("-": read stdin); prints the job id')
    .option('-d, --detached', 'return once the job is accepted (the default; Flink\'s flag, accepted for scripts)')
    .option('--wait', 'follow the job until it ends; exit 0 when it FINISHED, 1 when it FAILED (root cause on stderr) or was CANCELED')
    .option('--wait-timeout <ms>', 'with --wait: give up waiting after this many ms (exit 5; the job keeps running)', positiveInt('--wait-timeout'))
    .addHelpText('after', `
The file holds one JobGraph (see README "Job files" and examples/). Without "jobId" the CLI
generates one before sending, so a retried submission is idempotent. Check a file offline with
"ha-dispatcher validate FILE".`)
    .action(run((ctx, file: string, options) => submit(ctx, file, options)));
  verb('list', 'list running and scheduled jobs (id, name, state, start, duration); -a for all')
    .option('-r, --running', `running jobs (${[...RUNNING_STATES].join(', ')})`)
    .option('-s, --scheduled', `jobs not running yet (${[...SCHEDULED_STATES].join(', ')})`)
    .option('-a, --all', 'every job, including FINISHED, FAILED and CANCELED ones')
    .addHelpText('after', `
Without -r, -s or -a: running and scheduled jobs, as "flink list". -r and -s together list both.
REST: GET /jobs/overview (filtered here; --json prints {"jobs": [...]} with the same filter).`)
    .action(run((ctx, options) => list(ctx, options)));
  verb('info <jobid>', "show a job's plan: its vertices, parallelism and inputs (REST: GET /jobs/JOBID/plan)")
    .action(run((ctx, jobid: string) => info(ctx, jobIdArg(jobid))));
  verb('status <jobid>', 'show a job and its vertices').action(run((ctx, jobid: string) => status(ctx, jobIdArg(jobid))));
  verb('cancel <jobid>', 'cancel a job; a job already CANCELED is no error').action(run((ctx, jobid: string) => cancel(ctx, jobIdArg(jobid))));
  verb('leader', 'show the leader replica').action(run((ctx) => leader(ctx)));
  verb('overview', 'show cluster totals: TaskManagers, slots, jobs by outcome').action(run((ctx) => overview(ctx)));
  verb('logs <jobid> [vertex] [subtask]', "print task logs: every subtask's current attempt, or one vertex's, or one subtask's")
    .addOption(new Option('--attempt <n>', 'with VERTEX and SUBTASK: that attempt (0-based) instead of the current one').argParser(nonNegativeInt('--attempt')))
    .option('-f, --follow', 'keep printing what the logs gain until the job ends')
    .addHelpText('after', `
REST: GET /jobs/JOBID/vertices/VERTEX/subtasks/SUBTASK/attempts/ATTEMPT/log (text/plain).`)
    .action(run((ctx, jobid: string, vertex: string | undefined, subtask: string | undefined, options) =>
      logs(ctx, jobIdArg(jobid), vertex, subtask, options)));
  verb('exceptions <jobid>', "show a job's failures, oldest first (REST: GET /jobs/JOBID/exceptions)")
    .action(run((ctx, jobid: string) => exceptions(ctx, jobIdArg(jobid))));
  subcommand(program, 'validate <file>', io)
    .description('check a job file offline, as the cluster would: every problem at once, each with its JSON path')
    .option('--json', 'print {"valid": bool, "errors": [...]}')
    .option('--max-parallelism <n>', "the cluster's dispatcher.max-parallelism", positiveInt('--max-parallelism'), 1024)
    .action(async (file: string, options: { json?: boolean; maxParallelism: number }) => {
      done(await validate(io, file, options));
    });
}

function context(options: CommonOptions, io: ClientIo): Ctx {
  const env = io.env ?? process.env;
  if (options.url !== undefined && options.jobmanager !== undefined) {
    throw new CliError(EXIT.USAGE, '-m/--jobmanager and --url name the same thing; give one of them');
  }
  const given = options.url ?? options.jobmanager;
  const client = new RestClient({
    url: given !== undefined ? withHttpScheme(given) : env.HA_DISPATCHER_URL ?? DEFAULT_URL,
    deadlineMs: options.timeout,
    unreachableBudgetMs: Math.min(options.timeout ?? Infinity, DEFAULT_UNREACHABLE_BUDGET_MS),
    token: restToken(options.tokenFile, env),
    tls: trustedCa(options.caFile, env),
    fetchImpl: io.fetchImpl,
  });
  return { client, json: options.json ?? false, io };
}

/**
 * `host:port` entries of a comma-separated address list get `http://` (as Flink's `-m host:port`); entries
 * with a scheme are left for the REST client to check, so `ftp://…` stays a usage error.
 */
export function withHttpScheme(urls: string): string {
  return urls.split(',').map((u) => u.trim()).map((u) => (u === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(u) ? u : `http://${u}`)).join(',');
}

function nonNegativeInt(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value)) throw new CliError(EXIT.USAGE, `${name} must be a non-negative integer, got "${value}"`);
    return Number(value);
  };
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

/** The job file as a JSON object; a syntax error is reported by line and column. Throws CliError (USAGE). */
async function readJobFile(io: ClientIo, file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? await readAll(io.stdin ?? process.stdin) : await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.USAGE, `cannot read ${file}: ${(err as Error).message}`);
  }
  let graph: unknown;
  try {
    graph = parseJsonText(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    throw new CliError(EXIT.USAGE, `${file === '-' ? 'stdin' : file} is not valid JSON: ${err.message}`);
  }
  if (graph === null || typeof graph !== 'object' || Array.isArray(graph)) {
    throw new CliError(EXIT.USAGE, `${file} must hold a JobGraph JSON object`);
  }
  return graph as Record<string, unknown>;
}

async function submit(ctx: Ctx, file: string, values: { wait?: boolean; waitTimeout?: number; detached?: boolean }): Promise<number> {
  if (values.waitTimeout !== undefined && !values.wait) throw new CliError(EXIT.USAGE, '--wait-timeout needs --wait');
  if (values.detached && values.wait) throw new CliError(EXIT.USAGE, '--detached and --wait exclude each other');
  const graph = await readJobFile(ctx.io, file);
  // The id is fixed before the first attempt: a retry after a lost answer resubmits the same job, not a second one.
  if (graph.jobId === undefined) graph.jobId = generateJobId();
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
  const detail = await waitForTerminal(ctx, jobid, values.waitTimeout);
  if (ctx.json) printJson(ctx, detail);
  if (detail.state === 'FINISHED') return EXIT.OK;
  ctx.io.stderr(`job ${jobid} ended ${detail.state}\n`);
  if (detail.state === 'FAILED') {
    const cause = await rootCause(ctx, jobid);
    if (cause !== undefined) ctx.io.stderr(`root cause:\n${cause.trimEnd().replace(/^/gm, '    ')}\n`);
  }
  return EXIT.JOB_FAILED;
}

/**
 * Why a FAILED job failed: `root-exception` of GET /jobs/:id/exceptions, else the `failure-cause` of
 * GET /jobs/:id/execution-result; undefined when neither says (or cannot be read: the exit code is what counts).
 */
async function rootCause(ctx: Ctx, jobid: string): Promise<string | undefined> {
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
  const get = async (path: string): Promise<any> => {
    try {
      const res = await ctx.client.request('GET', path);
      return res.status >= 200 && res.status < 300 ? res.body : undefined;
    } catch (err) {
      if (err instanceof CliError) return undefined;
      throw err;
    }
  };
  const exceptions = await get(`/jobs/${jobid}/exceptions`);
  const fromHistory = text(exceptions?.['root-exception']);
  if (fromHistory !== undefined) return fromHistory;
  const failure = (await get(`/jobs/${jobid}/execution-result`))?.['job-execution-result']?.['failure-cause'];
  return text(failure?.['stack-trace']) ?? text(failure?.message);
}

/** Offline: the product's own parser, so what passes here passes the cluster (given the same max parallelism). */
async function validate(io: ClientIo, file: string, options: { json?: boolean; maxParallelism: number }): Promise<number> {
  let errors: string[] = [];
  try {
    parseJobGraph(await readJobFile(io, file), { maxParallelism: options.maxParallelism });
  } catch (err) {
    if (err instanceof JobGraphValidationError) errors = err.issues;
    else if (err instanceof CliError && !options.json) throw err;
    else if (err instanceof CliError) errors = [err.message];
    else throw err;
  }
  if (options.json) io.stdout(JSON.stringify({ valid: errors.length === 0, errors }) + '\n');
  else if (errors.length === 0) io.stdout(`${file}: valid\n`);
  else io.stderr(`${file}: ${errors.length} problem${errors.length === 1 ? '' : 's'}\n${errors.map((e) => `  ${e}\n`).join('')}`);
  return errors.length === 0 ? EXIT.OK : EXIT.REJECTED;
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

/** `list -r`: jobs whose JobMaster is executing or winding them down (Flink lists these as "Running/Restarting"). */
export const RUNNING_STATES: ReadonlySet<string> = new Set(['RUNNING', 'RESTARTING', 'FAILING', 'CANCELLING']);
/** `list -s`: jobs accepted but not running yet, including a recovered one waiting for its TaskManagers or a new leader. */
export const SCHEDULED_STATES: ReadonlySet<string> = new Set(['INITIALIZING', 'CREATED', 'RECONCILING', 'SUSPENDED']);

interface ListOptions {
  running?: boolean;
  scheduled?: boolean;
  all?: boolean;
}

/** Whether `list` with these flags shows a job in `state`: -a everything, -r/-s their sets, neither both sets. */
export function listed(state: unknown, options: ListOptions): boolean {
  if (options.all) return true;
  if (typeof state !== 'string') return false;
  const running = options.running || !options.scheduled;
  const scheduled = options.scheduled || !options.running;
  return (running && RUNNING_STATES.has(state)) || (scheduled && SCHEDULED_STATES.has(state));
}

async function list(ctx: Ctx, options: ListOptions): Promise<number> {
  const res = await ctx.client.request('GET', '/jobs/overview');
  const body = expectOk(res, 'list');
  if (!Array.isArray(body?.jobs)) throw unexpected(res, 'list');
  const jobs = body.jobs.filter((j: any) => listed(j?.state, options));
  if (ctx.json) {
    printJson(ctx, { ...body, jobs });
    return EXIT.OK;
  }
  // PRIORITY only when the cluster reports priorities (replicas before them do not).
  const priorities = jobs.some((j: any) => typeof j.priority === 'number');
  const rows = jobs.map((j: any) => {
    const row = [cell(j.jid), cell(j.name), cell(j.state), formatTime(j['start-time']), formatDuration(j.duration)];
    return priorities ? [...row, priorityCell(j)] : row;
  });
  ctx.io.stdout(formatTable(['JOB ID', 'NAME', 'STATE', 'START', 'DURATION', ...(priorities ? ['PRIORITY'] : [])], rows));
  return EXIT.OK;
}

/** `urgent (100)`, or the bare number when it is no class, or `-`. */
function priorityCell(job: any): string {
  if (typeof job.priority !== 'number') return '-';
  return typeof job['priority-class'] === 'string' ? `${cell(job['priority-class'])} (${job.priority})` : String(job.priority);
}

/** `flink info`'s counterpart: the job's plan (GET /jobs/:id/plan → `{plan}`); --json prints the plan object. */
async function info(ctx: Ctx, jobid: string): Promise<number> {
  const res = await ctx.client.request('GET', `/jobs/${jobid}/plan`);
  const plan = expectOk(res, `plan of job ${jobid}`)?.plan;
  if (plan === null || typeof plan !== 'object' || !Array.isArray(plan.nodes)) throw unexpected(res, `plan of job ${jobid}`);
  if (ctx.json) {
    printJson(ctx, plan);
    return EXIT.OK;
  }
  const nodes: any[] = plan.nodes;
  // Inputs name Flink vertex ids; show the vertices' names as the rows do.
  const nameOf = new Map(nodes.map((n) => [n.id, cell(n.description ?? n.id)]));
  const rows = nodes.map((n) => [
    cell(n.description ?? n.id), cell(n.id), cell(n.parallelism),
    Array.isArray(n.inputs) && n.inputs.length > 0 ? n.inputs.map((i: any) => nameOf.get(i?.id) ?? cell(i?.id)).join(',') : '-',
  ]);
  ctx.io.stdout(formatKeyValues([['Job ID', cell(plan.jid)], ['Name', cell(plan.name)], ['Type', cell(plan.type)]])
    + '\n' + formatTable(['VERTEX', 'ID', 'PARALLELISM', 'INPUTS'], rows));
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

/**
 * Idempotent: the cluster answers 202 for a job already CANCELED; a 409 (a server that refuses instead) is
 * checked against the job's state, and CANCELED still exits 0. FINISHED or FAILED stays a rejection (exit 3).
 */
async function cancel(ctx: Ctx, jobid: string): Promise<number> {
  const res = await ctx.client.request('PATCH', `/jobs/${jobid}?mode=cancel`);
  if (res.status === 409 && (await jobState(ctx, jobid)) === 'CANCELED') {
    if (ctx.json) printJson(ctx, { jobid, state: 'CANCELED' });
    else ctx.io.stdout(`job ${jobid} is already CANCELED\n`);
    return EXIT.OK;
  }
  const body = expectOk(res, `cancel job ${jobid}`);
  if (ctx.json) printJson(ctx, body !== null && typeof body === 'object' ? body : { jobid, status: res.status });
  else ctx.io.stdout(`cancellation of job ${jobid} requested\n`);
  return EXIT.OK;
}

/** The job's state, or undefined when it cannot be read (the caller reports its own failure then). */
async function jobState(ctx: Ctx, jobid: string): Promise<string | undefined> {
  try {
    const res = await ctx.client.request('GET', `/jobs/${jobid}`);
    return res.status === 200 && typeof res.body?.state === 'string' ? res.body.state : undefined;
  } catch (err) {
    if (err instanceof CliError) return undefined;
    throw err;
  }
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

interface LogSource {
  vertex: string;
  subtask: number;
  attempt: number;
  status: string;
}

/**
 * The subtask attempts `logs` prints, from the job's details. A vertex is named by its JobGraph id (the
 * details' `vertexId`) or by Flink's vertex id (`id`); output and requests use the JobGraph id.
 */
function logSources(job: any, vertex: string | undefined, subtask: string | undefined, attempt: number | undefined): LogSource[] {
  const vertices: any[] = Array.isArray(job?.vertices) ? job.vertices : [];
  const graphId = (v: any): string => String(v.vertexId ?? v.id);
  const selected = (v: any): boolean => vertex === undefined || graphId(v) === vertex || v.id === vertex;
  if (vertex !== undefined && !vertices.some(selected)) {
    throw new CliError(EXIT.NOT_FOUND, `job ${job.jid} has no vertex "${vertex}"; its vertices: ${vertices.map(graphId).join(', ')}`);
  }
  const sources: LogSource[] = [];
  for (const v of vertices) {
    if (!selected(v)) continue;
    for (const s of Array.isArray(v.subtasks) ? v.subtasks : []) {
      if (subtask !== undefined && String(s.subtask) !== subtask) continue;
      sources.push({ vertex: graphId(v), subtask: s.subtask, attempt: attempt ?? s.attempt, status: String(s.status) });
    }
  }
  if (subtask !== undefined && sources.length === 0) {
    throw new CliError(EXIT.NOT_FOUND, `vertex "${vertex}" of job ${job.jid} has no subtask ${subtask}`);
  }
  return sources;
}

async function logs(ctx: Ctx, jobid: string, vertex: string | undefined, subtask: string | undefined,
  options: { attempt?: number; follow?: boolean }): Promise<number> {
  if (subtask !== undefined && !/^\d+$/.test(subtask)) throw new CliError(EXIT.USAGE, `SUBTASK must be a subtask index (0, 1, ...), got "${subtask}"`);
  if (options.attempt !== undefined && subtask === undefined) throw new CliError(EXIT.USAGE, '--attempt needs VERTEX and SUBTASK');
  if (ctx.json && options.follow) throw new CliError(EXIT.USAGE, '--follow prints text; leave out --json');
  const printed = new Map<string, number>();
  let lastHeader = '';
  for (;;) {
    const job = expectOk(await ctx.client.request('GET', `/jobs/${jobid}`), `job ${jobid}`);
    const sources = logSources(job, vertex, subtask, options.attempt);
    const texts: Array<LogSource & { log: string | null }> = [];
    for (const src of sources) {
      const path = `/jobs/${jobid}/vertices/${encodeURIComponent(src.vertex)}/subtasks/${src.subtask}/attempts/${src.attempt}/log`;
      const res = await ctx.client.request('GET', path);
      if (res.status === 404) texts.push({ ...src, log: null });
      else texts.push({ ...src, log: String(expectOk(res, `log of ${src.vertex}[${src.subtask}] attempt ${src.attempt}`) ?? '') });
    }
    if (ctx.json) {
      printJson(ctx, { jobid, logs: texts });
      return EXIT.OK;
    }
    for (const t of texts) {
      const key = `${t.vertex}/${t.subtask}/${t.attempt}`;
      const seen = printed.get(key) ?? 0;
      const text = t.log ?? '';
      if (text.length <= seen && (options.follow || t.log !== null)) continue;
      const header = `==> ${t.vertex}[${t.subtask}] attempt ${t.attempt} (${t.status}) <==`;
      if (header !== lastHeader) ctx.io.stdout(`${lastHeader ? '\n' : ''}${header}\n`);
      lastHeader = header;
      ctx.io.stdout(t.log === null ? '(no log: the attempt has not run yet, or its TaskManager is gone)\n' : text.slice(seen));
      if (text.length > 0 && !text.endsWith('\n')) ctx.io.stdout('\n');
      printed.set(key, text.length);
    }
    if (!options.follow || isTerminalJobStatus(job.state)) return EXIT.OK;
    await delay(FOLLOW_INTERVAL_MS);
  }
}

async function exceptions(ctx: Ctx, jobid: string): Promise<number> {
  const res = await ctx.client.request('GET', `/jobs/${jobid}/exceptions`);
  const body = expectOk(res, `exceptions of job ${jobid}`);
  // Flink's key is `exceptionHistory`; `exception-history` is what earlier versions of the API sent.
  const history = body?.exceptionHistory ?? body?.['exception-history'];
  const entries: any[] = Array.isArray(history?.entries) ? history.entries : [];
  if (ctx.json) {
    printJson(ctx, body);
    return EXIT.OK;
  }
  if (entries.length === 0) {
    ctx.io.stdout(`job ${jobid} has no exceptions\n`);
    return EXIT.OK;
  }
  for (const e of entries) {
    const where = [e.taskName, e.location].filter(Boolean).join(' on ');
    ctx.io.stdout(`${formatTime(e.timestamp)}  ${cell(e.exceptionName)}${where ? `  ${where}` : ''}\n${String(e.stacktrace ?? '').replace(/^/gm, '    ')}\n`);
  }
  return EXIT.OK;
}

async function readAll(stream: AsyncIterable<string | Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
