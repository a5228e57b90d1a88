/**
 * `ha-dispatcher local`, what `npm start` runs: the newcomer path end to end (its own 3-server
 * ensemble, 3 replicas, 2 TaskManagers, the demo job), then Ctrl-C after a drill left one replica
 * killed and one TaskManager frozen. A drill found that Ctrl-C then waited forever for the dead child
 * and left ZooKeeper running.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnClean } from '../../src/util/clean-spawn';
import { packageRoot } from '../../src/util/package-root';
import { isProcessAlive, killOnExit } from '../../src/util/process';
import { type ClientTls, requestJson } from '../../src/http/client';
import { eventually } from '../helpers/ensemble';
import { cli, commandLine, consecutiveFreePorts, descendants } from '../helpers/local-cluster';

/** A REST call to the local cluster: https with its throwaway CA, and its REST token. */
const call = (method: string, url: string, access: { token: string; tls: ClientTls }) =>
  requestJson(method, url, undefined, { timeoutMs: 10_000, ...access });

test('local runs the demo job to FINISHED; Ctrl-C after a killed replica and a frozen TaskManager stops every process', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-local-test-'));
  const base = await consecutiveFreePorts(3);
  const local = spawnClean(process.execPath, [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), 'local', '--dir', dir, '--port', String(base)],
    { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  killOnExit(local);
  let output = '';
  local.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  local.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => local.once('exit', (code, signal) => resolve({ code, signal })));
  let started: number[] = [];
  t.teardown(async () => {
    // A hung local cannot run its exit hooks once killed: end what it started here.
    for (const pid of new Set([...descendants(local.pid!), ...started, local.pid!])) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  try {
    await eventually('the demo job ended', () => /Demo job ended (\w+)\./.exec(output)?.[1] ?? null, 150_000, 200)
      .then((state) => t.is(state, 'FINISHED'));
    t.regex(output, new RegExp(`Replicas: +https://127\\.0\\.0\\.1:${base} +https://127\\.0\\.0\\.1:${base + 1} +https://127\\.0\\.0\\.1:${base + 2}`));
    // Every process's command line and log file; TaskManager ids are their log names.
    t.regex(output, /replica-1 +npx ha-dispatcher dispatcher .*-D replica\.id=replica-1/);
    t.regex(output, new RegExp(`log: ${dir}/taskmanager-2\\.log`));
    t.regex(output, /taskmanager-2 +npx ha-dispatcher taskmanager .*-D taskmanager\.id=taskmanager-2/);
    // ZooKeeper state is sealed with a throwaway key only the local processes can read.
    t.is(fs.statSync(path.join(dir, 'state-key')).mode & 0o777, 0o600);
    t.regex(output, /-D high-availability\.zookeeper\.state-key-file=\S+state-key/);
    t.notRegex(fs.readFileSync(path.join(dir, 'replica-1.log'), 'utf8'), /security\.state\.unauthenticated/);
    // The banner's command works as printed (TLS with the throwaway CA, the REST token); plain http and no token do not.
    const printed = /Try: +npx ha-dispatcher (list .*)/.exec(output)?.[1];
    if (!printed) throw new Error('no "Try:" line in the banner');
    const listed = await cli(printed.split(' '));
    t.is(listed.code, 0, listed.stderr);
    const noToken = await cli(printed.replace(/ --token-file \S+/, '').split(' '));
    t.is(noToken.code, 3, noToken.stderr);
    const plain = await cli(['list', '--url', `http://127.0.0.1:${base}`, '--timeout', '3000']);
    t.not(plain.code, 0, 'plain http to the TLS port is refused');

    // A second local on the same ports refuses at once, naming the port, and changes nothing in the first.
    const access = { token: fs.readFileSync(path.join(dir, 'rest-token'), 'utf8').trim(), tls: { ca: fs.readFileSync(path.join(dir, 'tls', 'ca.crt')) } };
    const url = `https://127.0.0.1:${base}`;
    const leaderBefore = (await call('GET', `${url}/leader`, access)).body;
    const second = await cli(['local', '--port', String(base), '--no-demo'], 30_000);
    t.not(second.code, 0);
    t.regex(second.stderr, new RegExp(`port ${base} \\(rest\\.port of replica-1\\) is already in use`));
    t.false(/Starting a local/.test(second.stdout), 'the second local started nothing');
    t.deepEqual((await call('GET', `${url}/leader`, access)).body, leaderBefore);
    const contenders = await call('GET', `${url}/replicas`, access);
    t.is(contenders.body.replicas.length, 3);

    // The runbook step "start replica-3 again", typed on local's stdin.
    local.stdin!.write('kill replica-3\n');
    await eventually('replica-3 left the latch', async () => (await call('GET', `${url}/replicas`, access)).body.replicas.length === 2, 30_000, 100);
    local.stdin!.write('restart replica-3\n');
    await eventually('replica-3 back in the latch', async () => {
      const r = await call('GET', `${url}/replicas`, access).catch(() => null);
      return r?.body?.replicas?.some((c: { replicaId?: string }) => c.replicaId === 'replica-3') ?? false;
    }, 60_000, 200);
    t.regex(output, /replica-3 restarted \(pid \d+\)/);

    started = descendants(local.pid!);
    const replica = started.find((pid) => commandLine(pid).includes('replica.id=replica-2'));
    const taskManager = started.find((pid) => commandLine(pid).includes(`${path.join(dir, 'taskmanager-1')}`));
    const zookeepers = started.filter((pid) => commandLine(pid).includes('QuorumPeerMain'));
    if (!replica || !taskManager) throw new Error(`replica-2 or taskmanager-1 not found among ${started.map(commandLine).join('\n')}`);
    t.is(zookeepers.length, 3);

    // The drill: one replica crashed, one TaskManager frozen.
    process.kill(replica, 'SIGKILL');
    await eventually('replica-2 gone', () => !isProcessAlive(replica), 10_000, 50);
    process.kill(taskManager, 'SIGSTOP');

    local.kill('SIGINT');
    const outcome = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 90_000).unref())]);
    t.deepEqual(outcome, { code: 0, signal: null }, 'local exited 0 after Ctrl-C');
    t.regex(output, /Stopped\./);
    const left = await eventually('every process local started has exited', () => {
      const alive = started.filter(isProcessAlive);
      return alive.length === 0 ? alive : null;
    }, 15_000, 100).catch(() => started.filter(isProcessAlive).map((pid) => `${pid}: ${commandLine(pid)}`));
    t.deepEqual(left, []);
  } catch (err) {
    t.log(output);
    throw err;
  }
});
