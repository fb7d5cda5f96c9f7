// The one runner for external commands. Every tool the engine starts goes through here:
// argv arrays only (shell: false), an allowlist of programs, a timeout, an AbortSignal that
// kills the whole process group, output streamed line by line as events, and secrets
// (registered with registerSecret, or shaped like one: exec/secrets.ts) redacted from every event
// and error; results lose only the per-call `secrets` (some commands exist to print a secret).
// A child gets a minimal environment, never the engine's whole process.env.
import { spawn } from 'node:child_process';
import { basename } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { childEnv, redactSecrets } from './secrets';
import { isKnownTool, toolFor } from './tools';

export interface ExecEvent {
  runId: string;
  kind: 'start' | 'line' | 'exit';
  command: string[];
  stream?: 'stdout' | 'stderr';
  line?: string;
  exitCode?: number | null;
  signal?: string | null;
  durationMs?: number;
}

export interface RunOptions {
  cwd?: string;
  /** Added to the child's minimal environment (PATH, HOME, locale…; see childEnv in secrets.ts). */
  env?: Record<string, string | undefined>;
  /** Only `env`, not even the minimal inherited variables. */
  cleanEnv?: boolean;
  input?: string | Uint8Array;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Values that must never appear in events, results or errors (besides registerSecret's and the secret shapes). */
  secrets?: readonly string[];
  onEvent?: (event: ExecEvent) => void;
  runId?: string;
  /** Exit codes that count as success (default [0]). */
  okExitCodes?: readonly number[];
  /** Keep at most this many bytes of each stream in the result (default 8 MiB). */
  maxBufferBytes?: number;
  /** What to tell the user if the command fails. */
  hint?: string;
  /** Return stdout as raw bytes too. */
  binary?: boolean;
}

export interface RunResult {
  command: string[];
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutBytes?: Buffer;
  durationMs: number;
}

export const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const DISK_FULL = /No space left on device|ENOSPC|Disk quota exceeded/;
const DISK_FULL_HINT = 'the disk it writes to is full: free space (df -h; `kubedos cache prune --max-size 10G` drops old build artifacts) and run it again';
const TAIL_LINES = 20;
const PEM_BEGIN = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/;
const PEM_END = /-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/;

export class CommandError extends Error {
  readonly command: string[];
  readonly exitCode: number | null;
  readonly stderrTail: string;
  readonly hint: string | undefined;
  readonly reason: 'exit' | 'timeout' | 'aborted' | 'spawn' | 'not-allowed';

  constructor(init: { message: string; command: string[]; exitCode: number | null; stderrTail: string; hint?: string; reason: CommandError['reason'] }) {
    // The last wall: whatever built the message, a registered secret or a secret shape never leaves in an error.
    super(redactSecrets(init.message));
    this.name = 'CommandError';
    this.command = init.command.map((a) => redactSecrets(a));
    this.exitCode = init.exitCode;
    this.stderrTail = redactSecrets(init.stderrTail);
    this.hint = init.hint;
    this.reason = init.reason;
  }
}

let runCounter = 0;

function cutSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out;
}

/** `text` without `secrets`, without any value registered with registerSecret, and without secret shapes. */
export function redact(text: string, secrets: readonly string[] | undefined): string {
  return redactSecrets(text, secrets ?? []);
}

function tail(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-TAIL_LINES).join('\n');
}

function quoteArg(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Quote an argv for display (never for execution). */
export function displayCommand(argv: readonly string[]): string {
  return argv.map(quoteArg).join(' ');
}

/** The command as error messages show it: its first arguments and a count, so a message never
 * carries a whole package list (an apt call naming 200 packages). */
export function messageCommand(argv: readonly string[], maxArgs = 24, maxChars = 600): string {
  const out: string[] = [];
  let chars = 0;
  for (const a of argv) {
    const q = quoteArg(a);
    if (out.length >= maxArgs || chars + q.length > maxChars) return `${out.join(' ')} … (+${argv.length - out.length} more arguments)`;
    out.push(q);
    chars += q.length + 1;
  }
  return out.join(' ');
}

export async function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const secrets = options.secrets ?? [];
  const shown = argv.map((a) => redact(a, secrets));
  const program = argv[0];
  if (!program) throw new CommandError({ message: 'empty command', command: [], exitCode: null, stderrTail: '', reason: 'not-allowed' });
  if (!isKnownTool(basename(program))) {
    throw new CommandError({
      message: `refusing to run "${basename(program)}": it is not in the runner's allowlist (main/exec/tools.ts)`,
      command: shown,
      exitCode: null,
      stderrTail: '',
      reason: 'not-allowed',
    });
  }
  if (options.signal?.aborted) {
    throw new CommandError({ message: `aborted before start: ${messageCommand(shown)}`, command: shown, exitCode: null, stderrTail: '', reason: 'aborted' });
  }
  const runId = options.runId ?? `exec-${++runCounter}`;
  const emit = options.onEvent;
  const maxBuffer = options.maxBufferBytes ?? 8 * 1024 * 1024;
  const started = performance.now();
  // A child never inherits the engine's whole environment ($KUBEDOS_SSH_PASSPHRASE and the like).
  // SHLVL=1: Node's stdio pipes are socketpairs, and bash sources the user's ~/.bashrc when its
  // standard input is a socket and it believes it is the first shell (sshd-style); a shell profile
  // (pyenv init, prompts, anything that waits) must never run inside the engine's commands.
  const env = options.cleanEnv ? { ...options.env } : { ...childEnv(process.env), SHLVL: '1', ...options.env };

  return new Promise<RunResult>((resolve, reject) => {
    let child;
    try {
      child = spawn(program, argv.slice(1), {
        cwd: options.cwd,
        env: env as NodeJS.ProcessEnv,
        shell: false,
        detached: true,
        // No input: standard input is /dev/null, not an open pipe.
        stdio: [options.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      reject(spawnError(err as NodeJS.ErrnoException));
      return;
    }
    emit?.({ runId, kind: 'start', command: shown });

    const chunks: { stdout: Buffer[]; stderr: Buffer[] } = { stdout: [], stderr: [] };
    const sizes = { stdout: 0, stderr: 0 };
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    const partial = { stdout: '', stderr: '' };
    // Inside a PEM private key block, every line is key material (none is recognisable alone).
    const inKey = { stdout: false, stderr: false };
    const redactLine = (stream: 'stdout' | 'stderr', line: string): string => {
      if (PEM_BEGIN.test(line)) inKey[stream] = true;
      if (inKey[stream]) {
        if (PEM_END.test(line)) inKey[stream] = false;
        return '***';
      }
      return redact(line, secrets);
    };
    let settled = false;
    let killedFor: 'timeout' | 'aborted' | undefined;

    const onData = (stream: 'stdout' | 'stderr') => (buf: Buffer) => {
      if (sizes[stream] < maxBuffer) {
        chunks[stream].push(buf);
        sizes[stream] += buf.length;
      }
      if (!emit) return;
      const text = partial[stream] + decoders[stream].write(buf);
      const lines = text.split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) emit({ runId, kind: 'line', command: shown, stream, line: redactLine(stream, line.replace(/\r$/, '')) });
    };
    // Both are pipes (stdio above); the types cannot tell from a computed stdio array.
    (child.stdout as Readable).on('data', onData('stdout'));
    (child.stderr as Readable).on('data', onData('stderr'));

    const killGroup = (why: 'timeout' | 'aborted'): void => {
      if (killedFor) return;
      killedFor = why;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      setTimeout(() => {
        try {
          if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 3000).unref();
    };
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(() => killGroup('timeout'), timeoutMs);
    timer.unref();
    const onAbort = (): void => killGroup('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(spawnError(err));
    });

    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      for (const stream of ['stdout', 'stderr'] as const) {
        const rest = partial[stream] + decoders[stream].end();
        if (emit && rest) emit({ runId, kind: 'line', command: shown, stream, line: redactLine(stream, rest) });
      }
      const durationMs = performance.now() - started;
      const stdoutBuf = Buffer.concat(chunks.stdout);
      const result: RunResult = {
        command: shown,
        exitCode: code,
        signal,
        // The caller's own result: only the per-call secrets are cut (a decrypted value is the point of some commands).
        stdout: cutSecrets(stdoutBuf.toString('utf8'), secrets),
        stderr: cutSecrets(Buffer.concat(chunks.stderr).toString('utf8'), secrets),
        durationMs,
        ...(options.binary ? { stdoutBytes: stdoutBuf } : {}),
      };
      emit?.({ runId, kind: 'exit', command: shown, exitCode: code, signal, durationMs });
      const ok = options.okExitCodes ?? [0];
      if (killedFor) {
        reject(
          new CommandError({
            message: killedFor === 'timeout' ? `timed out after ${Math.round(timeoutMs / 1000)} s: ${messageCommand(shown)}` : `aborted: ${messageCommand(shown)}`,
            command: shown,
            exitCode: code,
            stderrTail: tail(result.stderr),
            reason: killedFor,
            ...(options.hint !== undefined ? { hint: options.hint } : {}),
          }),
        );
      } else if (code === null || !ok.includes(code)) {
        const st = tail(result.stderr) || tail(result.stdout);
        // A full disk explains itself better than any per-command hint.
        const hint = DISK_FULL.test(st) ? `${DISK_FULL_HINT}${options.hint ? ` (${options.hint})` : ''}` : options.hint;
        reject(
          new CommandError({
            message: `${messageCommand(shown)} exited with ${code ?? `signal ${signal}`}${st ? `:\n${st}` : ''}`,
            command: shown,
            exitCode: code,
            stderrTail: st,
            reason: 'exit',
            ...(hint !== undefined ? { hint } : {}),
          }),
        );
      } else {
        resolve(result);
      }
    });

    if (child.stdin) {
      child.stdin.on('error', () => {
        /* the program may exit before reading its input */
      });
      child.stdin.end(options.input);
    }
  });

  function spawnError(err: NodeJS.ErrnoException): CommandError {
    const tool = toolFor(basename(program ?? ''));
    const missing = err.code === 'ENOENT';
    return new CommandError({
      message: redact(
        missing ? `${program} is not installed${tool ? ` (Debian package ${tool.package}: ${tool.purpose})` : ''}` : `could not start ${program}: ${err.message}`,
        secrets,
      ),
      command: shown,
      exitCode: null,
      stderrTail: '',
      reason: 'spawn',
      hint: missing && tool ? `sudo apt-get install ${tool.package}   (or: sudo scripts/setup-host.sh; see kubedos doctor)` : options.hint ?? '',
    });
  }
}
