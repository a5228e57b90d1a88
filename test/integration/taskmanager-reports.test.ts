/**
 * A real TaskManager (in this process, its own ZooKeeper session) against a scripted leader: an HTTP
 * server that answers the internal RPC as the test dictates, published in `/leader/info` like a real
 * leader's (ephemeral, owned by the session it names).
 *
 * Regression (chaos partition-leader-long, seed 2030): a task finished while the TaskManager's
 * registration with a new leader was in flight. The registration carried the task as RUNNING; when it
 * returned, the TaskManager struck the task off its unreported list, FINISHED included, so the leader
 * never heard the outcome and the job stayed RUNNING forever. Besides the fix, a TaskManager now sends
 * unacknowledged outcomes again with every heartbeat (the second test).
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddressInfo } from 'node:net';
import { LEADER_INFO_PATH, LeaderInfo, serializeLeaderInfo } from '../../src/election/leader-info';
import { TaskManager } from '../../src/taskmanager/task-manager';
import type { RegistrationRequest, StatusRequest, TaskReport } from '../../src/taskmanager/protocol';
import { NativeZooKeeperClient } from '../../src/zk/client';
import { ClusterContext, connectedClient, ensembleHooks, eventually } from '../helpers/ensemble';

type Context = ClusterContext;
const test = anyTest as TestFn<Context>;

ensembleHooks(test);

type Handler = (body: any) => Promise<{ status: number; body: unknown }>;

/** The leader's side of the internal RPC, scripted per route; every request is kept. */
class ScriptedLeader {
  readonly received: Array<{ route: string; body: any }> = [];
  readonly routes = new Map<string, Handler>();
  private constructor(private readonly server: http.Server, readonly url: string) {}

  static async start(): Promise<ScriptedLeader> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const leader = new ScriptedLeader(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : null;
        const route = (req.url ?? '').replace(/\/internal\/taskmanagers\/[^/]+\/heartbeat$/, '/internal/taskmanagers/:id/heartbeat');
        leader.received.push({ route, body });
        const handler = leader.routes.get(route) ?? (async () => ({ status: 404, body: { errors: [`no route ${route}`] } }));
        void handler(body).then(({ status, body: answer }) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(answer));
        });
      });
    });
    return leader;
  }

  /** Every report (registration or status) the leader received for `key`, in order. */
  reportsFor(key: string): TaskReport[] {
    return this.received.flatMap(({ route, body }) => route === '/internal/taskmanagers' ? (body as RegistrationRequest).tasks
      : route === '/internal/tasks/status' ? (body as StatusRequest).reports : [])
      .filter((r) => keyOf(r) === key);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function publishLeader(client: NativeZooKeeperClient, leader: ScriptedLeader, epoch: number): Promise<void> {
  const info: LeaderInfo = {
    replicaId: 'scripted', restUrl: leader.url, rpcUrl: leader.url, epoch, zkSessionId: client.sessionId!,
    electedAt: new Date().toISOString(), readyAt: new Date().toISOString(),
  };
  await client.mkdirp('/leader/latch');
  await client.delete(LEADER_INFO_PATH).catch(() => undefined);
  // Leader information is trusted only from the session holding the lowest latch node, for the epoch it
  // last took from the /epoch counter.
  for (const node of await client.getChildren('/leader/latch')) await client.delete(`/leader/latch/${node}`);
  await client.create('/leader/latch/_c_scripted-latch-', JSON.stringify({ replicaId: 'scripted', restUrl: leader.url, rpcUrl: leader.url, epoch, sessionId: client.sessionId }), 'ephemeral_sequential');
  const counter = JSON.stringify({ epoch, replicaId: 'scripted' });
  if (await client.exists('/epoch')) await client.set('/epoch', counter);
  else await client.create('/epoch', counter, 'persistent');
  await client.create(LEADER_INFO_PATH, serializeLeaderInfo(info), 'ephemeral');
}

interface Harness {
  leader: ScriptedLeader;
  /** Publishes the scripted leader in /leader/info under `epoch` (a leader change for the TaskManager). */
  publish(epoch: number): Promise<void>;
  /** Starts the TaskManager and waits for its first registration. */
  startTaskManager(heartbeatIntervalMs: number): Promise<TaskManager>;
  /** Deploys a built-in sleep task with the current epoch; its execution key. */
  deploySleep(tm: TaskManager, jobId: string, epoch: number, ms: number): Promise<string>;
}

/** A scripted leader that accepts everything and acknowledges nothing, published at epoch 1; cleaned up after the test. */
async function withScriptedLeader(t: ExecutionContext<Context>, fn: (h: Harness) => Promise<void>): Promise<void> {
  const { ensemble } = t.context;
  const chroot = `/ha-dispatcher-test/tm-reports-${crypto.randomBytes(6).toString('hex')}`;
  const zk = await connectedClient({ connect: ensemble.connectString, chroot, sessionTimeoutMs: 4000 });
  t.teardown(() => zk.close());
  const leader = await ScriptedLeader.start();
  t.teardown(() => leader.close());
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-tm-reports-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  leader.routes.set('/internal/taskmanagers', async (body: RegistrationRequest) => ({ status: 200, body: { epoch: body.epoch, acknowledged: [], cancel: [] } }));
  leader.routes.set('/internal/taskmanagers/:id/heartbeat', async (body) => ({ status: 200, body: { epoch: body.epoch, cancel: [] } }));
  leader.routes.set('/internal/tasks/status', async () => ({ status: 200, body: { acknowledged: [], cancel: [] } }));
  await publishLeader(zk, leader, 1);
  await fn({
    leader,
    publish: (epoch) => publishLeader(zk, leader, epoch),
    startTaskManager: async (heartbeatIntervalMs) => {
      const tm = await TaskManager.start({
        id: 'tm-scripted', slots: 2, bindAddress: '127.0.0.1', rpcPort: 0, heartbeatIntervalMs, orphanTimeoutMs: 60_000, dataDir,
        zookeeper: { connect: ensemble.connectString, root: chroot, sessionTimeoutMs: 4000, connectionTimeoutMs: 15_000 },
      });
      t.teardown(() => tm.close());
      await eventually('the TaskManager registered', () => leader.received.some((r) => r.route === '/internal/taskmanagers'), 15_000, 20);
      return tm;
    },
    deploySleep: async (target, jobId, epoch, ms) => {
      const id = { jobId, vertexId: 'work', subtask: 0, attempt: 0 };
      const deployed = await fetch(`${target.rpcAddress}/deploy`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...id, epoch, parallelism: 1, task: { type: 'sleep', ms } }),
      });
      if (deployed.status !== 200) throw new Error(`deploy answered ${deployed.status}`);
      return `${jobId}/work/0/0`;
    },
  });
}

const keyOf = (r: TaskReport): string => `${r.jobId}/${r.vertexId}/${r.subtask}/${r.attempt}`;

test('a task that finishes while its TaskManager registers with a new leader is still reported FINISHED', (t) => withScriptedLeader(t, async (h) => {
  const { leader } = h;
  const tm = await h.startTaskManager(200);
  const key = await h.deploySleep(tm, 'e'.repeat(32), 1, 1500);
  const tasks = async (): Promise<TaskReport[]> => ((await (await fetch(`${tm.rpcAddress}/tasks`)).json()) as { tasks: TaskReport[] }).tasks;
  await eventually('the task RUNNING', async () => (await tasks()).some((r) => r.state === 'RUNNING'), 10_000, 20);

  // A new leader (epoch 2) that holds the registration answer until the task has finished.
  leader.routes.set('/internal/taskmanagers', async (body: RegistrationRequest) => {
    if (body.epoch === 2) await eventually('the task FINISHED on the TaskManager', async () => (await tasks()).some((r) => r.state === 'FINISHED'), 10_000, 20);
    return { status: 200, body: { epoch: body.epoch, acknowledged: [], cancel: [] } };
  });
  await h.publish(2);
  const registration = await eventually('registration with epoch 2', () =>
    leader.received.find((r) => r.route === '/internal/taskmanagers' && r.body.epoch === 2) ?? null, 15_000, 20);
  t.is((registration.body as RegistrationRequest).tasks.find((r) => keyOf(r) === key)?.state, 'RUNNING', 'the registration carried the task while it still ran');

  const finished = await eventually('the FINISHED outcome reported to the new leader', () =>
    leader.reportsFor(key).find((r) => r.state === 'FINISHED') ?? null, 10_000, 20).catch(() => null);
  t.truthy(finished, `reports the leader got for the task: ${JSON.stringify(leader.reportsFor(key).map((r) => r.state))}`);
}));

test('an outcome the leader does not acknowledge is sent again with the heartbeats, and no more once acknowledged', (t) => withScriptedLeader(t, async (h) => {
  const { leader } = h;
  let acknowledging = false;
  let acknowledgedAt: number | null = null; // FINISHED reports received when the first acknowledgement went out
  leader.routes.set('/internal/tasks/status', async (body: StatusRequest) => {
    const finished = body.reports.filter((r) => r.state === 'FINISHED').map(keyOf);
    if (!acknowledging || finished.length === 0) return { status: 200, body: { acknowledged: [], cancel: [] } };
    acknowledgedAt ??= leader.reportsFor(finished[0]).filter((r) => r.state === 'FINISHED').length;
    return { status: 200, body: { acknowledged: finished, cancel: [] } };
  });
  const tm = await h.startTaskManager(100);
  const key = await h.deploySleep(tm, 'f'.repeat(32), 1, 50);
  const finishedReports = (): number => leader.reportsFor(key).filter((r) => r.state === 'FINISHED').length;
  await eventually('FINISHED sent three times while unacknowledged', () => finishedReports() >= 3, 10_000, 20);
  acknowledging = true;
  const settled = await eventually('the outcome acknowledged', () => acknowledgedAt, 10_000, 20);
  // Ten heartbeats later (a bounded poll that must stay false): nothing more was sent for the task.
  await t.throwsAsync(eventually('another FINISHED after the acknowledgement', () => finishedReports() > settled, 1000, 50));
  t.is(finishedReports(), settled);
}));
