/**
 * A ZooKeeper ensemble whose only client port is TLS (secureClientPort, client certificates required)
 * and, in front of it, stunnel in client mode on loopback: the recipe of docs/ARCHITECTURE.md
 * ("Encrypted ZooKeeper connection"). The native `zookeeper` client connects to `connectString`
 * (stunnel's plaintext loopback ports); stunnel carries every byte to the servers over TLS.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { generate } from 'selfsigned';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { generateCa, Pem } from '../../src/security/certificates';
import { freePorts } from '../../src/util/ports';
import { ManagedChild } from '../../src/util/managed-child';
import { eventually } from '../../src/util/poll';

/** A certificate for `localhost`/127.0.0.1 signed by `ca`, usable as TLS server and client. */
async function loopbackCertificate(ca: Pem, commonName: string): Promise<Pem> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keySize: 2048, algorithm: 'sha256', notAfterDate: new Date(Date.now() + 86_400_000), ca,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2 as const, value: 'localhost' }, { type: 7 as const, ip: '127.0.0.1' }] },
    ],
  });
  // ZooKeeper's PEM key store reads PKCS#8 ("BEGIN PRIVATE KEY"); selfsigned writes PKCS#1.
  return { cert: pems.cert, key: crypto.createPrivateKey(pems.private).export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** The stunnel client configuration: one service per server, verifying the server's chain and name, presenting our certificate. */
export function stunnelClientConfig(services: Array<{ name: string; accept: number; connect: string }>, files: { caFile: string; certFile: string; keyFile: string }): string {
  return [
    'foreground = yes',
    'pid =',
    'debug = info',
    ...services.flatMap((s) => [
      `[${s.name}]`, 'client = yes', `accept = 127.0.0.1:${s.accept}`, `connect = ${s.connect}`,
      `CAfile = ${files.caFile}`, `cert = ${files.certFile}`, `key = ${files.keyFile}`,
      'verifyChain = yes', 'checkHost = localhost', 'sslVersionMin = TLSv1.2',
    ]),
    '',
  ].join('\n');
}

export interface TunneledEnsemble {
  ensemble: LocalEnsemble;
  /** stunnel's plaintext loopback ports, one per server: what replicas and TaskManagers are given. */
  connectString: string;
  dir: string;
  stunnelLog: string;
  /** For probes over TLS to the servers themselves. */
  probe: { ca: string; cert: string; key: string };
  stop(): Promise<void>;
}

/** Starts the TLS-only ensemble and the tunnel, and waits until the tunnel accepts on every port. */
export async function startTunneledEnsemble(servers = 1): Promise<TunneledEnsemble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-zk-tls-'));
  const ca = await generateCa('ha-dispatcher test ZooKeeper CA');
  const server = await loopbackCertificate(ca, 'zookeeper');
  const client = await loopbackCertificate(ca, 'zookeeper-client');
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const caFile = file('ca.pem', ca.cert);
  const keyStoreFile = file('zookeeper-keystore.pem', server.key + server.cert);
  const certFile = file('client.crt', client.cert);
  const keyFile = file('client.key', client.key);
  const probe = { ca: ca.cert, cert: client.cert, key: client.key };
  const ensemble = await LocalEnsemble.start({
    dir: path.join(dir, 'zk'), servers, tickTime: 100, minSessionTimeoutMs: 400, maxSessionTimeoutMs: 30000,
    clientTls: { keyStoreFile, trustStoreFile: caFile, probe: { caFile, certFile, keyFile } },
  });
  const ports = await freePorts(servers);
  const config = file('stunnel.conf', stunnelClientConfig(
    ensemble.servers.map((s, i) => ({ name: `zookeeper-${s.id}`, accept: ports[i], connect: `127.0.0.1:${s.clientPort}` })), { caFile, certFile, keyFile }));
  const stunnelLog = path.join(dir, 'stunnel.log');
  const stunnel = ManagedChild.spawn('stunnel', [config], { logFile: stunnelLog });
  const stop = async (): Promise<void> => {
    await stunnel.stop('SIGTERM', 5000);
    await ensemble.stop();
  };
  try {
    await eventually('stunnel accepting on every port', async () => {
      if (!stunnel.running) throw new Error(`stunnel exited: ${fs.readFileSync(stunnelLog, 'utf8').slice(-2000)}`);
      const open = await Promise.all(ports.map((port) => new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
        s.on('error', () => resolve(false));
      })));
      return open.every(Boolean) || null;
    }, 15_000, 100);
  } catch (err) {
    await stop();
    throw err;
  }
  return { ensemble, connectString: ports.map((p) => `127.0.0.1:${p}`).join(','), dir, stunnelLog, probe, stop };
}
