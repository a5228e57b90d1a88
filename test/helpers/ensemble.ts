/**
 * Test helpers around a real ZooKeeper ensemble. Each test file starts its own 3-server ensemble
 * on loopback (so chaos in one file never disturbs another) and each test uses a unique chroot.
 */
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
