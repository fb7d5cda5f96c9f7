// Entry of the `kubedos` CLI (bin/kubedos.mjs). Commands live in ./commands, one file each.
import type { CliCommand, CliIo } from './command';
import { UnknownOptionError, UsageError } from './command';
import { closest } from '../../common/text/suggest';
import { COMMANDS } from './commands/index';
import { fsErrorHint, fsErrorText, isFsError } from './fs-error';

const VERSION = 'kubedos 0.1.0';

export function findCommand(name: string): CliCommand | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** `kubedos --help`. */
export function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "kubedos — Kube'd'OS Foundry: spec -> plan -> build -> provision -> first boot -> planes -> enroll -> converge -> seal",
    '',
    'usage: kubedos <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `kubedos <command> --help` for the options of one command.',
  ].join('\n');
}

/** `kubedos NAME --help`. */
export function commandHelp(cmd: CliCommand): string {
  return `usage: ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help}`.trimEnd();
}

/** Every help text and the version, as `npm run build:cli` stores them for bin/kubedos.mjs to answer without loading the engine. */
export function helpIndex(): { version: string; top: string; commands: Record<string, string> } {
  return { version: VERSION, top: topHelp(), commands: Object.fromEntries(COMMANDS.map((c) => [c.name, commandHelp(c)])) };
}

export async function main(argv: string[], partial: Partial<CliIo> = {}): Promise<number> {
  const controller = new AbortController();
  const io: CliIo = {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    cwd: process.cwd(),
    env: process.env,
    signal: controller.signal,
    isTty: Boolean(process.stdout.isTTY),
    ...partial,
  };
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    io.err('interrupted: finishing the current step and writing the journal (Ctrl-C again to quit now)');
    controller.abort(new Error('interrupted'));
  };
  // SIGTERM (a supervisor, `kill`) stops the same way as Ctrl-C: the runner aborts, child
  // process groups are killed, the journal is kept.
  const onSigterm = (): void => {
    if (controller.signal.aborted) process.exit(143);
    controller.abort(new Error('terminated'));
  };
  if (!partial.signal) {
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
  }
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      io.out(topHelp());
      return name ? 0 : 2;
    }
    if (name === '--version' || name === '-V') {
      io.out(VERSION);
      return 0;
    }
    const cmd = findCommand(name);
    if (!cmd) {
      const suggestion = closest(name, COMMANDS.map((c) => c.name));
      io.err(`kubedos: unknown command "${name}"${suggestion ? `; did you mean \`kubedos ${suggestion}\`?` : `; the commands are ${COMMANDS.map((c) => c.name).join(', ')}`}`);
      return 2;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(commandHelp(cmd));
      return 0;
    }
    try {
      return await cmd.run(rest, io);
    } catch (err) {
      if (err instanceof UnknownOptionError) {
        io.err(`kubedos: ${err.line(cmd.name)}`);
        return 2;
      }
      if (err instanceof UsageError) {
        io.err(`kubedos ${cmd.name}: ${err.message}\nusage: ${cmd.usage}`);
        return 2;
      }
      throw err;
    }
  } catch (err) {
    const e = err as Error & { hint?: string; stderrTail?: string };
    const hint = e.hint ?? fsErrorHint(err);
    io.err(`kubedos${name ? ` ${name}` : ''}: ${isFsError(err) ? fsErrorText(err) : (e.message ?? String(err))}`);
    if (hint) io.err(`hint: ${hint}`);
    if (io.env.KUBEDOS_DEBUG) io.err(e.stack ?? '');
    return 1;
  } finally {
    if (!partial.signal) {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
    }
  }
}
