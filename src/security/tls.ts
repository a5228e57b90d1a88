/**
 * TLS for the two HTTP surfaces, from PEM files: the REST API (`security.ssl.rest.*`, server
 * authentication only) and the internal RPC (`security.ssl.internal.*`, mutual: every replica and
 * TaskManager presents a certificate signed by the cluster CA, as server and as client).
 *
 * Peer identity: a certificate names its holder by a SAN URI `urn:ha-dispatcher:<role>:<id>` (role
 * `replica` or `taskmanager`), else by its subject CN. The leader admits a TaskManager's registration,
 * heartbeat or report only when the body names the TaskManager id of the certificate it came with.
 */
import * as fs from 'node:fs';
import type { TLSSocket } from 'node:tls';
import type { Context, Middleware } from 'koa';
import { ConfigError } from '../util/errors';

export type PeerRole = 'replica' | 'taskmanager';

const URI_PREFIX = 'urn:ha-dispatcher:';

/** `urn:ha-dispatcher:<role>:<id>`: the SAN URI naming a process in its certificate. */
export function certificateUri(role: PeerRole, id: string): string {
  return `${URI_PREFIX}${role}:${id}`;
}

/** PEM material of one TLS endpoint: our certificate and key, and the CA(s) we trust for peers. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** Paths as configured; `keys` names the settings, so an unreadable file is reported by its key. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
  keys: { certFile: string; keyFile: string; caFile: string };
}

/**
 * Reads the PEM files (at start-up, once). Throws ConfigError naming the setting of a file that cannot
 * be read or holds no PEM block; never echoes file contents (a key is secret).
 */
export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  const read = (file: string, key: string, block: RegExp, what: string): Buffer => {
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch (err) {
      throw new ConfigError(key, `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (${file})`);
    }
    if (!block.test(data.toString('latin1'))) throw new ConfigError(key, `must be a PEM file holding ${what} (${file}; contents not shown)`);
    return data;
  };
  return {
    cert: read(files.certFile, files.keys.certFile, /-----BEGIN CERTIFICATE-----/, 'a certificate'),
    key: read(files.keyFile, files.keys.keyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'),
    ca: read(files.caFile, files.keys.caFile, /-----BEGIN CERTIFICATE-----/, 'one or more CA certificates'),
  };
}

/** What a TLS server needs: its certificate and, for mutual TLS, the CA its clients' certificates chain to. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** Set: clients are asked for a certificate chained to this CA. The handshake still succeeds without one (probes); `requireClientCertificate` refuses such requests. */
  clientCa?: Buffer;
}

/** Options for `https.createServer`. */
export function httpsServerOptions(tls: ServerTls): { cert: Buffer; key: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean; minVersion: 'TLSv1.2' } {
  return {
    cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2',
    ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true } : { requestCert: false }),
    rejectUnauthorized: false,
  };
}

/** Who a verified client certificate names: its TaskManager id and replica id (each from the SAN URI, else CN). */
export interface PeerIdentity {
  /** The role a SAN URI names; undefined for a certificate with none (then the CN names a TaskManager). */
  role: PeerRole | undefined;
  /** Subject CN, when any. */
  commonName: string | undefined;
  /** `urn:ha-dispatcher:taskmanager:<id>`; else the CN when the certificate names no replica. */
  taskManagerId: string | undefined;
  /** `urn:ha-dispatcher:replica:<id>`. */
  replicaId: string | undefined;
  /** Every SAN URI of the certificate (REST principals may be named by one). */
  uris: string[];
}

/** The verified client certificate's identity; null without TLS, without a certificate or with one the CA did not sign. */
export function verifiedPeer(ctx: Context): PeerIdentity | null {
  const socket = ctx.req.socket as Partial<TLSSocket>;
  if (!socket.encrypted || socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return null;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return null;
  const cn = Array.isArray(cert.subject?.CN) ? cert.subject.CN[0] : cert.subject?.CN;
  const uris = (cert.subjectaltname ?? '').split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
  const named = (role: PeerRole): string | undefined => uris.find((u) => u.startsWith(`${URI_PREFIX}${role}:`))?.slice(`${URI_PREFIX}${role}:`.length);
  const replicaId = named('replica');
  const taskManagerId = named('taskmanager');
  const role: PeerRole | undefined = taskManagerId !== undefined ? 'taskmanager' : replicaId !== undefined ? 'replica' : undefined;
  return { role, commonName: cn, replicaId, taskManagerId: taskManagerId ?? (role === undefined ? cn : undefined), uris };
}

/**
 * Mutual TLS guard: a request without a client certificate signed by the cluster CA is refused (401),
 * except GET/HEAD on `openPaths`. `refuse(peer)` may name a further reason to refuse (403).
 */
export function requireClientCertificate(setting: string, openPaths: ReadonlySet<string> = new Set(),
  refuse?: (peer: PeerIdentity) => string | null): Middleware {
  return async (ctx, next) => {
    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && openPaths.has(ctx.path)) return next();
    const peer = verifiedPeer(ctx);
    if (peer === null) {
      ctx.status = 401;
      ctx.body = { errors: [`this endpoint needs a client certificate signed by the cluster CA (${setting})`] };
      return;
    }
    const reason = refuse?.(peer);
    if (reason) {
      ctx.status = 403;
      ctx.body = { errors: [reason] };
      return;
    }
    return next();
  };
}
