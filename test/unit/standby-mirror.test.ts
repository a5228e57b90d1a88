/**
 * The standby mirror against an in-memory ZooKeeper: after random writes (graphs, results, quarantine
 * records created, changed, deleted) and failovers (the mirror paused while "leading", then caught
 * up), it equals the store, compared node by node; catching up lists only folders whose child version
 * changed and reads only what changed; its status goes loading → synced → off; a Dispatcher with a
 * mirror recovers from it.
 */
import test from 'ava';
import { StandbyMirror, MirrorSnapshot } from '../../src/store/standby-mirror';
import { JobGraphStore } from '../../src/store/jobgraph-store';
import { JobResultStore } from '../../src/store/jobresult-store';
import { canonicalJson, JobGraph, parseJobGraph } from '../../src/jobgraph';
import { graphDigest } from '../../src/store/jobgraph-store';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { LeaderElectionService } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { PassiveJobMaster } from '../../src/jobmaster/passive-job-master';
import { FakeZkClient, FakeZkServer } from '../helpers/fake-zk';
import { eventually } from '../helpers/ensemble';
import { asStandby, fakeRestDeps, RecordingLogger } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';
import { createApp } from '../../src/rest/app';
import { ZK_CODES } from '../../src/zk/errors';
import { EventLogger } from '../../src/util/logger';

const LIMITS = { maxParallelism: 16 };
const jobId = (n: number): string => n.toString(16).padStart(32, '0');
const parse = (raw: unknown): JobGraph => parseJobGraph(raw, LIMITS);
const readOnly = (): void => { throw new Error('read only'); };

function envelope(n: number, name = `job-${n}`): string {
  const g = parse({ jobId: jobId(n), name, vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 1 } }] });
  return JSON.stringify({ formatVersion: 1, submittedAt: new Date(1_700_000_000_000 + n).toISOString(), digest: graphDigest(canonicalJson(g)), graph: g });
}
const result = (n: number, state: 'dirty' | 'clean'): string =>
  JSON.stringify({ state, jobId: jobId(n), name: `job-${n}`, jobStatus: 'FINISHED', startTime: 1, endTime: 2, graphDigest: 'x' });

function mirrorOf(client: FakeZkClient, logger?: EventLogger): StandbyMirror<JobGraph> {
  return new StandbyMirror(client, new JobGraphStore(client, readOnly, parse), new JobResultStore(client, readOnly), logger);
}

/** The store as the mirror should see it, read straight from the server's nodes. */
function expected(server: FakeZkServer): string {
  const under = (folder: string): string[] => server.children(folder).sort();
  const data = (path: string): string => server.nodes.get(path)!.data.toString();
  const graphs = server.nodes.has('/jobgraphs') ? under('/jobgraphs') : [];
  const results = server.nodes.has('/jobresults') ? under('/jobresults') : [];
  const quarantine = server.nodes.has('/quarantine/jobgraphs') ? under('/quarantine/jobgraphs') : [];
  return JSON.stringify({
    graphIds: graphs,
    graphs: graphs.map((id) => [id, (JSON.parse(data(`/jobgraphs/${id}`)) as { graph: JobGraph }).graph.name]),
    resultIds: results,
    results: graphs.filter((id) => results.includes(id)).map((id) => [id, JSON.parse(data(`/jobresults/${id}`)).state]),
    quarantine: quarantine.map((node) => [node, JSON.parse(data(`/quarantine/jobgraphs/${node}`)).reason]),
  });
}

function seen(s: MirrorSnapshot<JobGraph>): string {
  return JSON.stringify({
    graphIds: [...s.graphIds].sort(),
    graphs: [...s.graphs.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, g]) => [id, g.ok ? g.envelope.graph.name : 'unreadable']),
    resultIds: [...s.resultIds].sort(),
    results: [...s.results.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, r]) => [id, r.ok ? r.entry.state : 'unreadable']),
    quarantine: [...s.quarantine].map((q) => q.node).sort().map((node) => [node, s.quarantine.find((q) => q.node === node)!.reason]),
  });
}

/** A small deterministic PRNG, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => { x = (x * 1103515245 + 12345) % 2 ** 31; return x / 2 ** 31; };
}

for (const seed of [17, 42, 1234]) test(`after random writes and failovers the mirror equals the store, node by node (seed ${seed})`, async (t) => {
  const server = new FakeZkServer();
  const writer = new FakeZkClient(server);
  const client = new FakeZkClient(server);
  const mirror = mirrorOf(client);
  mirror.start(); // before the folders exist: it waits for their creation
  await writer.mkdirp('/jobgraphs');
  await writer.mkdirp('/jobresults');
  await writer.mkdirp('/quarantine/jobgraphs');
  const next = random(seed);
  const pick = (n: number): number => 1 + Math.floor(next() * n);
  for (let round = 0; round < 12; round++) {
    const leading = round % 3 === 2; // every third round the mirror's replica "leads": paused, then caught up
    if (leading) mirror.stop();
    for (let i = 0; i < 25; i++) {
      const n = pick(30);
      const op = Math.floor(next() * 6);
      if (op === 0 && !server.nodes.has(`/jobgraphs/${jobId(n)}`)) await writer.create(`/jobgraphs/${jobId(n)}`, envelope(n, `job-${n}-r${round}`));
      else if (op === 1 && server.nodes.has(`/jobgraphs/${jobId(n)}`)) await writer.delete(`/jobgraphs/${jobId(n)}`);
      else if (op === 2 && !server.nodes.has(`/jobresults/${jobId(n)}`)) await writer.create(`/jobresults/${jobId(n)}`, result(n, 'dirty'));
      else if (op === 3 && server.nodes.has(`/jobresults/${jobId(n)}`)) await writer.set(`/jobresults/${jobId(n)}`, result(n, 'clean'));
      else if (op === 4 && server.nodes.has(`/jobresults/${jobId(n)}`)) await writer.delete(`/jobresults/${jobId(n)}`);
      else if (op === 5) {
        // Quarantine records are named by content (as the store names them): a new record is a new name.
        const existing = server.children('/quarantine/jobgraphs').find((q) => q.startsWith(`q-${n}-`));
        if (existing) await writer.delete(`/quarantine/jobgraphs/${existing}`);
        else await writer.create(`/quarantine/jobgraphs/q-${n}-${round}-${i}`, JSON.stringify({ jobId: jobId(n), reason: `r${round}`, quarantinedAt: new Date(round).toISOString() }));
      }
    }
    if (leading) {
      // A grant: catch up at once, compared right away (no waiting for watches).
      t.is(seen(await mirror.catchUp()), expected(server), `round ${round}: caught up on grant`);
      mirror.start();
    } else {
      await eventually(`round ${round}: the mirror follows the store`, () => seen(mirror.snapshot()) === expected(server), 3000).catch((e) => { t.log(seen(mirror.snapshot())); t.log(expected(server)); throw e; });
    }
  }
  t.is(seen(mirror.snapshot()), expected(server));
  mirror.stop();
});

/** Folders made, `graphs` graphs stored, a mirror started and synced on a client that records its requests. */
async function syncedMirror(graphs: number, logger?: EventLogger) {
  const server = new FakeZkServer();
  const writer = new FakeZkClient(server);
  await writer.mkdirp('/jobgraphs');
  await writer.mkdirp('/jobresults');
  await writer.mkdirp('/quarantine/jobgraphs');
  for (let n = 1; n <= graphs; n++) await writer.create(`/jobgraphs/${jobId(n)}`, envelope(n));
  const client = new FakeZkClient(server);
  const mirror = mirrorOf(client, logger);
  mirror.start();
  await eventually('synced', () => mirror.status().state === 'synced');
  /** The requests of one catch-up, as "op path", sorted; and how many reads it counted. */
  const catchUp = async (): Promise<{ calls: string[]; reads: number; snapshot: MirrorSnapshot<JobGraph> }> => {
    const [from, reads] = [client.calls.length, mirror.reads];
    const snapshot = await mirror.catchUp();
    return { calls: client.calls.slice(from).map((c) => `${c.op} ${c.path}`).sort(), reads: mirror.reads - reads, snapshot };
  };
  return { server, writer, client, mirror, catchUp };
}

/** What a catch-up asks when nothing changed (the fake does not record the sync). */
const STATS = ['exists /jobgraphs', 'exists /jobresults', 'exists /quarantine/jobgraphs'].sort();

test('a mirror that is current catches up with a sync and three stats: nothing is listed or read', async (t) => {
  const { mirror, catchUp } = await syncedMirror(50);
  mirror.stop();
  const { calls, reads, snapshot } = await catchUp();
  t.deepEqual(calls, STATS);
  t.is(reads, 4, 'the sync and three stats');
  t.is(snapshot.graphs.size, 50);
  t.deepEqual([...snapshot.graphIds].sort(), Array.from({ length: 50 }, (_, i) => jobId(i + 1)));
  // Unchanged again, with the mirror running this time.
  mirror.start();
  await eventually('synced', () => mirror.status().state === 'synced');
  t.deepEqual((await catchUp()).calls, STATS);
});

test('a change in one folder re-lists only that folder and reads only its new nodes', async (t) => {
  const { writer, mirror, catchUp } = await syncedMirror(50);
  mirror.stop();
  await writer.create(`/jobgraphs/${jobId(51)}`, envelope(51));
  let caught = await catchUp();
  t.deepEqual(caught.calls, [...STATS, 'getChildren /jobgraphs', `get /jobgraphs/${jobId(51)}`].sort());
  t.is(caught.snapshot.graphs.size, 51);
  t.true(caught.snapshot.graphIds.includes(jobId(51)));

  await writer.create(`/jobresults/${jobId(7)}`, result(7, 'dirty'));
  await writer.create(`/jobresults/${jobId(99)}`, result(99, 'clean')); // no graph: only its name is kept
  caught = await catchUp();
  t.deepEqual(caught.calls, [...STATS, 'getChildren /jobresults', `get /jobresults/${jobId(7)}`].sort());
  t.deepEqual([...caught.snapshot.resultIds].sort(), [jobId(7), jobId(99)]);
  t.deepEqual([...caught.snapshot.results.keys()], [jobId(7)]);

  await writer.create('/quarantine/jobgraphs/q-1', JSON.stringify({ jobId: jobId(1), reason: 'bad', quarantinedAt: new Date(0).toISOString() }));
  caught = await catchUp();
  t.deepEqual(caught.calls, [...STATS, 'getChildren /quarantine/jobgraphs', 'get /quarantine/jobgraphs/q-1'].sort());
  t.deepEqual(caught.snapshot.quarantine.map((q) => q.reason), ['bad']);

  // A folder deleted and made again with as many child changes has the same cversion, not the same czxid.
  await writer.delete('/quarantine/jobgraphs/q-1');
  await writer.delete('/quarantine/jobgraphs');
  await writer.mkdirp('/quarantine/jobgraphs');
  await writer.create('/quarantine/jobgraphs/q-2', JSON.stringify({ jobId: jobId(2), reason: 'worse', quarantinedAt: new Date(0).toISOString() }));
  caught = await catchUp();
  t.deepEqual(caught.snapshot.quarantine.map((q) => q.reason), ['worse']);
});

test('a graph or result changed while the mirror is stopped is read again at catch-up, without a listing', async (t) => {
  const { writer, mirror, catchUp } = await syncedMirror(10);
  await writer.create(`/jobresults/${jobId(4)}`, result(4, 'dirty'));
  await eventually('result mirrored', () => mirror.snapshot().results.has(jobId(4)));
  await eventually('synced', () => mirror.status().state === 'synced');
  mirror.stop();
  // Graphs are immutable in the product; an operator may still replace one. Its data watch fires while stopped.
  await writer.set(`/jobgraphs/${jobId(3)}`, envelope(3, 'replaced'));
  await writer.set(`/jobresults/${jobId(4)}`, result(4, 'clean'));
  const { calls, snapshot } = await catchUp();
  t.deepEqual(calls, [...STATS, `get /jobgraphs/${jobId(3)}`, `get /jobresults/${jobId(4)}`].sort());
  const graph = snapshot.graphs.get(jobId(3));
  t.is(graph?.ok ? graph.envelope.graph.name : null, 'replaced');
  const stored = snapshot.results.get(jobId(4));
  t.is(stored?.ok ? stored.entry.state : null, 'clean');
  t.is(snapshot.graphIds.length, 10);
});

test('a graph whose re-read failed while running (its data watch fired) is read by catch-up', async (t) => {
  const { writer, client, mirror, catchUp } = await syncedMirror(5);
  // The re-read fails once: catch-up must read it itself, not report the graph missing.
  client.failNext('get', `/jobgraphs/${jobId(2)}`, ZK_CODES.CONNECTIONLOSS);
  await writer.set(`/jobgraphs/${jobId(2)}`, envelope(2, 'second'));
  await eventually('the failed re-read leaves the mirror loading', () => mirror.status().state === 'loading');
  mirror.stop();
  const { calls, snapshot } = await catchUp();
  t.deepEqual(calls, [...STATS, `get /jobgraphs/${jobId(2)}`].sort());
  const graph = snapshot.graphs.get(jobId(2));
  t.is(graph?.ok ? graph.envelope.graph.name : null, 'second');
});

test('status: loading until every folder is listed and read, then synced (logged once per start), off once stopped', async (t) => {
  const server = new FakeZkServer();
  const writer = new FakeZkClient(server);
  await writer.mkdirp('/jobgraphs');
  await writer.mkdirp('/jobresults');
  for (let n = 1; n <= 20; n++) await writer.create(`/jobgraphs/${jobId(n)}`, envelope(n));
  const client = new FakeZkClient(server);
  const logger = new RecordingLogger();
  const mirror = mirrorOf(client, logger);
  t.like(mirror.status(), { state: 'off', syncedAt: null });
  client.failNext('getChildren', '/jobgraphs', ZK_CODES.CONNECTIONLOSS);
  mirror.start();
  t.like(mirror.status(), { state: 'loading', syncedAt: null });
  // The failed listing keeps it loading until the session comes back (the mirror lists again then).
  await eventually('results listed', () => client.calls.some((c) => c.path === '/jobresults'));
  t.is(mirror.status().state, 'loading');
  client.suspend();
  client.reconnect();
  await eventually('synced', () => mirror.status().state === 'synced');
  client.suspend();
  t.is(mirror.status().state, 'loading', 'cut off from ZooKeeper, it may miss events');
  client.reconnect();
  await eventually('synced after the reconnect', () => mirror.status().state === 'synced');
  const status = mirror.status();
  t.like(status, { graphs: 20, results: 0, quarantine: 0 });
  t.true(typeof status.syncedAt === 'number' && status.syncedAt > 0);
  await writer.create(`/jobgraphs/${jobId(21)}`, envelope(21));
  await eventually('the new graph', () => mirror.status().graphs === 21 && mirror.status().state === 'synced');
  const synced = logger.events.filter((e) => e.event === 'mirror.synced');
  t.is(synced.length, 1, 'one event per start, not per change');
  t.like(synced[0], { level: 'info', fields: { graphs: 20, results: 0, quarantine: 0 } });
  t.is(typeof synced[0].fields.ms, 'number');
  mirror.stop();
  t.like(mirror.status(), { state: 'off', syncedAt: null, graphs: 21 });
  mirror.start();
  await eventually('synced again', () => mirror.status().state === 'synced');
  t.is(logger.events.filter((e) => e.event === 'mirror.synced').length, 2, 'logged again after a new start');
  mirror.stop();
});

test('/health shows the mirror status on every role, null without a mirror', async (t) => {
  const f = fakeRestDeps();
  const get = (path: string) => inject(createApp(f.deps).callback(), { path });
  t.is((await get('/health')).json().mirror, null);
  const { mirror } = await syncedMirror(3);
  Object.assign(f.dispatcher, { mirror });
  t.like((await get('/health')).json(), { role: 'leader', mirror: { state: 'synced', graphs: 3, results: 0, quarantine: 0 } });
  mirror.stop();
  t.like((await get('/health')).json(), { mirror: { state: 'off', graphs: 3 } });
  asStandby(f);
  mirror.start();
  await eventually('synced', () => mirror.status().state === 'synced');
  const health = await get('/health');
  t.is(health.status, 429, 'status codes unchanged');
  t.like(health.json(), { role: 'standby', mirror: { state: 'synced', graphs: 3 } });
  mirror.stop();
});

test('a Dispatcher with a standby mirror recovers every job from it and reads no graph again on grant', async (t) => {
  const server = new FakeZkServer();
  const writer = new FakeZkClient(server);
  await writer.mkdirp('/jobgraphs');
  await writer.mkdirp('/jobresults');
  for (let n = 1; n <= 20; n++) await writer.create(`/jobgraphs/${jobId(n)}`, envelope(n));
  await writer.create(`/jobresults/${jobId(20)}`, result(20, 'dirty'));
  const client = new FakeZkClient(server);
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), { contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1' } });
  const dispatcher = new Dispatcher({ client, election, limits: LIMITS, jobstore: { maxCapacity: 10, expirationMs: 60000 },
    jobMasterFactory: (ctx) => new PassiveJobMaster(ctx), standbyMirror: true });
  await eventually('mirrored', () => dispatcher.mirror!.snapshot().graphs.size === 20 && dispatcher.mirror!.snapshot().results.size === 1);
  const before = client.calls.length;
  election.start(dispatcher);
  await eventually('leader', () => dispatcher.role === 'leader', 10000);
  const graphReads = client.calls.slice(before).filter((c) => c.op === 'get' && c.path.startsWith('/jobgraphs/'));
  t.deepEqual(graphReads, [], 'the graphs came from the mirror');
  t.is(dispatcher.listJobs().length, 20);
  t.deepEqual(dispatcher.listJobs().filter((j) => j.status === 'FINISHED').map((j) => j.id), [jobId(20)], 'the ended job is not run again');
  await eventually('its cleanup finished', () => !server.nodes.has(`/jobgraphs/${jobId(20)}`));
  await election.close();
  dispatcher.close();
});
