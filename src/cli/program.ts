/**
 * The commander plumbing every `ha-dispatcher` verb shares: one program whose help, usage errors and exit
 * codes behave alike. `--help` on any command prints its usage and exits 0; a usage error prints
 * `error: …` and the command's usage line and exits 2; a CliError prints its message (and hint) and exits
 * with its code; with `--json` stdout still carries exactly one JSON document.
 */
import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from '../client/rest-client';
import { ConfigError } from '../util/errors';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** Defaults to process.env; tests pass their own so HA_DISPATCHER_URL on the host cannot leak in. */
  env?: Record<string, string | undefined>;
  /** Read by `submit -`; defaults to process.stdin. */
  stdin?: AsyncIterable<string | Buffer>;
  /** The HTTP client of the client verbs; defaults to the global fetch. Tests pass a fake cluster. */
  fetchImpl?: typeof fetch;
}

/** What an action resolves with: an exit code, or null for a long-running process (it exits on its own). */
export type Outcome = number | null;
/** Records an action's outcome; runProgram resolves with the last one recorded. */
export type Done = (outcome: Outcome) => void;

/** A command (or the program) whose output goes to `io` and whose errors throw instead of exiting. */
export function configure(command: Command, io: CliIo): Command {
  return command
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => undefined })
    .showSuggestionAfterError(true)
    .allowExcessArguments(false);
}

/** The `ha-dispatcher` program without commands; add them, then hand it to runProgram. */
export function newProgram(io: CliIo, description: string, version: string): Command {
  return configure(new Command('ha-dispatcher'), io)
    .description(description)
    .version(version, '-V, --version', 'print the version and exit')
    .helpCommand('help [command]', 'show the usage of a command');
}

/** Adds a sub-command configured like the program (commander does not pass exitOverride and output down). */
export function subcommand(parent: Command, nameAndArgs: string, io: CliIo): Command {
  return configure(parent.command(nameAndArgs), io);
}

/**
 * Parses `argv` (user arguments, without node and the script) and runs the chosen action. Resolves with
 * the exit code, or null when a long-running process was started.
 */
export async function runProgram(program: Command, argv: string[], io: CliIo, outcome: { value: Outcome }): Promise<Outcome> {
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return outcome.value;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.OK; // --help, help, --version
      // `ha-dispatcher` alone: the help went to stderr already; an invocation without a verb is a usage error.
      if (err.code === 'commander.help') return EXIT.USAGE;
      return report(new CliError(EXIT.USAGE, err.message.replace(/^error: /, '')), program, argv, io, json);
    }
    if (err instanceof ConfigError) {
      io.stderr(`ha-dispatcher: invalid configuration: ${err.message}\n`);
      return EXIT.USAGE;
    }
    if (err instanceof CliError) return report(err, program, argv, io, json);
    throw err;
  }
}

function report(err: CliError, program: Command, argv: string[], io: CliIo, json: boolean): number {
  io.stderr(`error: ${err.message}\n` + err.errors.map((m) => `  ${m}\n`).join(''));
  if (err.hint) io.stderr(`hint: ${err.hint}\n`);
  if (err.exitCode === EXIT.USAGE) {
    const command = program.commands.find((c) => c.name() === argv[0]);
    io.stderr(command ? `usage: ha-dispatcher ${command.name()} ${command.usage()}  (see ha-dispatcher ${command.name()} --help)\n`
      : 'see ha-dispatcher --help\n');
  }
  if (json) {
    const doc = { errors: err.errors.length ? err.errors : [err.message], message: err.message, exitCode: err.exitCode,
      status: err.status, url: err.url, hint: err.hint };
    io.stdout(JSON.stringify(doc) + '\n');
  }
  return err.exitCode;
}

/** A commander value parser for a positive integer number of milliseconds (or any unit named in `what`). */
export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) <= 0) throw new CliError(EXIT.USAGE, `${name} must be a positive integer, got "${value}"`);
    return Number(value);
  };
}
