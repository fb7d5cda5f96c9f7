// Entry of the `kubedos` CLI (bin/kubedos.mjs). Commands live in ./commands, one file each.
import type { CliCommand, CliIo } from './command';
import { UnknownOptionError, UsageError } from './command';
import { closest } from '../../common/text/suggest';
import { COMMANDS } from './commands/index';
import { fsErrorHint, fsErrorText, isFsError } from './fs-error';

const VERSION = 'kubedos 0.1.0';

export function findCommand(name: string, commands: readonly CliCommand[] = COMMANDS): CliCommand | undefined {
  return commands.find((c) => c.name === name);
}

const watched = new WeakSet<NodeJS.WritableStream>();
const gone = new WeakSet<NodeJS.WritableStream>();

/**
 * Writes lines to the process's stdout or stderr until its reader is gone, then drops them: the
 * parent that read them died (a killed test runner, a closed terminal, `| head`) and the write's
 * EPIPE, an 'error' event nobody handled, would end the process as an uncaught error before an
 * interrupted command cleaned up (a 2 GiB slot image of `kubedos upgrade`, the journal).
 */
export function lineWriter(stream: NodeJS.WritableStream): (text: string) => void {
  if (!watched.has(stream)) {
    watched.add(stream);
    stream.on('error', () => gone.add(stream));
  }
  return (t) => {
    if (gone.has(stream)) return;
    try {
      stream.write(t.endsWith('\n') ? t : `${t}\n`);
    } catch {
      gone.add(stream);
    }
  };
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

/** Exit status of a second stop signal (the first one stops the command cleanly). */
const SECOND_SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

/** Runs one command line. `commands`: the command table (tests give their own). */
export async function main(argv: string[], partial: Partial<CliIo> = {}, commands: readonly CliCommand[] = COMMANDS): Promise<number> {
  const controller = new AbortController();
  const io: CliIo = {
    out: lineWriter(process.stdout),
    err: lineWriter(process.stderr),
    cwd: process.cwd(),
    env: process.env,
    signal: controller.signal,
    isTty: Boolean(process.stdout.isTTY),
    ...partial,
  };
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(SECOND_SIGNAL_EXIT.SIGINT);
    io.err('interrupted: finishing the current step and writing the journal (Ctrl-C again to quit now)');
    controller.abort(new Error('interrupted'));
  };
  // SIGTERM (a supervisor, `kill`) and SIGHUP (the terminal or the parent went away) stop the same
  // way as Ctrl-C: the runner aborts, child process groups are killed, the journal is kept, the
  // command's temporary files go. A second one exits at once (process 'exit' hooks still run).
  const onStop = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(sig === 'SIGHUP' ? SECOND_SIGNAL_EXIT.SIGHUP : SECOND_SIGNAL_EXIT.SIGTERM);
    controller.abort(new Error(sig === 'SIGTERM' ? 'terminated' : 'hung up'));
  };
  if (!partial.signal) {
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onStop);
    process.on('SIGHUP', onStop);
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
    const cmd = findCommand(name, commands);
    if (!cmd) {
      const suggestion = closest(name, commands.map((c) => c.name));
      io.err(`kubedos: unknown command "${name}"${suggestion ? `; did you mean \`kubedos ${suggestion}\`?` : `; the commands are ${commands.map((c) => c.name).join(', ')}`}`);
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
      process.off('SIGTERM', onStop);
      process.off('SIGHUP', onStop);
    }
  }
}
