// One SSH connection per host (ssh2), commands multiplexed on channels of that connection,
// SFTP on the same connection, reconnect with backoff when it drops. Host keys are checked
// against known_hosts (known-hosts.ts); authentication tries ssh-agent, then each IdentityFile,
// asking for a passphrase through a callback when a key is encrypted.
import { existsSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { AnyAuthMethod, Client as SshClient, ClientChannel, SFTPWrapper } from 'ssh2';

// ssh2 is CommonJS: its named exports are not visible to Node's ESM loader.
const { Client, utils } = ssh2;
type Client = SshClient;
import ssh2 from 'ssh2';
import { SubstrateError } from './driver';
import { checkHostKey, KnownHostsFile, knownKeyTypes } from './known-hosts';
import type { SshTarget } from './ssh-target';

export interface HostKeyPrompt {
  host: string;
  port: number;
  keyType: string;
  fingerprint: string;
}

export interface SshSessionOptions {
  target: SshTarget;
  knownHostsPath: string;
  /** ssh-agent socket (SSH_AUTH_SOCK); tried before key files. */
  agentSocket?: string | undefined;
  /** Asked when the host key is unknown; true = trust and remember it. */
  confirmHostKey?: (prompt: HostKeyPrompt) => Promise<boolean>;
  /** Asked when an IdentityFile is encrypted. */
  passphrase?: (keyPath: string) => Promise<string | undefined>;
  readyTimeoutMs?: number;
  /** Concurrent channels (OpenSSH's MaxSessions defaults to 10). */
  maxChannels?: number;
  reconnect?: { attempts: number; backoffMs: number };
  onLog?: (message: string) => void;
}

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

/** RSA host keys are checked with SHA-2 signatures only: `ssh-rsa` (SHA-1) is never offered. */
const RSA_ALGOS = ['rsa-sha2-512', 'rsa-sha2-256'];
const HOST_KEY_ALGOS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', ...RSA_ALGOS];

/**
 * The host key algorithms offered, the types known_hosts holds for this host first (so the key
 * we can verify is the one negotiated). A known `ssh-rsa` key is verified with rsa-sha2-*.
 */
export function hostKeyAlgorithms(knownTypes: readonly string[]): string[] {
  const first = knownTypes.flatMap((k) => (k === 'ssh-rsa' ? RSA_ALGOS : HOST_KEY_ALGOS.includes(k) ? [k] : []));
  return [...new Set([...first, ...HOST_KEY_ALGOS])];
}

export class SshSession {
  /** Commands (channels) opened; the bench compares this with one process per command. */
  roundTrips = 0;
  connects = 0;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private sftpHandle: Promise<SFTPWrapper> | undefined;
  private jump: SshSession | undefined;
  private closedByUs = false;
  private active = 0;
  private waiters: (() => void)[] = [];
  private permanentError: SubstrateError | undefined;
  private closeListeners = new Set<() => void>();

  constructor(readonly options: SshSessionOptions) {}

  get label(): string {
    const t = this.options.target;
    return `${t.user}@${t.hostName}:${t.port}${t.alias !== t.hostName ? ` (${t.alias})` : ''}`;
  }

  async connection(signal?: AbortSignal): Promise<Client> {
    if (this.permanentError) throw this.permanentError;
    if (this.client) return this.client;
    if (!this.connecting) {
      this.connecting = this.connectWithRetry(signal).finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async connectWithRetry(signal?: AbortSignal): Promise<Client> {
    const { attempts, backoffMs } = this.options.reconnect ?? { attempts: 3, backoffMs: 300 };
    let last: unknown;
    for (let i = 0; i <= attempts; i++) {
      if (signal?.aborted) throw new SubstrateError('aborted', `aborted while connecting to ${this.label}`);
      try {
        return await this.connectOnce();
      } catch (err) {
        last = err;
        // Host key and authentication problems do not heal by retrying.
        if (err instanceof SubstrateError && ['host-key-unknown', 'host-key-changed', 'host-key-revoked', 'auth-refused', 'bad-passphrase', 'host-not-found'].includes(err.code)) {
          if (err.code !== 'host-key-unknown') this.permanentError = err;
          throw err;
        }
        if (i < attempts) {
          const wait = backoffMs * 2 ** i;
          this.options.onLog?.(`ssh ${this.label}: ${(err as Error).message}; retrying in ${wait} ms`);
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    }
    throw last;
  }

  private async connectOnce(): Promise<Client> {
    const t = this.options.target;
    let sock: Readable | undefined;
    if (t.jumps.length > 0) {
      const hop = t.jumps[t.jumps.length - 1] as SshTarget;
      this.jump ??= new SshSession({ ...this.options, target: { ...hop, jumps: t.jumps.slice(0, -1) } });
      const jc = await this.jump.connection();
      sock = await new Promise<Readable>((resolve, reject) =>
        jc.forwardOut('127.0.0.1', 0, t.hostName, t.port, (err, stream) => (err ? reject(new SubstrateError('proxyjump', `jump host ${this.jump?.label} could not open a tunnel to ${t.hostName}:${t.port}: ${err.message}`, { hint: 'check AllowTcpForwarding on the jump host and the target address' })) : resolve(stream))),
      );
    }
    const knownHosts = new KnownHostsFile(this.options.knownHostsPath);
    const entries = knownHosts.read();
    const known = knownKeyTypes(entries, t.hostName, t.port);
    let hostKeyProblem: SubstrateError | undefined;
    const client = new Client();
    const keyFiles = t.identityFiles.filter((f) => existsSync(f));
    const methods: (() => Promise<AnyAuthMethod | undefined>)[] = [];
    if (this.options.agentSocket) methods.push(async () => ({ type: 'agent', username: t.user, agent: this.options.agentSocket as string }));
    for (const file of keyFiles) methods.push(() => this.keyMethod(file));
    const ready = new Promise<Client>((resolve, reject) => {
      client.once('ready', () => resolve(client));
      client.once('error', (err: Error & { level?: string; code?: string }) => reject(hostKeyProblem ?? this.translate(err, keyFiles)));
    });
    client.connect({
      host: t.hostName,
      port: t.port,
      username: t.user,
      ...(sock ? { sock } : {}),
      readyTimeout: this.options.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      algorithms: { serverHostKey: hostKeyAlgorithms(known) as never[] },
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        const verdict = checkHostKey(entries, t.hostName, t.port, key);
        if (verdict.status === 'known') return verify(true);
        if (verdict.status === 'changed') {
          hostKeyProblem = new SubstrateError('host-key-changed', `host key of ${t.hostName}:${t.port} CHANGED: it now presents ${verdict.keyType} ${verdict.fingerprint}, which is not the key in ${this.options.knownHostsPath}. Refusing to connect.`, {
            hint: `if the host was really reinstalled, verify the new fingerprint out of band, then remove the old entry: ssh-keygen -R '${t.port === 22 ? t.hostName : `[${t.hostName}]:${t.port}`}' -f ${this.options.knownHostsPath}`,
          });
          return verify(false);
        }
        if (verdict.status === 'revoked') {
          hostKeyProblem = new SubstrateError('host-key-revoked', `host key ${verdict.fingerprint} of ${t.hostName}:${t.port} is marked @revoked in ${this.options.knownHostsPath}`, { hint: 'the host must get a new key' });
          return verify(false);
        }
        const prompt = { host: t.hostName, port: t.port, keyType: verdict.keyType, fingerprint: verdict.fingerprint };
        const unknown = (): SubstrateError =>
          new SubstrateError('host-key-unknown', `unknown host key for ${t.hostName}:${t.port}: ${verdict.keyType} ${verdict.fingerprint}`, {
            hint: `compare the fingerprint with the host's (ssh-keygen -lf /etc/ssh/ssh_host_${verdict.keyType.replace(/^ssh-|-.*$/g, '')}_key.pub on the host), then accept it (--accept-host-key ${verdict.fingerprint}, or answer yes in the workbench)`,
          });
        if (!this.options.confirmHostKey) {
          hostKeyProblem = unknown();
          return verify(false);
        }
        this.options.confirmHostKey(prompt).then(
          (ok) => {
            if (ok) {
              knownHosts.add(t.hostName, t.port, key);
              this.options.onLog?.(`ssh ${this.label}: accepted and remembered ${verdict.keyType} ${verdict.fingerprint} in ${this.options.knownHostsPath}`);
            } else hostKeyProblem = unknown();
            verify(ok);
          },
          () => {
            hostKeyProblem = unknown();
            verify(false);
          },
        );
      },
      authHandler: (_left: unknown, _partial: unknown, next: (m: AnyAuthMethod | false) => void) => this.nextAuth(methods, next, (err) => {
        if (err instanceof SubstrateError) hostKeyProblem = err;
      }),
    } as never);
    const c = await ready;
    this.connects++;
    this.client = c;
    this.closedByUs = false;
    c.on('close', () => {
      for (const fn of [...this.closeListeners]) fn();
      if (this.client === c) {
        this.client = undefined;
        this.sftpHandle = undefined;
        if (!this.closedByUs) this.options.onLog?.(`ssh ${this.label}: connection closed; the next command reconnects`);
      }
    });
    c.on('error', () => undefined);
    return c;
  }

  private nextAuth(methods: (() => Promise<AnyAuthMethod | undefined>)[], next: (m: AnyAuthMethod | false) => void, onError: (err: unknown) => void): void {
    const step = methods.shift();
    if (!step) return next(false);
    step().then(
      (m) => (m ? next(m) : this.nextAuth(methods, next, onError)),
      (err: unknown) => {
        onError(err);
        next(false);
      },
    );
  }

  private async keyMethod(file: string): Promise<AnyAuthMethod | undefined> {
    const data = readFileSync(file);
    let parsed = utils.parseKey(data);
    if (parsed instanceof Error && /encrypted|passphrase/i.test(parsed.message)) {
      const pass = await this.options.passphrase?.(file);
      if (pass === undefined) {
        this.options.onLog?.(`ssh ${this.label}: ${file} is encrypted and no passphrase was given; skipping it`);
        return undefined;
      }
      parsed = utils.parseKey(data, pass);
      if (parsed instanceof Error) throw new SubstrateError('bad-passphrase', `wrong passphrase for ${file} (${parsed.message})`, { hint: 'retry with the right passphrase, or load the key into ssh-agent (ssh-add)' });
      return { type: 'publickey', username: this.options.target.user, key: data, passphrase: pass };
    }
    if (parsed instanceof Error) {
      this.options.onLog?.(`ssh ${this.label}: cannot use ${file}: ${parsed.message}`);
      return undefined;
    }
    return { type: 'publickey', username: this.options.target.user, key: data };
  }

  private translate(err: Error & { level?: string; code?: string }, keyFiles: string[]): SubstrateError {
    const t = this.options.target;
    if (err instanceof SubstrateError) return err;
    if (err.code === 'ECONNREFUSED') return new SubstrateError('unreachable', `cannot connect to ${t.hostName}:${t.port}: connection refused`, { hint: `is sshd running there and is the port right? (Port for "${t.alias}" in ~/.ssh/config, or proxmox://HOST:PORT)` });
    if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return new SubstrateError('host-not-found', `host name ${t.hostName} does not resolve`, { hint: `check the name, or add "Host ${t.alias}" with a HostName to ~/.ssh/config` });
    if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' || err.code === 'ETIMEDOUT' || /timed out/i.test(err.message)) return new SubstrateError('unreachable', `cannot reach ${t.hostName}:${t.port}: ${err.message}`, { hint: 'check the address, the network path and firewalls' });
    if (err.level === 'client-authentication' || /authentication methods failed/i.test(err.message)) {
      return new SubstrateError('auth-refused', `${t.user}@${t.hostName}:${t.port} refused our SSH key(s) (${[this.options.agentSocket ? 'ssh-agent' : '', ...keyFiles].filter(Boolean).join(', ') || 'no keys found'})`, {
        hint: `add your public key to ${t.user}'s ~/.ssh/authorized_keys on the host, or set IdentityFile for "${t.alias}" in ~/.ssh/config`,
      });
    }
    return new SubstrateError('ssh', `ssh to ${this.label} failed: ${err.message}`, { hint: 'check the host, then rerun (the connection is retried with backoff)' });
  }

  private async slot(): Promise<() => void> {
    const max = this.options.maxChannels ?? 8;
    while (this.active >= max) await new Promise<void>((r) => this.waiters.push(r));
    this.active++;
    return () => {
      this.active--;
      this.waiters.shift()?.();
    };
  }

  /** Runs one remote command line (already quoted) on a channel of the shared connection. */
  async exec(command: string, opts: { signal?: AbortSignal; input?: Buffer | string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const release = await this.slot();
    try {
      const client = await this.connection(opts.signal);
      this.roundTrips++;
      return await new Promise<ExecResult>((resolve, reject) => {
        client.exec(command, (err, channel: ClientChannel) => {
          if (err) return reject(new SubstrateError('ssh', `could not open a channel on ${this.label}: ${err.message}`, { command, hint: 'the connection is re-established on the next command; rerun' }));
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let code: number | undefined;
          const timer = opts.timeoutMs ? setTimeout(() => abort('timed out'), opts.timeoutMs) : undefined;
          const onAbort = (): void => abort('aborted');
          function abort(why: string): void {
            channel.close();
            reject(new SubstrateError(why === 'aborted' ? 'aborted' : 'timeout', `${why}: ${command}`, { command }));
          }
          opts.signal?.addEventListener('abort', onAbort, { once: true });
          channel.on('data', (d: Buffer) => out.push(d));
          channel.stderr.on('data', (d: Buffer) => errOut.push(d));
          channel.on('exit', (c: number | null) => {
            code = c ?? 255;
          });
          channel.on('close', () => {
            if (timer) clearTimeout(timer);
            opts.signal?.removeEventListener('abort', onAbort);
            if (code === undefined) return reject(new SubstrateError('connection-lost', `connection to ${this.label} dropped while running: ${command}`, { command, hint: 'rerun: the connection is re-established and converged steps are skipped' }));
            resolve({ exitCode: code, stdout: Buffer.concat(out), stderr: Buffer.concat(errOut).toString('utf8') });
          });
          if (opts.input !== undefined) channel.end(opts.input);
          else channel.end();
        });
      });
    } finally {
      release();
    }
  }

  async sftp(signal?: AbortSignal): Promise<SFTPWrapper> {
    const client = await this.connection(signal);
    if (!this.sftpHandle) {
      this.roundTrips++;
      this.sftpHandle = new Promise<SFTPWrapper>((resolve, reject) =>
        client.sftp((err, s) => (err ? reject(new SubstrateError('sftp', `SFTP unavailable on ${this.label}: ${err.message}`, { hint: 'enable "Subsystem sftp" in the host\'s sshd_config' })) : resolve(s))),
      );
      this.sftpHandle.catch(() => {
        this.sftpHandle = undefined;
      });
    }
    return this.sftpHandle;
  }

  /** Calls fn when the current connection closes (an SFTP stream does not notice by itself). */
  onClose(fn: () => void): () => void {
    this.closeListeners.add(fn);
    return () => this.closeListeners.delete(fn);
  }

  /** Drops the TCP connection without closing cleanly (tests: connection lost mid-transfer). */
  dropForTest(): void {
    (this.client as unknown as { _sock?: { destroy(): void } } | undefined)?._sock?.destroy();
  }

  async close(): Promise<void> {
    this.closedByUs = true;
    this.client?.end();
    this.client = undefined;
    this.sftpHandle = undefined;
    await this.jump?.close();
  }
}
