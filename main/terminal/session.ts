// An interactive shell (or one command) on a node: ssh2 to the hub, a direct-tcpip channel from
// the hub to the node's wg1 address, a second SSH session inside it. Both hops accept only the
// host key first boot recorded (pins.ts). Nothing here needs Kubernetes or pulls anything: it is
// plain SSH over the cluster's control plane, so it works when the node is sick.
import type { Client as SshClient, ClientChannel } from 'ssh2';
import ssh2 from 'ssh2';
import type { PinnedHop, TerminalRoute } from './pins';
import { hostKeyFingerprint } from './pins';
import type { TranscriptRecord, TranscriptWriter } from './transcript';

// ssh2 is CommonJS: its named exports are not visible to Node's ESM loader.
const { Client } = ssh2;

export interface TerminalSize {
  cols: number;
  rows: number;
}

export interface OpenTerminalOptions {
  route: TerminalRoute;
  /** The login user (the spec's first security.ssh.allowUsers). */
  user: string;
  /** OpenSSH private key text (the cluster's operator key). */
  privateKey: string;
  /** A pseudo-terminal of this size; without it a command runs with plain pipes (no pty). */
  size?: TerminalSize;
  /** Run this command instead of a login shell. */
  command?: string;
  term?: string;
  signal?: AbortSignal;
  readyTimeoutMs?: number;
  transcript?: TranscriptWriter;
  /** Bytes from the node, as they arrive (stderr only without a pty). */
  onData: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

export interface TerminalExit {
  exitCode: number | null;
  signal?: string;
  transcript?: TranscriptRecord;
}

export class TerminalError extends Error {
  constructor(
    readonly code: 'host-key-changed' | 'auth-refused' | 'unreachable' | 'tunnel' | 'channel' | 'aborted',
    message: string,
  ) {
    super(message);
  }
}

function hopLabel(h: PinnedHop): string {
  return `${h.node} (${h.host}:${h.port})`;
}

/** One SSH connection to a pinned hop, over `sock` when given (the tunnel through the hub). */
function connectHop(hop: PinnedHop, o: OpenTerminalOptions, sock?: NodeJS.ReadableStream): Promise<SshClient> {
  const pinned = Buffer.from(hop.hostKey.split(' ')[1] ?? '', 'base64');
  let refusal: TerminalError | undefined;
  const client = new Client();
  return new Promise<SshClient>((resolve, reject) => {
    const onAbort = (): void => {
      client.end();
      reject(new TerminalError('aborted', `connection to ${hopLabel(hop)} aborted`));
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      o.signal?.removeEventListener('abort', onAbort);
      resolve(client);
    });
    client.once('error', (err: Error & { level?: string }) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (refusal) return reject(refusal);
      if (err.level === 'client-authentication') {
        return reject(new TerminalError('auth-refused', `${hopLabel(hop)} refused the operator key for user ${o.user} (${err.message}); the images authorize the cluster's operator key for the spec's first security.ssh.allowUsers user: check that this workspace built the deployed images`));
      }
      if (err.level === 'client-timeout') return reject(new TerminalError('unreachable', `${hopLabel(hop)} did not answer the SSH handshake in ${Math.round((o.readyTimeoutMs ?? 20_000) / 1000)} s`));
      reject(new TerminalError('unreachable', `cannot reach ${hopLabel(hop)}: ${err.message}${sock ? '' : '; the hub serves SSH on its wg1 address only: this machine must be a WireGuard peer on the control plane (wg1), or pass --via ADDRESS for another way in'}`));
    });
    client.connect({
      host: hop.host,
      port: hop.port,
      username: o.user,
      privateKey: o.privateKey,
      ...(sock ? { sock: sock as never } : {}),
      readyTimeout: o.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      // Only the key type first boot recorded: the server cannot steer us to an unpinned key.
      algorithms: { serverHostKey: ['ssh-ed25519'] },
      hostVerifier: (key: Buffer) => {
        if (pinned.length > 0 && Buffer.from(key).equals(pinned)) return true;
        refusal = new TerminalError(
          'host-key-changed',
          `host key of ${hopLabel(hop)} CHANGED: it presents ${hostKeyFingerprint(key)}, but first boot recorded ${hostKeyFingerprint(hop.hostKey)} (${o.route.source}). Refusing to connect. ` +
            'If the node was reinstalled, rerun the deploy so first boot records its new key (kubedos deploy SPEC --force); otherwise something else answers at that address.',
        );
        return false;
      },
    });
  });
}

function tunnel(hub: SshClient, hubHop: PinnedHop, target: PinnedHop): Promise<ClientChannel> {
  return new Promise((resolve, reject) =>
    hub.forwardOut('127.0.0.1', 0, target.host, target.port, (err, stream) =>
      err ? reject(new TerminalError('tunnel', `the hub ${hopLabel(hubHop)} could not open a connection to ${target.node} at ${target.host}:${target.port} over wg1: ${err.message}; check the node's wg1 handshake (kubedos-planes status on the hub) and that the node's sshd runs`)) : resolve(stream),
    ),
  );
}

/** A live terminal: write keystrokes, resize, close; `exited` settles when the remote side ends. */
export class TerminalSession {
  readonly exited: Promise<TerminalExit>;
  private closing = false;

  private constructor(
    private readonly channel: ClientChannel,
    private readonly clients: SshClient[],
    private readonly o: OpenTerminalOptions,
  ) {
    let exitCode: number | null = null;
    let exitSignal: string | undefined;
    channel.on('exit', (code: number | null, sig?: string) => {
      exitCode = typeof code === 'number' ? code : null;
      if (sig) exitSignal = sig;
    });
    channel.on('data', (b: Buffer) => {
      o.transcript?.write(b);
      o.onData(b, 'stdout');
    });
    channel.stderr.on('data', (b: Buffer) => {
      o.transcript?.write(b);
      o.onData(b, 'stderr');
    });
    this.exited = new Promise<TerminalExit>((resolve) => {
      let settled = false;
      const finish = (): void => {
        if (settled) return;
        settled = true;
        for (const c of [...clients].reverse()) c.end();
        const transcript = o.transcript?.close(exitCode);
        resolve({ exitCode, ...(exitSignal ? { signal: exitSignal } : {}), ...(transcript ? { transcript } : {}) });
      };
      channel.once('close', finish);
      // A dropped connection may end without the channel's close: settle on either.
      for (const c of clients) c.once('close', finish);
    });
    o.signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  static async open(o: OpenTerminalOptions): Promise<TerminalSession> {
    const { route } = o;
    const clients: SshClient[] = [];
    try {
      const hub = await connectHop(route.hub, o);
      clients.push(hub);
      let last = hub;
      if (route.target) {
        const sock = await tunnel(hub, route.hub, route.target);
        last = await connectHop(route.target, o, sock);
        clients.push(last);
      }
      const pty = o.size ? { term: o.term ?? 'xterm-256color', cols: o.size.cols, rows: o.size.rows } : undefined;
      // The session (and its 'exit' listener) is made inside the callback: a short command's
      // exit status can arrive in the same read as the channel's confirmation, before an await resumes.
      return await new Promise<TerminalSession>((resolve, reject) => {
        const done = (err: Error | undefined, ch: ClientChannel): void => (err ? reject(new TerminalError('channel', `${route.node}: could not start ${o.command ? `"${o.command}"` : 'a shell'}: ${err.message}`)) : resolve(new TerminalSession(ch, clients, o)));
        if (o.command !== undefined) last.exec(o.command, pty ? { pty } : {}, done);
        else last.shell(pty ?? false, done);
      });
    } catch (err) {
      for (const c of clients.reverse()) c.end();
      o.transcript?.close(null);
      throw err;
    }
  }

  /** Keystrokes (or pasted text) to the node. */
  write(data: string | Uint8Array): void {
    if (!this.closing) this.channel.write(data);
  }

  /** The pty's new size (SIGWINCH on the node). No-op without a pty. */
  resize(size: TerminalSize): void {
    if (this.o.size && !this.closing) this.channel.setWindow(size.rows, size.cols, 0, 0);
  }

  /** The command's standard input as a writable stream (with backpressure: wait for 'drain' when write() returns false). */
  get input(): NodeJS.WritableStream {
    return this.channel;
  }

  /** Sends end-of-input: a command reading stdin sees EOF. */
  endInput(): void {
    if (!this.closing) this.channel.end();
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.channel.close();
    for (const c of [...this.clients].reverse()) c.end();
  }
}
