/**
 * The internal RPC call helper against a peer that never answers (a frozen leader). Regression (chaos
 * soak): with `AbortSignal.any([AbortSignal.timeout(…), callerSignal])` the timeout was lost after a
 * garbage collection on Node 20, the call hung for good and the TaskManager stopped heartbeating.
 */
import test from 'ava';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { rpcCall, RpcError } from '../../src/taskmanager/rpc';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A server that accepts requests and never answers; closed after the test. */
async function silentPeer(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const server = http.createServer(() => { /* never answers */ });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal/tasks/status`;
}

/** Settles `p` while collecting garbage every 20 ms; 'pending' if it has not settled within `ms`. */
async function settleUnderGc<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  const collector = setInterval(gc, 20);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<'pending'>((resolve) => { timer = setTimeout(() => resolve('pending'), ms); })]);
  } finally {
    clearInterval(collector);
    clearTimeout(timer);
  }
}

test('a call with a caller signal still times out when the peer never answers, garbage collection or not', async (t) => {
  const url = await silentPeer(t);
  const caller = new AbortController();
  const started = Date.now();
  const outcome = await settleUnderGc(rpcCall('POST', url, { reports: [] }, { timeoutMs: 300, signal: caller.signal }).then(
    () => 'answered', (err: unknown) => err), 5000);
  t.true(outcome instanceof RpcError, `expected a timeout, got ${String(outcome)}`);
  t.regex((outcome as RpcError).message, /no answer within 300 ms/);
  t.true(Date.now() - started < 5000);
});

test('aborting the caller signal ends a call at once; a signal aborted beforehand fails the call at once', async (t) => {
  const url = await silentPeer(t);
  const caller = new AbortController();
  const call = rpcCall('POST', url, {}, { timeoutMs: 60_000, signal: caller.signal }).then(() => 'answered', (err: unknown) => err);
  setTimeout(() => caller.abort(new Error('the leader changed')), 100);
  const outcome = await settleUnderGc(call, 5000);
  t.true(outcome instanceof RpcError);
  t.regex((outcome as RpcError).message, /the leader changed/);

  const already = new AbortController();
  already.abort(new Error('gone before the call'));
  const early = await settleUnderGc(rpcCall('GET', url, undefined, { timeoutMs: 60_000, signal: already.signal }).then(() => 'answered', (err: unknown) => err), 5000);
  t.true(early instanceof RpcError);
});
