// Declared sources are verified before anything is kept: a real ed25519 key made here (private
// GNUPGHOME), a clearsigned InRelease, and the pins of spec.sources.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../common/canonical';
import { parseValidSig, SourceVerifyError, verifyFile, verifyImageManifest, verifyInRelease } from './verify';

const homes: string[] = [];
function gpg(home: string, args: string[], input?: string): Buffer {
  return execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { ...process.env, GNUPGHOME: home, LC_ALL: 'C' }, input, stdio: ['pipe', 'pipe', 'pipe'] });
}
function makeKey(uid: string): { home: string; fingerprint: string; keyring: Buffer } {
  const home = mkdtempSync(join(tmpdir(), 'kubedos-h13-gpg-'));
  chmodSync(home, 0o700);
  homes.push(home);
  gpg(home, ['--quick-generate-key', uid, 'ed25519', 'sign', 'never']);
  const fingerprint = gpg(home, ['--with-colons', '--list-secret-keys']).toString().split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  return { home, fingerprint, keyring: gpg(home, ['--export', fingerprint]) };
}

const RELEASE = 'Origin: test\nSuite: stable\nComponents: main\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 0 main/binary-amd64/Packages\n';
let good: ReturnType<typeof makeKey>;
let other: ReturnType<typeof makeKey>;
let inRelease: Buffer;
const apt = (signedBy: string) => ({ name: 'loopback', url: 'http://127.0.0.1:9/repo', suite: 'stable', components: ['main'], signedBy, packages: ['kubeadm'] });

beforeAll(() => {
  good = makeKey('Test upstream <upstream@test.invalid>');
  other = makeKey('Other <other@test.invalid>');
  inRelease = gpg(good.home, ['--clearsign', '--local-user', good.fingerprint], RELEASE);
}, 60_000);
afterAll(() => {
  for (const h of homes) {
    try {
      execFileSync('gpgconf', ['--homedir', h, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    } catch {
      /* no agent */
    }
    rmSync(h, { recursive: true, force: true });
  }
});

describe('apt sources: InRelease signed by the pinned key', () => {
  it('accepts the pinned key', async () => {
    const v = await verifyInRelease(apt(good.fingerprint), inRelease, good.keyring);
    expect(v.primaryKey).toBe(good.fingerprint);
  });
  it('refuses a repository whose key changed, naming both fingerprints', async () => {
    const err = await verifyInRelease(apt(other.fingerprint), inRelease, good.keyring).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceVerifyError);
    expect((err as SourceVerifyError).source).toBe('loopback');
    expect((err as Error).message).toBe(`apt source loopback (http://127.0.0.1:9/repo stable): InRelease is signed by ${good.fingerprint}, the spec pins ${other.fingerprint}; the repository's key changed; nothing was cached`);
  });
  it('refuses a signature by a key that is not in the keyring (wrong signing key)', async () => {
    const err = await verifyInRelease(apt(other.fingerprint), inRelease, other.keyring).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^apt source loopback .*: InRelease has no valid signature \(signed by key [0-9A-F]+, not in the repository's keyring\); expected a signature by /);
  });
  it('refuses an InRelease altered after signing', async () => {
    const tampered = Buffer.from(inRelease.toString().replace('Suite: stable', 'Suite: stabIe'));
    await expect(verifyInRelease(apt(good.fingerprint), tampered, good.keyring)).rejects.toThrow(/InRelease has no valid signature/);
  });
  it('reads the primary key from VALIDSIG', () => {
    expect(parseValidSig('[GNUPG:] VALIDSIG AAAA 2024-01-01 1 0 4 0 22 10 01 BBBB\n')).toEqual({ signingKey: 'AAAA', primaryKey: 'BBBB' });
    expect(parseValidSig('[GNUPG:] BADSIG X\n')).toBeUndefined();
  });
});

describe('images and files: pinned by digest and sha256', () => {
  const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}');
  const image = { name: 'pause', reference: '127.0.0.1:5000/test/pause:3.9', digest: `sha256:${sha256Hex(manifest)}` };
  it('accepts the pinned manifest and refuses another one by name (tag moved)', () => {
    expect(() => verifyImageManifest(image, manifest)).not.toThrow();
    const moved = Buffer.from(`${manifest.toString()} `);
    expect(() => verifyImageManifest(image, moved)).toThrow(`image source pause (127.0.0.1:5000/test/pause:3.9): digest expected ${image.digest}, found sha256:${sha256Hex(moved)}; nothing was cached`);
  });
  it('refuses a file whose content is not the pinned one', () => {
    const body = readFileSync(__filename);
    const file = { name: 'chart', url: 'http://127.0.0.1:9/chart.tgz', sha256: sha256Hex(body) };
    expect(() => verifyFile(file, body)).not.toThrow();
    expect(() => verifyFile({ ...file, sha256: '0'.repeat(64) }, body)).toThrow(/^file source chart \(http:\/\/127\.0\.0\.1:9\/chart\.tgz\): sha256 expected 0{64}, found [0-9a-f]{64}; nothing was cached$/);
  });
});
