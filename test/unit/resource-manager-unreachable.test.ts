/**
 * Regression (found by the taskmanager-loss drill): a TaskManager that crashed stays registered until
 * heartbeat.timeout; every restart placed on it in the meantime failed to deploy again, so one crash
 * burned a job's whole restart budget and failed it. A transport failure now keeps the TaskManager out
 * of allocation until it is heard from again.
 */
import test from 'ava';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { spreadStrategy } from '../../src/resources/allocation';
import { DeployRefusedError, ResourceManager } from '../../src/resources/resource-manager';
import { FakeClock } from '../helpers/fake-clock';
import { freePorts } from '../../src/util/ports';

const JOB = 'c'.repeat(32);

test('a TaskManager whose deploy failed in transport gets no new work until it heartbeats again', async (t) => {
  const accepting = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end('{"state":"DEPLOYING"}'); });
  });
  await new Promise<void>((resolve) => accepting.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => accepting.close(() => resolve())));
  const [deadPort] = await freePorts(1); // nobody listens there: ECONNREFUSED, like a crashed TaskManager

  const clock = new FakeClock();
  const rm = new ResourceManager({ epoch: 1, heartbeatTimeoutMs: 60_000, clock, strategy: spreadStrategy });
  rm.start();
  t.teardown(() => rm.stop());
  await rm.register({ taskManagerId: 'dead', host: 'h', address: `http://127.0.0.1:${deadPort}`, slots: 4, epoch: 1, tasks: [] });
  await clock.advance(10);
  await rm.register({ taskManagerId: 'alive', host: 'h', address: `http://127.0.0.1:${(accepting.address() as AddressInfo).port}`, slots: 4, epoch: 1, tasks: [] });

  // Spread prefers the older of two empty TaskManagers: the dead one.
  const first = { jobId: JOB, vertexId: 'v', subtask: 0, attempt: 0 };
  t.is(rm.allocate(first), 'dead');
  await t.throwsAsync(rm.deploy('dead', { ...first, parallelism: 1, task: { type: 'sleep', ms: 1 } }), { message: /ECONNREFUSED/ });
  rm.release('dead', first);

  // Restarts go elsewhere, however many there are, while the dead one stays silent.
  for (let attempt = 1; attempt <= 5; attempt++) {
    const retry = { ...first, attempt };
    t.is(rm.allocate(retry), 'alive');
    await rm.deploy('alive', { ...retry, parallelism: 1, task: { type: 'sleep', ms: 1 } });
    rm.release('alive', retry);
  }

  // Heard from again (a heartbeat after the failure): it is a candidate once more.
  await clock.advance(10);
  rm.heartbeat('dead', { epoch: 1, running: [] });
  t.is(rm.allocate({ ...first, subtask: 1 }), 'dead');
});

test('a deploy refused with 503 (the TaskManager ran nothing) is a DeployRefusedError; its heartbeat brings it back and wakes waiting jobs', async (t) => {
  const refusing = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = 503;
      res.setHeader('content-type', 'application/json');
      res.end('{"errors":["this TaskManager just resumed from a stall; a deploy sent meanwhile may be stale"]}');
    });
  });
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => refusing.close(() => resolve())));
  const clock = new FakeClock();
  const rm = new ResourceManager({ epoch: 1, heartbeatTimeoutMs: 60_000, clock, strategy: spreadStrategy });
  rm.start();
  t.teardown(() => rm.stop());
  await rm.register({ taskManagerId: 'stalled', host: 'h', address: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`, slots: 2, epoch: 1, tasks: [] });
  let wakeups = 0;
  rm.onResourcesChanged(() => { wakeups++; });

  const id = { jobId: JOB, vertexId: 'v', subtask: 0, attempt: 0 };
  t.is(rm.allocate(id), 'stalled');
  const err = await t.throwsAsync(rm.deploy('stalled', { ...id, parallelism: 1, task: { type: 'sleep', ms: 1 } }));
  t.true(err instanceof DeployRefusedError, String(err));
  t.regex(err!.message, /refused the deploy without running it: 503: this TaskManager just resumed/);
  rm.release('stalled', id);
  const before = wakeups;
  t.is(rm.allocate({ ...id, attempt: 1 }), null, 'no new work until it is heard from again');

  await clock.advance(10);
  rm.heartbeat('stalled', { epoch: 1, running: [] });
  t.true(wakeups > before, 'jobs waiting for a slot are told');
  t.is(rm.allocate({ ...id, attempt: 1 }), 'stalled');
});
