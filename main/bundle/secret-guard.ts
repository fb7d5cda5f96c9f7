// The bundle is public: it may travel on a USB stick next to the cluster. This guard refuses any
// file that looks like secret material (a PEM/OpenSSH private key, an age identity, an enrollment
// token), both when the bundle is written and when it is verified.
import { TOKEN_PREFIX } from '../trust/token';

const PATTERNS: readonly { what: string; re: RegExp }[] = [
  { what: 'a private key (PEM)', re: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
  { what: 'an age identity', re: /AGE-SECRET-KEY-1[0-9A-Z]+/ },
  { what: 'an enrollment token', re: new RegExp(`\\b${TOKEN_PREFIX}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{16,}`) },
];

/** What kind of secret `data` seems to hold, or undefined. */
export function secretMaterialIn(data: Uint8Array | string): string | undefined {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('latin1');
  return PATTERNS.find((p) => p.re.test(text))?.what;
}
