/**
 * Reads a JSON request body with a hard byte limit. Hand-written (a dozen lines) because the
 * contract needs exact status codes: 415 for a non-JSON type, 413 over the limit, 400 for bad JSON.
 */
import type { Context } from 'koa';
import { DispatcherError } from '../util/errors';

export async function readJsonBody(ctx: Context, maxBytes: number): Promise<unknown> {
  const type = (ctx.get('content-type') || '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    throw new DispatcherError(`request body must be JSON: send "Content-Type: application/json" (got ${JSON.stringify(type || 'none')})`,
      { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
  }
  const declared = Number(ctx.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes, declared);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      ctx.req.unpipe();
      ctx.req.resume(); // drain the rest so the connection can answer
      throw tooLarge(maxBytes, size);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new DispatcherError('request body is empty: send a JSON document', { status: 400, code: 'EMPTY_BODY' });
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new DispatcherError(`malformed JSON: ${(err as Error).message}`, { status: 400, code: 'MALFORMED_JSON' });
  }
}

function tooLarge(maxBytes: number, size: number): DispatcherError {
  return new DispatcherError(`request body is ${size > maxBytes ? 'over' : 'at'} the limit of ${maxBytes} bytes; send a smaller JobGraph (rest.max-body-bytes)`,
    { status: 413, code: 'PAYLOAD_TOO_LARGE' });
}
