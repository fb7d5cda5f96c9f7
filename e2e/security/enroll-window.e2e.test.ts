// Attack suite, issue 16 item 3: one unauthenticated LAN peer against the master's enrollment
// window (the real kubedos-enroll-hub serve loop on 127.0.0.1, with a stand-in hub behind it).
// The attacker connects from 127.0.0.2/3, the legitimate node from 127.0.0.1.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HUB = resolve('payload/backplane/kubedos-enroll-hub');
const FIXTURE = resolve('e2e/security/fixtures/enroll-window.py');
/** The per-connection deadline the window runs with in this test (seconds). */
const DEADLINE_S = 2;

/** POST /v1/enroll as a node would; resolves with the status, or rejects after `timeoutMs`. */
function enroll(port: number, timeoutMs: number, node = 'w-1'): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const body = JSON.stringify({ node });
    const req = request({ host: '127.0.0.1', port, path: '/v1/enroll', method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolveStatus(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

describe('security: the enrollment window against one LAN peer', () => {
  let work: string;
  let window: ChildProcess;
  let port = 0;
  const attackers: Socket[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'kubedos-sec-enroll-'));
    window = spawn('/usr/bin/python3', [FIXTURE, HUB, work, String(DEADLINE_S)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    window.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    port = await new Promise<number>((resolvePort, reject) => {
      window.stdout?.on('data', (d: Buffer) => {
        const m = /listening (\d+)/.exec(d.toString());
        if (m) resolvePort(Number(m[1]));
      });
      window.once('exit', (code) => reject(new Error(`the window exited (${code}): ${err}`)));
    });
  });
  afterAll(() => {
    for (const s of attackers) s.destroy();
    if (window?.pid && window.exitCode === null) process.kill(window.pid, 'SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('item 3: idle connections from one peer do not delay a node enrolling', async () => {
    // 20 connections that never start TLS (the old window handshook in its accept loop, 10 s each).
    for (let i = 0; i < 20; i++) {
      const s = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
      s.on('error', () => undefined);
      attackers.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(await enroll(port, 6000)).toBe(200);
  });

  it('item 3: a drip-feeding client is cut at the per-connection deadline, and others are served meanwhile', async () => {
    // Another attacking address than the test above (its idle connections may still count).
    const raw = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' });
    raw.on('error', () => undefined);
    attackers.push(raw);
    const s = tlsConnect({ socket: raw, rejectUnauthorized: false });
    s.on('error', () => undefined);
    attackers.push(s);
    await new Promise<void>((r, j) => (s.once('secureConnect', () => r()), s.once('close', () => j(new Error('the window closed the connection before TLS')))));
    const header = 'POST /v1/enroll HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n';
    let sent = 0;
    let closed = false;
    s.once('close', () => (closed = true));
    // One byte every 250 ms: far under any per-read timeout. Give up after 8 s (4x the deadline).
    const drip = setInterval(() => {
      if (closed || sent >= header.length) return;
      s.write(header[sent++] ?? '');
    }, 250);
    try {
      expect(await enroll(port, 6000)).toBe(200);
      await expect.poll(() => closed, { timeout: 8000, interval: 100 }).toBe(true);
      expect(sent).toBeLessThan(header.length);
    } finally {
      clearInterval(drip);
    }
  });

  it('the deadline bounds receiving a request, not the hub\'s own work: an enrollment that takes longer than it is still answered', async () => {
    expect(await enroll(port, (DEADLINE_S + 5) * 1000, 'slow')).toBe(200);
  });
});
