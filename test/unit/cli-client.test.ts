import test from 'ava';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import Koa from 'koa';
import Router from '@koa/router';
import { CliError, EXIT, runClientCommand } from '../../src/cli/client-commands';
import { RestClient, parseRetryAfter } from '../../src/client/rest-client';
import { formatDuration, formatTable, formatTime } from '../../src/cli/format';

const JOB_ID = '0123456789abcdef0123456789abcdef';
const GRAPH = { jobId: JOB_ID, name: 'demo', vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 1 } }] };

interface Seen {
  method: string;
  url: string;
  body: string;
  contentType?: string;
}

/** A fake replica: a Koa app on an ephemeral loopback port that records every request it gets. */
interface Replica {
  url: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

async function startReplica(routes: (router: Router) => void, port = 0): Promise<Replica> {
  const seen: Seen[] = [];
  const app = new Koa();
  const router = new Router();
  routes(router);
  app.use(async (ctx, next) => {
    let body = '';
    for await (const chunk of ctx.req) body += chunk;
    seen.push({ method: ctx.method, url: ctx.url, body, contentType: ctx.get('content-type') || undefined });
    ctx.state.body = body;
    await next();
  });
  app.use(router.routes());
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A standby: every request is answered 307 to `target()` + the same path and query, as every standby does (docs/ARCHITECTURE.md, "Processes"). */
function redirectTo(target: () => string) {
  return (router: Router) => {
    router.all(/.*/, (ctx) => {
      ctx.status = 307;
      ctx.set('Location', target() + ctx.url);
      ctx.body = { leader: target() };
    });
  };
}

function capture(env: Record<string, string | undefined> = {}) {
  const io = { out: '', err: '', env, stdout: (s: string) => void (io.out += s), stderr: (s: string) => void (io.err += s) };
  return io;
}

async function graphFile(content: string = JSON.stringify(GRAPH)): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cli-client-'));
  const file = path.join(dir, 'graph.json');
  await fs.writeFile(file, content);
  return file;
}

/** A leader whose GET /jobs/:id walks through `states`, one per poll, then stays at the last. */
function jobLeader(states: string[]) {
  let polls = 0;
  return (router: Router) => {
    router.post('/jobs', (ctx) => {
      ctx.status = 202;
      ctx.body = { jobid: JOB_ID, jobUrl: `/jobs/${JOB_ID}` };
    });
    router.get('/jobs/:jobid', (ctx) => {
      ctx.body = { jid: ctx.params.jobid, name: 'demo', state: states[Math.min(polls++, states.length - 1)] };
    });
  };
}

test('POST /jobs through a standby reaches the leader once with the same method and body', async (t) => {
  const leader = await startReplica(jobLeader(['RUNNING']));
  const standby = await startReplica(redirectTo(() => leader.url));
  t.teardown(() => Promise.all([leader.close(), standby.close()]));
  const io = capture();

  const code = await runClientCommand('submit', [await graphFile(), '--url', standby.url], io);

  t.is(code, EXIT.OK, io.err);
  t.is(io.out, `${JOB_ID}\n`);
  t.is(standby.seen.length, 1);
  t.is(leader.seen.length, 1);
  t.like(leader.seen[0], { method: 'POST', url: '/jobs', contentType: 'application/json' });
  t.deepEqual(JSON.parse(leader.seen[0].body), GRAPH);
  t.is(leader.seen[0].body, standby.seen[0].body);
});

test('submit - reads the JobGraph from stdin', async (t) => {
  const leader = await startReplica(jobLeader(['RUNNING']));
  t.teardown(() => leader.close());
  const io = { ...capture(), stdin: Readable.from([JSON.stringify(GRAPH).slice(0, 10), JSON.stringify(GRAPH).slice(10)]) };

  t.is(await runClientCommand('submit', ['-', '--url', leader.url], io), EXIT.OK);
  t.deepEqual(JSON.parse(leader.seen[0].body), GRAPH);
});

test('a relative Location is resolved against the replica that sent it', async (t) => {
  const replica = await startReplica((router) => {
    router.patch('/old', (ctx) => {
      ctx.status = 308;
      ctx.set('Location', '/new?x=1');
    });
    router.patch('/new', (ctx) => {
      ctx.body = { got: ctx.state.body };
    });
  });
  t.teardown(() => replica.close());

  const res = await new RestClient({ url: replica.url }).request('PATCH', '/old', { a: 1 });

  t.is(res.status, 200);
  t.is(res.url, `${replica.url}/new?x=1`);
  t.deepEqual(res.body, { got: '{"a":1}' });
});

test('503 with Retry-After: 0 twice, then 202: the submission succeeds', async (t) => {
  let posts = 0;
  const leader = await startReplica((router) => {
    router.post('/jobs', (ctx) => {
      if (++posts <= 2) {
        ctx.status = 503;
        ctx.set('Retry-After', '0');
        ctx.body = { errors: ['no leader yet'] };
        return;
      }
      ctx.status = 202;
      ctx.body = { jobid: JOB_ID, jobUrl: `/jobs/${JOB_ID}` };
    });
  });
  t.teardown(() => leader.close());
  const io = capture();

  const code = await runClientCommand('submit', [await graphFile(), '--url', leader.url], io);

  t.is(code, EXIT.OK, io.err);
  t.is(io.out.trim(), JOB_ID);
  t.is(posts, 3);
  t.true(leader.seen.every((s) => s.body === leader.seen[0].body));
});

test('a permanent 503 ends with exit code 5 and a message naming the last answer', async (t) => {
  const replica = await startReplica((router) => {
    router.get('/leader', (ctx) => {
      ctx.status = 503;
      ctx.body = { errors: ['no ready leader'] };
    });
  });
  t.teardown(() => replica.close());
  const io = capture();

  const code = await runClientCommand('leader', ['--url', replica.url, '--timeout', '2000'], io);

  t.is(code, EXIT.UNAVAILABLE);
  t.regex(io.err, /no ready leader after 2 s: last answer 503 from http:\/\/127\.0\.0\.1:\d+\/leader/);
  t.true(replica.seen.length >= 2, 'retried before giving up');
  t.is(io.out, '');
});

test('429 is retried like 503', async (t) => {
  let calls = 0;
  const replica = await startReplica((router) => {
    router.get('/overview', (ctx) => {
      if (++calls === 1) {
        ctx.status = 429;
        ctx.set('Retry-After', '0');
        return;
      }
      ctx.body = { taskmanagers: 2, 'slots-total': 8, 'slots-available': 3, version: '0.1.0' };
    });
  });
  t.teardown(() => replica.close());
  const io = capture();

  t.is(await runClientCommand('overview', ['--url', replica.url], io), EXIT.OK, io.err);
  t.regex(io.out, /^slots-available:\s+3$/m);
  t.regex(io.out, /^jobs-failed:\s+-$/m);
  t.is(calls, 2);
});

test('400 with errors: exit code 3 and the server message on stderr', async (t) => {
  const replica = await startReplica((router) => {
    router.post('/jobs', (ctx) => {
      ctx.status = 400;
      ctx.body = { errors: ['vertex "a": parallelism must be between 1 and 1000'] };
    });
  });
  t.teardown(() => replica.close());
  const io = capture();

  const code = await runClientCommand('submit', [await graphFile(), '--url', replica.url], io);

  t.is(code, EXIT.REJECTED);
  t.true(io.err.includes('vertex "a": parallelism must be between 1 and 1000'), io.err);
  t.regex(io.err, /rejected by the server \(400/);
  t.is(io.out, '');
});

test('404 gives exit code 4', async (t) => {
  const replica = await startReplica((router) => {
    router.get('/jobs/:jobid', (ctx) => {
      ctx.status = 404;
      ctx.body = { errors: [`job ${ctx.params.jobid} not found`] };
    });
  });
  t.teardown(() => replica.close());
  const io = capture();

  t.is(await runClientCommand('status', [JOB_ID, '--url', replica.url], io), EXIT.NOT_FOUND);
  t.true(io.err.includes(`job ${JOB_ID} not found`), io.err);
});

test('a 5xx other than 503 gives exit code 5 without retrying', async (t) => {
  const replica = await startReplica((router) => {
    router.get('/jobs/overview', (ctx) => {
      ctx.status = 500;
      ctx.body = { errors: ['boom'] };
    });
  });
  t.teardown(() => replica.close());
  const io = capture();

  t.is(await runClientCommand('list', ['--url', replica.url], io), EXIT.UNAVAILABLE);
  t.is(replica.seen.length, 1);
  t.true(io.err.includes('boom'));
});

test('--json prints exactly one JSON document, on success and on failure', async (t) => {
  const jobs = [{ jid: JOB_ID, name: 'demo', state: 'RUNNING', 'start-time': 1_700_000_000_000, 'end-time': -1, duration: 65_000 }];
  const replica = await startReplica((router) => {
    router.get('/jobs/overview', (ctx) => {
      ctx.body = { jobs };
    });
    router.patch('/jobs/:jobid', (ctx) => {
      ctx.status = 409;
      ctx.body = { errors: ['job already terminal'] };
    });
  });
  t.teardown(() => replica.close());

  const ok = capture();
  t.is(await runClientCommand('list', ['--url', replica.url, '--json'], ok), EXIT.OK);
  t.deepEqual(JSON.parse(ok.out), { jobs });

  const failed = capture();
  t.is(await runClientCommand('cancel', [JOB_ID, '--url', replica.url, '--json'], failed), EXIT.REJECTED);
  t.like(JSON.parse(failed.out), { errors: ['job already terminal'], exitCode: EXIT.REJECTED, status: 409 });
  t.true(failed.err.includes('job already terminal'));
});

test('list prints a table with aligned columns', async (t) => {
  const replica = await startReplica((router) => {
    router.get('/jobs/overview', (ctx) => {
      ctx.body = {
        jobs: [
          { jid: JOB_ID, name: 'nightly-etl', state: 'FINISHED', 'start-time': 1_700_000_000_000, 'end-time': 1_700_000_065_000, duration: 65_000 },
          { jid: 'f'.repeat(32), name: 'x', state: 'CREATED', 'start-time': -1, 'end-time': -1, duration: -1 },
        ],
      };
    });
  });
  t.teardown(() => replica.close());
  const io = capture();

  t.is(await runClientCommand('list', ['-a', '--url', replica.url], io), EXIT.OK);
  const lines = io.out.trimEnd().split('\n');
  t.is(lines.length, 3);
  t.regex(lines[0], /^JOB ID {28}NAME {9}STATE {5}START {17}DURATION$/);
  t.is(lines[1], `${JOB_ID}  nightly-etl  FINISHED  2023-11-14T22:13:20Z  1m05s`);
  t.is(lines[2], `${'f'.repeat(32)}  x            CREATED   -                     -`);
});

test('status summarises the job and its vertices; cancel sends PATCH ?mode=cancel', async (t) => {
  const replica = await startReplica((router) => {
    router.get('/jobs/:jobid', (ctx) => {
      ctx.body = {
        jid: ctx.params.jobid, name: 'demo', state: 'RUNNING', 'start-time': 1_700_000_000_000, 'end-time': -1, duration: 1_500,
        vertices: [
          { id: 'a', name: 'Extract', parallelism: 3, status: 'RUNNING', tasks: { RUNNING: 2, FINISHED: 1, FAILED: 0 } },
          { id: 'b', parallelism: 1, status: 'CREATED', subtasks: [{ status: 'CREATED' }] },
        ],
      };
    });
    router.patch('/jobs/:jobid', (ctx) => {
      ctx.status = 202;
    });
  });
  t.teardown(() => replica.close());

  const io = capture();
  t.is(await runClientCommand('status', [JOB_ID, '--url', replica.url], io), EXIT.OK, io.err);
  t.regex(io.out, /^State:\s+RUNNING$/m);
  t.regex(io.out, /^End:\s+-$/m);
  t.regex(io.out, /^Duration:\s+1\.5s$/m);
  t.regex(io.out, /^Extract\s+3\s+RUNNING\s+RUNNING=2 FINISHED=1$/m);
  t.regex(io.out, /^b\s+1\s+CREATED\s+CREATED=1$/m);

  const cancel = capture();
  t.is(await runClientCommand('cancel', [JOB_ID, '--url', replica.url], cancel), EXIT.OK, cancel.err);
  t.like(replica.seen.at(-1), { method: 'PATCH', url: `/jobs/${JOB_ID}?mode=cancel` });
  t.true(cancel.out.includes(JOB_ID));
});

test('leader prints the leader fields, and the URL defaults to HA_DISPATCHER_URL', async (t) => {
  const replica = await startReplica((router) => {
    router.get('/leader', (ctx) => {
      ctx.body = { replicaId: 'r2', restUrl: 'http://10.0.0.2:8081', epoch: 7, readyAt: 1_700_000_000_000 };
    });
  });
  t.teardown(() => replica.close());
  const io = capture({ HA_DISPATCHER_URL: replica.url });

  t.is(await runClientCommand('leader', [], io), EXIT.OK, io.err);
  t.is(io.out, 'replicaId:  r2\nrestUrl:    http://10.0.0.2:8081\nepoch:      7\nreadyAt:    2023-11-14T22:13:20Z\n');
  t.is(replica.seen.length, 1);
});

test('submit --wait follows the job to FINISHED and exits 0', async (t) => {
  const leader = await startReplica(jobLeader(['CREATED', 'RUNNING', 'RUNNING', 'FINISHED']));
  t.teardown(() => leader.close());
  const io = capture();

  const code = await runClientCommand('submit', [await graphFile(), '--wait', '--url', leader.url], io);

  t.is(code, EXIT.OK, io.err);
  const lines = io.out.trimEnd().split('\n');
  t.is(lines[0], JOB_ID);
  t.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[1]), ['CREATED', 'RUNNING', 'FINISHED']);
  t.is(leader.seen.filter((s) => s.method === 'GET').length, 4);
});

test('submit --wait exits 1 when the job FAILED; with --json only the final detail is printed', async (t) => {
  const leader = await startReplica(jobLeader(['RUNNING', 'FAILED']));
  t.teardown(() => leader.close());
  const io = capture();

  const code = await runClientCommand('submit', [await graphFile(), '--wait', '--json', '--url', leader.url], io);

  t.is(code, EXIT.JOB_FAILED);
  t.like(JSON.parse(io.out), { jid: JOB_ID, state: 'FAILED' });
  t.regex(io.err, /ended FAILED/);
});

test('submit --wait gives up after --wait-timeout with exit code 5', async (t) => {
  const leader = await startReplica(jobLeader(['RUNNING']));
  t.teardown(() => leader.close());
  const io = capture();

  const code = await runClientCommand('submit', [await graphFile(), '--wait', '--wait-timeout', '150', '--url', leader.url], io);

  t.is(code, EXIT.UNAVAILABLE);
  t.regex(io.err, /still RUNNING after 150 ms/);
});

test('an invalid JOBID is a usage error and sends no request', async (t) => {
  const replica = await startReplica(() => {});
  t.teardown(() => replica.close());

  for (const [verb, id] of [['status', 'ABC'], ['cancel', JOB_ID.toUpperCase()], ['status', `${JOB_ID}0`]]) {
    const io = capture();
    t.is(await runClientCommand(verb, [id, '--url', replica.url], io), EXIT.USAGE, `${verb} ${id}`);
    t.regex(io.err, /is not a job id/);
  }
  t.is(replica.seen.length, 0);
});

test('bad arguments, an unreadable file and invalid JSON are usage errors that send nothing', async (t) => {
  const replica = await startReplica(() => {});
  t.teardown(() => replica.close());
  const cases: string[][] = [
    ['submit', await graphFile('{"name": '), '--url', replica.url],
    ['submit', path.join(os.tmpdir(), 'does-not-exist', 'graph.json'), '--url', replica.url],
    ['submit', await graphFile('[1, 2]'), '--url', replica.url],
    ['list', '--bogus', '--url', replica.url],
    ['list', 'extra', '--url', replica.url],
    ['list', '--timeout', 'soon', '--url', replica.url],
    ['list', '--url', 'ftp://127.0.0.1:1'],
    ['submit', await graphFile(), '--wait-timeout', '10', '--url', replica.url],
    ['frobnicate', '--url', replica.url],
  ];
  for (const [verb, ...argv] of cases) {
    const io = capture();
    t.is(await runClientCommand(verb, argv, io), EXIT.USAGE, `${verb} ${argv.join(' ')}: ${io.err}`);
    t.regex(io.err, /^error: /);
  }
  t.is(replica.seen.length, 0);
});

test('a redirect loop is an error naming the loop', async (t) => {
  let b: Replica | undefined;
  const a = await startReplica(redirectTo(() => b!.url));
  b = await startReplica(redirectTo(() => a.url));
  t.teardown(() => Promise.all([a.close(), b!.close()]));

  const error = await t.throwsAsync(new RestClient({ url: a.url, deadlineMs: 30_000 }).request('GET', '/jobs'), { instanceOf: CliError });
  t.is(error?.exitCode, EXIT.UNAVAILABLE);
  t.true(error?.message.includes(`redirect loop: ${a.url}/jobs -> ${b.url}/jobs -> ${a.url}/jobs`), error?.message);

  const io = capture();
  t.is(await runClientCommand('list', ['--url', a.url], io), EXIT.UNAVAILABLE);
  t.regex(io.err, /redirect loop/);
  t.is(a.seen.length + b.seen.length, 4, 'each attempt stops at the first repeated URL, without retrying');
});

test('more than five redirects without a loop is an error', async (t) => {
  const replica = await startReplica((router) => {
    router.get('/hop/:n', (ctx) => {
      ctx.status = 307;
      ctx.set('Location', `/hop/${Number(ctx.params.n) + 1}`);
    });
  });
  t.teardown(() => replica.close());

  const error = await t.throwsAsync(new RestClient({ url: replica.url, deadlineMs: 30_000 }).request('GET', '/hop/0'), { instanceOf: CliError });
  t.regex(error?.message ?? '', /more than 5 redirects/);
  t.is(replica.seen.length, 6, 'five hops after the first request, then stop');
});

test('connection refused is retried until the replica comes back', async (t) => {
  // Reserve a port, then free it so the first attempt is refused.
  const probe = await startReplica(() => {});
  const port = probe.port;
  await probe.close();
  let revived: Replica | undefined;
  t.teardown(() => revived?.close());
  let attempts = 0;
  const fetchImpl: typeof fetch = async (input, init) => {
    attempts++;
    try {
      return await fetch(input, init);
    } catch (err) {
      // The replica restarts while the client is backing off.
      revived ??= await startReplica((router) => {
        router.get('/leader', (ctx) => {
          ctx.body = { replicaId: 'r1' };
        });
      }, port);
      throw err;
    }
  };

  const res = await new RestClient({ url: `http://127.0.0.1:${port}`, fetchImpl, deadlineMs: 5_000 }).request('GET', '/leader');

  t.is(res.status, 200);
  t.deepEqual(res.body, { replicaId: 'r1' });
  t.is(attempts, 2);
});

test('connection refused until the deadline ends with exit code 5', async (t) => {
  const probe = await startReplica(() => {});
  await probe.close();
  const io = capture();

  t.is(await runClientCommand('overview', ['--url', probe.url, '--timeout', '1000'], io), EXIT.UNAVAILABLE);
  t.regex(io.err, /no replica reachable after 1 s: ECONNREFUSED from http:\/\/127\.0\.0\.1:\d+\/overview/);
});

test('a replica that never answers fails at the deadline with exit code 5', async (t) => {
  const replica = await startReplica((router) => {
    router.get('/leader', () => new Promise<void>(() => {}));
  });
  t.teardown(() => replica.close());
  const io = capture();

  t.is(await runClientCommand('leader', ['--url', replica.url, '--timeout', '500'], io), EXIT.UNAVAILABLE);
  t.regex(io.err, /no answer from GET http:\/\/127\.0\.0\.1:\d+\/leader after 0\.5 s/);
  t.true(replica.seen.length <= 1, 'a hanging replica is not asked again');
});

test('format helpers', (t) => {
  t.is(formatTable(['A', 'LONG'], [['xyz', '1'], ['', '22']]), 'A    LONG\nxyz  1\n     22\n');
  t.deepEqual(['-', '0ms', '999ms', '1.0s', '59.9s', '1m00s', '59m59s', '1h00m', '1d01h'],
    [-1, 0, 999, 1000, 59_999, 60_000, 3_599_999, 3_600_000, 90_000_000].map(formatDuration));
  t.is(formatTime(-1), '-');
  t.is(formatTime(0), '-');
  t.is(formatTime(1_700_000_000_123), '2023-11-14T22:13:20Z');
  t.is(parseRetryAfter('3'), 3000);
  t.is(parseRetryAfter(null), undefined);
  t.is(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
});
