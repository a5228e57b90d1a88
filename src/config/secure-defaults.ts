/**
 * Secure by default: a process bound beyond loopback refuses to start while a surface that runs
 * commands on TaskManagers is unauthenticated, unless the operator opts out by name
 * (`security.allow-unauthenticated-non-loopback: true`, logged as a warning at every start).
 */
import { isLoopbackAddress } from './options';
import { ConfigError } from '../util/errors';
import type { EventLogger } from '../util/logger';

/** One HTTP surface a process serves and whether something authenticates its callers. */
export interface Surface {
  /** e.g. "the REST API". */
  name: string;
  authenticated: boolean;
  /** The settings that would authenticate it, named in the refusal. */
  keys: string[];
}

export const OPT_OUT_KEY = 'security.allow-unauthenticated-non-loopback';

/**
 * Throws ConfigError (keyed by `bindKey`) when `bindAddress` is not loopback and a surface is
 * unauthenticated, naming the keys that would fix it and the opt-out; with `allowed` (the opt-out)
 * it logs `security.unauthenticated` at warn instead.
 */
export function requireAuthentication(bindKey: string, bindAddress: string, surfaces: Surface[], allowed: boolean, logger: EventLogger): void {
  if (isLoopbackAddress(bindAddress)) return;
  const open = surfaces.filter((s) => !s.authenticated);
  if (open.length === 0) return;
  const what = open.map((s) => `${s.name} (set ${s.keys.join(' or ')})`).join('; ');
  if (allowed) {
    logger.warn('security.unauthenticated', { bindAddress, surfaces: open.map((s) => s.name), reason: `${OPT_OUT_KEY} is true: anyone who reaches ${bindAddress} can run commands on TaskManagers through ${what}` });
    return;
  }
  throw new ConfigError(bindKey, `is ${bindAddress}, beyond loopback, but nothing authenticates ${what}. ` +
    `Anyone who reaches it could run commands on TaskManagers. Configure authentication, bind to 127.0.0.1, or set ${OPT_OUT_KEY}: true to accept the risk`);
}
