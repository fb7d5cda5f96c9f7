import { describe, expect, it } from 'vitest';
import { renderSbom } from '../build/attest';
import { diffSboms, renderPayloadDiff, SbomDocument } from './sbom-diff';

const sbom = (packages: Record<string, string>, files: Record<string, string>, abFiles: Record<string, string> = {}): SbomDocument =>
  SbomDocument.parse(
    JSON.parse(
      renderSbom({
        cluster: 'lab-3',
        artifactVersion: '0.1.0',
        sourceDateEpoch: 0,
        packages: Object.entries(packages).map(([name, version]) => ({ name, version, architecture: 'amd64', sha256: '0'.repeat(64), size: 1, filename: `${name}.deb`, roles: ['master'] })),
        payloadFiles: Object.entries(files).map(([path, sha256]) => ({ role: 'master', path, sha256 })),
        tools: { xorriso: '1.5' },
        kubedosVersion: '0.1.0',
        outputs: [],
        abFiles: Object.entries(abFiles).map(([path, sha256]) => ({ role: 'worker', path, sha256 })),
      }),
    ),
  );

describe('diffSboms', () => {
  it('packages by version, payload files by sha256; tools are neither', () => {
    const d = diffSboms(sbom({ a: '1', b: '1', c: '1' }, { 'x.sh': '1'.repeat(64), 'y.sh': '2'.repeat(64), 'z.sh': '3'.repeat(64) }), sbom({ a: '1', b: '2', d: '1' }, { 'x.sh': '1'.repeat(64), 'y.sh': '9'.repeat(64), 'w.sh': '4'.repeat(64) }));
    expect(d.packages).toEqual({ added: [{ name: 'd', architecture: 'amd64', version: '1' }], removed: [{ name: 'c', architecture: 'amd64', version: '1' }], changed: [{ name: 'b', architecture: 'amd64', from: '1', to: '2' }] });
    expect(d.payload).toEqual({ added: ['payload/master/w.sh'], removed: ['payload/master/z.sh'], changed: ['payload/master/y.sh'] });
  });
  it("an A/B build's boot files are in the diff: a changed gate script is named (it is not under payload/)", () => {
    const gate = 'root/usr/local/sbin/kubedos-health-gate';
    const d = diffSboms(sbom({}, { 'x.sh': '1'.repeat(64) }, { [gate]: '5'.repeat(64), 'esp/EFI/debian/grub.cfg': '6'.repeat(64) }), sbom({}, { 'x.sh': '1'.repeat(64) }, { [gate]: '7'.repeat(64), 'esp/EFI/debian/grub.cfg': '6'.repeat(64) }));
    expect(d.payload).toEqual({ added: [], removed: [], changed: [`ab/worker/${gate}`] });
  });
  it('renders at most max lines and says how many more', () => {
    const lines = renderPayloadDiff({ added: ['a', 'b', 'c'], removed: ['d'], changed: ['e'] }, 3);
    expect(lines).toEqual(['  ~ e', '  + a', '  + b', '  … and 2 more (kubedos upgrade --json lists them all)']);
  });
  it('refuses a document that is not a CycloneDX SBOM', () => {
    expect(() => SbomDocument.parse({ bomFormat: 'SPDX', components: [] })).toThrow();
  });
});
