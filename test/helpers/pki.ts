/**
 * A throwaway cluster CA for integration tests with TLS: certificates per replica or TaskManager
 * (src/security/certificates.ts) and the `-D` settings that turn mutual TLS on for that process.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateCa, generateCertificate, Pem, writeCertificate } from '../../src/security/certificates';

export interface Pki {
  dir: string;
  caFile: string;
  ca: Pem;
  /**
   * Settings for one process: security.ssl.internal.* (and security.ssl.rest.* for a replica) with a
   * fresh certificate naming `role` and `id`, signed by `signer` (default: the cluster CA).
   */
  settings(role: 'replica' | 'taskmanager', id: string, signer?: Pem): Promise<string[]>;
}

export async function pki(): Promise<Pki> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-tls-'));
  const ca = await generateCa();
  const caFile = path.join(dir, 'ca.crt');
  fs.writeFileSync(caFile, ca.cert);
  let n = 0;
  return {
    dir, caFile, ca,
    async settings(role, id, signer = ca) {
      const f = writeCertificate(dir, `${role}-${id}-${++n}`, await generateCertificate(signer, role, id), caFile);
      const internal = ['security.ssl.internal.enabled=true', `security.ssl.internal.cert-file=${f.certFile}`, `security.ssl.internal.key-file=${f.keyFile}`,
        `security.ssl.internal.ca-file=${caFile}`];
      return role === 'taskmanager' ? internal
        : [...internal, 'security.ssl.rest.enabled=true', `security.ssl.rest.cert-file=${f.certFile}`, `security.ssl.rest.key-file=${f.keyFile}`];
    },
  };
}
