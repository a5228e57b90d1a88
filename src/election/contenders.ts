import { sortBySequence } from './zk-driver';
import { LATCH_PATH } from '../zk/layout';
import { ZooKeeperClient } from '../zk/client';
import { join, sequenceOf } from '../zk/paths';
import { sealOf } from '../zk/sealed';
import { CONTENDER_CONTEXT } from './trust';

export interface ContenderEntry { node: string; sequence: number; info: Record<string, unknown> | null }

/** Every contender in latch order (the first is the leader or about to be). For `/replicas`. */
export async function listContenders(client: ZooKeeperClient): Promise<ContenderEntry[]> {
  const children = sortBySequence(await client.getChildren(LATCH_PATH).catch(() => []));
  const entries = await Promise.all(children.map(async (node) => {
    try {
      const path = join(LATCH_PATH, node);
      const { data } = await client.get(path);
      // Contender data that does not verify describes nobody: shown as unknown.
      const opened = sealOf(client).open(CONTENDER_CONTEXT, path, data);
      return { node, sequence: sequenceOf(node), info: opened.ok ? opened.value : null };
    } catch {
      return { node, sequence: sequenceOf(node), info: null };
    }
  }));
  return entries;
}
