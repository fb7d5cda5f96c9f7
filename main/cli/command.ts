// A CLI command: a name, its help text, and a run function returning the exit code.
// Output goes through the injected streams so tests can capture it.
//
// Flags are declared as node:util parseArgs options and parsed with parseCommandArgs(argv,
// options[, allowPositionals]); its mistakes (unknown option, missing value, stray argument) come
// back as one line naming the flag and, for a typo, the closest declared one.
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { closest } from '../../common/text/suggest';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  cwd: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  isTty: boolean;
}

export interface CliCommand {
  name: string;
  summary: string;
  usage: string;
  /** Multi-line help body shown by `kubedos NAME --help`. */
  help: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/** Bad usage: exit 2, the message and the command's usage line printed. */
export class UsageError extends Error {}

/**
 * An option the command does not declare. main() prints it as one line:
 * "unknown option --targt for `kubedos deploy`; did you mean --target?" (no usage dump).
 */
export class UnknownOptionError extends UsageError {
  constructor(
    readonly option: string,
    readonly suggestion: string | undefined,
  ) {
    super(`unknown option ${option}`);
  }

  line(command: string): string {
    return `unknown option ${this.option} for \`kubedos ${command}\`${this.suggestion ? `; did you mean ${this.suggestion}?` : ` (kubedos ${command} --help lists its options)`}`;
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Every spelling of the declared options: --long and -s. */
export function optionSpellings(options: Options): string[] {
  const out: string[] = ['--help'];
  for (const [name, o] of Object.entries(options)) {
    out.push(`--${name}`);
    if (o.short) out.push(`-${o.short}`);
  }
  return out;
}

/** The option `text` (as typed, maybe with =value) is closest to, among the declared ones. */
export function suggestOption(text: string, options: Options): string | undefined {
  const typed = text.split('=')[0]!;
  const longs = optionSpellings(options).filter((s) => s.startsWith('--'));
  // A long option typed with one dash (-target) or a short one: compare on the name only.
  const bare = typed.replace(/^-+/, '');
  const byName = closest(bare, longs.map((l) => l.slice(2)));
  return byName === undefined ? undefined : `--${byName}`;
}

/** node:util parseArgs with its errors turned into one-line UsageErrors (exit 2). */
export function parseCommandArgs<T extends Options>(argv: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const option = /^Unknown option '([^']+)'/.exec(e.message)?.[1] ?? argv.find((a) => a.startsWith('-')) ?? '?';
      throw new UnknownOptionError(option, suggestOption(option, options));
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const m = /^Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' (argument missing|does not take an argument)/.exec(e.message);
      if (m) throw new UsageError(m[2] === 'argument missing' ? `option ${m[1]} needs a value (${m[1]} VALUE)` : `option ${m[1]} takes no value`);
    }
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /^Unexpected argument '([^']*)'/.exec(e.message)?.[1];
      throw new UsageError(`unexpected argument ${JSON.stringify(arg ?? '')}: this command takes options only`);
    }
    throw new UsageError(e.message);
  }
}
