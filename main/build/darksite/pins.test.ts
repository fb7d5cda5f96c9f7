import { describe, expect, it } from 'vitest';
import { parseAptSources, debianSources, renderSourcesList } from './apt-sources';
import { packagesFor, parsePins, parseShow, parseSimulation, pinSet, PinError, unresolvedPins } from './pins';
import type { DarksiteLock } from './pins';

describe('pins', () => {
  it('parses name=version lines with comments and names the bad line', () => {
    expect(parsePins('base.list', '# c\nopenssh-server=1:9.2p1-2+deb12u7\n\nnftables=1.0.6-2+deb12u2 # why\n')).toEqual([
      { name: 'openssh-server', version: '1:9.2p1-2+deb12u7', origin: 'base.list:2' },
      { name: 'nftables', version: '1.0.6-2+deb12u2', origin: 'base.list:4' },
    ]);
    expect(() => parsePins('lb.list', 'haproxy\n')).toThrow(/lb\.list:1: "haproxy" is not a pin/);
  });

  it('hashes every list so any edit invalidates the lock', () => {
    const a = pinSet({ 'base.list': 'bash=1\n', 'lb.list': 'haproxy=2\n' });
    const b = pinSet({ 'base.list': 'bash=1\n', 'lb.list': 'haproxy=3\n' });
    expect(a.sha256).not.toBe(b.sha256);
    expect(a.roles.lb).toHaveLength(1);
    expect(() => pinSet({ 'lb.list': 'xz=1\n' })).toThrow(PinError);
  });

  it('reads apt simulation and apt-cache show output', () => {
    expect(parseSimulation('Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])\nConf libc6 (2.36 x [amd64])\nInst tzdata [2024a-0] (2025b-0+deb12u2 Debian:12.15/oldstable [all])\n')).toEqual([
      { name: 'libc6', version: '2.36-9+deb12u14', architecture: 'amd64' },
      { name: 'tzdata', version: '2025b-0+deb12u2', architecture: 'all' },
    ]);
    const show = 'Package: keepalived\nVersion: 1:2.2.7-1+b2\nArchitecture: amd64\nFilename: pool/main/k/keepalived/keepalived_2.2.7-1+b2_amd64.deb\nSize: 123\nSHA256: ' + 'a'.repeat(64) + '\n\n';
    expect(parseShow(show)).toEqual([{ name: 'keepalived', version: '1:2.2.7-1+b2', architecture: 'amd64', filename: 'keepalived_2.2.7-1+b2_amd64.deb', size: 123, sha256: 'a'.repeat(64) }]);
  });

  it('names the pins apt could not resolve', () => {
    const pins = parsePins('base.list', 'nftables=9.9\nbogus-pkg=1\nbash=5\n');
    const err = "E: Version '9.9' for 'nftables' was not found\nE: Unable to locate package bogus-pkg\n";
    expect(unresolvedPins(err, pins).map((p) => p.name)).toEqual(['nftables', 'bogus-pkg']);
  });

  it('selects the locked packages of the requested roles only', () => {
    const pkg = (name: string, roles: DarksiteLock['packages'][number]['roles']) => ({ name, version: '1', architecture: 'amd64', sha256: '0'.repeat(64), size: 1, filename: `${name}_1_amd64.deb`, roles });
    const lock: DarksiteLock = { apiVersion: 'kubedos.ca/v1alpha1', kind: 'DarksiteLock', codename: 'bookworm', architecture: 'amd64', pinsSha256: 'x', packages: [pkg('haproxy', ['lb']), pkg('bash', ['lb', 'worker']), pkg('etcd-server', ['etcd'])] };
    expect(packagesFor(lock, ['worker']).map((p) => p.name)).toEqual(['bash']);
    expect(packagesFor(lock, ['lb', 'etcd']).map((p) => p.name)).toEqual(['bash', 'etcd-server', 'haproxy']);
  });
});

describe('apt sources', () => {
  const deb822 = 'Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: https://other.invalid/x\nSuites: nodistro\nComponents: main\n';
  it('keeps only the Debian release suites with main', () => {
    const all = [...parseAptSources(deb822, true), ...parseAptSources('deb [signed-by=/k.gpg] http://sec.invalid/debian-security bookworm-security main\ndeb http://x.invalid/apt cloud-sdk-bookworm main\n', false)];
    const deb = debianSources(all, 'bookworm');
    expect(deb.map((s) => s.suite)).toEqual(['bookworm', 'bookworm-updates', 'bookworm-security']);
    expect(renderSourcesList(deb)).toContain('deb [arch=amd64 signed-by=/k.gpg] http://sec.invalid/debian-security bookworm-security main');
  });
});
