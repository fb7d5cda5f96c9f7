// The artifact's images: one OCI image layout (oci/) whose index.json and blobs are outputs of the
// signed manifest, each image a CycloneDX container component and a provenance material, and
// `verifyBuild` (kubedos verify) refuses a changed blob by name.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../../common/canonical';
import type { BuildManifest, OutputRecord } from '../attest';
import { envelopePath, MANIFEST_FILE, ociPurl, payloadTypeFor, PROVENANCE_FILE, PUBLIC_KEY_FILE, renderManifest, renderProvenance, renderSbom, SBOM_FILE, signDsse } from '../attest';
import { listFiles } from '../files';
import { keyidOf } from '../keys';
import { verifyBuild } from '../verify';
import { contentPath } from './fetch';
import { MEDIA, writeOciLayout } from './oci';

const root = mkdtempSync(join(tmpdir(), 'kubedos-h13-oci-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cacheBlob(cache: string, body: Buffer): { digest: string; size: number } {
  const hex = sha256Hex(body);
  mkdirSync(join(cache, 'sha256'), { recursive: true });
  writeFileSync(contentPath(cache, hex), body);
  return { digest: `sha256:${hex}`, size: body.length };
}

describe('the signed OCI index of a build', () => {
  it('is covered by the manifest and its DSSE signature; each image is an SBOM container and a provenance material; a changed blob fails verify', async () => {
    const cache = join(root, 'cache');
    const images = ['pause', 'coredns'].map((name) => {
      const config = cacheBlob(cache, Buffer.from(canonicalJson({ architecture: 'amd64', os: 'linux', name })));
      const layer = cacheBlob(cache, Buffer.from(`layer of ${name}`.repeat(20)));
      const manifest = Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }] }));
      const m = cacheBlob(cache, manifest);
      return { name, reference: `registry.invalid/k8s/${name}:v1`, digest: m.digest, mediaType: MEDIA.ociManifest, size: m.size, blobs: [m.digest, config.digest, layer.digest].sort(), fetched: 0 };
    });
    const out = join(root, 'build');
    writeOciLayout(join(out, 'oci'), images, cache);
    const outputs: OutputRecord[] = listFiles(join(out, 'oci')).map((p) => ({ path: `oci/${p}`, sha256: sha256Hex(readFileSync(join(out, 'oci', p))), size: statSync(join(out, 'oci', p)).size, kind: 'container-image' as const }));
    expect(outputs.map((o) => o.path)).toContain('oci/index.json');
    expect(outputs.filter((o) => o.path.startsWith('oci/blobs/sha256/'))).toHaveLength(6);
    const manifest: BuildManifest = {
      apiVersion: 'kubedos.ca/v1alpha1',
      kind: 'BuildManifest',
      cluster: 'h13',
      artifactVersion: '1.0.0',
      sourceDateEpoch: 1_700_000_000,
      roles: ['worker'],
      inputs: {
        spec: { path: 'spec.yaml', sha256: sha256Hex('spec') },
        planSha256: sha256Hex('plan'),
        lockSha256: sha256Hex('lock'),
        payload: {},
        hostFiles: [],
        tools: {},
        sources: { apt: [{ source: 'kubernetes', name: 'kubeadm', version: '1.30.2-1.1', architecture: 'amd64', sha256: 'a'.repeat(64) }], images: images.map((i) => ({ name: i.name, reference: i.reference, digest: i.digest })), files: [] },
      },
      outputs,
    };
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const keyid = keyidOf(pem);
    const texts: Record<string, string> = {
      [MANIFEST_FILE]: renderManifest(manifest),
      [SBOM_FILE]: renderSbom({
        cluster: 'h13',
        artifactVersion: '1.0.0',
        sourceDateEpoch: 1_700_000_000,
        packages: [{ name: 'kubeadm', version: '1.30.2-1.1', architecture: 'amd64', sha256: 'a'.repeat(64), size: 1, filename: 'kubeadm_1.30.2-1.1_amd64.deb', roles: ['worker'], source: 'upstream/kubernetes' }],
        payloadFiles: [],
        tools: {},
        kubedosVersion: '0.1.0',
        outputs,
        images: manifest.inputs.sources!.images,
      }),
      [PROVENANCE_FILE]: renderProvenance({ manifest, externalParameters: {}, kubedosVersion: '0.1.0', nodeVersion: 'v20', invocationId: 'x' }),
    };
    mkdirSync(join(out, 'signatures'), { recursive: true });
    for (const [file, text] of Object.entries(texts)) {
      writeFileSync(join(out, file), text);
      writeFileSync(join(out, envelopePath(file)), `${canonicalJson(signDsse(payloadTypeFor(file), Buffer.from(text), privateKey, keyid), 2)}\n`);
    }
    writeFileSync(join(out, PUBLIC_KEY_FILE), pem);

    const sbom = JSON.parse(texts[SBOM_FILE]!) as { components: { type: string; version?: string; purl?: string; hashes?: { content: string }[] }[] };
    for (const i of images) expect(sbom.components).toContainEqual(expect.objectContaining({ type: 'container', version: i.digest, purl: ociPurl(i.reference, i.digest), hashes: [{ alg: 'SHA-256', content: i.digest.slice(7) }] }));
    expect(sbom.components).toContainEqual(expect.objectContaining({ name: 'kubeadm', purl: 'pkg:deb/kubernetes/kubeadm@1.30.2-1.1?arch=amd64' }));
    const prov = JSON.parse(texts[PROVENANCE_FILE]!) as { subject: { name: string }[]; predicate: { buildDefinition: { resolvedDependencies: { name: string; uri?: string; digest: Record<string, string> }[] } } };
    const deps = prov.predicate.buildDefinition.resolvedDependencies;
    for (const i of images) expect(deps).toContainEqual({ name: `image:${i.name}`, uri: ociPurl(i.reference, i.digest), digest: { sha256: i.digest.slice(7) } });
    expect(deps).toContainEqual({ name: 'apt:kubernetes/kubeadm', uri: 'pkg:deb/kubernetes/kubeadm@1.30.2-1.1?arch=amd64', digest: { sha256: 'a'.repeat(64) } });
    expect(prov.subject.map((s) => s.name)).toContain('oci/index.json');

    expect(await verifyBuild(out)).toMatchObject({ ok: true, checked: 3 + outputs.length });
    // One byte of one layer blob changed (same size): verify names that blob.
    const layer = images[0]!.blobs.find((d) => d !== images[0]!.digest && readFileSync(join(out, 'oci/blobs/sha256', d.slice(7))).toString().startsWith('layer'))!;
    const path = join(out, 'oci/blobs/sha256', layer.slice(7));
    const bytes = readFileSync(path);
    bytes[0] = bytes[0]! ^ 1;
    writeFileSync(path, bytes);
    const bad = await verifyBuild(out);
    expect(bad).toMatchObject({ ok: false, file: `oci/blobs/sha256/${layer.slice(7)}` });
    expect(bad.reason).toMatch(/^sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}$/);
  });
});
