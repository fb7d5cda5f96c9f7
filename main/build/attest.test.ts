import { generateKeyPairSync } from 'node:crypto';
import * as cdx from '@cyclonedx/cyclonedx-library';
import { describe, expect, it } from 'vitest';
import { pae, purlOf, renderSbom, signDsse, verifyDsse } from './attest';
import { keyidOf } from './keys';

describe('DSSE', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const keyid = keyidOf(pem);

  it('uses the DSSE v1 pre-authentication encoding', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  });

  it('round-trips and rejects a changed payload, type or key', () => {
    const env = signDsse('application/vnd.in-toto+json', Buffer.from('{"a":1}'), privateKey, keyid);
    expect(verifyDsse(env, pem, keyid).toString()).toBe('{"a":1}');
    expect(() => verifyDsse({ ...env, payload: Buffer.from('{"a":2}').toString('base64') }, pem, keyid)).toThrow(/no valid signature/);
    expect(() => verifyDsse({ ...env, payloadType: 'text/plain' }, pem, keyid)).toThrow(/no valid signature/);
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(() => verifyDsse(env, other, keyid)).toThrow(/no valid signature/);
  });
});

describe('SBOM', () => {
  it('lists every .deb with purl, version and sha256, deterministically', () => {
    const input = {
      cluster: 'lab-3',
      artifactVersion: '0.1.0',
      sourceDateEpoch: 1700000000,
      packages: [{ name: 'libstdc++6', version: '1:12.2.0-14', architecture: 'amd64', sha256: 'b'.repeat(64), size: 1, filename: 'x.deb', roles: ['worker' as const] }],
      payloadFiles: [{ role: 'worker', path: 'preseed.cfg', sha256: 'c'.repeat(64) }],
      tools: { xorriso: '1.5.4' },
      kubedosVersion: '0.1.0',
      outputs: [],
    };
    const a = renderSbom(input);
    expect(a).toBe(renderSbom(input));
    const bom = JSON.parse(a);
    expect(bom.bomFormat).toBe('CycloneDX');
    expect(bom.specVersion).toBe('1.6');
    expect(bom.serialNumber).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
    const deb = bom.components.find((c: { name: string }) => c.name === 'libstdc++6');
    expect(deb.purl).toBe('pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14?arch=amd64&distro=debian-12');
    expect(deb.hashes).toEqual([{ alg: 'SHA-256', content: 'b'.repeat(64) }]);
    expect(bom.metadata.timestamp).toBe('2023-11-14T22:13:20Z');
    expect(purlOf({ name: 'a', version: '1', architecture: 'all' })).toBe('pkg:deb/debian/a@1?arch=all&distro=debian-12');
  });
  it('lists declared container images by digest and declared files by sha256', () => {
    const digest = `sha256:${'d'.repeat(64)}`;
    const bom = JSON.parse(
      renderSbom({
        cluster: 'c', artifactVersion: '0.1.0', sourceDateEpoch: 1700000000, packages: [], payloadFiles: [], tools: {}, kubedosVersion: '0.1.0', outputs: [],
        images: [{ name: 'pause', reference: '127.0.0.1:5000/k8s/pause:3.9', digest }],
        upstreamFiles: [{ name: 'chart', url: 'http://127.0.0.1:8/c.tgz', sha256: 'e'.repeat(64) }],
      }),
    );
    const image = bom.components.find((c: { type: string }) => c.type === 'container');
    expect(image).toMatchObject({ name: 'pause', version: digest, purl: `pkg:oci/pause@sha256%3A${'d'.repeat(64)}?repository_url=127.0.0.1%3A5000%2Fk8s%2Fpause&tag=3.9`, hashes: [{ alg: 'SHA-256', content: 'd'.repeat(64) }] });
    expect(bom.components.find((c: { name: string }) => c.name === 'chart')).toMatchObject({ type: 'file', hashes: [{ alg: 'SHA-256', content: 'e'.repeat(64) }] });
    expect(bom.dependencies[0].dependsOn).toEqual(expect.arrayContaining([image['bom-ref'], 'upstream-file:chart']));
  });

  it('validates against the CycloneDX 1.6 JSON schema (strict)', async () => {
    const text = renderSbom({
      cluster: 'lab-3',
      artifactVersion: '0.1.0',
      sourceDateEpoch: 1700000000,
      packages: [{ name: 'bash', version: '5.2.15-2+b13', architecture: 'amd64', sha256: 'd'.repeat(64), size: 1, filename: 'bash.deb', roles: ['master'] }],
      payloadFiles: [{ role: 'master', path: 'firstboot/kubedos-firstboot.sh', sha256: 'e'.repeat(64) }],
      tools: { xorriso: '1.5.4-4', 'e2fsprogs': '1.47.0-2' },
      kubedosVersion: '0.1.0',
      outputs: [],
      abFiles: [{ role: 'master', path: 'root/usr/local/sbin/kubedos-health-gate', sha256: 'f'.repeat(64) }],
    });
    const bom = JSON.parse(text);
    // An A/B build's boot files: file components a dependency of the cluster like the payload's.
    expect(bom.components.find((c: { name: string }) => c.name === 'ab/master/root/usr/local/sbin/kubedos-health-gate')).toMatchObject({ type: 'file', 'bom-ref': 'ab:master/root/usr/local/sbin/kubedos-health-gate', hashes: [{ alg: 'SHA-256', content: 'f'.repeat(64) }] });
    expect(bom.dependencies[0].dependsOn).toContain('ab:master/root/usr/local/sbin/kubedos-health-gate');
    const errors = await new cdx.Validation.JsonStrictValidator(cdx.Spec.Version.v1dot6).validate(text);
    expect(errors).toBeNull();
  });
});
