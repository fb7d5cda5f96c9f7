// `kubedos ssh SPEC NODE [-- CMD…]`: a shell (or one command) on a node of a deployed cluster,
// through the hub over wg1, with the host keys first boot recorded (main/terminal/). Thin: the
// terminal service does the work; this binds it to this process's TTY.
import { constants as osConstants } from 'node:os';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { openNodeTerminal, TerminalError, TerminalTrustError } from '../../terminal/index';

export const sshCommand: CliCommand = {
  name: 'ssh',
  summary: 'a shell or one command on a node of a deployed cluster, through the hub over wg1 (pinned host keys, no Kubernetes needed)',
  usage: 'kubedos ssh SPEC NODE [--via ADDRESS] [--no-transcript] [-- COMMAND…]',
  help: [
    'Logs in as the spec\'s first security.ssh.allowUsers user with the cluster\'s operator key: to the hub at',
    'its wg1 address (SSH is served on wg1 only: this machine must be a wg1 peer), then from the hub to NODE\'s',
    'wg1 address. Both accept only the ed25519 host key first boot recorded in the workspace journal; a',
    'changed key is refused. Kubernetes is not needed and nothing is pulled.',
    '  --via ADDRESS     reach the hub at ADDRESS instead (a forwarded port, another interface)',
    '  --port N          the nodes\' SSH port (default 22)',
    '  --no-transcript   do not record the session',
    'The output is recorded in <workspace>/terminal/ and its sha256 in <workspace>/terminal/transcripts.jsonl.',
    'Exit status: the remote command\'s, 255 when no connection could be made, 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    const dash = argv.indexOf('--');
    const own = dash >= 0 ? argv.slice(0, dash) : argv;
    const remote = dash >= 0 ? argv.slice(dash + 1) : [];
    const { values, positionals } = parseCommandArgs(own, { via: { type: 'string' }, port: { type: 'string' }, 'no-transcript': { type: 'boolean' } });
    const [file, node, extra] = positionals;
    if (!file || !node) throw new UsageError(!file ? 'missing the SPEC file' : 'missing the NODE to open (a node name of the spec)');
    if (extra !== undefined) throw new UsageError(`unexpected "${extra}": put the remote command after -- (kubedos ssh SPEC NODE -- ${extra} …)`);
    if (dash >= 0 && remote.length === 0) throw new UsageError('nothing after --: give the command to run, or leave -- out for a shell');
    const port = values.port === undefined ? undefined : Number(values.port);
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new UsageError(`--port ${values.port}: give a TCP port (1-65535)`);
    const loaded = loadSpec(file, io.cwd);
    if (!loaded.spec) return reportInvalidSpec(loaded, file, io, 'no connection made');
    const stdin = process.stdin;
    const stdout = process.stdout;
    const interactive = io.isTty && Boolean(stdin.isTTY);
    const size = interactive ? { cols: stdout.columns || 80, rows: stdout.rows || 24 } : undefined;
    let opened;
    try {
      opened = await openNodeTerminal({
        spec: loaded.spec,
        node,
        env: io.env,
        ...(values.via ? { via: values.via } : {}),
        ...(port ? { port } : {}),
        ...(size ? { size } : {}),
        ...(remote.length ? { command: remote.join(' ') } : {}),
        signal: io.signal,
        transcript: !values['no-transcript'],
        onData: (b, stream) => (stream === 'stderr' ? process.stderr : stdout).write(b),
      });
    } catch (err) {
      if (err instanceof TerminalError || err instanceof TerminalTrustError) {
        io.err(`kubedos ssh ${node}: ${err.message}`);
        return 255;
      }
      throw err;
    }
    const { session } = opened;
    const onInput = (b: Buffer): void => session.write(b);
    const onResize = (): void => session.resize({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
    if (interactive) {
      stdin.setRawMode(true);
      stdout.on('resize', onResize);
    }
    stdin.on('data', onInput);
    stdin.once('end', () => session.endInput());
    stdin.resume();
    try {
      const exit = await session.exited;
      if (exit.transcript && !interactive) io.err(`transcript: ${exit.transcript.file} (sha256 ${exit.transcript.sha256}, ${exit.transcript.bytes} bytes)`);
      else if (exit.transcript) process.stderr.write(`\r\nkubedos ssh: transcript ${exit.transcript.file} (sha256 ${exit.transcript.sha256.slice(0, 16)}…)\r\n`);
      return exit.exitCode ?? (exit.signal ? 128 + (osConstants.signals[`SIG${exit.signal}` as keyof typeof osConstants.signals] ?? 1) : 255);
    } finally {
      stdin.off('data', onInput);
      stdin.pause();
      if (interactive) {
        stdin.setRawMode(false);
        stdout.off('resize', onResize);
      }
    }
  },
};
