/**
 * Principals and roles of the client REST API. Roles are cumulative: admin ⊃ operator ⊃ submitter ⊃
 * viewer, so a principal holds one effective role, the highest it was given (docs/ARCHITECTURE.md,
 * "Security").
 *
 * - viewer: read jobs, TaskManagers, the cluster and its history;
 * - submitter: submit jobs, cancel the jobs it submitted;
 * - operator: cancel any job, run drills;
 * - admin: read the configuration, stop a replica (`DELETE /cluster`).
 */

export const ROLES = ['viewer', 'submitter', 'operator', 'admin'] as const;
export type Role = typeof ROLES[number];

/** Who a request acts as: `name` is what audit lines and job records show, never a secret. */
export interface Principal {
  name: string;
  role: Role;
}

/** The audit name of a request without credentials. */
export const ANONYMOUS = 'anonymous';

/** The principal `security.rest.token` authenticates (role admin, as before roles existed). */
export const REST_TOKEN_PRINCIPAL = 'rest-token';

/** Names credentials files may not give a principal: audit lines would be ambiguous. */
export const RESERVED_PRINCIPAL_NAMES: ReadonlySet<string> = new Set([ANONYMOUS, REST_TOKEN_PRINCIPAL]);

/** Whether `held` includes `needed` (roles are cumulative). */
export function grants(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** The highest of `roles`; undefined for none. */
export function highestRole(roles: readonly Role[]): Role | undefined {
  return roles.reduce<Role | undefined>((best, r) => (best === undefined || grants(r, best) ? r : best), undefined);
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}
