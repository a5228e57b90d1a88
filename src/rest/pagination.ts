/**
 * Pagination of the job listings (`GET /jobs`, `GET /jobs/overview`): `?limit=<1..1000>&cursor=<opaque>`.
 * The order is the Dispatcher's listing order (submission time, then job id), so pages stay stable
 * while jobs are added: no job is listed twice and none is skipped. The cursor is opaque to clients
 * (base64url of the last job's position); the unpaginated form is capped at `UNPAGINATED_CAP` jobs.
 */
import type { Context } from 'koa';
import type { JobCursor, Page, PageRequest } from '../dispatcher/dispatcher';
import { ValidationError } from '../http/errors';

/** Largest page, and most jobs an unpaginated listing returns (then cut, with `X-Result-Truncated: true`). */
export const UNPAGINATED_CAP = 1000;

export interface PageQuery extends PageRequest {
  /** True when the client asked for a page (`limit` or `cursor` given). */
  paginated: boolean;
}

/** Parses `?limit=&cursor=`. @throws ValidationError (400) for a bad limit or an unreadable cursor. */
export function parsePageQuery(query: Context['query']): PageQuery {
  const limitRaw = single(query.limit, 'limit');
  const cursorRaw = single(query.cursor, 'cursor');
  let limit = UNPAGINATED_CAP;
  if (limitRaw !== undefined) {
    if (!/^\d{1,7}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > UNPAGINATED_CAP) {
      throw new ValidationError(`limit must be an integer between 1 and ${UNPAGINATED_CAP}, got ${JSON.stringify(limitRaw.slice(0, 40))}`);
    }
    limit = Number(limitRaw);
  }
  return { limit, after: cursorRaw === undefined || cursorRaw === '' ? undefined : decodeCursor(cursorRaw), paginated: limitRaw !== undefined || cursorRaw !== undefined };
}

export function encodeCursor(c: JobCursor): string {
  return Buffer.from(JSON.stringify([c.submittedAt, c.jobId])).toString('base64url');
}

function decodeCursor(raw: string): JobCursor {
  try {
    const [submittedAt, jobId] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown[];
    if (typeof submittedAt === 'number' && Number.isFinite(submittedAt) && typeof jobId === 'string' && jobId.length <= 128) return { submittedAt, jobId };
  } catch { /* reported below */ }
  throw new ValidationError('cursor is not one this server handed out; start again without cursor');
}

/**
 * Answers a listing: `{[field]: items}`, plus `next` (cursor or null) when paginated. Whenever more
 * jobs follow, the `X-Next-Cursor` header carries the cursor; an unpaginated listing that was cut also
 * gets `X-Result-Truncated: true` (its body keeps the unpaginated shape).
 */
export function answerPage<T>(ctx: Context, field: string, query: PageQuery, page: Page<T>): void {
  const next = page.next ? encodeCursor(page.next) : null;
  if (next) ctx.set('X-Next-Cursor', next);
  if (next && !query.paginated) ctx.set('X-Result-Truncated', 'true');
  ctx.body = query.paginated ? { [field]: page.items, next } : { [field]: page.items };
}

function single(value: string | string[] | undefined, name: string): string | undefined {
  if (Array.isArray(value)) throw new ValidationError(`${name} may be given once`);
  return value;
}
