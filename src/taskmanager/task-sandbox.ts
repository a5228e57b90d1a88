/**
 * What a task attempt may see of the TaskManager: a clean environment (a few inherited variables, a fixed
 * PATH, HOME and TMPDIR in its own work directory, the job's env minus the forbidden names), a fresh work
 * directory removed after the attempt, optionally another system user and an allow-list of programs.
 * See the README's "Task sandbox" and docs/ARCHITECTURE.md.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FORBIDDEN_ENV_RULE, forbiddenEnvNames, SECRET_ENV_PREFIX, type EnvValue } from '../jobgraph/task-env';
import { MAX_ENV_VALUE_LENGTH } from '../jobgraph/limits';
import type { EventLogger } from '../util/logger';

/** The PATH every task gets, whatever the TaskManager's own is: commands are looked up here and only here. */
export const SAFE_PATH = '/usr/local/bin:/usr/bin:/bin';

/** TaskManager variables a task inherits; everything else of the TaskManager's environment stays behind. */
export const INHERITED_ENV: readonly string[] = ['LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ'];

export interface TaskUser {
  name: string;
  uid: number;
  gid: number;
}

export interface TaskSandbox {
  /** Root of the per-attempt work directories (`<data-dir>/<tm-id>/work`). */
  workRoot: string;
  /** Runs commands as this user (the TaskManager must be able to setuid, i.e. run as root); absent: as the TaskManager. */
  user?: TaskUser;
  /** taskmanager.command.allowed: absolute paths or globs argv[0] must resolve to; absent: any program. */
  allowedCommands?: readonly string[];
  /** The only directory `{fromFile}` secrets are read from (taskmanager.task.secrets-dir). */
  secretsDir: string;
  /** The TaskManager's own secret files (config, token files): never handed to a task, even under secretsDir. */
  protectedFiles?: readonly string[];
}

/** argv[0] as the task will run it: a path with "/" resolved against the work dir, a bare name on SAFE_PATH; null when not found. */
export function resolveProgram(program: string, workDir: string): string | null {
  const candidates = program.includes('/') ? [path.resolve(workDir, program)] : SAFE_PATH.split(':').map((dir) => path.join(dir, program));
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch { /* not this one */ }
  }
  return null;
}

/**
 * Why this TaskManager refuses to run `argv`/`env` (a forbidden env name, or a program outside the
 * allow-list), or null. `workDir` resolves a relative argv[0]. The TaskManager answers a refused deploy
 * with 400 and this reason.
 */
export function refusal(argv: readonly string[], env: Readonly<Record<string, unknown>> | undefined, sandbox: TaskSandbox, workDir: string): string | null {
  const forbidden = forbiddenEnvNames(env ?? {});
  if (forbidden.length > 0) return `forbidden environment variables: ${forbidden.map((n) => `task.env.${n}`).join(', ')}; ${FORBIDDEN_ENV_RULE}`;
  const allowed = sandbox.allowedCommands;
  if (!allowed || typeof argv[0] !== 'string') return null;
  const program = resolveProgram(argv[0], workDir);
  if (program === null) return `program ${JSON.stringify(argv[0])} is not on this TaskManager's task PATH (${SAFE_PATH}) and taskmanager.command.allowed is set`;
  if (!allowed.some((pattern) => globMatches(pattern, program))) {
    return `program ${program} is not allowed on this TaskManager (taskmanager.command.allowed: ${allowed.join(', ')})`;
  }
  return null;
}

/** `*` and `?` stay within one path segment, `**` crosses them; everything else is literal. */
export function globMatches(pattern: string, file: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') { re += '.*'; i++; } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`).test(file);
}

/**
 * The attempt's whole environment: INHERITED_ENV from the TaskManager, PATH=SAFE_PATH, HOME and TMPDIR
 * = `workDir`, USER/LOGNAME of the task user, then the job's env with secrets resolved, then `fixed`
 * (JOB_ID …). Throws Error naming the variable when a secret cannot be resolved.
 */
export function taskEnvironment(jobEnv: Readonly<Record<string, EnvValue>> | undefined, fixed: Record<string, string>, sandbox: TaskSandbox, workDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
  Object.assign(env, { PATH: SAFE_PATH, HOME: workDir, TMPDIR: workDir });
  if (sandbox.user) Object.assign(env, { USER: sandbox.user.name, LOGNAME: sandbox.user.name });
  for (const [name, value] of Object.entries(jobEnv ?? {})) env[name] = resolveValue(name, value, sandbox);
  return Object.assign(env, fixed);
}

function resolveValue(name: string, value: EnvValue, sandbox: TaskSandbox): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'fromEnv' in value) {
    const from = String(value.fromEnv);
    if (!from.startsWith(SECRET_ENV_PREFIX)) throw new Error(`env ${name}: fromEnv may only name TaskManager variables starting with ${SECRET_ENV_PREFIX}, got ${JSON.stringify(from)}`);
    const v = process.env[from];
    if (v === undefined) throw new Error(`env ${name}: the TaskManager has no variable ${from} (fromEnv)`);
    return v;
  }
  if (value && typeof value === 'object' && 'fromFile' in value) {
    const file = String(value.fromFile);
    let real: string;
    let root: string;
    try {
      real = fs.realpathSync(file);
      root = fs.realpathSync(sandbox.secretsDir);
    } catch (err) {
      throw new Error(`env ${name}: cannot read secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const protectedFiles = new Set((sandbox.protectedFiles ?? []).map(realpathOrSelf));
    if (!real.startsWith(root + path.sep) || protectedFiles.has(real)) {
      throw new Error(`env ${name}: secret file ${file} is not under taskmanager.task.secrets-dir (${sandbox.secretsDir}) or is one of the TaskManager's own secrets`);
    }
    let text: string;
    try {
      text = fs.readFileSync(real, 'utf8');
    } catch (err) {
      throw new Error(`env ${name}: cannot read secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // Secret files usually end with a newline nobody means as part of the value.
    text = text.replace(/\r?\n$/, '');
    if (text.length > MAX_ENV_VALUE_LENGTH || text.includes('\0')) throw new Error(`env ${name}: secret file ${file} is too long or contains NUL`);
    return text;
  }
  throw new Error(`env ${name}: must be a string, {"fromFile": ...} or {"fromEnv": ...}`);
}

function realpathOrSelf(file: string): string {
  try { return fs.realpathSync(file); } catch { return path.resolve(file); }
}

/** `<workRoot>/<jobId>/<vertex>-<subtask>-<attempt>`, names already made safe by the caller. */
export function prepareWorkDir(dir: string, sandbox: TaskSandbox): void {
  fs.rmSync(dir, { recursive: true, force: true }); // a leftover of a crashed TaskManager is not this attempt's
  // Parents: traversable, not listable, so one attempt's user cannot enumerate the others.
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o711 });
  fs.mkdirSync(dir, { mode: 0o700 });
  if (sandbox.user) fs.chownSync(dir, sandbox.user.uid, sandbox.user.gid);
}

/** Removes the attempt's work dir, then its job directory when that is left empty. Never throws. */
export function removeWorkDir(dir: string): void {
  try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  try { fs.rmdirSync(path.dirname(dir)); } catch { /* another attempt of the job still uses it */ }
}

/** uid and gid of a system user through NSS (`getent passwd`), so LDAP/sssd users resolve as well as /etc/passwd ones. Throws Error when unknown. */
export function resolveTaskUser(name: string): TaskUser {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0];
  } catch {
    throw new Error(`taskmanager.task.user: no system user ${JSON.stringify(name)} (getent passwd found none); create it, e.g. useradd --system --no-create-home ${name}`);
  }
  const [, , uid, gid] = line.split(':');
  if (!/^\d+$/.test(uid ?? '') || !/^\d+$/.test(gid ?? '')) throw new Error(`taskmanager.task.user: cannot parse getent passwd ${name}: ${JSON.stringify(line)}`);
  return { name, uid: Number(uid), gid: Number(gid) };
}

/**
 * Checks the TaskManager's secret files (config, token files) at start-up: a world-readable one logs
 * `taskmanager.secret-file.readable`; with a task user configured, one that user can read (owner, group or
 * other bits) throws, since any job could print it.
 */
export function checkSecretFiles(files: readonly string[], user: TaskUser | undefined, logger: EventLogger): void {
  for (const file of files) {
    let st: fs.Stats;
    try { st = fs.statSync(file); } catch { continue; }
    const mode = st.mode & 0o777;
    const readableByTaskUser = user !== undefined && user.uid !== process.getuid?.() &&
      ((st.uid === user.uid && (mode & 0o400) !== 0) || (st.gid === user.gid && (mode & 0o040) !== 0) || (mode & 0o004) !== 0);
    if (readableByTaskUser) {
      throw new Error(`${file} (mode ${mode.toString(8)}) is readable by taskmanager.task.user ${user!.name}, so any task could print it; ` +
        `chmod o-r,g-r ${file} and keep it owned by the TaskManager's user`);
    }
    if ((mode & 0o004) !== 0) {
      logger.warn('taskmanager.secret-file.readable', { file, mode: mode.toString(8), reason: `every local user, tasks included, can read it; chmod o-r ${file}` });
    }
  }
}
