/**
 * The one place where the product checks a znode's size before writing it. ZooKeeper refuses a request
 * larger than its `jute.maxbuffer` (1 MiB by default) — and does so by dropping the whole connection
 * ("Len error"), which costs the leader its session and its term. So every store serializes first,
 * measures, and only then writes; a payload over the bound never leaves the process: it fails with
 * ZnodeTooLargeError (not a ZkError, so nobody mistakes it for a transient fault and retries it).
 */
import type { CreateMode, ZooKeeperClient } from '../zk/client';
import { NodeExistsError, NoNodeError } from '../zk/errors';

/** ZooKeeper's default `jute.maxbuffer`: the largest request (data + path + framing) a server accepts. */
export const ZOOKEEPER_MAX_BUFFER_BYTES = 1_048_576;

/**
 * The largest data any product znode may hold: jute.maxbuffer minus 48 KiB for the request's path,
 * ACL and framing (a path is at most a few hundred bytes), so a write at the bound is still accepted.
 */
export const ZNODE_WRITE_LIMIT_BYTES = ZOOKEEPER_MAX_BUFFER_BYTES - 49_152;

/** A write whose data would exceed the bound; never sent. Deterministic: retrying cannot help. */
export class ZnodeTooLargeError extends Error {
  override readonly name = 'ZnodeTooLargeError';
  constructor(readonly path: string, readonly bytes: number, readonly limit: number) {
    super(`znode ${path} would hold ${bytes} bytes, more than the ${limit} bytes allowed (ZooKeeper refuses requests over jute.maxbuffer ${ZOOKEEPER_MAX_BUFFER_BYTES}); the write was not made`);
  }
}

/** UTF-8 bytes of `data` as it would be stored. */
export function serializedSize(data: string | Buffer): number {
  return typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
}

/**
 * `data` as bytes, after checking it fits `limit` (bytes; default ZNODE_WRITE_LIMIT_BYTES, never above it).
 * @throws ZnodeTooLargeError naming `path` and the size.
 */
export function boundedPayload(path: string, data: string | Buffer, limit = ZNODE_WRITE_LIMIT_BYTES): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const bound = Math.min(limit, ZNODE_WRITE_LIMIT_BYTES);
  if (bytes.length > bound) throw new ZnodeTooLargeError(path, bytes.length, bound);
  return bytes;
}

export type BoundedWrite =
  /** Create the node (fails with NodeExistsError when it exists). */
  | { op: 'create'; mode?: CreateMode }
  /** setData, optionally conditional on `version`. */
  | { op: 'set'; version?: number }
  /** setData; when the node is absent, create it (persistent) with its parents. `guard` runs before each write. */
  | { op: 'upsert'; guard?: () => void };

/**
 * Writes `data` to `path` after the size check (boundedPayload).
 * @throws ZnodeTooLargeError before any request is sent; ZkError from the write itself.
 */
export async function writeBounded(client: ZooKeeperClient, path: string, data: string | Buffer, write: BoundedWrite, limit = ZNODE_WRITE_LIMIT_BYTES): Promise<void> {
  const payload = boundedPayload(path, data, limit);
  switch (write.op) {
    case 'create':
      await client.create(path, payload, write.mode ?? 'persistent');
      return;
    case 'set':
      await client.set(path, payload, write.version);
      return;
    case 'upsert': {
      write.guard?.();
      try {
        await client.set(path, payload);
        return;
      } catch (err) {
        if (!(err instanceof NoNodeError)) throw err;
      }
      const parent = path.slice(0, path.lastIndexOf('/'));
      if (parent) await client.mkdirp(parent);
      write.guard?.();
      try {
        await client.create(path, payload, 'persistent');
      } catch (err) {
        if (!(err instanceof NodeExistsError)) throw err;
        write.guard?.();
        await client.set(path, payload);
      }
    }
  }
}
