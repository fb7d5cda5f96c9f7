import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { hostileString, prng } from '../../e2e/fixtures/hostile';
import { remoteCommand, shellQuote, UnsafeShellWordError } from './shell';

describe('shellQuote', () => {
  it('leaves plainly safe words bare and quotes everything else', () => {
    expect(shellQuote('qm')).toBe('qm');
    expect(shellQuote('local:1,efitype=4m')).toBe('local:1,efitype=4m');
    expect(shellQuote('a;b')).toBe("'a;b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe("''");
  });

  it('refuses control characters (newline, NUL, ESC, CR) instead of sending them; a tab is quoted', () => {
    expect(shellQuote('a\tb')).toBe("'a\tb'");
    for (const bad of ['a\nb', 'a\u0000', '\u001b[2J', 'x\r']) expect(() => shellQuote(bad)).toThrow(UnsafeShellWordError);
  });

  it('fuzz: 3000 hostile words come back byte-identical from a real /bin/sh', () => {
    const rand = prng(20261122);
    const words = Array.from({ length: 3000 }, () => hostileString(rand));
    // One shell run evaluates all of them: printf prints each argument NUL-terminated.
    const out = execFileSync('/bin/sh', ['-c', remoteCommand(['printf', '%s\\0', ...words])], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(out.split('\u0000').slice(0, -1)).toEqual(words);
  });
});
