/**
 * The standby mirror against an in-memory ZooKeeper: after random writes (graphs, results, quarantine
 * records created, changed, deleted) and failovers (the mirror paused while "leading", then caught
 * up), it equals the store, compared node by node; catching up reads only what changed; a Dispatcher
 * with a mirror recovers from it.
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

function mirrorOf(client: FakeZkClient): StandbyMirror<JobGraph> {
  return new StandbyMirror(client, new JobGraphStore(client, readOnly, parse), new JobResultStore(client, readOnly));
}

/** The store as the mirror should see it, read straight from the server's nodes. */
function expected(server: FakeZkServer): string {
  const under = (folder: string): string[] => server.children(folder).sort();
  const data = (path: string): string => server.nodes.get(path)!.data.toString();
  const graphs = server.nodes.has('/jobgraphs') ? under('/jobgraphs') : [];
  const results = server.nodes.has('/jobresults') ? under('/jobresults') : [];
  const quarantine = server.nodes.has('/quarantine/jobgraphs') ? under('/quarantine/jobgraphs') : [];
  return JSON.stringify({
    graphs: graphs.map((id) => [id, (JSON.parse(data(`/jobgraphs/${id}`)) as { graph: JobGraph }).graph.name]),
    resultIds: results,
    results: graphs.filter((id) => results.includes(id)).map((id) => [id, JSON.parse(data(`/jobresults/${id}`)).state]),
    quarantine: quarantine.map((node) => [node, JSON.parse(data(`/quarantine/jobgraphs/${node}`)).reason]),
  });
}

function seen(s: MirrorSnapshot<JobGraph>): string {
  return JSON.stringify({
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

test('a mirror that is current catches up with a sync and three listings; one new graph costs one more read', async (t) => {
  const server = new FakeZkServer();
  const writer = new FakeZkClient(server);
  await writer.mkdirp('/jobgraphs');
  await writer.mkdirp('/jobresults');
  await writer.mkdirp('/quarantine/jobgraphs');
  for (let n = 1; n <= 50; n++) await writer.create(`/jobgraphs/${jobId(n)}`, envelope(n));
  const client = new FakeZkClient(server);
  const mirror = mirrorOf(client);
  mirror.start();
  await eventually('mirrored', () => mirror.snapshot().graphs.size === 50);
  mirror.stop();
  let before = client.calls.length;
  await mirror.catchUp();
  t.deepEqual(client.calls.slice(before).map((c) => `${c.op} ${c.path}`).sort(), ['getChildren /jobgraphs', 'getChildren /jobresults', 'getChildren /quarantine/jobgraphs']);
  await writer.create(`/jobgraphs/${jobId(51)}`, envelope(51));
  before = client.calls.length;
  const snapshot = await mirror.catchUp();
  t.deepEqual(client.calls.slice(before).filter((c) => c.op === 'get').map((c) => c.path), [`/jobgraphs/${jobId(51)}`]);
  t.is(snapshot.graphs.size, 51);
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
