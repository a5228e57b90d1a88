/** ZooKeeper result codes (from the C client's ZOO_ERRORS) as typed errors. */
export const ZK_CODES = {
  SYSTEMERROR: -1,
  RUNTIMEINCONSISTENCY: -2,
  DATAINCONSISTENCY: -3,
  CONNECTIONLOSS: -4,
  MARSHALLINGERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATIONTIMEOUT: -7,
  BADARGUMENTS: -8,
  INVALIDSTATE: -9,
  APIERROR: -100,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NOCHILDRENFOREPHEMERALS: -108,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  INVALIDCALLBACK: -113,
  INVALIDACL: -114,
  AUTHFAILED: -115,
  CLOSING: -116,
  NOTHING: -117,
  SESSIONMOVED: -118,
  NOTREADONLY: -119,
  EPHEMERALONLOCALSESSION: -120,
  NOWATCHER: -121,
  RECONFIGDISABLED: -123,
  /** The server enforces authentication (enforce.auth.enabled) and this session has none: it is closed. */
  SESSIONCLOSEDREQUIRESASLAUTH: -124,
  THROTTLEDOP: -127,
} as const;

/**
 * Session states (the C client's ZOO_*_STATE, zk_adaptor.h) that the native binding passes with its
 * 'close' event. They share numbers with unrelated result codes above (-112 is also SESSIONEXPIRED,
 * -113 is also INVALIDCALLBACK), so a close code is compared only against these.
 */
export const ZK_CLOSE_STATES = {
  EXPIRED_SESSION: -112,
  AUTH_FAILED: -113,
} as const;

export type ZkCodeName = keyof typeof ZK_CODES;

const NAMES_BY_CODE = new Map<number, ZkCodeName>(
  Object.entries(ZK_CODES).map(([name, code]) => [code, name as ZkCodeName]),
);

export class ZkError extends Error {
  readonly code: ZkCodeName | 'UNKNOWN';
  readonly rc: number;
  readonly path: string | undefined;
  constructor(rc: number, op: string, path?: string) {
    const code = NAMES_BY_CODE.get(rc) ?? 'UNKNOWN';
    super(`ZooKeeper ${op}${path ? ` ${path}` : ''} failed: ${code} (${rc})`);
    this.name = 'ZkError';
    this.rc = rc;
    this.code = code;
    this.path = path;
  }

  /** The outcome of the operation is unknown: it may or may not have been applied. */
  get isConnectionLoss(): boolean {
    return this.code === 'CONNECTIONLOSS' || this.code === 'OPERATIONTIMEOUT';
  }

  /** The session is gone: nothing more can be done with it. */
  get isSessionGone(): boolean {
    return this.code === 'SESSIONEXPIRED' || this.code === 'CLOSING' || this.code === 'INVALIDSTATE';
  }
}

export class NoNodeError extends ZkError { override readonly name = 'NoNodeError'; }
export class NodeExistsError extends ZkError { override readonly name = 'NodeExistsError'; }
export class BadVersionError extends ZkError { override readonly name = 'BadVersionError'; }
export class NotEmptyError extends ZkError { override readonly name = 'NotEmptyError'; }
export class NoAuthError extends ZkError { override readonly name = 'NoAuthError'; }
export class ConnectionLossError extends ZkError { override readonly name = 'ConnectionLossError'; }
export class SessionExpiredError extends ZkError { override readonly name = 'SessionExpiredError'; }

export function zkError(rc: number, op: string, path?: string): ZkError {
  switch (rc) {
    case ZK_CODES.NONODE: return new NoNodeError(rc, op, path);
    case ZK_CODES.NODEEXISTS: return new NodeExistsError(rc, op, path);
    case ZK_CODES.BADVERSION: return new BadVersionError(rc, op, path);
    case ZK_CODES.NOTEMPTY: return new NotEmptyError(rc, op, path);
    case ZK_CODES.NOAUTH: return new NoAuthError(rc, op, path);
    case ZK_CODES.CONNECTIONLOSS:
    case ZK_CODES.OPERATIONTIMEOUT: return new ConnectionLossError(rc, op, path);
    case ZK_CODES.SESSIONEXPIRED:
    case ZK_CODES.CLOSING:
    case ZK_CODES.INVALIDSTATE: return new SessionExpiredError(rc, op, path);
    default: return new ZkError(rc, op, path);
  }
}
