/**
 * Authenticated cluster state: the one place that seals what the product writes to ZooKeeper and
 * verifies what it reads back. A sealed value is the product's JSON object plus one field,
 * `"mac": "hmac-sha256:<hex>"`, an HMAC-SHA256 under the cluster's state key
 * (`high-availability.zookeeper.state-key-file`) over
 *
 *   "ha-dispatcher-state/1\n" + context + "\n" + canonicalJson(object without "mac")
 *
 * `context` names what the value is and where it belongs (e.g. `jobgraph:<jobId>`, `leader-info`), so a
 * sealed value copied to another node or another job does not verify there. ZooKeeper ACLs keep other
 * identities out of the cluster's nodes; the MAC also catches anything written by whoever holds the
 * ZooKeeper credentials but not the state key (an operator's zkCli, a foreign tool, an `open` ACL).
 *
 * Without a key values are written without a MAC and read as they are (the replica logs one start-up
 * warning, `security.state.unauthenticated`).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { ZooKeeperClient } from './client';
import { EventLogger, silentLogger } from '../util/logger';

/** The JSON field holding the MAC. */
export const MAC_FIELD = 'mac';
const MAC_PREFIX = 'hmac-sha256:';
const DOMAIN = 'ha-dispatcher-state/1';
/** A state key shorter than this (in bytes of the trimmed file) is refused: 32 bytes = 256 bits. */
export const MIN_STATE_KEY_BYTES = 32;

export type Opened<T> = { ok: true; value: T } | { ok: false; reason: string };

/** What a failed verification reports: the node, what it should have held, and why it was refused. */
export interface InvalidState { path: string; context: string; reason: string }

export interface StateSealOptions {
  logger?: EventLogger;
  /** Called once per refused value, after the `state.mac.invalid` event: for a metric. */
  onInvalid?: (invalid: InvalidState) => void;
}

export class StateSeal {
  private readonly key: Buffer | null;
  private readonly logger: EventLogger;
  private readonly onInvalid?: (invalid: InvalidState) => void;

  /** @param key the cluster's state key (null: unauthenticated state). */
  constructor(key: Buffer | null, options: StateSealOptions = {}) {
    if (key && key.length < MIN_STATE_KEY_BYTES) throw new Error(`a state key needs at least ${MIN_STATE_KEY_BYTES} bytes`);
    this.key = key;
    this.logger = options.logger ?? silentLogger;
    this.onInvalid = options.onInvalid;
  }

  /** True when values are sealed and verified. */
  get authenticated(): boolean { return this.key !== null; }

  /** The znode bytes for `value` (a JSON object; a `mac` field in it is replaced). */
  seal(context: string, value: object): string {
    const { [MAC_FIELD]: _ignored, ...body } = value as Record<string, unknown>;
    if (!this.key) return JSON.stringify(body);
    return JSON.stringify({ ...body, [MAC_FIELD]: MAC_PREFIX + this.mac(context, body) });
  }

  /**
   * Parses and verifies znode bytes read from `path`. Returns the object without its `mac` field, or
   * why it is refused: not a JSON object, or (with a key) a missing or wrong MAC — the latter also logs
   * `state.mac.invalid {path, context, reason}` and calls `onInvalid`.
   */
  open<T = Record<string, unknown>>(context: string, path: string, data: Buffer | string): Opened<T> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
    } catch (err) {
      return { ok: false, reason: `not JSON: ${(err as Error).message}` };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'not a JSON object' };
    const { [MAC_FIELD]: mac, ...body } = parsed as Record<string, unknown>;
    if (!this.key) return { ok: true, value: body as T };
    const reason = typeof mac !== 'string' || !mac.startsWith(MAC_PREFIX)
      ? 'no MAC: not written by a replica holding the cluster state key'
      : !timingSafeEqualHex(mac.slice(MAC_PREFIX.length), this.mac(context, body))
        ? 'MAC mismatch: changed after it was written, or written by someone without the cluster state key'
        : null;
    if (reason === null) return { ok: true, value: body as T };
    const invalid = { path, context, reason };
    this.logger.error('state.mac.invalid', { ...invalid });
    this.onInvalid?.(invalid);
    return { ok: false, reason: `state MAC invalid (${reason})` };
  }

  private mac(context: string, body: Record<string, unknown>): string {
    return crypto.createHmac('sha256', this.key!).update(`${DOMAIN}\n${context}\n${canonicalJson(body)}`).digest('hex');
  }
}

/** Seals nothing, verifies nothing: the state of a cluster without a state key (and of unit-test fakes). */
export const UNAUTHENTICATED_STATE = new StateSeal(null);

/** The seal a client's stores use: the one the client was built with, else unauthenticated. */
export function sealOf(client: Pick<ZooKeeperClient, 'seal'>): StateSeal {
  return client.seal ?? UNAUTHENTICATED_STATE;
}

/** JSON with object keys sorted at every level and no whitespace: equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object).sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Reads a state key file: its trimmed content is the key (e.g. 64 hex characters from
 * `openssl rand -hex 32`). Throws Error naming the file when it is unreadable or too short.
 */
export function readStateKey(file: string): Buffer {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the state key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const key = Buffer.from(text, 'utf8');
  if (key.length < MIN_STATE_KEY_BYTES) throw new Error(`the state key in ${file} has ${key.length} bytes; it needs at least ${MIN_STATE_KEY_BYTES} (e.g. openssl rand -hex 32)`);
  return key;
}

/** A fresh random state key in the file format readStateKey reads (64 hex characters). */
export function generateStateKey(): string {
  return crypto.randomBytes(32).toString('hex');
}

function timingSafeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}
