/**
 * How a client of a secured cluster finds its credentials, the same for every CLI verb and the drills:
 * the REST token (security.rest.token) and the CA that signed the replicas' https certificates
 * (security.ssl.rest.*). Files are read once, at start-up; a missing or empty file is a usage error.
 */
import { readFileSync } from 'node:fs';
import type { ClientTls } from '../http/client';
import { CliError, EXIT } from './rest-client';

/**
 * security.rest.token for a secured cluster: the file `file` (--token-file), else $HA_DISPATCHER_TOKEN_FILE,
 * else $HA_DISPATCHER_TOKEN; undefined when none is given. Throws CliError (USAGE) when the file cannot
 * be read or is empty.
 */
export function restToken(file: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const path = file ?? env.HA_DISPATCHER_TOKEN_FILE;
  if (path === undefined) return env.HA_DISPATCHER_TOKEN || undefined;
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token === '') throw new Error('the file is empty');
    return token;
  } catch (err) {
    throw new CliError(EXIT.USAGE, `token file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The path of the CA to trust for https replicas: `file` (--ca-file), else $HA_DISPATCHER_CA_FILE; undefined: the system's CAs. */
export function trustedCaFile(file: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return file ?? (env.HA_DISPATCHER_CA_FILE || undefined);
}

/**
 * The CA of a cluster with security.ssl.rest.enabled, from `file` (--ca-file), else $HA_DISPATCHER_CA_FILE;
 * undefined: the system's CAs. Throws CliError (USAGE) when the file cannot be read.
 */
export function trustedCa(file: string | undefined, env: NodeJS.ProcessEnv): ClientTls | undefined {
  const path = trustedCaFile(file, env);
  if (path === undefined) return undefined;
  try {
    return { ca: readFileSync(path) };
  } catch (err) {
    throw new CliError(EXIT.USAGE, `CA file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
