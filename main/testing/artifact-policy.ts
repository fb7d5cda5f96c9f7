// Test helper: gives a build directory written by main/upgrade/testing.ts writeArtifact the
// "upgrade" policy a build of a spec with spec.upgrades records (channel, stepping stone), and signs
// its manifest again with the same key, as `kubedos build` would have.
import type { KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildManifest } from '../build/attest';
import { envelopePath, MANIFEST_FILE, payloadTypeFor, renderManifest, signDsse } from '../build/attest';

export function signWithPolicy(dir: string, upgrade: unknown, key: { privateKey: KeyObject; keyid: string }): void {
  const manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as BuildManifest;
  const text = renderManifest({ ...manifest, upgrade } as BuildManifest);
  writeFileSync(join(dir, MANIFEST_FILE), text);
  writeFileSync(join(dir, envelopePath(MANIFEST_FILE)), JSON.stringify(signDsse(payloadTypeFor(MANIFEST_FILE), Buffer.from(text), key.privateKey, key.keyid)));
}
