// QEMU guest agent and QMP over their unix sockets (qemu-local driver). The agent works before
// the guest has any network: it is a virtio-serial port. Protocol: guest-sync-delimited first
// (0xFF marks the start of the reply), then one JSON command per line.
import { connect } from 'node:net';
import { SubstrateError } from './driver';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

async function conversation<T>(
  socketPath: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  talk: (send: (cmd: object) => Promise<unknown>, receive: () => Promise<unknown>) => Promise<T>,
  greeting: boolean,
): Promise<T> {
  const sock = connect(socketPath);
  let buf = '';
  const queue: Pending[] = [];
  let failed: Error | undefined;
  const fail = (e: Error): void => {
    failed = e;
    for (const p of queue.splice(0)) p.reject(e);
  };
  const timer = setTimeout(() => fail(new SubstrateError('agent-timeout', `its guest agent did not answer within ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`}`)), timeoutMs);
  const onAbort = (): void => fail(new SubstrateError('aborted', 'aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  let greeted: () => void = () => undefined;
  const greetingSeen = new Promise<void>((r) => (greeted = r));
  sock.on('data', (d: Buffer) => {
    // 0xFF (the sync delimiter) is not UTF-8: drop it as a byte, before decoding.
    buf += Buffer.from(d.filter((b) => b !== 0xff)).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      let msg: { return?: unknown; error?: { desc?: string }; QMP?: unknown; event?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.QMP) {
        greeted();
        continue;
      }
      if (msg.event) continue;
      const p = queue.shift();
      if (!p) continue;
      if (msg.error) p.reject(new SubstrateError('agent-error', `agent error: ${msg.error.desc ?? 'unknown'}`));
      else p.resolve(msg.return);
    }
  });
  sock.on('error', (e: NodeJS.ErrnoException) => fail(new SubstrateError(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? 'agent-unavailable' : 'agent-error', `cannot talk to ${socketPath}: ${e.message}`)));
  sock.on('close', () => fail(new SubstrateError('agent-unavailable', 'its guest agent connection closed (the VM stopped, or QEMU closed the agent\'s port)')));
  const send = (cmd: object): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (failed) return reject(failed);
      queue.push({ resolve, reject });
      sock.write(`${JSON.stringify(cmd)}\n`);
    });
  // Waits for one more reply without sending anything (to drain stale replies).
  const receive = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (failed) return reject(failed);
      queue.push({ resolve, reject });
    });
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    if (greeting) await Promise.race([greetingSeen, new Promise((_, rej) => setTimeout(() => rej(failed ?? new Error('no QMP greeting')), timeoutMs))]);
    return await talk(send, receive);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    sock.destroy();
  }
}

/**
 * One conversation at a time per guest-agent socket. QEMU's chardev serves one client; further
 * connections wait in a short listen backlog and then fail with EAGAIN (seen with the wiring
 * check's parallel probes on one VM). Callers in this process queue here instead; a caller aborted
 * while queued leaves the queue at once without breaking its order.
 */
const lanes = new Map<string, Promise<void>>();

async function inLane<T>(socketPath: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const before = lanes.get(socketPath) ?? Promise.resolve();
  let release: () => void = () => undefined;
  const mine = new Promise<void>((r) => (release = r));
  const tail = before.then(() => mine);
  lanes.set(socketPath, tail);
  try {
    if (signal?.aborted) throw new SubstrateError('aborted', 'aborted');
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new SubstrateError('aborted', 'aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([before, aborted]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return await fn();
  } finally {
    release();
    if (lanes.get(socketPath) === tail) lanes.delete(socketPath);
  }
}

export class GuestAgentClient {
  constructor(readonly socketPath: string) {}

  async call<T = unknown>(commands: { execute: string; arguments?: object }[], timeoutMs = 10_000, signal?: AbortSignal): Promise<T[]> {
    return inLane(this.socketPath, signal, () => this.converse<T>(commands, timeoutMs, signal));
  }

  private converse<T>(commands: { execute: string; arguments?: object }[], timeoutMs: number, signal?: AbortSignal): Promise<T[]> {
    return conversation(
      this.socketPath,
      timeoutMs,
      signal,
      async (send, receive) => {
        const id = Math.floor(Math.random() * 2 ** 31);
        // The reply to sync is preceded by 0xFF. Replies still queued from a previous client come
        // first: drain them WITHOUT sending another sync (a second sync's reply would otherwise be
        // read as the answer to the next command — e.g. a sync id taken for a file handle).
        let got = await send({ execute: 'guest-sync-delimited', arguments: { id } });
        while (got !== id) got = await receive();
        const out: T[] = [];
        for (const c of commands) out.push((await send(c)) as T);
        return out;
      },
      false,
    );
  }

  async ping(timeoutMs = 5000, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.call([{ execute: 'guest-ping' }], timeoutMs, signal);
      return true;
    } catch (err) {
      if (err instanceof SubstrateError && ['agent-timeout', 'agent-unavailable'].includes(err.code)) return false;
      throw err;
    }
  }

  /** guest-exec + polling guest-exec-status; `input` becomes the process's stdin (input-data). */
  async exec(argv: readonly string[], timeoutS: number, signal?: AbortSignal, input?: Buffer): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const args = { path: argv[0], arg: argv.slice(1), 'capture-output': true, ...(input !== undefined ? { 'input-data': input.toString('base64') } : {}) };
    const [started] = await this.call<{ pid: number }>([{ execute: 'guest-exec', arguments: args }], 30_000, signal);
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const [st] = await this.call<{ exited: boolean; exitcode?: number; 'out-data'?: string; 'err-data'?: string }>([{ execute: 'guest-exec-status', arguments: { pid: started?.pid } }], 10_000, signal);
      if (st?.exited) {
        return { exitCode: st.exitcode ?? -1, stdout: Buffer.from(st['out-data'] ?? '', 'base64').toString('utf8'), stderr: Buffer.from(st['err-data'] ?? '', 'base64').toString('utf8') };
      }
      if (Date.now() > deadline) throw new SubstrateError('guest-exec-timeout', `guest command did not finish within ${timeoutS} s: ${argv.join(' ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async readFile(path: string, signal?: AbortSignal): Promise<Buffer> {
    const [handle] = await this.call<number>([{ execute: 'guest-file-open', arguments: { path, mode: 'r' } }], 10_000, signal);
    const parts: Buffer[] = [];
    try {
      for (;;) {
        const [r] = await this.call<{ count: number; 'buf-b64': string; eof: boolean }>([{ execute: 'guest-file-read', arguments: { handle, count: 1 << 20 } }], 10_000, signal);
        parts.push(Buffer.from(r?.['buf-b64'] ?? '', 'base64'));
        if (!r || r.eof || r.count === 0) break;
      }
    } finally {
      await this.call([{ execute: 'guest-file-close', arguments: { handle } }], 10_000).catch(() => undefined);
    }
    return Buffer.concat(parts);
  }
}

/** One QMP command (after qmp_capabilities). */
export async function qmpCommand(socketPath: string, execute: string, timeoutMs = 5000): Promise<unknown> {
  return (await qmpCommands(socketPath, [{ execute }], timeoutMs))[0];
}

/**
 * QMP commands in order on one connection (after qmp_capabilities); the first error rejects
 * (SubstrateError 'agent-error' with QEMU's description). QMP's socket serves one client at a
 * time too: callers in this process take turns on it (the same lanes as the agent's).
 */
export async function qmpCommands(socketPath: string, commands: { execute: string; arguments?: object }[], timeoutMs = 5000): Promise<unknown[]> {
  return inLane(socketPath, undefined, () =>
    conversation(
      socketPath,
      timeoutMs,
      undefined,
      async (send) => {
        await send({ execute: 'qmp_capabilities' });
        const out: unknown[] = [];
        for (const c of commands) out.push(await send(c));
        return out;
      },
      true,
    ),
  );
}

/**
 * Whether the guest has opened the virtio-serial port behind a chardev (QMP query-chardev's
 * `frontend-open`): false while the guest boots, shuts down or runs no agent. Bytes written to the
 * agent's socket then stay unread and every conversation would wait out its whole timeout; asked
 * first, "not yet" costs one QMP round trip. Undefined when QEMU does not say (no such chardev).
 */
export async function chardevFrontendOpen(qmpSocket: string, chardev: string, timeoutMs = 5000): Promise<boolean | undefined> {
  const [list] = await qmpCommands(qmpSocket, [{ execute: 'query-chardev' }], timeoutMs);
  const entry = Array.isArray(list) ? (list as { label?: unknown; 'frontend-open'?: unknown }[]).find((c) => c.label === chardev) : undefined;
  return typeof entry?.['frontend-open'] === 'boolean' ? entry['frontend-open'] : undefined;
}
