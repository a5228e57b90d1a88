/**
 * The TLS material of one process from its configuration (`security.ssl.rest.*`,
 * `security.ssl.internal.*`), read once at start-up: what the replica's REST server presents and asks
 * of clients, what a TaskManager's RPC server presents, and what both present and trust when they call
 * each other.
 */
import type { DispatcherConfig } from './options';
import type { ClientTls } from '../http/client';
import { ConfigError } from '../util/errors';
import { loadTlsMaterial, ServerTls, TlsMaterial } from '../security/tls';

export interface ClusterTls {
  /** The replica's REST server (rest.port): the REST certificate; asks for client certificates (internal CA) when mutual TLS is on. */
  restServer?: ServerTls;
  /** A TaskManager's RPC server: the internal certificate, client certificates required (internal CA). */
  internalServer?: ServerTls;
  /** Calls between leader and TaskManagers: trust the internal CA (and the REST CA) and present the internal certificate. */
  internalClient?: ClientTls;
  /**
   * Calls between replicas on rest.port (a standby's liveness probes of the leader, `rest.standby-mode: forward`):
   * the CAs of `internalClient`, no client certificate (these are REST calls, not internal ones). Undefined: the system's CAs.
   */
  replicaClient?: ClientTls;
}

/** Reads the configured PEM files; throws ConfigError naming the key of one that cannot be read. */
export function clusterTls(config: DispatcherConfig): ClusterTls {
  const rest = config['security.ssl.rest.enabled'] ? loadTlsMaterial({
    certFile: config['security.ssl.rest.cert-file']!, keyFile: config['security.ssl.rest.key-file']!,
    // No CA of its own: the certificate file's chain is what clients verify.
    caFile: config['security.ssl.rest.ca-file'] ?? config['security.ssl.rest.cert-file']!,
    keys: { certFile: 'security.ssl.rest.cert-file', keyFile: 'security.ssl.rest.key-file', caFile: 'security.ssl.rest.ca-file' },
  }) : undefined;
  const internal: TlsMaterial | undefined = config['security.ssl.internal.enabled'] ? loadTlsMaterial({
    certFile: config['security.ssl.internal.cert-file']!, keyFile: config['security.ssl.internal.key-file']!, caFile: config['security.ssl.internal.ca-file']!,
    keys: { certFile: 'security.ssl.internal.cert-file', keyFile: 'security.ssl.internal.key-file', caFile: 'security.ssl.internal.ca-file' },
  }) : undefined;
  const restCa = config['security.ssl.rest.ca-file'] !== undefined ? rest?.ca : undefined;
  const trusted = internal ? (restCa ? Buffer.concat([internal.ca, Buffer.from('\n'), restCa]) : internal.ca) : restCa;
  return {
    restServer: rest ? { cert: rest.cert, key: rest.key, clientCa: internal?.ca } : undefined,
    internalServer: internal ? { cert: internal.cert, key: internal.key, clientCa: internal.ca } : undefined,
    internalClient: internal ? { ca: trusted!, cert: internal.cert, key: internal.key } : trusted ? { ca: trusted } : undefined,
    replicaClient: trusted ? { ca: trusted } : undefined,
  };
}

/** Replicas serve the TaskManagers' calls on rest.port, so internal mutual TLS needs TLS there. */
export function checkReplicaTls(config: DispatcherConfig): void {
  if (config['security.ssl.internal.enabled'] && !config['security.ssl.rest.enabled']) {
    throw new ConfigError('security.ssl.internal.enabled', 'is true, so a replica also needs security.ssl.rest.enabled: TaskManagers call the leader on rest.port');
  }
}
