// QMP against a real QEMU with no guest at all (no disk, no firmware boot to speak of): the guest
// never opens the agent's virtio-serial port, which is what a node looks like to the foundry
// while it reboots.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chardevFrontendOpen, GuestAgentClient, qmpCommands } from './qga';
import { removeTempDirs, tempDir } from '../testing/temp-dir';

let dir: string;
let pid: number | undefined;

beforeAll(() => {
  dir = tempDir('kubedos-qmp-');
  execFileSync('qemu-system-x86_64', [
    '-nodefaults', '-display', 'none', '-machine', 'q35,accel=tcg', '-m', '64', '-S',
    '-daemonize', '-pidfile', join(dir, 'qemu.pid'),
    '-chardev', `socket,id=qmp,path=${join(dir, 'qmp.sock')},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control',
    '-chardev', `socket,id=qga0,path=${join(dir, 'qga.sock')},server=on,wait=off`,
    '-device', 'virtio-serial,id=vser0', '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
  ]);
  pid = Number(readFileSync(join(dir, 'qemu.pid'), 'utf8').trim());
});

afterAll(async () => {
  if (pid && existsSync(`/proc/${pid}`)) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
  }
  removeTempDirs();
});

describe('QMP on a real QEMU', () => {
  it('says the agent\'s port is not open while the guest has not opened it, and knows no chardev it was not given', async () => {
    expect(await chardevFrontendOpen(join(dir, 'qmp.sock'), 'qga0')).toBe(false);
    expect(await chardevFrontendOpen(join(dir, 'qmp.sock'), 'no-such-chardev')).toBeUndefined();
  });

  it('takes turns on the QMP socket: parallel callers all get their answers (a second client at once is refused by QEMU)', async () => {
    const qmp = join(dir, 'qmp.sock');
    // Without turns: QEMU's monitor serves one client; the others' connections fail (EAGAIN) once its short backlog is full.
    const raw = await Promise.all(Array.from({ length: 6 }, () => rawQuery(qmp)));
    expect(raw.filter((r) => r !== 'ok').length).toBeGreaterThan(0);
    const answers = await Promise.all(Array.from({ length: 6 }, () => qmpCommands(qmp, [{ execute: 'query-status' }])));
    expect(answers.map(([s]) => (s as { status?: string }).status)).toEqual(Array(6).fill('prelaunch'));
  });

  it('an agent that has not opened its port does not answer a ping (what the driver no longer waits for)', async () => {
    expect(await new GuestAgentClient(join(dir, 'qga.sock')).ping(300)).toBe(false);
  });
});

/** One QMP conversation held open for a moment, without the client's turns. */
function rawQuery(socket: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(socket);
    let buf = '';
    const done = (r: string): void => {
      s.destroy();
      resolve(r);
    };
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
    s.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.includes('"QMP"') && !buf.includes('qmp_capabilities-sent')) {
        buf += 'qmp_capabilities-sent';
        s.write('{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n');
      }
      if ((buf.match(/"return"/g) ?? []).length >= 2) setTimeout(() => done('ok'), 300);
    });
    setTimeout(() => done('timeout'), 3000);
  });
}
