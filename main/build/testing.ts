// A small signed build directory for tests (the Artifacts view's unit and e2e tests): real
// manifest, SBOM, provenance and DSSE signatures from attest.ts over a few small output files and
// a few packages, signed with a fresh ed25519 key. Test helper only.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import type { BuildManifest } from './attest';
import { envelopePath, MANIFEST_FILE, payloadTypeFor, PROVENANCE_FILE, PUBLIC_KEY_FILE, renderManifest, renderProvenance, renderSbom, SBOM_FILE, signDsse } from './attest';
import { keyidOf } from './keys';

export const SMALL_BUILD_PACKAGES = [
  { name: 'wireguard-tools', version: '1.0.20210914-1+b1', source: 'debian/bookworm' },
  { name: 'etcd-server', version: '3.4.23-4+b6', source: 'debian/bookworm' },
  { name: 'openssl', version: '3.0.15-1~deb12u1', source: 'debian/bookworm-security' },
] as const;

export function writeSmallBuild(dir: string, cluster: string, epoch = 1_700_000_000): { keyid: string } {
  const outputs = ['master', 'worker'].map((role) => {
    const bytes = Buffer.from(`image of ${role}\n`.repeat(64));
    const path = `images/${cluster}-${role}.qcow2`;
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), bytes);
    return { path, sha256: sha256Hex(bytes), size: bytes.length, kind: 'image' as const, role };
  });
  const manifest: BuildManifest = {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'BuildManifest',
    cluster,
    artifactVersion: '1.0.0',
    sourceDateEpoch: epoch,
    roles: ['master', 'worker'],
    inputs: { spec: { path: 'spec.yaml', sha256: sha256Hex('spec') }, planSha256: sha256Hex('plan'), lockSha256: sha256Hex('lock'), payload: {}, hostFiles: [], tools: { debootstrap: '1.0.128' } },
    outputs,
  };
  const packages = SMALL_BUILD_PACKAGES.map((p) => ({ ...p, architecture: 'amd64', sha256: sha256Hex(p.name), size: 1000, filename: `${p.name}_${p.version.replace(/[:]/g, '%3a')}_amd64.deb`, roles: ['master' as const] }));
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyid = keyidOf(pem);
  const texts: Record<string, string> = {
    [MANIFEST_FILE]: renderManifest(manifest),
    [SBOM_FILE]: renderSbom({ cluster, artifactVersion: '1.0.0', sourceDateEpoch: epoch, packages, payloadFiles: [{ role: 'master', path: 'payload.json', sha256: sha256Hex('p') }], tools: manifest.inputs.tools, kubedosVersion: '0.1.0', outputs }),
    [PROVENANCE_FILE]: renderProvenance({ manifest, externalParameters: { spec: 'spec.yaml' }, kubedosVersion: '0.1.0', nodeVersion: 'v20.0.0', invocationId: 'test' }),
  };
  mkdirSync(join(dir, 'signatures'), { recursive: true });
  for (const [file, text] of Object.entries(texts)) {
    writeFileSync(join(dir, file), text);
    writeFileSync(join(dir, envelopePath(file)), `${canonicalJson(signDsse(payloadTypeFor(file), Buffer.from(text), privateKey, keyid), 2)}\n`);
  }
  writeFileSync(join(dir, PUBLIC_KEY_FILE), pem);
  return { keyid };
}
