import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GuestExecResult, SubstrateEvent } from './driver';
import { SubstrateError } from './driver';
import type { GuestExecFn } from './guest-file';
import { GUEST_FILE_MAX_BYTES, GUEST_INPUT_MAX_BYTES, planGuestFileWrite, STAGING_SUFFIX, writeGuestFile } from './guest-file';
import { remoteCommand } from './shell';
import { SubstrateInputError } from './validate';

const words = (argv: string[]): string[] => execFileSync('/bin/sh', ['-c', remoteCommand(['printf', '%s\\0', ...argv])], { encoding: 'utf8' }).split('\u0000').slice(0, -1);

const BUSYBOX = '/usr/bin/busybox';
const root = mkdtempSync(join(tmpdir(), 'kubedos-guest-file-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// A "guest": the scripts run for real under busybox sh with only busybox applets on PATH (the
// test guest is busybox-based, and busybox has fewer options than coreutils), inside `root`.
const bin = join(root, '.bin');
mkdirSync(bin);
for (const applet of ['sh', 'cat', 'mkdir', 'rm', 'sha256sum', 'chmod', 'mv', 'chown']) {
  if (applet === 'chown' && process.getuid?.() !== 0) writeFileSync(join(bin, 'chown'), '#!/bin/sh\nexit 0\n', { mode: 0o755 }); // only root may chown
  else symlinkSync(BUSYBOX, join(bin, applet));
}

interface Call {
  argv: readonly string[];
  input?: Buffer;
  /** Mode of the staging directory when this call ran, if it existed. */
  stagingMode?: number;
}

function guest(staging?: () => string, tamper?: (input: Buffer) => Buffer): { exec: GuestExecFn; calls: Call[] } {
  const calls: Call[] = [];
  const exec: GuestExecFn = (argv, o) => {
    const s = staging?.();
    calls.push({ argv, ...(o.input ? { input: o.input } : {}), ...(s && existsSync(s) ? { stagingMode: statSync(s).mode & 0o7777 } : {}) });
    const program = argv[0] === '/bin/sh' ? join(bin, 'sh') : argv[0] === '/bin/rm' ? join(bin, 'rm') : (argv[0] as string);
    return new Promise<GuestExecResult>((resolve, reject) => {
      const child = spawn(program, argv.slice(1), { env: { PATH: bin }, cwd: '/' });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ exitCode: code ?? -1, stdout, stderr }));
      child.stdin.end(o.input && tamper ? tamper(o.input) : o.input);
    });
  };
  return { exec, calls };
}

const where = { vmid: 3001, target: 'test-guest', node: 'cp-1' };
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const modeOf = (p: string): string => (statSync(p).mode & 0o777).toString(8);

describe('guest file write: planning and validation', () => {
  it('lays out prepare, one chunk per MiB, finish; the content is never in an argv', () => {
    const p = planGuestFileWrite('/etc/kubedos/join.token', 2 * GUEST_INPUT_MAX_BYTES + 1, 'a'.repeat(64), 0o600);
    expect(p.parent).toBe('/etc/kubedos');
    expect(p.staging).toBe(`/etc/kubedos/join.token${STAGING_SUFFIX}`);
    expect(p.mode).toBe('0600');
    expect(p.steps.map((s) => s.what)).toEqual(['prepare', 'chunk', 'chunk', 'chunk', 'finish']);
    expect(p.steps.filter((s) => s.range).map((s) => s.range)).toEqual([
      { start: 0, end: GUEST_INPUT_MAX_BYTES },
      { start: GUEST_INPUT_MAX_BYTES, end: 2 * GUEST_INPUT_MAX_BYTES },
      { start: 2 * GUEST_INPUT_MAX_BYTES, end: 2 * GUEST_INPUT_MAX_BYTES + 1 },
    ]);
    expect(p.steps[1]?.argv.at(-1)).toBe(`/etc/kubedos/join.token${STAGING_SUFFIX}/part-000000`);
    expect(p.steps[4]?.argv.slice(-4)).toEqual([p.staging, '/etc/kubedos/join.token', 'a'.repeat(64), '0600']);
    // Only the prepare/finish scripts and paths: every argv is built from validated values.
    for (const s of p.steps) expect(s.argv[0]).toBe('/bin/sh');
    // Every word survives the remote shell of the Proxmox driver (which refuses control characters).
    for (const s of p.steps) expect(words(s.argv)).toEqual(s.argv);
  });

  it('an empty file is prepare + finish; a file at the root of / has parent /', () => {
    expect(planGuestFileWrite('/x', 0, 'b'.repeat(64)).steps.map((s) => s.what)).toEqual(['prepare', 'finish']);
    expect(planGuestFileWrite('/x', 0, 'b'.repeat(64)).parent).toBe('/');
    expect(planGuestFileWrite('/x', 0, 'b'.repeat(64)).mode).toBe('0644');
  });

  it.each([
    ['relative', 'etc/passwd'],
    ['a .. segment', '/etc/../root/.ssh/authorized_keys'],
    ['a . segment', '/etc/./x'],
    ['an empty segment', '/etc//x'],
    ['a trailing slash', '/etc/kubedos/'],
    ['the root itself', '/'],
    ['a newline', '/etc/x\ny'],
    ['a NUL', '/etc/x\u0000y'],
    ['ESC', '/etc/\u001b[31mx'],
    ['DEL', '/etc/x\u007f'],
    ['a 201-character name', `/etc/${'n'.repeat(201)}`],
    ['a non-string', 42],
  ])('rejects a path with %s', (_what, path) => {
    expect(() => planGuestFileWrite(path as string, 1, 'c'.repeat(64))).toThrow(SubstrateInputError);
  });

  it.each([[-1], [0o1000], [0o4755], [1.5], [Number.NaN]])('rejects mode %s', (mode) => {
    expect(() => planGuestFileWrite('/etc/x', 1, 'c'.repeat(64), mode)).toThrow(/file mode/);
  });

  it('rejects a bad sha256, a chunk size past 1 MiB and files past the limit', () => {
    expect(() => planGuestFileWrite('/etc/x', 1, 'C'.repeat(64))).toThrow(/sha256/);
    expect(() => planGuestFileWrite('/etc/x', 1, 'c'.repeat(64), 0o644, GUEST_INPUT_MAX_BYTES + 1)).toThrow(/chunk size/);
    expect(() => planGuestFileWrite('/etc/x', GUEST_FILE_MAX_BYTES + 1, 'c'.repeat(64))).toThrow(/file size/);
  });
});

describe('guest file write: the scripts, run under busybox sh', () => {
  it('writes a secret with mode 0600, parents created 0755, staging private throughout and gone afterwards', async () => {
    const target = join(root, 'a', 'b', 'secret.key');
    const g = guest(() => `${target}${STAGING_SUFFIX}`);
    const events: SubstrateEvent[] = [];
    const secret = `-----BEGIN KEY-----\n${randomBytes(48).toString('base64')}\n`;
    await writeGuestFile(g.exec, where, target, secret, { mode: 0o600, onEvent: (e) => events.push(e) });
    expect(readFileSync(target, 'utf8')).toBe(secret);
    expect(modeOf(target)).toBe('600');
    expect(statSync(target).uid).toBe(process.getuid?.());
    expect(modeOf(join(root, 'a', 'b'))).toBe('755');
    expect(existsSync(`${target}${STAGING_SUFFIX}`)).toBe(false);
    expect(readdirSync(join(root, 'a', 'b'))).toEqual(['secret.key']);
    // Every step after prepare ran while the staging directory was 0700.
    expect(g.calls.slice(1).map((c) => c.stagingMode)).toEqual([0o700, 0o700]);
    // The secret went on stdin only: not in any argv, not in any event.
    expect(g.calls.some((c) => c.argv.some((a) => a.includes('BEGIN KEY')))).toBe(false);
    expect(JSON.stringify(events)).not.toContain('BEGIN KEY');
    expect(events[0]).toMatchObject({ kind: 'log', node: 'cp-1' });
  });

  it('writes binary content across several chunks and replaces an existing file atomically with the new mode', async () => {
    const target = join(root, 'bin.dat');
    writeFileSync(target, 'old', { mode: 0o600 });
    const data = randomBytes(10_000);
    const g = guest();
    await writeGuestFile(g.exec, where, target, new Uint8Array(data), { mode: 0o640 }, 4096);
    expect(g.calls.filter((c) => c.input).map((c) => c.input?.length)).toEqual([4096, 4096, 1808]);
    expect(sha(readFileSync(target))).toBe(sha(data));
    expect(modeOf(target)).toBe('640');
  });

  it('writes an empty file, and a path with spaces, quotes and $(…) stays one literal path', async () => {
    const target = join(root, "we ird $(touch pwned) 'q' `x`", 'empty');
    await writeGuestFile(guest().exec, where, target, '');
    expect(readFileSync(target, 'utf8')).toBe('');
    expect(modeOf(target)).toBe('644');
    expect(existsSync(join('/', 'pwned'))).toBe(false);
    expect(existsSync(join(root, 'pwned'))).toBe(false);
  });

  it('content changed on the way: sha256 mismatch, nothing replaced, staging removed', async () => {
    const target = join(root, 'kept.conf');
    writeFileSync(target, 'original\n');
    const g = guest(undefined, (b) => Buffer.concat([b, Buffer.from('x')]));
    const err = await writeGuestFile(g.exec, where, target, 'new content\n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubstrateError);
    expect(err).toMatchObject({ code: 'guest-file-write', node: 'cp-1' });
    expect((err as SubstrateError).message).toMatch(/finish step exited 3: kubedos: sha256 of the written file is [0-9a-f]{64}, expected/);
    expect(readFileSync(target, 'utf8')).toBe('original\n');
    expect(existsSync(`${target}${STAGING_SUFFIX}`)).toBe(false);
  });

  it('the target is a directory: refused before anything is sent', async () => {
    const target = join(root, 'adir');
    mkdirSync(target);
    const g = guest();
    const err = await writeGuestFile(g.exec, where, target, 'x').catch((e: unknown) => e);
    expect((err as SubstrateError).message).toMatch(/prepare step exited 4: kubedos: .*adir is a directory/);
    expect((err as SubstrateError).hint).toMatch(/is a directory/);
    expect(g.calls.filter((c) => c.input)).toEqual([]);
    expect(readdirSync(target)).toEqual([]);
  });

  it('a parent that is a file: the prepare step fails with the guest\'s stderr', async () => {
    writeFileSync(join(root, 'plain'), 'x');
    const err = await writeGuestFile(guest().exec, where, join(root, 'plain', 'f'), 'x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'guest-file-write' });
    expect((err as SubstrateError).stderrTail).toMatch(/mkdir/);
  });

  it('a failed chunk removes the staging directory again', async () => {
    const target = join(root, 'chunkfail');
    const base = guest();
    let n = 0;
    const exec: GuestExecFn = async (argv, o) => (o.input && n++ === 1 ? { exitCode: 1, stdout: '', stderr: 'cat: write error: No space left on device' } : base.exec(argv, o));
    const err = await writeGuestFile(exec, where, target, randomBytes(300), {}, 100).catch((e: unknown) => e);
    expect((err as SubstrateError).message).toMatch(/chunk step exited 1: cat: write error: No space left on device/);
    expect(existsSync(`${target}${STAGING_SUFFIX}`)).toBe(false);
    expect(existsSync(target)).toBe(false);
  });

  it('an aborted signal stops before anything runs', async () => {
    const g = guest();
    const ac = new AbortController();
    ac.abort('test');
    await expect(writeGuestFile(g.exec, where, join(root, 'never'), 'x', { signal: ac.signal })).rejects.toMatchObject({ code: 'aborted' });
    expect(g.calls).toEqual([]);
  });
});
