import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExecEvent } from './runner';
import { CommandError, run } from './runner';

describe('exec runner', () => {
  it('runs an argv array without a shell: metacharacters stay literal', async () => {
    const r = await run(['bash', '-c', 'printf "%s\\n" "$1"', 'x', '$(id); rm -rf / `uname`']);
    expect(r.stdout).toBe('$(id); rm -rf / `uname`\n');
  });
  it('refuses programs outside the allowlist', async () => {
    await expect(run(['curl', 'http://127.0.0.1/'])).rejects.toMatchObject({ reason: 'not-allowed' });
  });
  it('streams lines as events and redacts secrets everywhere', async () => {
    const events: ExecEvent[] = [];
    const secret = 'hunter2-very-secret';
    const err = await run(['bash', '-c', `echo token=${secret}; echo bad ${secret} >&2; exit 3`], { secrets: [secret], onEvent: (e) => events.push(e) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    const ce = err as CommandError;
    expect(ce.exitCode).toBe(3);
    expect(ce.stderrTail).toBe('bad ***');
    expect(ce.message).not.toContain(secret);
    expect(ce.command.join(' ')).not.toContain(secret);
    const lines = events.filter((e) => e.kind === 'line').map((e) => `${e.stream}:${e.line}`);
    expect(lines).toEqual(expect.arrayContaining(['stdout:token=***', 'stderr:bad ***']));
    expect(JSON.stringify(events)).not.toContain(secret);
  });
  it('times out and kills the whole process group', async () => {
    const started = Date.now();
    const err = (await run(['bash', '-c', 'sleep 30 & sleep 30; wait'], { timeoutMs: 200 }).catch((e: unknown) => e)) as CommandError;
    expect(err.reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5000);
  });
  it('aborts through an AbortSignal', async () => {
    const c = new AbortController();
    setTimeout(() => c.abort(), 100);
    const err = (await run(['bash', '-c', 'sleep 30'], { signal: c.signal }).catch((e: unknown) => e)) as CommandError;
    expect(err.reason).toBe('aborted');
  });
  it('names the Debian package when a known tool is missing', async () => {
    const err = (await run(['/nonexistent/xorriso', '-version']).catch((e: unknown) => e)) as CommandError;
    expect(err.reason).toBe('spawn');
    expect(err.message).toContain('xorriso');
    expect(err.hint).toContain('apt-get install xorriso');
  });
  it('says the disk is full when the command failed on ENOSPC (a real one: /dev/full)', async () => {
    const err = (await run(['dd', 'if=/dev/zero', 'of=/dev/full', 'bs=512', 'count=1'], { hint: 'dd writes the ESP' }).catch((e: unknown) => e)) as CommandError;
    expect(err.stderrTail).toMatch(/No space left on device/);
    expect(err.hint).toMatch(/^the disk it writes to is full: .*kubedos cache prune .* \(dd writes the ESP\)$/);
    const other = (await run(['bash', '-c', 'echo nope >&2; exit 3'], { hint: 'own hint' }).catch((e: unknown) => e)) as CommandError;
    expect(other.hint).toBe('own hint');
  });
  it('bounds the command line in a failure message (a call naming 200 packages is not repeated whole)', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `package-number-${i}`);
    const err = (await run(['sh', '-c', 'echo nope >&2; exit 3', 'sh', ...names]).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.message).toMatch(/… \(\+\d+ more arguments\) exited with 3:\nnope/);
    expect(err.message).not.toContain('package-number-199');
    expect(err.message.length).toBeLessThan(800);
    expect(err.command).toHaveLength(204);
  });

  it('feeds standard input', async () => {
    const r = await run(['bash', '-c', 'cat'], { input: 'from stdin' });
    expect(r.stdout).toBe('from stdin');
  });
  it("never runs the user's ~/.bashrc (bash reads it when its stdin is a socket, as Node's pipes are)", async () => {
    const home = mkdtempSync(join(tmpdir(), 'kd-runner-home-'));
    try {
      writeFileSync(join(home, '.bashrc'), `touch ${join(home, 'bashrc-ran')}\n`);
      for (const input of [undefined, 'x']) {
        const r = await run(['bash', '-c', 'echo "$SHLVL"; cat >/dev/null'], { env: { HOME: home }, ...(input !== undefined ? { input } : {}) });
        expect(r.stdout.trim()).toBe('2');
      }
      expect(existsSync(join(home, 'bashrc-ran'))).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
