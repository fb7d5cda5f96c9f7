// A CLI command: a name, its help text, and a run function returning the exit code.
// Output goes through the injected streams so tests can capture it.
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

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

export class UsageError extends Error {}

/** node:util parseArgs with errors turned into UsageError (exit 2, usage printed). */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
