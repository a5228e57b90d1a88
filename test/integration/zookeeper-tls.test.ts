/**
 * The client↔ZooKeeper leg encrypted (docs/ARCHITECTURE.md, "Encrypted ZooKeeper connection"): a real
 * ZooKeeper serving only a TLS client port (secureClientPort, client certificates required, no
 * clientPort at all), stunnel in client mode on loopback in front of it, and a replica and a
 * TaskManager given only stunnel's ports run a job to FINISHED. Plaintext to the server gets nothing.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fourLetterWord } from '../../src/ensemble/four-letter-word';
import { eventually } from '../../src/util/poll';
import { ExecutionCluster, shellTask, startCounts } from '../helpers/execution-cluster';
import { startTunneledEnsemble } from '../helpers/zookeeper-tls';

test('a replica and a TaskManager reach a TLS-only ZooKeeper through a local stunnel and run a job to FINISHED', async (t) => {
  const zk = await startTunneledEnsemble(1);
  t.teardown(() => zk.stop());
  const [server] = zk.ensemble.servers;

  // The server has no plaintext client port: only secureClientPort, with client certificates required.
  const zooCfg = fs.readFileSync(server.configFile, 'utf8');
  t.notRegex(zooCfg, /^clientPort\s*=/m, 'no plaintext clientPort configured');
  t.regex(zooCfg, new RegExp(`^secureClientPort=${server.clientPort}$`, 'm'));
  t.regex(zooCfg, /^ssl\.clientAuth=need$/m);
  t.false(zk.connectString.includes(`:${server.clientPort}`), 'processes are given the tunnel, not the server');
  // Plaintext to the server's only port: the TLS handshake never completes, so no answer.
  const plain = await fourLetterWord('127.0.0.1', server.clientPort, 'srvr', 5000).catch((err: Error) => `error: ${err.message}`);
  t.notRegex(plain, /Mode:/, 'a plaintext four-letter word gets no answer');
  t.regex(await fourLetterWord('127.0.0.1', server.clientPort, 'srvr', 5000, zk.probe), /Mode: standalone/, 'over TLS with a client certificate it answers');

  const cluster = await ExecutionCluster.start({ connect: zk.connectString, replicas: 1, taskManagers: 1 });
  t.teardown(() => cluster.stop());
  try {
    const starts = path.join(cluster.dir, 'starts.txt');
    const jobId = await cluster.submit({ name: 'through-the-tunnel', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 0.2') }] });
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED', 90_000);
    t.is(job.state, 'FINISHED');
    t.deepEqual([...startCounts(starts).entries()].sort(), [['work/0', 1], ['work/1', 1]]);

    // Every session came through the tunnel: stunnel accepted them and the server counts them on its TLS port.
    t.regex(fs.readFileSync(zk.stunnelLog, 'utf8'), /Service \[zookeeper-1\] accepted connection from 127\.0\.0\.1/);
    const alive = await eventually('the replica\'s and the TaskManager\'s sessions on the TLS port', async () => {
      const mntr = await fourLetterWord('127.0.0.1', server.clientPort, 'mntr', 5000, zk.probe);
      const n = Number(/zk_num_alive_connections\s+(\d+)/.exec(mntr)?.[1] ?? 0);
      return n >= 3 ? n : null; // the replica, the TaskManager and this probe
    }, 20_000, 200);
    t.true(alive >= 3);
  } catch (err) {
    t.log(cluster.logs());
    t.log(fs.readFileSync(zk.stunnelLog, 'utf8').slice(-3000));
    throw err;
  }
});
