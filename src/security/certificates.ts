/**
 * A throwaway certificate authority for `ha-dispatcher local` and the tests: one CA, then per process
 * a certificate usable as TLS server and client, naming its role and id in a SAN URI
 * (`urn:ha-dispatcher:replica:<id>`, `urn:ha-dispatcher:taskmanager:<id>`, see tls.ts). Never for
 * production: the keys are written unencrypted next to the cluster's data.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from 'selfsigned';
import { certificateUri, PeerRole } from './tls';

export interface Pem {
  cert: string;
  key: string;
}

/** File paths of one certificate, its key and the CA that signed it. */
export interface CertificateFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

const VALIDITY_MS = 30 * 86_400_000;

/** A self-signed CA certificate and key (RSA 2048, SHA-256, valid 30 days). */
export async function generateCa(commonName = 'ha-dispatcher throwaway CA'): Promise<Pem> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keySize: 2048, algorithm: 'sha256', notAfterDate: new Date(Date.now() + VALIDITY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/**
 * A certificate signed by `ca` for one process: CN `<id>`, SAN URI naming `role` and `id`, SAN DNS
 * `localhost` and `hosts`, SAN IP 127.0.0.1 and ::1; extended key usage server and client auth.
 */
export async function generateCertificate(ca: Pem, role: PeerRole, id: string, hosts: string[] = []): Promise<Pem> {
  const ips = ['127.0.0.1', '::1', ...hosts.filter((h) => /^[\d.]+$|:/.test(h))];
  const names = ['localhost', ...hosts.filter((h) => !/^[\d.]+$|:/.test(h))];
  const pems = await generate([{ name: 'commonName', value: id }], {
    keySize: 2048, algorithm: 'sha256', notAfterDate: new Date(Date.now() + VALIDITY_MS), ca,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [
        { type: 6 as const, value: certificateUri(role, id) },
        ...names.map((value) => ({ type: 2 as const, value })),
        ...ips.map((ip) => ({ type: 7 as const, ip })),
      ] },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (0600) and returns their paths with `caFile`. */
export function writeCertificate(dir: string, name: string, pem: Pem, caFile: string): CertificateFiles {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  fs.writeFileSync(certFile, pem.cert);
  fs.writeFileSync(keyFile, pem.key, { mode: 0o600 });
  return { certFile, keyFile, caFile };
}
