/**
 * What a TaskManager may say about itself on the internal RPC, in one place (docs/ARCHITECTURE.md,
 * "TaskManager identity"). With mutual TLS a TaskManager's credential is its client certificate: the
 * TaskManager id it names (SAN URI `urn:ha-dispatcher:taskmanager:<id>`, else CN) and its SHA-256
 * fingerprint. The leader then admits:
 *  - a registration, heartbeat or report only for the id the certificate names
 *    (403, `security.certificate.mismatch`);
 *  - a re-registration of a registered id from another address only with the same certificate
 *    (a restarted process); another certificate is a hijack attempt (409, `taskmanager.registration.refused`).
 *    From the same address (the same host and port, so the former process is gone) a renewed
 *    certificate is adopted;
 *  - a status report only on attempts this leader deployed to that TaskManager, or adopted from its
 *    registration; a registration may not claim attempts this leader deployed to another registered
 *    TaskManager (403, `taskmanager.report.rejected`; nothing is applied);
 *  - a claimed epoch (`highestEpoch`, or the `{epoch}` of a 409 answer) at most MAX_EPOCH_STEP above
 *    this term's, as a TaskManager itself admits (403, `taskmanager.epoch.implausible`; nothing raised);
 *  - as the registered `address` only a server whose certificate names the same TaskManager: the
 *    leader's commands to it check that (`taskManagerServerTls`), so a TaskManager that registers
 *    with another's address gets no work through it.
 * With only `security.internal.token` (shared by all TaskManagers) there is no per-TaskManager
 * credential: the attempt and epoch rules hold, the id and certificate rules cannot.
 */
import { checkServerIdentity, PeerCertificate, TLSSocket } from 'node:tls';
import type { ClientTls } from '../http/client';
import type { Context } from 'koa';
import { HttpError } from '../http/errors';
import { verifiedPeer } from '../security/tls';
import { ExecutionId, executionKey } from '../taskmanager/protocol';
import { MAX_EPOCH_STEP } from '../taskmanager/task-table';
import type { EventLogger } from '../util/logger';

/** Stable event names of refusals (structured log, `event` field). */
export const IDENTITY_EVENTS = {
  certificateMismatch: 'security.certificate.mismatch',
  registrationRefused: 'taskmanager.registration.refused',
  reportRejected: 'taskmanager.report.rejected',
  epochImplausible: 'taskmanager.epoch.implausible',
} as const;

/** The verified client certificate of an internal call. */
export interface TaskManagerCredential {
  /** The TaskManager id the certificate names; undefined for a replica's certificate. */
  taskManagerId: string | undefined;
  replicaId: string | undefined;
  /** SHA-256 of the DER certificate, colon-separated upper-case hex (Node's `fingerprint256`). */
  fingerprint: string;
}

/** The credential of the request: its verified client certificate, or null (no TLS, no or an unverified certificate). */
export function requestCredential(ctx: Context): TaskManagerCredential | null {
  const peer = verifiedPeer(ctx);
  if (!peer) return null;
  const cert = (ctx.req.socket as TLSSocket).getPeerCertificate();
  return { taskManagerId: peer.taskManagerId, replicaId: peer.replicaId, fingerprint: cert.fingerprint256 };
}

/** Where a refused call came from, for the audit event. */
export interface CallOrigin {
  path: string;
  remoteAddress: string;
}

/**
 * Throws HttpError 403 unless `credential` names the TaskManager `claimed` (the id in the URL or body).
 * Event `security.certificate.mismatch` {path, remoteAddress, certificateTaskManagerId, certificateReplicaId, claimedTaskManagerId}.
 */
export function requireOwnId(credential: TaskManagerCredential, claimed: unknown, origin: CallOrigin, logger: EventLogger): void {
  if (credential.taskManagerId !== undefined && credential.taskManagerId === claimed) return;
  logger.warn(IDENTITY_EVENTS.certificateMismatch, {
    ...origin, certificateTaskManagerId: credential.taskManagerId ?? null, certificateReplicaId: credential.replicaId ?? null,
    claimedTaskManagerId: typeof claimed === 'string' ? claimed.slice(0, 128) : null,
  });
  throw new HttpError(403, credential.taskManagerId === undefined
    ? 'the client certificate names no TaskManager (SAN URI urn:ha-dispatcher:taskmanager:<id> or CN); only TaskManagers register, heartbeat and report'
    : `the client certificate belongs to TaskManager ${credential.taskManagerId}, not to ${JSON.stringify(claimed)}`);
}

/** What the leader keeps of a registered TaskManager for these checks. */
export interface RegisteredTaskManager {
  address: string;
  /** Fingerprint of the certificate it registered with; undefined without mutual TLS. */
  fingerprint?: string;
}

/**
 * Throws HttpError 409 when `taskManagerId` is registered from another address with another
 * certificate than `fingerprint` (event `taskmanager.registration.refused`): the registered
 * TaskManager keeps its slots and tasks. Passes a first registration, a registration from the same
 * address, the same certificate from a new address (a restarted process), and any registration
 * without certificates.
 */
export function checkReRegistration(registered: RegisteredTaskManager | undefined, taskManagerId: string, address: string, fingerprint: string | undefined,
  logger: EventLogger): void {
  if (!registered || registered.address === address || registered.fingerprint === undefined || fingerprint === undefined) return;
  if (registered.fingerprint === fingerprint) return;
  logger.warn(IDENTITY_EVENTS.registrationRefused, {
    taskManagerId, address, registeredAddress: registered.address, fingerprint, registeredFingerprint: registered.fingerprint,
    reason: 'another certificate from another address than the registered TaskManager of this id',
  });
  throw new HttpError(409, `TaskManager ${taskManagerId} is registered from ${registered.address} with another certificate; `
    + `a registration from ${address} with this one is refused (the registered one keeps its id until it stops heartbeating)`);
}

/** Which TaskManager this term placed an execution on (deployed, or adopted from a registration); undefined when none. */
export type PlacementLookup = (key: string) => string | undefined;

/**
 * Throws HttpError 403 (event `taskmanager.report.rejected` {taskManagerId, kind, keys, placedOn})
 * when a TaskManager reports on attempts that are not its own, before anything is applied:
 *  - `status`: every reported attempt must be placed on `taskManagerId` (`placedOn(key) === taskManagerId`);
 *  - `registration`: no reported attempt may be placed on another TaskManager that `isRegistered`
 *    (attempts of earlier terms are adopted from registrations: only the TaskManager knows them).
 * `reports` are ExecutionIds (reports carry one); at most 10 keys are named in the message.
 */
export function checkReportedAttempts(taskManagerId: string, kind: 'status' | 'registration', reports: readonly ExecutionId[], placedOn: PlacementLookup,
  isRegistered: (id: string) => boolean, logger: EventLogger): void {
  const foreign: Array<{ key: string; placedOn: string | null }> = [];
  for (const r of reports) {
    const key = executionKey(r);
    const owner = placedOn(key);
    const own = kind === 'status' ? owner === taskManagerId : owner === undefined || owner === taskManagerId || !isRegistered(owner);
    if (!own) foreign.push({ key, placedOn: owner ?? null });
  }
  if (foreign.length === 0) return;
  logger.warn(IDENTITY_EVENTS.reportRejected, {
    taskManagerId, kind, rejected: foreign.length, keys: foreign.slice(0, 10).map((f) => f.key), placedOn: foreign.slice(0, 10).map((f) => f.placedOn),
  });
  const named = foreign.slice(0, 10).map((f) => `${f.key} (${f.placedOn === null ? 'deployed to no TaskManager by this leader' : `deployed to ${f.placedOn}`})`).join(', ');
  throw new HttpError(403, `TaskManager ${taskManagerId} reported on ${foreign.length} attempt(s) this leader did not deploy to it: ${named}; `
    + 'the report was rejected and nothing was applied');
}

/**
 * Whether a TaskManager's claim to hold `claimed` is believable for a leader of `epoch`: at most
 * MAX_EPOCH_STEP above it (the step a TaskManager itself admits). Non-integers are implausible.
 */
export function plausibleEpochClaim(claimed: unknown, epoch: number): claimed is number {
  return typeof claimed === 'number' && Number.isSafeInteger(claimed) && claimed <= epoch + MAX_EPOCH_STEP;
}

/**
 * Throws HttpError 403 (event `taskmanager.epoch.implausible`) when a registration claims a
 * `highestEpoch` more than MAX_EPOCH_STEP above `epoch`: a forged claim cannot make the leader raise
 * `/epoch` and resign. Absent claims pass.
 */
export function checkClaimedEpoch(taskManagerId: string, claimed: number | undefined, epoch: number, logger: EventLogger): void {
  if (claimed === undefined || plausibleEpochClaim(claimed, epoch)) return;
  logger.warn(IDENTITY_EVENTS.epochImplausible, { taskManagerId, claimed, epoch, maxStep: MAX_EPOCH_STEP, reason: 'registration refused, no epoch raised' });
  throw new HttpError(403, `TaskManager ${taskManagerId} claims leader epoch ${claimed}, more than ${MAX_EPOCH_STEP} above this leader's ${epoch}: `
    + 'implausible, so the registration is refused and no epoch is raised');
}

/** The TaskManager id a certificate names: SAN URI `urn:ha-dispatcher:taskmanager:<id>`, else (not a replica's) its CN; the rule of `verifiedPeer`. */
export function certificateTaskManagerId(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'>): string | undefined {
  const uris = (cert.subjectaltname ?? '').split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
  const named = uris.find((u) => u.startsWith('urn:ha-dispatcher:taskmanager:'));
  if (named !== undefined) return named.slice('urn:ha-dispatcher:taskmanager:'.length);
  if (uris.some((u) => u.startsWith('urn:ha-dispatcher:replica:'))) return undefined;
  const cn = cert.subject?.CN as string | string[] | undefined;
  return Array.isArray(cn) ? cn[0] : cn;
}

/**
 * `base` (the leader's internal client TLS) plus a server check for commands to `taskManagerId`:
 * node's host name check, then the server certificate must name that TaskManager. A call to an
 * address serving another TaskManager's certificate fails in the handshake with an Error saying so.
 */
export function taskManagerServerTls(base: ClientTls, taskManagerId: string): ClientTls {
  return {
    ...base,
    checkServerIdentity: (hostname, cert) => {
      const hostError = checkServerIdentity(hostname, cert);
      if (hostError) return hostError;
      const named = certificateTaskManagerId(cert);
      if (named === taskManagerId) return undefined;
      return new Error(`the server certificate at ${hostname} names TaskManager ${named ?? '(none)'}, not ${taskManagerId}: `
        + 'it registered with an address that is not its own');
    },
  };
}
