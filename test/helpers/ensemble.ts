/**
 * Test helpers around a real ZooKeeper ensemble. Each test file starts its own 3-server ensemble
 * on loopback (so chaos in one file never disturbs another) and each test uses a unique chroot.
 */
import type { TestFn } from 'ava';
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { ZooKeeperClient, ZkClientOptions } from '../../src/zk/client';

export async function startEnsemble(servers = 3): Promise<LocalEnsemble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-zk-'));
  return LocalEnsemble.start({ dir, servers, tickTime: 100, minSessionTimeoutMs: 400, maxSessionTimeoutMs: 30000 });
}

/** What ensembleHooks keeps: the file's ensemble, and every cluster its tests start (stopped after the file). */
export interface ClusterContext<C extends { stop(): Promise<void> }> { ensemble: LocalEnsemble; clusters: C[] }

/** One ensemble per test file, started before its tests; the clusters they add and then the ensemble stopped after. */
export function ensembleHooks<C extends { stop(): Promise<void> }>(test: TestFn<ClusterContext<C>>): void {
  test.before(async (t) => {
    t.context.ensemble = await startEnsemble();
    t.context.clusters = [];
  });
  test.after.always(async (t) => {
    await Promise.all((t.context.clusters ?? []).map((c) => c.stop()));
    await t.context.ensemble?.stop({ removeData: true });
  });
}

/** A fresh chroot path, unique per call: tests never see each other's nodes. */
export function uniqueRoot(prefix = 'test'): string {
  return `/ha-dispatcher-test/${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

export async function connectedClient(options: ZkClientOptions): Promise<ZooKeeperClient> {
  const client = new ZooKeeperClient(options);
  await client.waitUntilConnected(15000);
  return client;
}

export { eventually } from '../../src/util/poll';
