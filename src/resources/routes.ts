/**
 * Internal RPC routes (TaskManager → leader), mounted into every replica's REST app. Only the
 * ResourceManager of the current term answers; a standby (or a replica between terms) answers 503,
 * and a leader asked on behalf of another epoch answers 409 with its own, so the TaskManager looks the
 * leader up again in ZooKeeper instead of trusting a stale address.
 *
 * With mutual TLS (security.ssl.internal.enabled) every call needs a client certificate signed by the
 * cluster CA (401 without), and a registration, heartbeat or report naming another TaskManager id than
 * the certificate is refused (403, event `security.certificate.mismatch`) before the ResourceManager
 * sees it. What else a TaskManager may claim (its attempts, its address, epochs) is checked by the
 * ResourceManager through taskmanager-identity.ts.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import type { Context } from 'koa';
import { checkReport, HeartbeatRequest, RegistrationRequest, StatusRequest } from '../taskmanager/protocol';
import { INTERNAL_MAX_BODY_BYTES, requireInternalToken } from '../taskmanager/rpc';
import { HttpError } from '../http/errors';
import { readJsonBody } from '../http/body';
import { requireClientCertificate } from '../security/tls';
import type { EventLogger } from '../util/logger';
import { silentLogger } from '../util/logger';
import type { AuditLog } from '../security/audit';
import { ResourceManager } from './resource-manager';
import { requestCredential, requireOwnId, TaskManagerCredential } from './taskmanager-identity';

export interface InternalRouteSecurity {
  /** security.internal.token; open when undefined. */
  token?: string;
  /** security.ssl.internal.enabled: client certificates required and bound to the TaskManager id they name. */
  mutualTls?: boolean;
  /** Where refused certificates are audited. */
  logger?: EventLogger;
  /** Audit line per registration and per refused (401/403) internal call. */
  audit?: AuditLog;
}

export function mountInternalRoutes(app: Koa, current: () => ResourceManager | null, security: InternalRouteSecurity = {}): void {
  const logger = security.logger ?? silentLogger;
  const router = new Router({ prefix: '/internal' });
  if (security.audit) router.use(auditInternalCalls(security.audit, security));
  router.use(requireInternalToken(security.token));
  if (security.mutualTls) router.use(requireClientCertificate('security.ssl.internal.ca-file'));

  const handle = (fn: (ctx: Context, rm: ResourceManager, body: Record<string, unknown>, credential: TaskManagerCredential | null) => Promise<unknown> | unknown) => async (ctx: Context): Promise<void> => {
    const body = (await readJsonBody(ctx, INTERNAL_MAX_BODY_BYTES)) as Record<string, unknown>;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object');
    const claimed = ctx.params.id ?? body.taskManagerId;
    if (typeof claimed === 'string') ctx.state.auditTarget = claimed.slice(0, 128);
    const credential = security.mutualTls ? requestCredential(ctx) : null;
    if (security.mutualTls) {
      // requireClientCertificate let only verified certificates this far; fail closed all the same.
      if (!credential) throw new HttpError(401, 'this endpoint needs a client certificate signed by the cluster CA (security.ssl.internal.ca-file)');
      requireOwnId(credential, ctx.params.id ?? body.taskManagerId, { path: ctx.path, remoteAddress: ctx.ip }, logger);
    }
    const rm = current();
    if (!rm || !rm.active) throw new HttpError(503, 'this replica is not the leader; look the leader up in ZooKeeper again', { extra: { epoch: null } });
    if (body.epoch !== rm.epoch) {
      throw new HttpError(409, `this leader's epoch is ${rm.epoch}, the message is for epoch ${JSON.stringify(body.epoch)}; look the leader up again`, { extra: { epoch: rm.epoch } });
    }
    ctx.body = await fn(ctx, rm, body, credential);
  };

  router.post('/taskmanagers', handle(async (_ctx, rm, body, credential) => {
    const registration = validated(() => checkRegistration(body));
    if (security.mutualTls && !registration.address.startsWith('https://')) {
      throw new HttpError(400, 'address must be an https URL: security.ssl.internal.enabled is true on this cluster');
    }
    return rm.register(registration, credential ?? undefined);
  }));
  router.post('/taskmanagers/:id/heartbeat', handle((ctx, rm, body) => rm.heartbeat(ctx.params.id, body as unknown as HeartbeatRequest)));
  router.post('/tasks/status', handle(async (_ctx, rm, body) => {
    if (typeof body.taskManagerId !== 'string') throw new HttpError(400, 'taskManagerId is required');
    if (!Array.isArray(body.reports)) throw new HttpError(400, 'reports must be a list');
    const reports = body.reports;
    const req: StatusRequest = { taskManagerId: body.taskManagerId, epoch: body.epoch as number, reports: validated(() => reports.map((r, i) => checkReport(r, `reports[${i}]`))) };
    return rm.status(req);
  }));
  app.use(router.routes());
}

/** Audits TaskManager registrations (any outcome) and every refused (401/403) internal call. */
function auditInternalCalls(audit: AuditLog, security: InternalRouteSecurity) {
  return async (ctx: Context, next: () => Promise<unknown>): Promise<void> => {
    const remoteAddress = ctx.req.socket?.remoteAddress ?? '';
    const record = (status: number): void => {
      const refused = status === 401 || status === 403;
      const registration = ctx.method === 'POST' && ctx.path === '/internal/taskmanagers';
      if (!registration && !refused) return;
      const peer = security.mutualTls ? requestCredential(ctx) : null;
      const principal = peer?.taskManagerId !== undefined ? `taskmanager:${peer.taskManagerId}` : security.token !== undefined && !refused ? 'internal-token' : 'anonymous';
      audit.record({ principal, action: registration ? 'taskmanager.register' : `${ctx.method} ${ctx.path}`, target: (ctx.state.auditTarget as string | undefined) ?? ctx.path,
        outcome: refused ? 'denied' : 'allowed', status, remoteAddress });
    };
    try {
      await next();
    } catch (err) {
      record(typeof (err as HttpError).status === 'number' ? (err as HttpError).status : 500);
      throw err;
    }
    record(ctx.status);
  };
}

function validated<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, (err as Error).message);
  }
}

function checkRegistration(body: Record<string, unknown>): RegistrationRequest {
  const { taskManagerId, instanceId, host, address, slots, tasks } = body;
  if (typeof taskManagerId !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(taskManagerId)) throw new HttpError(400, 'taskManagerId must be 1 to 128 letters, digits, "_", "." or "-"');
  if (typeof address !== 'string' || !/^https?:\/\/[^/\s]+$/.test(address)) throw new HttpError(400, 'address must be the TaskManager\'s base URL, e.g. http://10.0.0.5:6121');
  if (!Number.isInteger(slots) || (slots as number) < 1) throw new HttpError(400, 'slots must be a positive integer');
  if (!Array.isArray(tasks)) throw new HttpError(400, 'tasks must be a list');
  if (instanceId !== undefined && (typeof instanceId !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(instanceId))) {
    throw new HttpError(400, 'instanceId must be 1 to 64 letters, digits or "-" (random per TaskManager process)');
  }
  return {
    taskManagerId, instanceId, address, slots: slots as number, epoch: body.epoch as number,
    highestEpoch: Number.isSafeInteger(body.highestEpoch) ? body.highestEpoch as number : undefined,
    host: typeof host === 'string' ? host.slice(0, 255) : '',
    tasks: tasks.map((t, i) => checkReport(t, `tasks[${i}]`)),
  };
}
