/**
 * Redirect: the same `GET /jobs/<id>` sent to a standby (answers 307 to the leader) and to the leader
 * (answers the job), alternating one by one over keep-alive connections so both see the same
 * machine noise. Latency = request written → answer read, in this process.
 */
import { BenchCluster } from '../lib/processes';
import { HttpClient } from '../lib/http';
import { JobIds, typicalGraph } from '../lib/jobs';
import { nowMs, summarize } from '../lib/stats';
import { submitAll } from '../lib/submit';
import { BenchContext, Scenario, ScenarioOutput, target } from '../lib/types';

const SIZES = {
  full: { requests: 3000, warmup: 300, storedJobs: 100 },
  smoke: { requests: 30, warmup: 5, storedJobs: 5 },
};

export const redirect: Scenario = {
  name: 'redirect',
  title: 'Standby redirect',
  budgetMs: (mode) => (mode === 'full' ? 90_000 : 20_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const cluster = await BenchCluster.create({ connect: ctx.connect, logDir: ctx.logDir, replicas: 2, sessionTimeoutMs: 4000 });
    ctx.defer(() => cluster.stop());
    await cluster.start();
    const leader = await cluster.leader();
    const standby = cluster.replicas.find((r) => r !== leader)!;
    await cluster.standbyReady(standby);
    const ids = new JobIds();
    const graphs = Array.from({ length: size.storedJobs }, (_, i) => typicalGraph(ids.next(), i));
    await submitAll(leader.url, graphs, 16);
    const path = `/jobs/${String(graphs[Math.floor(graphs.length / 2)].jobId)}`;

    const toStandby = new HttpClient(1);
    const toLeader = new HttpClient(1);
    ctx.defer(() => { toStandby.close(); toLeader.close(); });
    const standbyMs: number[] = [];
    const leaderMs: number[] = [];
    let location = '';
    let leaderBytes = 0;
    let redirectBytes = 0;
    for (let i = 0; i < size.warmup + size.requests; i++) {
      const measured = i >= size.warmup;
      let t = nowMs();
      const r = await toStandby.request('GET', `${standby.url}${path}`);
      const rMs = nowMs() - t;
      if (r.status !== 307) throw new Error(`the standby answered ${r.status}, expected 307: ${r.text.slice(0, 200)}`);
      location = String(r.headers.location);
      redirectBytes = r.text.length;
      t = nowMs();
      const l = await toLeader.request('GET', `${leader.url}${path}`);
      const lMs = nowMs() - t;
      if (l.status !== 200) throw new Error(`the leader answered ${l.status}, expected 200: ${l.text.slice(0, 200)}`);
      leaderBytes = l.text.length;
      if (measured) {
        standbyMs.push(rMs);
        leaderMs.push(lMs);
      }
    }
    if (location !== `${leader.url}${path}`) throw new Error(`307 Location ${location}, expected ${leader.url}${path}`);
    const s = summarize(standbyMs, 3);
    const l = summarize(leaderMs, 3);
    ctx.log(`redirect: 307 p50 ${s.p50} p99 ${s.p99} ms; leader p50 ${l.p50} p99 ${l.p99} ms`);
    return {
      settings: { ...size, request: `GET ${path.replace(/[0-9a-f]{32}/, ':jobid')}`, order: 'alternating standby, leader; one keep-alive connection each' },
      summary: { redirect307Ms: s, leaderMs: l, redirectBodyBytes: redirectBytes, leaderBodyBytes: leaderBytes },
      trials: [],
      targets: [target('redirect.p99', "standby's 307 p99 ≤ leader's answer p99 (same GET)", s.p99, '<=', l.p99 ?? 0, 'ms')],
      notes: [],
    };
  },
};
