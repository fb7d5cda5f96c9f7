// The pure parts of the slot stream (stream.ts): the node's command line and the one message per
// failure. The stream itself runs in the namespace lab: e2e/upgrade/stream.slow.test.ts.
import { describe, expect, it } from 'vitest';
import { slotWriteCommand, streamFailureMessage, tailOf } from './stream';

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
    expect(streamFailureMessage({ ...base, code: 'aborted' })).toMatch(/stopped after 8\.0 MiB of 64\.0 MiB \(cancelled\)/);
  });
});
