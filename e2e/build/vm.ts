// Lab fixtures for the build suite: a loopback-only HTTP server for the darksite, swtpm, and
// QEMU under TCG with OVMF Secure Boot, the serial console in a file and the guest agent on a
// socket. Every process is started here and stopped here by PID (also when a test fails).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { join, normalize, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TCG_TB_SIZE_MIB } from '../../main/substrate/qemu-local';

export interface DarksiteServer {
  port: number;
  requests: string[];
  close(): Promise<void>;
}

/** Serves root under urlPrefix on 127.0.0.1 only; records every request path. */
export async function serveDirectory(root: string, urlPrefix: string): Promise<DarksiteServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    requests.push(`${req.method} ${url}`);
    if (!url.startsWith(`${urlPrefix}/`)) {
      res.writeHead(404).end();
      return;
    }
    const p = resolve(root, normalize(`.${url.slice(urlPrefix.length)}`));
    if (!p.startsWith(resolve(root)) || !existsSync(p) || !statSync(p).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': statSync(p).size, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') res.end();
    else createReadStream(p).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('darksite server: no port');
  return { port: addr.port, requests, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

export interface Vm {
  dir: string;
  serialLog: string;
  qgaSocket: string;
  qemu: ChildProcess;
  swtpm: ChildProcess;
  startedAt: number;
  stop(): Promise<void>;
  serial(): string;
  /** Resolves with ms since start when pattern appears; rejects early when failOn appears. */
  waitForSerial(pattern: RegExp, timeoutMs: number, failOn?: RegExp): Promise<number>;
  /** Resolves with ms since start when QEMU exits by itself (guest power-off); rejects on timeout. */
  waitForExit(timeoutMs: number): Promise<number>;
  exited(): boolean;
}

function killPid(p: ChildProcess | undefined): void {
  if (p?.pid && p.exitCode === null && p.signalCode === null) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export interface VmOptions {
  dir: string;
  disk?: { file: string; format: 'qcow2' | 'raw' };
  cdrom?: string;
  mac?: string;
  memoryMiB?: number;
  /** Guest 10.0.2.100:80 → this loopback port (restrict=on: no other route exists). */
  darksitePort?: number;
  bootFrom: 'cdrom' | 'disk';
  /** Let the guest reboot (QEMU resets the machine) instead of exiting on a reboot (-no-reboot). */
  reboot?: boolean;
}

/** Starts swtpm and QEMU (TCG, q35, SMM, OVMF Secure Boot with Microsoft keys). */
export async function startVm(o: VmOptions): Promise<Vm> {
  mkdirSync(o.dir, { recursive: true });
  const tpmDir = join(o.dir, 'tpm');
  mkdirSync(tpmDir, { recursive: true });
  const vars = join(o.dir, 'OVMF_VARS.fd');
  if (!existsSync(vars)) copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.ms.fd', vars);
  const swtpm = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${tpmDir}`, '--ctrl', `type=unixio,path=${join(tpmDir, 'swtpm-sock')}`], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !existsSync(join(tpmDir, 'swtpm-sock')); i++) await sleep(100);
  if (!existsSync(join(tpmDir, 'swtpm-sock'))) {
    killPid(swtpm);
    throw new Error('swtpm did not create its socket (is swtpm installed? scripts/setup-host.sh)');
  }
  const serialLog = join(o.dir, 'serial.log');
  const qgaSocket = join(o.dir, 'qga.sock');
  const net = ['restrict=on'];
  if (o.darksitePort) net.push(`guestfwd=tcp:10.0.2.100:80-cmd:socat STDIO TCP:127.0.0.1:${o.darksitePort}`);
  const args = [
    '-accel', `tcg,thread=multi,tb-size=${TCG_TB_SIZE_MIB}`,
    '-machine', 'q35,smm=on',
    '-global', 'driver=cfi.pflash01,property=secure,value=on',
    '-cpu', 'max',
    '-smp', '2',
    '-m', String(o.memoryMiB ?? 1024),
    '-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
    '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
    '-chardev', `socket,id=chrtpm,path=${join(tpmDir, 'swtpm-sock')}`,
    '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm',
    '-device', 'tpm-tis,tpmdev=tpm0',
    '-netdev', `user,id=n0,${net.join(',')}`,
    '-device', `virtio-net-pci,netdev=n0,romfile=${o.mac ? `,mac=${o.mac}` : ''}`,
    '-chardev', `socket,path=${qgaSocket},server=on,wait=off,id=qga0`,
    '-device', 'virtio-serial',
    '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
    '-serial', `file:${serialLog}`,
    '-display', 'none',
    '-monitor', 'none',
    ...(o.reboot ? [] : ['-no-reboot']),
  ];
  if (o.disk) args.push('-drive', `if=none,id=disk0,format=${o.disk.format},file=${o.disk.file}`, '-device', `virtio-blk-pci,drive=disk0,bootindex=${o.bootFrom === 'disk' ? 1 : 2}`);
  if (o.cdrom) args.push('-drive', `if=none,id=cd0,media=cdrom,readonly=on,file=${o.cdrom}`, '-device', `ide-cd,drive=cd0,bootindex=${o.bootFrom === 'cdrom' ? 1 : 2}`);
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const startedAt = Date.now();
  const vm: Vm = {
    dir: o.dir,
    serialLog,
    qgaSocket,
    qemu,
    swtpm,
    startedAt,
    exited: () => qemu.exitCode !== null || qemu.signalCode !== null,
    serial: () => (existsSync(serialLog) ? readFileSync(serialLog, 'latin1') : ''),
    async stop() {
      killPid(qemu);
      killPid(swtpm);
      await sleep(200);
    },
    async waitForSerial(pattern, timeoutMs, failOn) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const text = vm.serial();
        if (pattern.test(text)) return Date.now() - startedAt;
        const bad = failOn ? failOn.exec(text) : null;
        if (bad) throw new Error(`serial console shows "${bad[0]}" while waiting for ${pattern}; tail:\n${text.slice(-2500)}`);
        if (vm.exited()) throw new Error(`QEMU exited (${qemu.exitCode}) before ${pattern}: ${stderr.slice(-800)}\nserial tail:\n${vm.serial().slice(-1500)}`);
        await sleep(500);
      }
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${pattern} on the serial console; tail:\n${vm.serial().slice(-2000)}`);
    },
    async waitForExit(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (vm.exited()) {
          if (qemu.exitCode !== 0) throw new Error(`QEMU exited with ${qemu.exitCode ?? qemu.signalCode}: ${stderr.slice(-800)}`);
          return Date.now() - startedAt;
        }
        await sleep(500);
      }
      throw new Error(`QEMU did not exit within ${timeoutMs / 1000} s; serial tail:\n${vm.serial().slice(-2000)}`);
    },
  };
  return vm;
}

/** One guest-agent command over the QEMU chardev socket (guest-sync first to flush). */
export async function guestAgent(socketPath: string, command: string, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolveCmd, reject) => {
    const sock = connect(socketPath);
    const id = Math.floor(Math.random() * 1e9);
    let buf = '';
    let synced = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`guest agent: no answer to ${command} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('connect', () => sock.write(JSON.stringify({ execute: 'guest-sync', arguments: { id } }) + '\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/^\xff/, '').trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: { return?: unknown; error?: { desc?: string } };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          continue;
        }
        if (!synced) {
          if (msg.return === id) {
            synced = true;
            sock.write(JSON.stringify({ execute: command }) + '\n');
          }
          continue;
        }
        clearTimeout(timer);
        sock.end();
        if (msg.error) reject(new Error(`guest agent ${command}: ${msg.error.desc}`));
        else resolveCmd(msg.return);
      }
    });
  });
}

/** Poll guest-ping until it answers (the agent starts late in boot). */
export async function waitForAgent(socketPath: string, timeoutMs: number, vm?: Vm): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (vm?.exited()) throw new Error(`QEMU exited while waiting for the guest agent; serial tail:\n${vm.serial().slice(-1500)}`);
    try {
      await guestAgent(socketPath, 'guest-ping', 5000);
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(2000);
  }
  throw new Error(`guest agent did not answer guest-ping within ${timeoutMs / 1000} s (${last})`);
}
