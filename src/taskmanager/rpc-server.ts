/**
 * The TaskManager's RPC server: the commands a leader sends (protocol.ts, leader → TaskManager) over
 * koa, behind the cluster's internal token (all but /livez), with errors through the shared
 * `errorMiddleware`. It only speaks HTTP: fencing (stall fence, leader epoch), deploys, cancels and
 * the task list are the owner's (`TaskManagerCommands`).
 *
 *   GET  /livez                                   → {status, taskManagerId} (no token)
 *   GET  /tasks                                   → owner.status()
 *   POST /deploy   DeployRequest                  → {key, state} | 400 | 409 {epoch} stale or implausible epoch | 503 stalled or shutting down
 *   POST /cancel   CancelRequest                  → {canceled: keys} | 400 | 409 {epoch} stale or implausible epoch
 *   GET  /logs/:jobId/:vertexId/:subtask/:attempt → text/plain (last 1 MiB of the kept, rotated files) | 404;
 *        when output is missing (rotated away or older than the tail): `X-Log-Truncated: true`,
 *        `X-Log-Omitted-Bytes: N` and a first line saying so
 *
 * A 409 carries `epoch`: the highest epoch a leader verified to this TaskManager, so a leader below
 * it knows to take a term above it (task-table.ts has the rules). With an `audit` log every refused
 * request (401: no or a wrong token, no certificate of the cluster CA; 403: a wrong token, a
 * TaskManager's certificate) leaves one audit line, as a replica's refused requests do.
 */
import { AddressInfo } from 'node:net';
import Koa from 'koa';
import type { Context, Middleware } from 'koa';
import Router from '@koa/router';
import { EventLogger } from '../util/logger';
import { errorMiddleware, HttpError } from '../http/errors';
import { readJsonBody } from '../http/body';
import { closeServer, createServer, HttpServer, listen } from '../http/server';
import { requireClientCertificate, ServerTls, verifiedPeer } from '../security/tls';
import type { AuditLog } from '../security/audit';
import { CancelRequest, DeployRequest, ReportedState } from './protocol';
import type { EpochVerdict } from './task-table';
import { INTERNAL_MAX_BODY_BYTES, requireInternalToken } from './rpc';
import { logFilePath } from './task-runner';
import { readLogTail } from './task-log';

const LOG_TAIL_BYTES = 1024 * 1024;

/** What the RPC server asks of the TaskManager it serves. */
export interface TaskManagerCommands {
  readonly taskManagerId: string;
  /** Root of the task logs (TaskContext.logDir). */
  readonly logDir: string;
  /** True just after a stall: a deploy arriving now may be stale and is refused (see stall-fence.ts). */
  stalled(): boolean;
  /** The highest leader epoch a leader verified (answered in every 409). */
  highestEpoch(): number;
  /** Leader-epoch fencing of a command (TaskTable.admitCommand); notes nothing. */
  admitCommand(epoch: number): EpochVerdict;
  /** False once shutting down: deploys are refused. */
  accepting(): boolean;
  /** Starts the attempt (or answers the state of the one already here); throws Error on a malformed request. */
  deploy(req: DeployRequest): { key: string; state: ReportedState };
  /** Cancels the live attempts the request matches; resolves with their keys once they stopped. */
  cancel(req: CancelRequest): Promise<string[]>;
  /** The body of GET /tasks. */
  status(): unknown;
}

export interface RpcServerOptions {
  bindAddress: string;
  /** 0 picks a free port. */
  port: number;
  /** security.internal.token required of every request but /livez; open when undefined. */
  internalToken?: string;
  logger: EventLogger;
  /** Serves `GET /metrics` (open, like a replica's) ahead of the token guard. */
  metrics?: Middleware;
  /** security.ssl.internal.*: serve https; with `clientCa`, every request but /livez needs a replica's client certificate. */
  tls?: ServerTls;
  /** Where refused (401/403) requests are audited (security.audit.file, else the process log); none: not audited. */
  audit?: AuditLog;
}

/** The koa app serving `owner`. */
export function taskManagerApp(owner: TaskManagerCommands, options: Pick<RpcServerOptions, 'internalToken' | 'logger' | 'metrics' | 'tls' | 'audit'>): Koa {
  const { logger } = options;
  const app = new Koa();
  const router = new Router();
  app.use(errorMiddleware({ logger, event: 'taskmanager.rpc.internal-error' }));
  if (options.audit) app.use(auditRefusals(options.audit));
  if (options.metrics) app.use(options.metrics);
  router.get('/livez', (ctx) => { ctx.body = { status: 'alive', taskManagerId: owner.taskManagerId }; });
  // Everything else runs or reveals tasks: the cluster's internal token, when one is configured.
  router.use(requireInternalToken(options.internalToken, new Set(['/livez'])));
  // Mutual TLS: commands come from the leader, never from another TaskManager's certificate.
  if (options.tls?.clientCa) {
    router.use(requireClientCertificate('security.ssl.internal.ca-file', new Set(['/livez']), (peer) => {
      if (peer.role !== 'taskmanager') return null;
      logger.warn('security.certificate.refused', { peer: peer.taskManagerId, path: 'taskmanager-rpc', reason: 'a TaskManager certificate sent a leader command' });
      return `the client certificate names TaskManager ${peer.taskManagerId}; only replicas send commands to TaskManagers`;
    }));
  }
  router.get('/tasks', (ctx) => { ctx.body = owner.status(); });
  const checkEpoch = (epoch: unknown): void => {
    if (typeof epoch !== 'number' || !Number.isInteger(epoch)) throw new HttpError(400, 'epoch must be an integer: the sending leader\'s fencing token');
    const verdict = owner.admitCommand(epoch);
    if (verdict === 'admitted') return;
    const highestEpoch = owner.highestEpoch();
    if (verdict === 'stale') {
      logger.warn('taskmanager.command.rejected', { epoch, highestEpoch });
      throw new HttpError(409, `stale leader epoch ${epoch}: a newer leader than that has been seen (verified epoch ${highestEpoch}); the command was not executed`,
        { extra: { epoch: highestEpoch } });
    }
    logger.warn('taskmanager.command.implausible', { epoch, highestEpoch, reason: 'far ahead of any leader this TaskManager registered with; refused, nothing changed' });
    throw new HttpError(409, `leader epoch ${epoch} is implausibly far ahead of the verified epoch ${highestEpoch}; the command was not executed`,
      { extra: { epoch: highestEpoch } });
  };
  const refuseIfStalled = (): void => {
    if (!owner.stalled()) return;
    logger.warn('taskmanager.deploy.refused', { reason: 'stalled' });
    throw new HttpError(503, 'this TaskManager just resumed from a stall; a deploy sent meanwhile may be stale (its sender may have placed the work elsewhere), so it was not executed');
  };
  router.post('/deploy', async (ctx) => {
    refuseIfStalled();
    const req = (await readJsonBody(ctx, INTERNAL_MAX_BODY_BYTES)) as DeployRequest;
    // Again after the body: the process may have stood still while it was read (a SIGSTOP between the
    // first check and the start of the task ran a deploy the leader had given up on; chaos
    // pause-taskmanager, seed 1736429560). From here to the start nothing waits.
    refuseIfStalled();
    checkEpoch(req?.epoch);
    if (!owner.accepting()) throw new HttpError(503, 'this TaskManager is shutting down; deploy elsewhere');
    try {
      ctx.body = owner.deploy(req);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
  });
  router.post('/cancel', async (ctx) => {
    const req = (await readJsonBody(ctx, INTERNAL_MAX_BODY_BYTES)) as CancelRequest;
    checkEpoch(req?.epoch);
    if (typeof req.jobId !== 'string') throw new HttpError(400, 'jobId is required');
    ctx.body = { canceled: await owner.cancel(req) };
  });
  router.get('/logs/:jobId/:vertexId/:subtask/:attempt', async (ctx) => {
    const p = ctx.params;
    const file = logFilePath({ jobId: p.jobId, vertexId: p.vertexId, subtaskIndex: Number(p.subtask), attempt: Number(p.attempt), logDir: owner.logDir });
    const tail = await readLogTail(file, LOG_TAIL_BYTES);
    if (tail === null) throw new HttpError(404, 'no log for that task attempt on this TaskManager');
    ctx.type = 'text/plain';
    if (tail.omittedBytes > 0) {
      ctx.set('X-Log-Truncated', 'true');
      ctx.set('X-Log-Omitted-Bytes', String(tail.omittedBytes));
      ctx.body = `[task-runner] output cut: ${tail.omittedBytes} earlier bytes are not shown (rotated away by taskmanager.log.max-bytes/max-files, or before the last ${LOG_TAIL_BYTES} bytes)\n${tail.text}`;
    } else {
      ctx.body = tail.text;
    }
  });
  app.use(router.routes());
  app.use((ctx) => { throw new HttpError(404, `no such endpoint: ${ctx.method} ${ctx.path}`); });
  return app;
}

/**
 * Audits every refused request (401/403, answered or thrown): who (the verified certificate's
 * identity, else "anonymous"), `<METHOD> <path>`, the status and the peer's address. Never the token.
 */
function auditRefusals(audit: AuditLog): Middleware {
  const record = (ctx: Context, status: number): void => {
    if (status !== 401 && status !== 403) return;
    audit.record({ principal: principalOf(ctx), action: `${ctx.method} ${ctx.path}`, target: ctx.path, outcome: 'denied', status,
      remoteAddress: ctx.req.socket?.remoteAddress ?? '' });
  };
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (typeof (err as HttpError).status === 'number') record(ctx, (err as HttpError).status);
      throw err;
    }
    record(ctx, ctx.status);
  };
}

/** `taskmanager:<id>` or `replica:<id>` for a certificate the cluster CA signed; "anonymous" otherwise (a token names no one). */
function principalOf(ctx: Context): string {
  const peer = verifiedPeer(ctx);
  if (peer?.role === 'replica') return `replica:${peer.replicaId}`;
  if (peer?.taskManagerId !== undefined) return `taskmanager:${peer.taskManagerId}`;
  return 'anonymous';
}

/** The listening HTTP server around `taskManagerApp`. */
export class RpcServer {
  private constructor(private readonly server: HttpServer) {}

  /** Binds `bindAddress:port`; rejects with the listen error (e.g. EADDRINUSE). */
  static async listen(owner: TaskManagerCommands, options: RpcServerOptions): Promise<RpcServer> {
    const server = createServer(options.tls);
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    server.on('request', taskManagerApp(owner, options).callback());
    await listen(server, options.port, options.bindAddress);
    return new RpcServer(server);
  }

  /** The bound port. */
  get port(): number { return (this.server.address() as AddressInfo).port; }

  /** Stops accepting, closes idle connections now and any still open after 1 s. */
  close(): Promise<void> {
    return closeServer(this.server);
  }
}
