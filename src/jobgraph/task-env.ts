/**
 * What a job may put into its tasks' environment. Shared by the JobGraph validator (a 400 at submission)
 * and the TaskManager (a refused deploy), so both refuse the same names. See docs/ARCHITECTURE.md and the
 * README's "Task sandbox".
 */

/**
 * A job env value: a string, or a secret resolved on the TaskManager when the attempt starts, so the clear
 * value is never stored in ZooKeeper: `{fromFile}` reads a file under `taskmanager.task.secrets-dir`,
 * `{fromEnv}` a TaskManager variable named with SECRET_ENV_PREFIX.
 */
export type EnvValue = string | { fromFile: string } | { fromEnv: string };

/** Only TaskManager variables with this prefix may be handed to tasks by `{fromEnv}`: the rest stays the TaskManager's. */
export const SECRET_ENV_PREFIX = 'TASK_SECRET_';

/**
 * Names that change how a loader, shell or interpreter starts (code injection before the task's own
 * program runs) or that the TaskManager fixes itself (PATH). A job setting any of them is refused.
 */
const FORBIDDEN_NAMES: ReadonlySet<string> = new Set([
  'PATH', 'IFS', 'ENV', 'BASH_ENV', 'SHELLOPTS', 'BASHOPTS', 'GLOBIGNORE', 'CDPATH', 'PS4', 'POSIXLY_CORRECT', 'EXECIGNORE',
  'NODE_OPTIONS', 'NODE_PATH', 'NODE_EXTRA_CA_CERTS', 'NODE_REPL_EXTERNAL_MODULE',
  'RUBYOPT', 'RUBYLIB', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'CLASSPATH',
  'LOCPATH', 'GCONV_PATH', 'HOSTALIASES', 'RESOLV_HOST_CONF', 'MALLOC_CHECK_', 'TMPDIR', 'HOME',
]);
/** Prefixes of whole families: the dynamic loader, bash's exported functions, Python, Perl, glibc tunables. */
const FORBIDDEN_PREFIXES: readonly string[] = ['LD_', 'BASH_FUNC_', 'PYTHON', 'PERL5', 'PERLLIB', 'GLIBC_', 'DYLD_'];

/** Whether a job may not set `name` (exact names plus the LD_*, BASH_FUNC_*, PYTHON*, PERL5*, GLIBC_* families). */
export function isForbiddenEnvName(name: string): boolean {
  return FORBIDDEN_NAMES.has(name) || FORBIDDEN_PREFIXES.some((p) => name.startsWith(p));
}

/** One line for error messages: what is refused and why. */
export const FORBIDDEN_ENV_RULE =
  'the TaskManager sets PATH, HOME and TMPDIR itself, and variables that inject code into loaders, shells or interpreters ' +
  `(${[...FORBIDDEN_PREFIXES.map((p) => `${p}*`), 'BASH_ENV', 'ENV', 'NODE_OPTIONS', 'RUBYOPT', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'IFS', 'SHELLOPTS'].join(', ')}, ...) are refused`;

/** The names of `env` a job may not set, in order. */
export function forbiddenEnvNames(env: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(env).filter(isForbiddenEnvName);
}
