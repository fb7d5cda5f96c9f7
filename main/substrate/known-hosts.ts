// Host key checking against OpenSSH known_hosts: plain, wildcard, negated and hashed (|1|salt|hash)
// host patterns, [host]:port entries, @revoked. An unknown host is reported with its SHA256
// fingerprint and needs an explicit accept (callback); a host whose known key differs is refused.
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority';
  patterns: string;
  keyType: string;
  key: Buffer;
}

export type HostKeyVerdict =
  | { status: 'known'; keyType: string; fingerprint: string }
  | { status: 'unknown'; keyType: string; fingerprint: string }
  | { status: 'changed'; keyType: string; fingerprint: string; knownTypes: string[] }
  | { status: 'revoked'; keyType: string; fingerprint: string };

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type written inside an SSH public key blob (string "ssh-ed25519", ...). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + Math.min(len, 64)).toString('latin1');
}

export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') marker = parts.shift() as KnownHostEntry['marker'];
    const [patterns, keyType, b64] = parts;
    if (!patterns || !keyType || !b64) continue;
    out.push({ ...(marker ? { marker } : {}), patterns, keyType, key: Buffer.from(b64, 'base64') });
  }
  return out;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

function patternMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) matched = true;
  }
  return matched;
}

export function checkHostKey(entries: readonly KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = hostKeyName(host, port);
  const keyType = keyTypeOf(key);
  const fp = fingerprint(key);
  const mine = entries.filter((e) => e.marker !== '@cert-authority' && patternMatches(e.patterns, name));
  if (mine.some((e) => e.marker === '@revoked' && e.key.equals(key))) return { status: 'revoked', keyType, fingerprint: fp };
  const plain = mine.filter((e) => e.marker === undefined);
  if (plain.some((e) => e.key.equals(key))) return { status: 'known', keyType, fingerprint: fp };
  if (plain.length > 0) return { status: 'changed', keyType, fingerprint: fp, knownTypes: [...new Set(plain.map((e) => e.keyType))].sort() };
  return { status: 'unknown', keyType, fingerprint: fp };
}

/** Key types already trusted for a host, so the client negotiates one of them. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = hostKeyName(host, port);
  return [...new Set(entries.filter((e) => e.marker === undefined && patternMatches(e.patterns, name)).map((e) => e.keyType))];
}

export class KnownHostsFile {
  constructor(readonly path: string) {}
  read(): KnownHostEntry[] {
    return existsSync(this.path) ? parseKnownHosts(readFileSync(this.path, 'utf8')) : [];
  }
  add(host: string, port: number, key: Buffer): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const prefix = existsSync(this.path) && !readFileSync(this.path, 'utf8').endsWith('\n') && readFileSync(this.path).length > 0 ? '\n' : '';
    appendFileSync(this.path, `${prefix}${hostKeyName(host, port)} ${keyTypeOf(key)} ${key.toString('base64')}\n`, { mode: 0o600 });
  }
}
