/**
 * The REST credentials file (`security.rest.credentials-file`, YAML or JSON): which bearer tokens and
 * which client-certificate names act as which principal with which roles.
 *
 * ```yaml
 * principals:
 *   - name: alice                 # shown in audit lines and as a job's submitter
 *     roles: [submitter]          # viewer | submitter | operator | admin (cumulative)
 *     token-sha256: [9f86d0…]     # sha-256 hex of each token (`ha-dispatcher hash-token`)
 *     certificates: [alice]       # client-certificate names (SAN URI or subject CN), with REST mutual TLS
 * ```
 *
 * Tokens are stored as their SHA-256, not scrypt: every request is looked up by the hash of the token
 * it carries (one map lookup), whereas a salted slow hash would cost one scrypt per configured token on
 * every request, a CPU lever for anyone sending garbage tokens. A slow hash protects guessable secrets;
 * these tokens must be 16+ random characters (e.g. `openssl rand -hex 32`), which SHA-256 of a stolen
 * file does not reveal either.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import Ajv, { ErrorObject } from 'ajv';
import YAML from 'yaml';
import { highestRole, Principal, RESERVED_PRINCIPAL_NAMES, Role, ROLES } from './roles';

/** What a loaded file answers: principals by token hash and by certificate name. */
export interface Credentials {
  /** sha-256 hex (lowercase) of a token → its principal. */
  readonly byTokenHash: ReadonlyMap<string, Principal>;
  /** Client-certificate name (SAN URI or CN) → its principal. */
  readonly byCertificate: ReadonlyMap<string, Principal>;
  readonly principals: readonly Principal[];
}

/** Every problem of a credentials file, each prefixed with its JSON path (e.g. `/principals/1/roles/0`). */
export class CredentialsError extends Error {
  constructor(readonly source: string, readonly problems: readonly string[]) {
    super(`${source}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`}`);
    this.name = 'CredentialsError';
  }
}

/** Printable token characters, as security.rest.token requires. */
const TOKEN = /^[\x21-\x7e]{16,512}$/;

const SCHEMA = {
  type: 'object',
  required: ['principals'],
  additionalProperties: false,
  properties: {
    principals: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'roles'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9_.@:-]{1,128}$' },
          roles: { type: 'array', minItems: 1, items: { enum: [...ROLES] } },
          'token-sha256': { type: 'array', items: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
          certificates: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 256 } },
        },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: true }).compile(SCHEMA);

interface PrincipalEntry { name: string; roles: Role[]; 'token-sha256'?: string[]; certificates?: string[] }

/**
 * Parses a credentials document (YAML, of which JSON is a subset).
 * @throws CredentialsError listing every problem at once, each with its path: not YAML, schema
 *   violations, a principal with neither tokens nor certificates, duplicate or reserved names, a token
 *   hash or certificate name given to two principals.
 */
export function parseCredentials(text: string, source: string): Credentials {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new CredentialsError(source, [`is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (!validate(doc)) throw new CredentialsError(source, (validate.errors ?? []).map(describe));
  const entries = (doc as { principals: PrincipalEntry[] }).principals;
  const problems: string[] = [];
  const names = new Map<string, number>();
  const tokens = new Map<string, number>();
  const certificates = new Map<string, number>();
  const byTokenHash = new Map<string, Principal>();
  const byCertificate = new Map<string, Principal>();
  const principals: Principal[] = [];
  entries.forEach((entry, i) => {
    const at = `/principals/${i}`;
    if (RESERVED_PRINCIPAL_NAMES.has(entry.name)) problems.push(`${at}/name: "${entry.name}" is reserved (audit lines use it); choose another name`);
    const first = names.get(entry.name);
    if (first !== undefined) problems.push(`${at}/name: "${entry.name}" is already the name of /principals/${first}`);
    else names.set(entry.name, i);
    const hashes = entry['token-sha256'] ?? [];
    const certs = entry.certificates ?? [];
    if (hashes.length === 0 && certs.length === 0) problems.push(`${at}: has neither token-sha256 nor certificates, so nothing authenticates it`);
    const principal: Principal = { name: entry.name, role: highestRole(entry.roles)! };
    principals.push(principal);
    hashes.forEach((hash, j) => {
      const owner = tokens.get(hash);
      // The hash is not secret, but naming the other principal is enough to find it.
      if (owner !== undefined) problems.push(`${at}/token-sha256/${j}: the same token is already given to /principals/${owner}`);
      else { tokens.set(hash, i); byTokenHash.set(hash, principal); }
    });
    certs.forEach((name, j) => {
      const owner = certificates.get(name);
      if (owner !== undefined) problems.push(`${at}/certificates/${j}: "${name}" is already given to /principals/${owner}`);
      else { certificates.set(name, i); byCertificate.set(name, principal); }
    });
  });
  if (problems.length > 0) throw new CredentialsError(source, problems);
  return { byTokenHash, byCertificate, principals };
}

/**
 * Reads and parses the file at `file` (at start-up).
 * @throws CredentialsError when it cannot be read or is not a valid credentials file.
 */
export function loadCredentialsFile(file: string): Credentials {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CredentialsError(file, [`cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseCredentials(text, file);
}

/**
 * The credentials-file form of `token`: its SHA-256 as 64 lowercase hex characters.
 * @throws Error (without the value) when the token is not 16 to 512 printable characters without spaces.
 */
export function hashToken(token: string): string {
  if (!TOKEN.test(token)) {
    throw new Error('a token must be 16 to 512 printable characters without spaces, e.g. from `openssl rand -hex 32` (value not shown: it is secret)');
  }
  return tokenDigest(token);
}

/** SHA-256 hex of whatever a request presented (no shape check: it is only looked up). */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function describe(error: ErrorObject): string {
  const at = error.instancePath || '/';
  switch (error.keyword) {
    case 'enum': return `${at}: must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    case 'additionalProperties': return `${at}: unknown key "${(error.params as { additionalProperty: string }).additionalProperty}"`;
    case 'required': return `${at}: "${(error.params as { missingProperty: string }).missingProperty}" is required`;
    case 'pattern':
      return at.includes('token-sha256')
        ? `${at}: must be the sha-256 of a token as 64 lowercase hex characters (print it with \`ha-dispatcher hash-token\`)`
        : `${at}: must be 1 to 128 letters, digits, "_", ".", "@", ":" or "-"`;
    default: return `${at}: ${error.message ?? error.keyword}`;
  }
}
