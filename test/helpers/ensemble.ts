/**
 * Test helpers around a real ZooKeeper ensemble. Each test file starts its own 3-server ensemble
 * on loopback (so chaos in one file never disturbs another) and each test uses a unique chroot.
 */
import type { TestFn } from 'ava';
import * as crypto from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { EnsembleOptions, LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { ZooKeeperClient, NativeZooKeeperClient, ZooKeeperClientOptions } from '../../src/zk/client';

/** Test defaults: 3 servers, tickTime 100 ms, sessions of 400 ms – 30 s, data in a fresh temporary directory. */
export async function startEnsemble(options: Partial<EnsembleOptions> = {}): Promise<LocalEnsemble> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ha-zk-'));
  return LocalEnsemble.start({ servers: 3, tickTime: 100, minSessionTimeoutMs: 400, maxSessionTimeoutMs: 30000, ...options, dir });
}

export interface Stoppable { stop(): Promise<void> }

/**
 * What ensembleHooks keeps for a test file: its ensemble, every cluster its tests add to `clusters`
 * and every ZooKeeper client they add to `clients`; after the file the clients are closed, then the
 * clusters stopped, then the ensemble. Per-test cleanup uses `t.teardown` instead.
 */
export interface ClusterContext<C extends Stoppable = Stoppable> { ensemble: LocalEnsemble; clusters: C[]; clients: ZooKeeperClient[] }

/**
 * One ensemble per test file, started before its tests (`options` override the test defaults of
 * startEnsemble); what the file registered in the context, and then the ensemble, stopped after.
 * The before hook is serial, so before hooks the file adds later start only once the ensemble runs.
 */
export function ensembleHooks<X extends ClusterContext<Stoppable>>(test: TestFn<X>, options: Partial<EnsembleOptions> = {}): void {
  test.serial.before(async (t) => {
    t.context.clusters = [] as X['clusters'];
    t.context.clients = [];
    t.context.ensemble = await startEnsemble(options);
  });
  test.after.always(async (t) => {
    await Promise.all((t.context.clients ?? []).map((c) => c.close().catch(() => undefined)));
    await Promise.all((t.context.clusters ?? []).map((c) => c.stop()));
    await t.context.ensemble?.stop({ removeData: true });
  });
}

/** A fresh chroot path, unique per call: tests never see each other's nodes. */
export function uniqueRoot(prefix = 'test'): string {
  return `/ha-dispatcher-test/${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

export async function connectedClient(options: ZooKeeperClientOptions): Promise<NativeZooKeeperClient> {
  const client = new NativeZooKeeperClient(options);
  await client.waitUntilConnected(15000);
  return client;
}

export { eventually } from '../../src/util/poll';
