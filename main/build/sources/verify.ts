// Verification of declared upstream sources (spec.sources, docs/sources.md): nothing from outside
// Debian enters a cache or an artifact unless it matches what the spec pins. An apt repository's
// InRelease must carry a valid signature by the key whose fingerprint the spec names; an image
// manifest must hash to the pinned digest; a file must hash to the pinned sha256. Each refusal
// names the source, what was expected, what was found and what to do next.
//
// Not done yet (docs/sources.md "Not done yet"): fetching, the lock entries, the content-addressed
// cache, the OCI layout in the artifact and the SBOM components. These functions are what those
// steps must call before anything is kept.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../../../common/canonical';
import type { AptSourceSpec, FileSourceSpec, ImageSourceSpec } from '../../../common/spec/schema';
import type { z } from 'zod';
import { run } from '../../exec/runner';

export class SourceVerifyError extends Error {
  constructor(
    readonly source: string,
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'SourceVerifyError';
  }
}

type FileSource = z.infer<typeof FileSourceSpec>;
type ImageSource = z.infer<typeof ImageSourceSpec>;
type AptSource = z.infer<typeof AptSourceSpec>;

/** A file source's bytes must hash to its pinned sha256. */
export function verifyFile(source: FileSource, bytes: Uint8Array): void {
  const found = sha256Hex(bytes);
  if (found !== source.sha256) {
    throw new SourceVerifyError(
      source.name,
      `file source ${source.name} (${source.url}): sha256 expected ${source.sha256}, found ${found}; nothing was cached`,
      'the URL now serves other content: review it, then pin the new sha256 in spec.sources.files if you trust it',
    );
  }
}

/** An image's manifest (or index) bytes, as the registry served them, must hash to the pinned digest. */
export function verifyImageManifest(source: ImageSource, manifest: Uint8Array): void {
  const found = `sha256:${sha256Hex(manifest)}`;
  if (found !== source.digest) {
    throw new SourceVerifyError(
      source.name,
      `image source ${source.name} (${source.reference}): digest expected ${source.digest}, found ${found}; nothing was cached`,
      'the tag now points to another image: review it, then pin the new digest in spec.sources.images if you trust it',
    );
  }
}

/** A blob of an image must hash to the digest its manifest names. */
export function verifyBlob(source: ImageSource, digest: string, blob: Uint8Array): void {
  const found = `sha256:${sha256Hex(blob)}`;
  if (found !== digest) {
    throw new SourceVerifyError(source.name, `image source ${source.name} (${source.reference}): blob expected ${digest}, found ${found}; nothing was cached`, 'fetch again; if it persists, the registry serves corrupt content');
  }
}

export interface VerifiedRelease {
  /** Fingerprint of the key that made the signature (a subkey or the primary key). */
  signingKey: string;
  /** Primary key fingerprint. */
  primaryKey: string;
}

/**
 * Pure: gpgv's --status-fd output -> the valid signature's keys, or undefined. VALIDSIG's fields:
 * signing key fingerprint … primary key fingerprint (the 10th).
 */
export function parseValidSig(status: string): VerifiedRelease | undefined {
  for (const line of status.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === '[GNUPG:]' && f[1] === 'VALIDSIG' && f[2]) return { signingKey: f[2].toUpperCase(), primaryKey: (f[11] ?? f[2]).toUpperCase() };
  }
  return undefined;
}

/**
 * An apt source's InRelease must carry a valid signature by the pinned key (the primary key or
 * one of its subkeys). `keyring`: the binary OpenPGP keyring the repository publishes; a keyring
 * whose key is not the pinned one fails here too.
 */
export async function verifyInRelease(source: AptSource, inRelease: Uint8Array, keyring: Uint8Array, signal?: AbortSignal): Promise<VerifiedRelease> {
  const dir = mkdtempSync(join(tmpdir(), 'kubedos-srcv-'));
  chmodSync(dir, 0o700);
  try {
    writeFileSync(join(dir, 'keyring.gpg'), keyring, { mode: 0o600 });
    writeFileSync(join(dir, 'InRelease'), inRelease, { mode: 0o600 });
    const r = await run(['gpgv', '--status-fd', '1', '--keyring', join(dir, 'keyring.gpg'), join(dir, 'InRelease')], {
      env: { GNUPGHOME: dir, LC_ALL: 'C' },
      okExitCodes: [0, 1, 2],
      timeoutMs: 60_000,
      ...(signal ? { signal } : {}),
    });
    const valid = r.exitCode === 0 ? parseValidSig(r.stdout) : undefined;
    const where = `apt source ${source.name} (${source.url} ${source.suite})`;
    if (!valid) {
      const why = /NO_PUBKEY\s+(\S+)/.exec(r.stdout)?.[1];
      throw new SourceVerifyError(
        source.name,
        `${where}: InRelease has no valid signature${why ? ` (signed by key ${why}, not in the repository's keyring)` : ''}; expected a signature by ${source.signedBy}; nothing was cached`,
        'check the keyring the repository publishes and that the InRelease was not altered on the way',
      );
    }
    if (valid.primaryKey !== source.signedBy && valid.signingKey !== source.signedBy) {
      throw new SourceVerifyError(
        source.name,
        `${where}: InRelease is signed by ${valid.primaryKey}, the spec pins ${source.signedBy}; the repository's key changed; nothing was cached`,
        'find out why the key changed (a planned rotation is announced by the project); pin the new fingerprint in spec.sources.apt only if you trust it',
      );
    }
    return valid;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
