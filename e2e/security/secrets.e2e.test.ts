// Attack suite, issue 16 items 7 and 10: secrets leaking into child processes, logs, errors and
// the public recovery bundle; an RSA host key verified with SHA-1.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretMaterialIn } from '../../main/bundle/index';
import type { ExecEvent } from '../../main/exec/runner';
import { CommandError, run } from '../../main/exec/runner';
import { SshSession } from '../../main/substrate/ssh-session';
import { ageIdentity } from '../../main/trust/identity';
import { openSecretStore } from '../../main/trust/secret-store';
import { wgKeyPair } from '../../main/trust/wg-keys';

describe('security: secrets hygiene', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'kubedos-sec-secrets-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('item 10: a child process does not inherit $KUBEDOS_SSH_PASSPHRASE or anything else outside the minimal environment', async () => {
    const before = { ...process.env };
    process.env.KUBEDOS_SSH_PASSPHRASE = 'hunter2-passphrase-value';
    process.env.SOME_CLOUD_TOKEN = 'cloud-token-value';
    try {
      const r = await run(['sh', '-c', 'env']);
      expect(r.stdout).not.toContain('hunter2-passphrase-value');
      expect(r.stdout).not.toContain('cloud-token-value');
      expect(r.stdout).toMatch(/^PATH=/m);
    } finally {
      for (const k of ['KUBEDOS_SSH_PASSPHRASE', 'SOME_CLOUD_TOKEN']) if (before[k] === undefined) delete process.env[k];
    }
  });

  it('item 10: a secret read from the store never appears in the events or the error of a command that prints it', async () => {
    const store = await openSecretStore(join(root, 'store'), await ageIdentity({ KUBEDOS_WORKSPACE: join(root, 'ws') }));
    await store.put('enroll/hmac.key', 'hmac-key-material-7f3a9c2e11');
    const secret = await store.getText('enroll/hmac.key');
    const events: ExecEvent[] = [];
    const err = await run(['sh', '-c', 'echo "key is $1"; echo "bad key $1" >&2; exit 3', 'sh', secret], { onEvent: (e) => events.push(e) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    const seen = JSON.stringify(events) + String((err as Error).message) + (err as CommandError).stderrTail + JSON.stringify((err as CommandError).command);
    expect(seen).toContain('***');
    expect(seen).not.toContain(secret);
  });

  it('item 10: private key material printed by a command is cut from events and errors even when never registered', async () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const age = 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGP0ZZZZ';
    const events: ExecEvent[] = [];
    const err = await run(['sh', '-c', 'printf "%s\\n%s\\n" "$1" "$2" >&2; exit 1', 'sh', pem, age], { onEvent: (e) => events.push(e) }).catch((e: unknown) => e);
    const seen = JSON.stringify(events) + String((err as Error).message);
    expect(seen).not.toContain('PRIVATE KEY-----');
    expect(seen).not.toContain(age);
  });

  it('item 10: an age identity file other users can read is refused', async () => {
    const file = join(root, 'id.txt');
    writeFileSync(file, 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGP0ZZZZ\n');
    chmodSync(file, 0o644);
    await expect(ageIdentity({ KUBEDOS_AGE_IDENTITY_FILE: file })).rejects.toThrow(/chmod 600/);
  });

  it('item 10: an RSA host key is never verified with ssh-rsa (SHA-1), even when the server offers only that', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const hostKey = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const parsed = ssh2.utils.parseKey(hostKey);
    if (parsed instanceof Error) throw parsed;
    const negotiated: string[] = [];
    const server = new ssh2.Server({ hostKeys: [hostKey], algorithms: { serverHostKey: ['ssh-rsa'] } }, (client) => {
      client.on('handshake', (n: { serverHostKey: string }) => negotiated.push(n.serverHostKey));
      client.on('authentication', (ctx) => ctx.reject());
      client.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const knownHosts = join(root, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ssh-rsa ${parsed.getPublicSSH().toString('base64')}\n`);
    const session = new SshSession({ target: { alias: 't', hostName: '127.0.0.1', port, user: 'nobody', identityFiles: [], jumps: [] }, knownHostsPath: knownHosts, readyTimeoutMs: 5000, reconnect: { attempts: 0, backoffMs: 0 } });
    await session.connection().catch(() => undefined);
    await session.close?.();
    await new Promise<void>((r) => server.close(() => r()));
    expect(negotiated).not.toContain('ssh-rsa');
  });

  it('item 7: the bundle guard finds PGP private keys, base64 HMAC keys, WireGuard private keys and gzip\'d PEM', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const wg = wgKeyPair();
    const cases: [string, Uint8Array | string][] = [
      ['pgp', '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGZ...\n-----END PGP PRIVATE KEY BLOCK-----\n'],
      ['hmac', JSON.stringify({ enrollment: { hmacKey: Buffer.from('0123456789abcdef0123456789abcdef').toString('base64') } })],
      ['wg conf', `[Interface]\nPrivateKey = ${wg.privateKey}\nListenPort = 51821\n`],
      ['wg json', JSON.stringify({ node: 'master', privateKey: wg.privateKey })],
      ['gzip pem', gzipSync(Buffer.from(pem))],
    ];
    for (const [name, data] of cases) expect(secretMaterialIn(data), name).toBeDefined();
    // Public material stays allowed: a bundle carries public keys and fingerprints.
    for (const [name, data] of [
      ['wg public', `PublicKey = ${wg.publicKey}\n`],
      ['fingerprint', JSON.stringify({ hmacKeySha256: 'a'.repeat(64), caFingerprint: 'SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG' })],
      ['gzip text', gzipSync(Buffer.from('hello world\n'))],
    ] as const) expect(secretMaterialIn(data), name).toBeUndefined();
  });
});
