/**
 * Bad input against a live replica process on a real ensemble.
 *
 * REST fuzz: thousands of seeded requests — random and mutated JobGraphs, malformed JSON, huge and
 * deeply nested bodies, ids with "/", "..", NUL and unicode, wrong content types, header abuse, slow
 * and stalled bodies. Every answer must be the one a local oracle (the product's own validator plus
 * a model of what was stored) predicts, every 4xx must carry a message, the replica must stay up,
 * and ZooKeeper must end holding exactly what the accepted requests stored.
 *
 * The seed is printed; replay a failure with HA_FUZZ_SEED=<seed> (HA_FUZZ_REQUESTS sets the count).
 * Requests are sent one at a time (slow bodies run alongside), so a seed replays the same sequence.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { canonicalJson, isJobId, parseJobGraph } from '../../src/jobgraph';
import { graphDigest } from '../../src/store/jobgraph-store';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { Random, seedFrom } from '../../src/chaos/random';
import { Cluster } from '../helpers/cluster';
import { Answer, call, ManagedProcess } from '../helpers/execution-cluster';
import { freePorts } from '../../src/util/ports';
import { ClusterContext, connectedClient, ensembleHooks, eventually } from '../helpers/ensemble';
import { RawAnswer, RawRequest, rawRequest } from '../helpers/raw-http';

type Context = ClusterContext<Cluster>;
const test = anyTest as TestFn<Context>;

ensembleHooks(test);

const MAX_BODY = 512_000;
const LIMITS = { maxParallelism: 128 };

// ---- the oracle's model of the store ----------------------------------------------------------------

class Model {
  /** jobId → digest of every graph the replica acknowledged. */
  readonly acked = new Map<string, string>();
  readonly canceled = new Set<string>();
  readonly ackedBodies = new Map<string, Record<string, unknown>>();
}

interface FuzzCase {
  kind: string;
  request: RawRequest;
  /** Returns a problem description, or null when the answer is right. */
  check(answer: RawAnswer): string | null;
  /** Updates the model once the answer was judged right. */
  apply?(answer: RawAnswer): void;
}

function errorBodyProblem(answer: RawAnswer): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    return `a ${answer.status} without a JSON body: ${JSON.stringify(answer.body.slice(0, 120))}`;
  }
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || typeof errors[0] !== 'string' || errors[0].length === 0) return `a ${answer.status} without {"errors": ["message"]}: ${answer.body.slice(0, 120)}`;
  return null;
}

/** The answer must have one of `statuses`; any 4xx among them must carry a message. */
function expectStatus(answer: RawAnswer, statuses: number[]): string | null {
  if (!statuses.includes(answer.status)) {
    return `expected ${statuses.join(' or ')}, got ${answer.status || answer.error || 'no answer'} ${JSON.stringify(answer.body.slice(0, 200))}`;
  }
  return answer.status >= 400 ? errorBodyProblem(answer) : null;
}

/** Any 4xx with a message, or one of the given successes. Never a 5xx, never silence. */
function expectRejectedOr(answer: RawAnswer, successes: number[] = []): string | null {
  if (successes.includes(answer.status)) return null;
  if (answer.status < 400 || answer.status >= 500) return `expected a 4xx${successes.length ? ` or ${successes.join('/')}` : ''}, got ${answer.status || answer.error || 'no answer'} ${JSON.stringify(answer.body.slice(0, 200))}`;
  return errorBodyProblem(answer);
}

// ---- generators ---------------------------------------------------------------------------------

const WEIRD_STRINGS = [
  '', ' ', '/', '..', '../..', '/etc/passwd', 'a/b', '\u0000', 'x\u0000y', '\n', '\t', 'ü', '日本語', '😀', '\u202e', '\ud800',
  '%2F', '%00', 'zookeeper', '.', '__proto__', 'constructor', 'A'.repeat(65), 'a'.repeat(4097), '0'.repeat(31), 'F'.repeat(32),
];

function randomJson(r: Random, depth = 0): unknown {
  const kind = r.int(0, depth > 2 ? 4 : 6);
  switch (kind) {
    case 0: return null;
    case 1: return r.pick([0, -1, 1.5, 2 ** 31, -(2 ** 53), 1e308, 128, 129, 4]);
    case 2: return r.pick(WEIRD_STRINGS);
    case 3: return r.chance(0.5);
    case 4: return r.pick(['sleep', 'command', 'fail', 'none', 'fixed-delay', 'v0', 'v1']);
    case 5: return Array.from({ length: r.int(0, 3) }, () => randomJson(r, depth + 1));
    default: return Object.fromEntries(Array.from({ length: r.int(0, 3) }, () => [r.pick(['type', 'id', 'x', '__proto__', 'ms', 'argv']), randomJson(r, depth + 1)]));
  }
}

function validTask(r: Random): Record<string, unknown> {
  return r.weighted<() => Record<string, unknown>>([
    [3, () => ({ type: 'sleep', ms: r.int(0, 5000) })],
    [3, () => ({ type: 'command', argv: ['sh', '-c', 'exit 0'], ...(r.chance(0.5) ? { env: r.pick([{ DAY: '2026-11-20' }, { VALUE: 'ü 😀' }, {}]) } : {}), ...(r.chance(0.3) ? { timeoutMs: r.int(1, 60_000) } : {}) })],
    [1, () => ({ type: 'fail', afterMs: r.int(0, 100), ...(r.chance(0.5) ? { failAttempts: r.int(0, 3) } : {}), ...(r.chance(0.5) ? { message: 'boom ü' } : {}) })],
  ])();
}

function validGraph(r: Random): Record<string, unknown> {
  const n = r.int(1, 4);
  const vertices = Array.from({ length: n }, (_, i) => {
    const earlier = Array.from({ length: i }, (_, j) => `v${j}`);
    const inputs = earlier.filter(() => r.chance(0.4));
    return {
      id: `v${i}`,
      ...(r.chance(0.3) ? { name: r.pick(['Extract', 'Load ü', '日本語 vertex', 'x'.repeat(200)]) } : {}),
      ...(r.chance(0.8) ? { parallelism: r.weighted([[8, r.int(1, 4)], [1, 128]]) } : {}),
      ...(inputs.length ? { inputs } : {}),
      task: validTask(r),
    };
  });
  return {
    ...(r.chance(0.9) ? { jobId: r.hex(32) } : {}),
    ...(r.chance(0.8) ? { name: r.pick(['nightly-etl', 'fuzz', 'ünïcödé 😀', 'n'.repeat(200)]) } : {}),
    vertices,
    ...(r.chance(0.5) ? {
      restartStrategy: r.pick([
        { type: 'none' },
        { type: 'fixed-delay', attempts: 3, delayMs: 1000 },
        { type: 'exponential-delay', initialBackoffMs: 10, maxBackoffMs: 1000, backoffMultiplier: 2 },
        { type: 'failure-rate', maxFailuresPerInterval: 2, failureRateIntervalMs: 1000, delayMs: 0 },
      ]),
    } : {}),
  };
}

/** Applies one random mutation somewhere in a JSON tree (in place). */
function mutate(r: Random, value: Record<string, unknown>): void {
  const containers: Array<Record<string, unknown> | unknown[]> = [];
  const walk = (v: unknown): void => {
    if (v && typeof v === 'object') {
      containers.push(v as Record<string, unknown>);
      for (const child of Object.values(v)) walk(child);
    }
  };
  walk(value);
  const target = r.pick(containers);
  const keys = Object.keys(target);
  const key = keys.length ? r.pick(keys) : '0';
  const op = r.int(0, 9);
  const set = (k: string, v: unknown): void => {
    if (Array.isArray(target)) target[Number(k) || 0] = v;
    else Object.defineProperty(target, k, { value: v, enumerable: true, writable: true, configurable: true });
  };
  switch (op) {
    case 0: if (Array.isArray(target)) target.splice(Number(key), 1); else delete target[key]; break;
    case 1: set(key, randomJson(r)); break;
    case 2: set(r.pick(['extra', '__proto__', 'constructor', 'jobid', 'Vertices', 'type']), randomJson(r)); break;
    case 3: set(key, r.pick(WEIRD_STRINGS)); break;
    case 4: set(key, r.pick([0, -1, 129, 1.5, '2', 2 ** 31, 1e21])); break;
    case 5: { // inputs that make a cycle, point nowhere or at the vertex itself
      const vs = value.vertices as Array<Record<string, unknown>> | undefined;
      const v = Array.isArray(vs) && vs.length ? vs[r.int(0, vs.length - 1)] : null;
      if (v && typeof v === 'object') {
        v.inputs = r.pick([[String(v.id)], ['nowhere'], [`v${(vs as unknown[]).length - 1}`], ['v0', 'v0'], 'v0']);
      }
      break;
    }
    case 6: { // duplicate a vertex
      const vs = value.vertices as unknown[] | undefined;
      if (Array.isArray(vs) && vs.length) vs.push(JSON.parse(JSON.stringify(r.pick(vs))));
      break;
    }
    case 7: value.jobId = r.pick([r.hex(31), r.hex(32).toUpperCase(), `${r.hex(30)}/x`, '../../jobresults', `${r.hex(31)}\u0000`, 12345, `${r.hex(31)}ü`]); break;
    case 8: { // task abuse
      const vs = value.vertices as Array<Record<string, unknown>> | undefined;
      const v = Array.isArray(vs) && vs.length ? vs[r.int(0, vs.length - 1)] : null;
      if (v && typeof v === 'object') {
        v.task = r.pick([
          { type: 'command', argv: [] }, { type: 'command', argv: ['x\u0000'] }, { type: 'command', argv: ['true'], env: { JOB_ID: 'x' } },
          { type: 'command', argv: ['true'], env: { '1BAD': 'x' } }, { type: 'command', argv: ['true'], env: { OK: 1 } },
          { type: 'command', argv: ['true'], timeoutMs: 2 ** 31 }, { type: 'sleep', ms: -1 }, { type: 'sleep' }, { type: 'nope' }, null, 'sleep',
          { type: 'fail', failAttempts: 2 ** 31 },
        ]);
      }
      break;
    }
    default: value.vertices = r.pick([[], {}, null, Array.from({ length: 1001 }, (_, i) => ({ id: `v${i}`, task: { type: 'sleep', ms: 1 } }))]);
  }
}

/** encodeURIComponent, except that a lone surrogate goes out as the raw (invalid) UTF-8 escape. */
function safeEncode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
}

function nested(depth: number): string {
  return `{"name":"deep","vertices":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

class Fuzzer {
  constructor(private readonly r: Random, private readonly model: Model) {}

  next(): FuzzCase {
    const r = this.r;
    return r.weighted<() => FuzzCase>([
      [10, () => this.submit('valid-graph', validGraph(r))],
      [28, () => {
        const g = validGraph(r);
        for (let i = r.int(1, 3); i > 0; i--) mutate(r, g);
        return this.submit('mutated-graph', g);
      }],
      [5, () => this.resubmit()],
      [10, () => this.malformedJson()],
      [7, () => this.contentType()],
      [1, () => this.tooLarge()],
      [2, () => this.submitText('deep-nesting', nested(r.pick([100, 10_000, 200_000])))],
      [14, () => this.pathAbuse()],
      [3, () => this.methodAbuse()],
      [9, () => this.headerAbuse()],
      [3, () => this.queryAbuse()],
      [5, () => this.reads()],
      [2, () => this.cancelKnown()],
      [1, () => this.garbage()],
    ])();
  }

  /** POST /jobs of a JSON value; the oracle is the product's validator plus the model. */
  private submit(kind: string, graph: Record<string, unknown>, contentType = 'application/json'): FuzzCase {
    return this.submitText(kind, JSON.stringify(graph), contentType);
  }

  private submitText(kind: string, text: string, contentType = 'application/json'): FuzzCase {
    const model = this.model;
    const size = Buffer.byteLength(text);
    let expected: number;
    let jobId: string | undefined;
    let digest: string | undefined;
    let parsed: unknown;
    if (size > MAX_BODY) expected = 413;
    else {
      try {
        parsed = Dispatcher.withJobId(JSON.parse(text));
        const graph = parseJobGraph(parsed, LIMITS);
        jobId = graph.jobId;
        digest = graphDigest(canonicalJson(graph));
        const known = model.acked.get(jobId);
        expected = known === undefined || known === digest ? 202 : 409;
      } catch {
        expected = 400;
      }
    }
    const generatedId = parsed && typeof parsed === 'object' && !text.includes('"jobId"');
    return {
      kind,
      request: { method: 'POST', path: '/jobs', headers: [['Content-Type', contentType]], body: text },
      check: (a) => {
        const problem = expectStatus(a, [expected]);
        if (problem || expected !== 202) return problem;
        const body = JSON.parse(a.body) as { jobid?: string; jobUrl?: string };
        if (!isJobId(body.jobid) || body.jobUrl !== `/jobs/${body.jobid}`) return `202 without a job id: ${a.body}`;
        if (!generatedId && body.jobid !== jobId) return `202 for job ${body.jobid}, the graph named ${jobId}`;
        return null;
      },
      apply: (a) => {
        if (a.status !== 202) return;
        const id = (JSON.parse(a.body) as { jobid: string }).jobid;
        // A generated id: the stored graph is the sent one plus that id.
        const stored = parseJobGraph(generatedId ? { ...(parsed as object), jobId: id } : parsed, LIMITS);
        if (!model.acked.has(id)) {
          model.acked.set(id, graphDigest(canonicalJson(stored)));
          model.ackedBodies.set(id, JSON.parse(text) as Record<string, unknown>);
        }
      },
    };
  }

  private resubmit(): FuzzCase {
    const ids = [...this.model.ackedBodies.keys()];
    if (ids.length === 0) return this.submit('valid-graph', validGraph(this.r));
    const id = this.r.pick(ids);
    const body: Record<string, unknown> = { ...this.model.ackedBodies.get(id)!, jobId: id };
    if (this.r.chance(0.5)) return this.submit('resubmit-identical', body);
    body.name = `changed-${this.r.hex(4)}`;
    return this.submit('resubmit-changed', body);
  }

  private malformedJson(): FuzzCase {
    const r = this.r;
    const valid = JSON.stringify(validGraph(r));
    const text = r.pick([
      valid.slice(0, r.int(0, valid.length - 1)), `${valid}}`, `${valid}garbage`, valid.replace(/"/g, "'"), `\ufeff${valid}`,
      '', '   ', 'null', '42', '"string"', '[]', '[{}]', 'true', '{', '{"vertices": [,]}', '{"a":1,}', 'NaN', '{"x": Infinity}',
      '{"name": "\\ud800"}', '{"name": "\\u0000"}', '\u0000', '{"__proto__": {"polluted": true}, "vertices": []}',
    ]);
    const binary = r.chance(0.15) ? Buffer.from(Array.from({ length: r.int(1, 64) }, () => r.int(0, 255))) : null;
    if (binary) {
      let expected = 400;
      try { JSON.parse(binary.toString('utf8')); expected = -1; } catch { /* malformed */ }
      return {
        kind: 'binary-body',
        request: { method: 'POST', path: '/jobs', headers: [['Content-Type', 'application/json']], body: binary },
        check: (a) => (expected === 400 ? expectStatus(a, [400]) : expectRejectedOr(a, [202])),
      };
    }
    return this.submitText('malformed-json', text);
  }

  private contentType(): FuzzCase {
    const r = this.r;
    const type = r.pick([
      'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', '', 'json', 'application/jsonx',
      'APPLICATION/JSON', 'application/json; charset=utf-8', 'application/json;charset=latin1', 'application/vnd.api+json', 'application/merge-patch+json',
      ' application/json ', 'application/json, text/plain', '*/*',
    ]);
    const normalized = type.split(';')[0].trim().toLowerCase();
    const accepted = normalized === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(normalized);
    const graph = validGraph(r);
    if (accepted) return this.submit(`content-type ${JSON.stringify(type)}`, graph, type);
    return {
      kind: `content-type ${JSON.stringify(type)}`,
      request: { method: 'POST', path: '/jobs', headers: type ? [['Content-Type', type]] : [], body: JSON.stringify(graph) },
      check: (a) => expectStatus(a, [415]),
    };
  }

  private tooLarge(): FuzzCase {
    const r = this.r;
    if (r.chance(0.5)) {
      const text = JSON.stringify({ name: 'huge', vertices: [{ id: 'v', task: { type: 'command', argv: ['x'.repeat(MAX_BODY)] } }] });
      return { kind: 'huge-body', request: { method: 'POST', path: '/jobs', headers: [['Content-Type', 'application/json']], body: text }, check: (a) => expectStatus(a, [413]) };
    }
    // A declared length far above the limit, with a small body: refused before reading.
    return {
      kind: 'lying-content-length',
      request: { method: 'POST', path: '/jobs', headers: [['Content-Type', 'application/json'], ['Content-Length', '999999999']], body: '{}', timeoutMs: 5000 },
      check: (a) => expectStatus(a, [413]),
    };
  }

  private pathAbuse(): FuzzCase {
    const r = this.r;
    const known = [...this.model.acked.keys()];
    const idPart = r.weighted<() => string>([
      [5, () => safeEncode(r.pick(WEIRD_STRINGS)) || 'x'],
      [3, () => r.pick(['..', '%2e%2e', '..%2f..%2fjobresults', 'a%2Fb', '%00', '%zz', '%', '%c3%28', '%ff', '%e2%82', 'x%0d%0aSet-Cookie:%20a=b', `${r.hex(32)}%00`])],
      [2, () => r.hex(32)],
      [1, () => r.hex(32).toUpperCase()],
      [2, () => (known.length ? r.pick(known) : r.hex(32))],
    ])();
    const suffix = r.pick(['', '/exceptions', '/execution-result', '/vertices/..%2f/subtasks/0/attempts/0/log', `/vertices/v0/subtasks/${r.pick(['0', '-1', '1e3', 'x', '99999999999999999999'])}/attempts/${r.pick(['0', 'NaN', '-0'])}/log`, '/', '//', '/../..']);
    const base = r.pick(['/jobs/', '/taskmanagers/', '/jobs/', '/jobs/']);
    const method = base === '/jobs/' && suffix === '' && r.chance(0.25) ? 'PATCH' : 'GET';
    const path = `${base}${idPart}${base === '/jobs/' ? suffix : ''}${method === 'PATCH' ? '?mode=cancel' : ''}`;
    const isKnown = known.includes(idPart);
    return {
      kind: `path ${method}`,
      request: { method, path },
      check: (a) => {
        // A known job's views succeed (a PATCH cancels it, or 409 once it has ended); everything else is a 4xx.
        const successes = isKnown ? (method === 'PATCH' ? [202] : [200]) : [];
        // "/jobs/<id>/" is the same route as "/jobs/<id>" (non-strict routing).
        if (isKnown && !['', '/', '/exceptions', '/execution-result'].includes(suffix)) successes.length = 0;
        return expectRejectedOr(a, successes);
      },
      apply: (a) => {
        if (method === 'PATCH' && a.status === 202) this.model.canceled.add(idPart);
      },
    };
  }

  private methodAbuse(): FuzzCase {
    const r = this.r;
    const method = r.pick(['PUT', 'DELETE', 'TRACE', 'FOO', 'CONNECT', 'PROPFIND', 'POST', 'PATCH']);
    const path = r.pick(['/jobs', '/livez', '/health', '/overview', '/leader', '/config', '/metrics', `/jobs/${r.hex(32)}`, '/internal/taskmanagers', '/internal/tasks/status', '/']);
    return {
      kind: `method ${method} ${path.slice(0, 20)}`,
      request: { method, path, ...(method === 'POST' || method === 'PATCH' ? { headers: [['Content-Type', 'application/json']], body: '{}' } : {}) },
      // The TaskManager RPC answers its own 4xx (a standby's 503 would be fine too; this replica leads).
      check: (a) => expectRejectedOr(a),
    };
  }

  private headerAbuse(): FuzzCase {
    const r = this.r;
    const body = JSON.stringify(validGraph(r));
    const post = (headers: Array<[string, string]>, extra: Partial<RawRequest> = {}): RawRequest => ({ method: 'POST', path: '/jobs', headers, body, ...extra });
    const choice = r.int(0, 14);
    const cases: Array<[string, RawRequest]> = [
      ['huge-header', { method: 'GET', path: '/jobs', headers: [['X-Big', 'x'.repeat(r.pick([20_000, 70_000]))]] }],
      ['many-headers', { method: 'GET', path: '/jobs', headers: Array.from({ length: 3000 }, (_, i): [string, string] => [`X-H${i}`, 'v']) }],
      ['bad-header-name', { method: 'GET', path: '/jobs', headers: [['X Bad(', 'v']] }],
      ['nul-in-header', { method: 'GET', path: '/jobs', headers: [['X-Nul', 'a\u0000b']] }],
      ['duplicate-content-length', post([['Content-Type', 'application/json'], ['Content-Length', String(Buffer.byteLength(body))], ['Content-Length', '3']], { noContentLength: true })],
      ['content-length-and-chunked', post([['Content-Type', 'application/json'], ['Content-Length', '5'], ['Transfer-Encoding', 'chunked']], { noContentLength: true })],
      ['content-length-not-a-number', post([['Content-Type', 'application/json'], ['Content-Length', r.pick(['abc', '-1', '1e3', '0x10'])]], { noContentLength: true })],
      ['bad-chunked', post([['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']], { noContentLength: true, body: 'zz\r\nnot hex\r\n' })],
      ['no-host', { raw: Buffer.from('GET /jobs HTTP/1.1\r\nConnection: close\r\n\r\n', 'latin1') }],
      ['bad-version', { raw: Buffer.from(`GET /jobs HTTP/${r.pick(['9.9', '1.x', ''])}\r\nHost: a\r\nConnection: close\r\n\r\n`, 'latin1') }],
      ['nul-in-path', { raw: Buffer.from('GET /jobs/\u0000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 'latin1') }],
      ['utf8-in-path', { raw: Buffer.concat([Buffer.from('GET /jobs/'), Buffer.from('日本😀', 'utf8'), Buffer.from(' HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')]) }],
      ['obs-fold', { raw: Buffer.from('GET /jobs HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\nConnection: close\r\n\r\n', 'latin1') }],
      ['upgrade', { method: 'GET', path: '/jobs', headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13']] }],
      ['bare-lf', { raw: Buffer.from('GET /jobs HTTP/1.1\nHost: a\nConnection: close\n\n', 'latin1') }],
    ];
    const [kind, request] = cases[choice];
    return {
      kind: `header ${kind}`,
      request: { timeoutMs: 5000, ...request },
      // Lenient parsers may accept some of these; then the request is an ordinary one: 200 (GET /jobs) or a job submission.
      check: (a) => expectRejectedOr(a, [200, 202]),
      apply: (a) => {
        if (a.status === 202) {
          const id = (JSON.parse(a.body) as { jobid: string }).jobid;
          const parsed = JSON.parse(body) as Record<string, unknown>;
          if (!this.model.acked.has(id)) {
            this.model.acked.set(id, graphDigest(canonicalJson(parseJobGraph({ ...parsed, jobId: id }, LIMITS))));
            this.model.ackedBodies.set(id, parsed);
          }
        }
      },
    };
  }

  private queryAbuse(): FuzzCase {
    const r = this.r;
    const known = [...this.model.acked.keys()];
    const isKnown = known.length > 0 && r.chance(0.3);
    const target = isKnown ? r.pick(known) : r.hex(32);
    const query = r.pick(['?mode=', '?mode=stop', '?mode=cancel&mode=cancel', '?mode[]=cancel', '?mode=%00', '?mode=%zz', `?${'a=1&'.repeat(2000)}`, '?mode=savepoint', '?MODE=x']);
    // Without a "mode" key the default mode, cancel, applies (Flink's); any other mode is a 400.
    const defaultMode = !/(^|[?&])mode=/.test(query);
    return {
      kind: 'query PATCH',
      request: { method: 'PATCH', path: `/jobs/${target}${query}` },
      check: (a) => (defaultMode
        ? expectStatus(a, isKnown ? (this.model.canceled.has(target) ? [202, 409] : [202]) : [404])
        : expectRejectedOr(a)),
      apply: (a) => {
        if (a.status === 202) this.model.canceled.add(target);
      },
    };
  }

  private reads(): FuzzCase {
    const r = this.r;
    const path = r.pick(['/livez', '/readyz', '/health', '/health?standbyok=true&activecode=999', '/health?activecode=abc', '/leader', '/replicas',
      '/jobs', '/jobs/overview', '/jobs/quarantined', '/overview', '/taskmanagers', '/config', '/', '/metrics']);
    return { kind: `read ${path}`, request: { method: 'GET', path }, check: (a) => expectStatus(a, [200]) };
  }

  private cancelKnown(): FuzzCase {
    const known = [...this.model.acked.keys()];
    if (known.length === 0) return this.reads();
    const id = this.r.pick(known);
    const ended = this.model.canceled.has(id);
    return {
      kind: 'cancel known',
      request: { method: 'PATCH', path: `/jobs/${id}?mode=cancel` },
      // A job whose cancel was accepted earlier may still be stopping (202 again) or already CANCELED (409).
      check: (a) => expectStatus(a, ended ? [202, 409] : [202]),
      apply: (a) => {
        if (a.status === 202) this.model.canceled.add(id);
      },
    };
  }

  private garbage(): FuzzCase {
    const r = this.r;
    const bytes = r.chance(0.5)
      ? Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]) // a TLS ClientHello
      : Buffer.from(Array.from({ length: r.int(1, 200) }, () => r.int(0, 255)));
    return { kind: 'garbage', request: { raw: Buffer.concat([bytes, Buffer.from('\r\n\r\n')]), timeoutMs: 5000 }, check: (a) => expectRejectedOr(a) };
  }
}

// ---- the tests ----------------------------------------------------------------------------------

async function liveReplica(t: ExecutionContext<Context>): Promise<Cluster> {
  const cluster = await Cluster.start({ connect: t.context.ensemble.connectString, replicas: 1, sessionTimeoutMs: 8000, settings: ['log.level=warn'] });
  t.context.clusters.push(cluster);
  await cluster.leader();
  return cluster;
}

test.serial('REST fuzz: every seeded bad request gets the right 4xx with a message, the replica stays up, stored state changes only by accepted requests', async (t) => {
  const seed = seedFrom(process.env.HA_FUZZ_SEED);
  const count = Number(process.env.HA_FUZZ_REQUESTS ?? 5000);
  const banner = `REST fuzz seed ${seed} (${count} requests) — replay with HA_FUZZ_SEED=${seed}`;
  t.log(banner);
  process.stdout.write(`${banner}\n`);

  const cluster = await liveReplica(t);
  const replica = cluster.replicas[0];
  const pid = replica.child!.pid;
  const port = Number(new URL(replica.url).port);
  const model = new Model();
  const fuzzer = new Fuzzer(new Random(seed), model);
  const failures: string[] = [];
  const kinds = new Map<string, number>();
  const background: Array<Promise<void>> = [];
  let retried = 0;

  for (let i = 0; i < count; i++) {
    const c = fuzzer.next();
    const base = c.kind.split(' ')[0];
    kinds.set(base, (kinds.get(base) ?? 0) + 1);
    let answer = await rawRequest(port, c.request);
    // A leadership blip (the machine is loaded, the session was suspended) answers 503 with Retry-After:
    // that is the contract, and a client sends the same request again.
    for (const deadline = Date.now() + 60_000; answer.status === 503 && answer.headers['retry-after'] && Date.now() < deadline;) {
      retried++;
      await new Promise((r) => setTimeout(r, 250));
      answer = await rawRequest(port, c.request);
    }
    const problem = c.check(answer);
    if (problem) failures.push(`#${i} ${c.kind} ${c.request.method ?? ''} ${String(c.request.path ?? '(raw)').slice(0, 80)}: ${problem}`);
    else c.apply?.(answer);
    if (i % 500 === 250) {
      // Slow bodies alongside: one that trickles in and completes, one that stalls until we give up.
      const slowGraph = { ...validGraph(new Random(seed + i)), jobId: crypto.randomBytes(16).toString('hex') };
      background.push(rawRequest(port, {
        method: 'POST', path: '/jobs', headers: [['Content-Type', 'application/json']], body: JSON.stringify(slowGraph), slow: { pieces: 8, delayMs: 150 },
      }).then((a) => {
        const problem2 = expectStatus(a, [202]);
        if (problem2) failures.push(`slow body: ${problem2}`);
        else model.acked.set(slowGraph.jobId, graphDigest(canonicalJson(parseJobGraph(slowGraph, LIMITS))));
      }));
      background.push(rawRequest(port, {
        method: 'POST', path: '/jobs', headers: [['Content-Type', 'application/json']], body: JSON.stringify(validGraph(new Random(seed - i))),
        stallAfterBytes: 10, timeoutMs: 1500,
      }).then((a) => {
        // We give up first; whatever arrives must not be a success or a 5xx.
        if (a.status !== 0 && (a.status < 400 || a.status >= 500)) failures.push(`stalled body answered ${a.status}`);
      }));
    }
    if (i % 250 === 0 && !replica.running) {
      failures.push(`#${i}: the replica process exited`);
      break;
    }
  }
  await Promise.all(background);
  t.log(`request kinds: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}; acknowledged ${model.acked.size}, canceled ${model.canceled.size}, retried after 503 ${retried}`);
  if (failures.length) t.log(`${failures.length} failures (seed ${seed}):\n${failures.slice(0, 40).join('\n')}`);
  t.deepEqual(failures.slice(0, 40), []);

  // Still the same process, still serving, still the leader.
  t.true(replica.running);
  t.is(replica.child!.pid, pid);
  t.is((await replica.health())?.status, 200);

  // ZooKeeper holds exactly what the accepted requests stored: graphs of acknowledged, uncanceled jobs
  // with the acknowledged digests, results only for canceled jobs, nothing quarantined.
  const zk = await connectedClient({ connect: t.context.ensemble.connectString, chroot: `/ha-dispatcher/${cluster.clusterId}` });
  t.context.clients.push(zk);
  const expectedGraphs = [...model.acked.keys()].filter((id) => !model.canceled.has(id)).sort();
  const children = (p: string): Promise<string[]> => eventually(`list ${p}`, async () => (await zk.getChildren(p)).sort(), 30_000, 200);
  const graphs = await eventually('canceled jobs leave /jobgraphs', async () => {
    const ids = await children('/jobgraphs');
    return JSON.stringify(ids) === JSON.stringify(expectedGraphs) ? ids : null;
  }, 30_000, 200).catch(() => children('/jobgraphs'));
  t.deepEqual(graphs, expectedGraphs);
  t.deepEqual(await children('/jobresults'), [...model.canceled].sort());
  t.deepEqual(await children('/quarantine/jobgraphs'), []);
  for (const id of graphs) {
    const { data } = await eventually(`read /jobgraphs/${id}`, () => zk.get(`/jobgraphs/${id}`), 30_000, 200);
    const stored = JSON.parse(data.toString('utf8')) as { digest: string };
    t.is(stored.digest as string | undefined, model.acked.get(id), `job ${id}: the stored graph is the acknowledged one`);
  }
});

// ---- corrupt and foreign ZooKeeper nodes ---------------------------------------------------------

const hex32 = (): string => crypto.randomBytes(16).toString('hex');
const envelope = (graph: object): string => {
  const parsed = parseJobGraph(graph, LIMITS);
  return JSON.stringify({ formatVersion: 1, submittedAt: new Date().toISOString(), digest: graphDigest(canonicalJson(parsed)), graph: parsed });
};
const smallJob = (jobId: string, name: string): object => ({
  jobId, name, vertices: [{ id: 'work', parallelism: 2, task: { type: 'sleep', ms: 200 } }, { id: 'sink', inputs: ['work'], task: { type: 'sleep', ms: 50 } }],
});

test.serial('corrupt or foreign nodes under every path the product reads: replicas stay up, a leader serves, bad graphs are quarantined, bad results and progress never stop recovery', async (t) => {
  const { ensemble } = t.context;
  const clusterId = `fz-${crypto.randomBytes(4).toString('hex')}`;
  const zk = await connectedClient({ connect: ensemble.connectString, chroot: `/ha-dispatcher/${clusterId}` });
  t.context.clients.push(zk);
  const ids = { junkGraph: hex32(), format2: hex32(), cycle: hex32(), junkProgress: hex32(), nullProgress: hex32(), wrongProgress: hex32(),
    withChild: hex32(), junkResult: hex32(), wrongResult: hex32(), resultAndGraph: hex32(), orphanProgress: hex32() };

  // Latch: a child without a sequence number, and a persistent node that sorts first but belongs to no session.
  await zk.mkdirp('/leader/latch');
  await zk.create('/leader/latch/garbage', 'x');
  await zk.create('/leader/latch/_c_foreign-latch-', '{not json', 'persistent_sequential');
  // A forged leader that claims a huge epoch: TaskManagers must not take its epoch as the one to fence by.
  await zk.create('/leader/info', JSON.stringify({ replicaId: 'ghost', restUrl: 'http://127.0.0.1:1', rpcUrl: 'http://127.0.0.1:1', epoch: 999_999,
    sessionId: '123', electedAt: '', readyAt: '' }), 'persistent');
  // Graphs: unreadable bytes, a non-job-id name, an unknown envelope format, an invalid graph, and valid
  // graphs whose progress node is junk, has null vertices, or the wrong types; one graph node has a child.
  await zk.mkdirp('/jobgraphs');
  await zk.create(`/jobgraphs/${ids.junkGraph}`, Buffer.from([0, 1, 2, 0xff]));
  await zk.create('/jobgraphs/not-a-job-id', envelope(smallJob(hex32(), 'misnamed')));
  await zk.create(`/jobgraphs/${ids.format2}`, JSON.stringify({ formatVersion: 2, graph: {} }));
  await zk.create(`/jobgraphs/${ids.cycle}`, JSON.stringify({ formatVersion: 1, submittedAt: 'x', digest: 'x',
    graph: { jobId: ids.cycle, name: 'cycle', vertices: [{ id: 'a', inputs: ['b'], task: { type: 'sleep', ms: 1 } }, { id: 'b', inputs: ['a'], task: { type: 'sleep', ms: 1 } }] } }));
  for (const [key, progress] of [['junkProgress', '{"formatVersion":1,'], ['nullProgress', '{"formatVersion":1,"vertices":null}'],
    ['wrongProgress', '{"formatVersion":1,"vertices":{"work":{"attempts":"zz","finished":5,"deployed":{}},"sink":7},"restarts":"x","restart":"y","exceptions":{}}']] as const) {
    await zk.create(`/jobgraphs/${ids[key]}`, envelope(smallJob(ids[key], key)));
    await zk.mkdirp(`/jobs/${ids[key]}`);
    await zk.create(`/jobs/${ids[key]}/progress`, progress);
  }
  await zk.create(`/jobgraphs/${ids.withChild}`, envelope(smallJob(ids.withChild, 'withChild')));
  await zk.create(`/jobgraphs/${ids.withChild}/child`, 'foreign');
  // Results: junk, the wrong shape, a foreign name, and a valid result whose graph was never cleaned up.
  await zk.mkdirp('/jobresults');
  await zk.create(`/jobresults/${ids.junkResult}`, '\u0000junk');
  await zk.create(`/jobresults/${ids.wrongResult}`, '{"state":"weird"}');
  await zk.create('/jobresults/foreign-result', 'x');
  await zk.create(`/jobgraphs/${ids.resultAndGraph}`, envelope(smallJob(ids.resultAndGraph, 'already-finished')));
  await zk.create(`/jobresults/${ids.resultAndGraph}`, JSON.stringify({ state: 'dirty', jobId: ids.resultAndGraph, name: 'already-finished',
    jobStatus: 'FINISHED', startTime: 1, endTime: 2, graphDigest: 'x' }));
  // Progress of a job nobody knows, and a foreign child under /jobs.
  await zk.mkdirp(`/jobs/${ids.orphanProgress}`);
  await zk.create(`/jobs/${ids.orphanProgress}/progress`, 'junk');
  await zk.create('/jobs/foreign', 'x');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-fuzz-zk-'));
  const common = [`high-availability.zookeeper.quorum=${ensemble.connectString}`, `high-availability.cluster-id=${clusterId}`,
    'high-availability.zookeeper.client.session-timeout=4000', 'heartbeat.interval=500', 'heartbeat.timeout=3000', 'jobmanager.reconcile-timeout=1000'];
  const ports = await freePorts(2);
  const replicas = ports.map((port, i) => new ManagedProcess(`r${i + 1}`, 'dispatcher',
    [...common, `rest.port=${port}`, `replica.id=r${i + 1}`].flatMap((s) => ['-D', s]), dir, `http://127.0.0.1:${port}`));
  const tm = new ManagedProcess('tm1', 'taskmanager', [...common, 'taskmanager.id=tm1', 'taskmanager.numberOfTaskSlots=4', `taskmanager.data-dir=${dir}`]
    .flatMap((s) => ['-D', s]), dir);
  const all = [...replicas, tm];
  t.teardown(() => Promise.all(all.map((p) => p.signal('SIGKILL'))));
  for (const p of all) p.start();
  const logs = (): string => all.map((p) => `---- ${p.id} ----\n${p.tail(25)}`).join('\n');
  const leaderOf = (timeoutMs = 60_000): Promise<ManagedProcess> => eventually('a ready leader', async () => {
    for (const r of replicas) {
      const h = await call('GET', `${r.url}/health`).catch(() => null);
      if (h?.status === 200) return r;
    }
    return null;
  }, timeoutMs, 100);

  try {
    const leader = await leaderOf();
    const standby = replicas.find((r) => r !== leader)!;
    const rest = (method: string, p: string, body?: unknown): Promise<Answer> => call(method, `${leader.url}${p}`, body);

    const quarantined = await eventually('four graphs quarantined', async () => {
      const q = (await rest('GET', '/jobs/quarantined')).body?.quarantined as Array<{ jobId: string }> | undefined;
      return q && q.length >= 4 ? q : null;
    });
    t.deepEqual(quarantined.map((q) => q.jobId).sort(), [ids.junkGraph, ids.format2, ids.cycle, 'not-a-job-id'].sort());
    t.deepEqual((await eventually('list /jobgraphs', () => zk.getChildren('/jobgraphs'))).filter((id) => [ids.junkGraph, ids.format2, ids.cycle, 'not-a-job-id'].includes(id)), []);

    for (const key of ['junkProgress', 'nullProgress', 'wrongProgress', 'withChild'] as const) {
      await eventually(`job ${key} FINISHED`, async () => (await rest('GET', `/jobs/${ids[key]}`)).body?.state === 'FINISHED', 60_000, 100);
    }
    await eventually('the graph with a child node is cleaned up', async () => !(await zk.exists(`/jobgraphs/${ids.withChild}`)));
    // The result that was already there wins: that job is never run, its leftover graph is cleaned up.
    t.is((await rest('GET', `/jobs/${ids.resultAndGraph}`)).body.state, 'FINISHED');
    t.false(tm.events('task.status').some((e) => e.jobId === ids.resultAndGraph));
    await eventually('leftover graph removed', async () => !(await zk.exists(`/jobgraphs/${ids.resultAndGraph}`)));
    // Unreadable results still mean "ended": listed, never run, never overwritten by a resubmission.
    const listed = new Map(((await rest('GET', '/jobs')).body.jobs as Array<{ id: string; status: string }>).map((j) => [j.id, j.status]));
    t.is(listed.get(ids.junkResult), 'FAILED');
    t.is(listed.get(ids.wrongResult), 'FAILED');
    t.is((await rest('POST', '/jobs', smallJob(ids.junkResult, 'again'))).status, 409);

    // Under a ready leader: /leader/info overwritten with junk, then replaced by a foreign node. The
    // leader publishes itself again, so standbys and TaskManagers find it.
    await eventually('overwrite /leader/info', () => zk.set('/leader/info', 'junk'));
    await eventually('the standby redirects to the leader again', async () => (await call('GET', `${standby.url}/jobs`)).status === 307, 15_000, 100);
    await eventually('delete /leader/info', () => zk.delete('/leader/info').then(() => true, (err) => (err.code === 'NONODE' ? true : Promise.reject(err))));
    await zk.create('/leader/info', '{"replicaId":"ghost","restUrl":"http://127.0.0.1:1","rpcUrl":"http://127.0.0.1:1","epoch":999999}', 'persistent').catch(() => undefined);
    await eventually('the leader replaced the foreign /leader/info', async () => {
      const a = await call('GET', `${standby.url}/jobs`);
      return a.status === 307 && a.text.includes(leader.id);
    }, 15_000, 100);

    // A corrupt graph written while leading is quarantined by the /jobgraphs watch; jobs still run.
    const late = hex32();
    await eventually('write a corrupt graph', () => zk.create(`/jobgraphs/${late}`, '{"formatVersion":1'));
    await eventually('the late corrupt graph is quarantined', async () =>
      ((await rest('GET', '/jobs/quarantined')).body.quarantined as Array<{ jobId: string }>).some((q) => q.jobId === late));
    const fresh = hex32();
    t.is((await call('POST', `${leader.url}/jobs`, smallJob(fresh, 'after-the-garbage'))).status, 202);
    await eventually('a new job FINISHED', async () => (await rest('GET', `/jobs/${fresh}`)).body?.state === 'FINISHED', 60_000, 100);

    // Nobody crashed or restarted.
    t.true(all.every((p) => p.running), 'every process is still running');
    t.deepEqual(replicas.flatMap((r) => r.events('dispatcher.recovery.failed')), []);
  } catch (err) {
    t.log(logs());
    throw err;
  }
});
