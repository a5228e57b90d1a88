import { sortBySequence } from './zk-driver';
import { LATCH_PATH } from '../zk/layout';
import { ZkClient } from '../zk/client';
import { join, sequenceOf } from '../zk/paths';

export interface ContenderEntry { node: string; sequence: number; info: Record<string, unknown> | null }

/** Every contender in latch order (the first is the leader or about to be). For `/replicas`. */
export async function listContenders(client: ZkClient): Promise<ContenderEntry[]> {
  const children = sortBySequence(await client.getChildren(LATCH_PATH).catch(() => []));
  const entries = await Promise.all(children.map(async (node) => {
    try {
      const { data } = await client.get(join(LATCH_PATH, node));
      return { node, sequence: sequenceOf(node), info: JSON.parse(data.toString('utf8')) as Record<string, unknown> };
    } catch {
      return { node, sequence: sequenceOf(node), info: null };
    }
  }));
  return entries;
}
