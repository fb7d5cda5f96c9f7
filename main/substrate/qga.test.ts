// The guest-agent client against a fake agent on a unix socket that, like QEMU's chardev, is
// meant for one client at a time: it counts how many commands are in flight at once, across
// connections.
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestAgentClient } from './qga';
import { removeTempDirs, tempDir } from '../testing/temp-dir';

let server: Server;
let path: string;
let inFlight = 0;
let maxInFlight = 0;
let served = 0;

beforeAll(async () => {
  path = join(tempDir('kubedos-qga-'), 'qga.sock');
  server = createServer((sock: Socket) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const cmd = JSON.parse(buf.slice(0, nl)) as { execute: string; arguments?: { id?: number } };
        buf = buf.slice(nl + 1);
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        // A slow agent: each answer 20 ms later, so overlapping callers would overlap here.
        setTimeout(() => {
          inFlight--;
          if (cmd.execute === 'guest-sync-delimited') sock.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${JSON.stringify({ return: cmd.arguments?.id })}\n`)]));
          else {
            served++;
            sock.write(`${JSON.stringify({ return: {} })}\n`);
          }
        }, 20);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  removeTempDirs();
});

describe('guest-agent client', () => {
  it('talks to one VM\'s agent one conversation at a time, even when called in parallel', async () => {
    maxInFlight = 0;
    const before = served;
    const answers = await Promise.all(Array.from({ length: 8 }, () => new GuestAgentClient(path).ping(5000)));
    expect(answers).toEqual(Array(8).fill(true));
    expect(served - before).toBe(8);
    expect(maxInFlight).toBe(1);
  });

  it('a caller aborted while queued leaves at once; the others still get their answers in turn', async () => {
    maxInFlight = 0;
    const ac = new AbortController();
    const first = new GuestAgentClient(path).call([{ execute: 'guest-ping' }], 5000);
    const aborted = new GuestAgentClient(path).call([{ execute: 'guest-ping' }], 5000, ac.signal);
    const third = new GuestAgentClient(path).call([{ execute: 'guest-ping' }], 5000);
    ac.abort();
    await expect(aborted).rejects.toThrow(/aborted/);
    await expect(first).resolves.toEqual([{}]);
    await expect(third).resolves.toEqual([{}]);
    expect(maxInFlight).toBe(1);
  });
  it('an agent that never answers: said in words, the time in seconds, no socket path (what an upgrade prints every poll while a node reboots)', async () => {
    const silentPath = join(tempDir('kubedos-qga-silent-'), 'qga.sock');
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(silentPath, r));
    try {
      await expect(new GuestAgentClient(silentPath).call([{ execute: 'guest-ping' }], 1000)).rejects.toThrow(/^its guest agent did not answer within 1 s$/);
    } finally {
      silent.close();
    }
  });
  it('a connection the VM closes (powered off mid-call): said in words, no socket path (what an upgrade prints when a write is cut)', async () => {
    const path = join(tempDir('kubedos-qga-closed-'), 'qga.sock');
    const cut = createServer((sock: Socket) => sock.end());
    await new Promise<void>((r) => cut.listen(path, r));
    try {
      const err = await new GuestAgentClient(path).call([{ execute: 'guest-ping' }], 5000).then(() => undefined, (e: unknown) => e as Error);
      expect(err?.message).toBe("its guest agent connection closed (the VM stopped, or QEMU closed the agent's port)");
    } finally {
      cut.close();
    }
  });
});
