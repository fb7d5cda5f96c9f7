// The node terminal against a namespace lab (root): hub + node with wg1 between them, sshd in
// each, SSH allowed on wg1 only, host keys made for this run and pinned from the first-boot
// record. Checks: a command's output (CLI and engine), a pty that resizes, Ctrl-C that stops
// `sleep` and `yes` within 100 ms, a changed host key refused, the transcript's sha256 recorded.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../main/exec/runner';
import type { TerminalSession } from '../../main/terminal/index';
import { hostKeyFingerprint, openNodeTerminal, readTranscriptRecords, TerminalError } from '../../main/terminal/index';
import type { TerminalLab } from './terminal-lab';
import { createTerminalLab } from './terminal-lab';

const REPO = join(import.meta.dirname, '..', '..');

/** Collects a session's output and waits for a pattern in what arrived after `from`. */
class Screen {
  text = '';
  private waiters: { re: RegExp; from: number; resolve: (at: number) => void }[] = [];
  push(b: Buffer): void {
    this.text += b.toString('utf8');
    for (const w of [...this.waiters]) {
      // Only the tail: `yes` makes megabytes, and the patterns waited for are short.
      if (w.re.test(this.text.slice(Math.max(w.from, this.text.length - 65536)))) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(performance.now());
      }
    }
  }
  until(re: RegExp, from = 0, timeoutMs = 10_000): Promise<number> {
    if (re.test(this.text.slice(from))) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${re} in the terminal after ${timeoutMs} ms; it shows:\n${this.text.slice(-600)}`)), timeoutMs);
      this.waiters.push({ re, from, resolve: (at) => (clearTimeout(t), resolve(at)) });
    });
  }
}

describe('node terminal over wg1 (namespace lab)', () => {
  let t: TerminalLab;
  const started = Date.now();

  beforeAll(async () => {
    t = await createTerminalLab((l) => console.log(l));
    console.log(`terminal lab up in ${Math.round((Date.now() - started) / 1000)} s`);
  });
  afterAll(() => {
    t?.destroy();
    console.log(`terminal lab suite: ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('kubedos ssh SPEC NODE -- CMD runs the command on the node through the hub and records the transcript', async () => {
    const r = await run([process.execPath, join(REPO, 'bin', 'kubedos.mjs'), 'ssh', t.specPath, 'w-1', '--', 'hostname; id -un; ip -4 -o addr show dev wg1'], {
      env: { KUBEDOS_WORKSPACE: t.env.KUBEDOS_WORKSPACE! },
      timeoutMs: 60_000,
      okExitCodes: [0, 1, 2, 255],
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(t.lab.node('w-1').plan.hostname);
    expect(r.stdout).toContain('ops');
    expect(r.stdout).toContain(t.plan.nodes.find((n) => n.name === 'w-1')!.planes.wg1.address.replace(/\/32$/, ''));
    const rec = readTranscriptRecords(t.workspace).at(-1)!;
    expect(rec).toMatchObject({ node: 'w-1', exitCode: 0, command: 'hostname; id -un; ip -4 -o addr show dev wg1' });
    expect(createHash('sha256').update(readFileSync(rec.file)).digest('hex')).toBe(rec.sha256);
    expect(r.stderr).toContain(rec.sha256);
    expect(readFileSync(rec.file, 'utf8')).toBe(r.stdout);
  });

  it('a remote exit status comes back as the CLI exit status', async () => {
    const r = await run([process.execPath, join(REPO, 'bin', 'kubedos.mjs'), 'ssh', t.specPath, 'master', '--no-transcript', '--', 'exit 7'], {
      env: { KUBEDOS_WORKSPACE: t.env.KUBEDOS_WORKSPACE! },
      timeoutMs: 60_000,
      okExitCodes: [7, 0, 255],
    });
    expect(r.exitCode, r.stderr).toBe(7);
  });

  describe('interactive shell on w-1', () => {
    let session: TerminalSession;
    const screen = new Screen();

    beforeAll(async () => {
      const opened = await openNodeTerminal({ spec: t.spec, node: 'w-1', env: t.env, size: { cols: 80, rows: 24 }, onData: (b) => screen.push(b) });
      session = opened.session;
      session.write("PS1='READY> '\n");
      await screen.until(/READY> $/m);
    });
    afterAll(() => session?.close());

    it('runs a command and shows its output; a resize reaches the node as the new tty size', async () => {
      let from = screen.text.length;
      session.write('stty size; hostname\n');
      await screen.until(/24 80\r?\n/, from);
      await screen.until(new RegExp(t.lab.node('w-1').plan.hostname), from);
      from = screen.text.length;
      session.resize({ cols: 132, rows: 43 });
      session.write('stty size\n');
      await screen.until(/43 132\r?\n/, from);
    });

    for (const cmd of ['sleep 30', 'yes']) {
      it(`Ctrl-C stops a running \`${cmd}\` within 100 ms`, async () => {
        const from = screen.text.length;
        session.write(`${cmd}\n`);
        if (cmd === 'yes') await screen.until(/(y\r\n){50}/, from);
        else await new Promise((r) => setTimeout(r, 300));
        const mark = screen.text.length;
        const t0 = performance.now();
        session.write('\x03');
        const t1 = await screen.until(/READY> $/, mark, 5000);
        console.log(`Ctrl-C on ${cmd}: prompt back in ${(t1 - t0).toFixed(1)} ms`);
        expect(t1 - t0).toBeLessThan(100);
      });
    }
  });

  it('refuses a node whose host key differs from the one first boot recorded, naming both fingerprints', async () => {
    const other = (await run(['/bin/sh', '-c', 'd=$(mktemp -d) && ssh-keygen -q -t ed25519 -N "" -f "$d/k" && cat "$d/k.pub" && rm -rf "$d"'])).stdout.trim().split(' ').slice(0, 2).join(' ');
    t.recordFirstboot({ ...t.hostKeys, 'w-1': other });
    try {
      const err = await openNodeTerminal({ spec: t.spec, node: 'w-1', env: t.env, command: 'true', onData: () => undefined }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TerminalError);
      expect((err as TerminalError).code).toBe('host-key-changed');
      expect((err as Error).message).toContain(hostKeyFingerprint(t.hostKeys['w-1']!));
      expect((err as Error).message).toContain(hostKeyFingerprint(other));
      expect((err as Error).message).toMatch(/^host key of w-1 .* CHANGED: .*Refusing to connect/);
      // The CLI says it in one line and exits 255.
      const r = await run([process.execPath, join(REPO, 'bin', 'kubedos.mjs'), 'ssh', t.specPath, 'w-1', '--', 'true'], { env: { KUBEDOS_WORKSPACE: t.env.KUBEDOS_WORKSPACE! }, timeoutMs: 60_000, okExitCodes: [0, 255] });
      expect(r.exitCode).toBe(255);
      expect(r.stderr).toMatch(/kubedos ssh w-1: host key of w-1 .* CHANGED/);
      // The hub's own key is checked too.
      t.recordFirstboot({ ...t.hostKeys, master: other });
      const hubErr = await openNodeTerminal({ spec: t.spec, node: 'w-1', env: t.env, command: 'true', onData: () => undefined }).catch((e: unknown) => e);
      expect((hubErr as TerminalError).code).toBe('host-key-changed');
      expect((hubErr as Error).message).toMatch(/^host key of master /);
    } finally {
      t.recordFirstboot(t.hostKeys);
    }
    // With the right keys recorded again, it connects.
    let out = '';
    const ok = await openNodeTerminal({ spec: t.spec, node: 'w-1', env: t.env, command: 'echo back', transcript: false, onData: (b) => (out += b.toString()) });
    expect((await ok.session.exited).exitCode).toBe(0);
    expect(out).toBe('back\n');
  });

  it('streams a large output intact (hash of 8 MiB from the node equals the transcript)', async () => {
    const chunks: Buffer[] = [];
    const opened = await openNodeTerminal({ spec: t.spec, node: 'w-1', env: t.env, command: 'head -c 8388608 /dev/zero | tr "\\0" x', onData: (b) => chunks.push(b) });
    const exit = await opened.session.exited;
    const all = Buffer.concat(chunks);
    expect(all.length).toBe(8 * 1024 * 1024);
    expect(exit.transcript!.sha256).toBe(createHash('sha256').update(all).digest('hex'));
  });
});

