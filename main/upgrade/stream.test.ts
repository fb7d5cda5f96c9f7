// The pure parts of the slot stream (stream.ts): the node's command line and the one message per
// failure; the pump's cancel before its first chunk. The stream itself runs in the namespace lab:
// e2e/upgrade/stream.slow.test.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { pumpFile, slotWriteCommand, streamFailureMessage, tailOf } from './stream';

afterAll(removeTempDirs);

const img = { slot: 'B' as const, sha256: 'a'.repeat(64), size: 64 * 1024 * 1024 };

describe('slot stream: command and messages', () => {
  it('runs kubedos-slot-write under sudo -n for the ops user, directly as root', () => {
    expect(slotWriteCommand('ops', img)).toBe(`sudo -n /usr/local/sbin/kubedos-slot-write --tries 1 B ${'a'.repeat(64)} 67108864`);
    expect(slotWriteCommand('root', img)).toBe(`/usr/local/sbin/kubedos-slot-write --tries 1 B ${'a'.repeat(64)} 67108864`);
  });

  it('bounds the stderr tail to the last lines', () => {
    expect(tailOf('a\nb\nc\nd\ne\nf\n')).toBe('c | d | e | f');
    expect(tailOf('x'.repeat(2000)).length).toBe(801);
  });

  it('one message per failure, naming the node, the slot and what to do', () => {
    const base = { node: 'w-1', slot: 'B' as const, stderr: '', sent: 8 * 1048576, total: 64 * 1048576 };
    expect(streamFailureMessage({ ...base, code: 'connect', cause: 'cannot reach master' })).toMatch(/^w-1: writing N\+1 into slot B: no connection to the node \(cannot reach master\); nothing was sent.*kubedos ssh SPEC w-1 -- true/);
    expect(streamFailureMessage({ ...base, code: 'refused', exitCode: 1, stderr: 'kubedos-slot-write: slot B (/dev/vda3) reads back sha256 x, expected y; the boot environment is unchanged: the next boot is slot A\n' })).toMatch(/^w-1: writing N\+1 into slot B failed \(kubedos-slot-write exit 1\): kubedos-slot-write: slot B .*unchanged.*As the node says, its next boot is still its active slot; fix the cause and rerun the upgrade$/);
    expect(streamFailureMessage({ ...base, code: 'refused', exitCode: 1, stderr: 'sudo: a password is required\n' })).toMatch(/failed before the write \(exit 1\): sudo: a password is required\. The node cannot run kubedos-slot-write as root/);
    expect(streamFailureMessage({ ...base, code: 'dropped', exitCode: null })).toMatch(/^w-1: writing N\+1 into slot B: the connection ended after 8\.0 MiB of 64\.0 MiB without an exit status; the node keeps booting its active slot .*rerun/);
    expect(streamFailureMessage({ ...base, code: 'timeout', timeoutMs: 90_000 })).toMatch(/no end within 90 s \(8\.0 MiB of 64\.0 MiB sent\)/);
    // The whole image sent, then no verdict: the node may have staged its try, and the message says so.
    const all = { ...base, sent: base.total };
    for (const code of ['dropped', 'timeout'] as const) {
      const m = streamFailureMessage({ ...all, code, exitCode: null, timeoutMs: 90_000 });
      expect(m).not.toMatch(/keeps booting its active slot/);
      expect(m).toMatch(/the whole image had been sent, so the node may have read it back and staged its try of slot B: `kubedos-boot status` on w-1 says .*`kubedos-boot cancel B`/);
    }
    expect(streamFailureMessage({ ...base, code: 'aborted' })).toMatch(/stopped after 8\.0 MiB of 64\.0 MiB \(cancelled\)/);
  });
});

describe('pumpFile', () => {
  it('a cancel before the first chunk (its `exited` rejects at once): the pump rejects, and no rejection is left unhandled', async () => {
    const file = join(tempDir('kd-h18s-pump-'), 'image');
    writeFileSync(file, Buffer.alloc(3 << 20, 1));
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown): void => void unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      const ctl = new AbortController();
      // As channel-transport.ts builds it: the cancel rejects the promise the drain wait would watch.
      const exited = new Promise<never>((_, reject) => ctl.signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true }));
      const pumped = pumpFile(file, new PassThrough(), { ended: () => false, exited, signal: ctl.signal });
      ctl.abort();
      await expect(pumped).rejects.toThrow(/abort/i);
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
