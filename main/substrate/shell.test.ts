import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { remoteCommand, shellQuote, UnsafeShellWordError } from './shell';

/** Small deterministic PRNG (mulberry32) so a failing case can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE = ["'", '"', '$', '(', ')', '`', ';', '|', '&', '<', '>', '\\', ' ', '\t', '*', '?', '[', ']', '{', '}', '~', '#', '!', '%', '^', '=', ',', '.', ':', '/', '-', '_', 'a', 'Z', '9', 'é', '€', '$(id)', "'$(touch /tmp/pwned)'", '`reboot`', '${IFS}', '\\\'', "''", '--'];

export function hostileString(rand: () => number, maxParts = 8): string {
  const n = 1 + Math.floor(rand() * maxParts);
  let s = '';
  for (let i = 0; i < n; i++) s += HOSTILE[Math.floor(rand() * HOSTILE.length)];
  return s;
}

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
