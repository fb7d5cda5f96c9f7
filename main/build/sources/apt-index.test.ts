import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseStanzas } from '../darksite/udebs';
import { compareDebVersions, dearmor, dependencyGroups, packagesIndexes, packageUrl, releaseFileUrl, releaseHashes, resolveUpstream, signedText, unmetDependencies } from './apt-index';

const source = { name: 'k8s', url: 'https://pkgs.invalid/core/stable/v1.30/deb/', suite: 'stable', components: ['main'], signedBy: 'A'.repeat(40), packages: ['kubeadm'] };

describe('Debian version order', () => {
  const pairs: [string, string][] = [
    ['1.0', '1.0'],
    ['1.0', '1.1'],
    ['1.10', '1.9'],
    ['1.0~rc1', '1.0'],
    ['1:0.1', '2.0'],
    ['1.30.2-1.1', '1.30.2-1.10'],
    ['2.0a', '2.0+b1'],
    ['1.0-1', '1.0'],
    ['0.0.0~git', '0.0.0'],
    ['1.30.2-00', '1.30.2-1.1'],
  ];
  it.each(pairs)('%s vs %s agrees with dpkg --compare-versions', (a, b) => {
    const sign = Math.sign(compareDebVersions(a, b));
    const dpkg = (op: string): boolean => {
      try {
        execFileSync('dpkg', ['--compare-versions', a, op, b]);
        return true;
      } catch {
        return false;
      }
    };
    expect(sign).toBe(dpkg('lt') ? -1 : dpkg('gt') ? 1 : 0);
  });
});

describe('signed Release', () => {
  const clear = ['-----BEGIN PGP SIGNED MESSAGE-----', 'Hash: SHA512', '', 'Origin: x', 'MD5Sum:', ` ${'a'.repeat(32)} 10 main/binary-amd64/Packages`, 'SHA256:', ` ${'b'.repeat(64)} 10 main/binary-amd64/Packages`, ` ${'c'.repeat(64)}   7 main/binary-amd64/Packages.gz`, '- -dash escaped', '-----BEGIN PGP SIGNATURE-----', 'xx', '-----END PGP SIGNATURE-----'].join('\n');
  it('reads only the signed text and its SHA256 section', () => {
    const text = signedText(clear);
    expect(text.startsWith('Origin: x\n')).toBe(true);
    expect(text).toContain('\n-dash escaped');
    expect(text).not.toContain('PGP');
    expect([...releaseHashes(text)]).toEqual([
      ['main/binary-amd64/Packages', { sha256: 'b'.repeat(64), size: 10 }],
      ['main/binary-amd64/Packages.gz', { sha256: 'c'.repeat(64), size: 7 }],
    ]);
  });
  it('finds the gzip index per component, names a missing one, and builds URLs', () => {
    const h = releaseHashes(signedText(clear));
    expect(packagesIndexes(source, h)).toEqual({ found: ['main/binary-amd64/Packages.gz'], missing: [] });
    expect(packagesIndexes({ ...source, components: ['main', 'extra'] }, h)).toEqual({ found: ['main/binary-amd64/Packages.gz'], missing: ['extra/binary-amd64/Packages'] });
    expect(packagesIndexes({ ...source, suite: './', components: [] }, new Map([['Packages', 1]]))).toEqual({ found: ['Packages'], missing: [] });
    expect(releaseFileUrl(source, 'main/binary-amd64/Packages.gz')).toBe('https://pkgs.invalid/core/stable/v1.30/deb/dists/stable/main/binary-amd64/Packages.gz');
    expect(releaseFileUrl({ ...source, suite: './' }, 'Packages')).toBe('https://pkgs.invalid/core/stable/v1.30/deb/./Packages');
    expect(packageUrl(source, 'amd64/kubeadm_1.30.2-1.1_amd64.deb')).toBe('https://pkgs.invalid/core/stable/v1.30/deb/amd64/kubeadm_1.30.2-1.1_amd64.deb');
  });
});

describe('which packages a declaration takes', () => {
  const stanza = (name: string, version: string, extra = ''): string =>
    `Package: ${name}\nVersion: ${version}\nArchitecture: amd64\nFilename: pool/${name}_${version}_amd64.deb\nSize: 10\nSHA256: ${name.length.toString(16).padStart(64, '0')}\n${extra}`;
  const index = parseStanzas(
    [
      stanza('kubeadm', '1.30.1-1.1', 'Depends: kubelet (>= 1.19.0), kubectl (>= 1.19.0), cri-tools (>= 1.28.0)'),
      stanza('kubeadm', '1.30.2-1.1', 'Depends: kubelet (>= 1.19.0), kubectl (>= 1.19.0), cri-tools (>= 1.28.0)'),
      stanza('kubelet', '1.30.2-1.1', 'Pre-Depends: init-system-helpers\nDepends: iptables (>= 1.4.21), kubernetes-cni (>= 1.1.1), iproute2, socat | netcat-openbsd, mount'),
      stanza('kubectl', '1.30.2-1.1'),
      stanza('cri-tools', '1.30.0-1.1'),
      stanza('cni-plugins', '1.4.0-1.1', 'Provides: kubernetes-cni'),
      stanza('unrelated', '9.0'),
    ].join('\n\n'),
  );
  it('takes the highest version and, transitively, what the same repository carries (by name or Provides)', () => {
    const r = resolveUpstream(index, ['kubeadm']);
    expect(r.packages.map((p) => `${p.name}=${p.version}`)).toEqual(['cni-plugins=1.4.0-1.1', 'cri-tools=1.30.0-1.1', 'kubeadm=1.30.2-1.1', 'kubectl=1.30.2-1.1', 'kubelet=1.30.2-1.1']);
    expect(r.packages.find((p) => p.name === 'kubeadm')).toMatchObject({ path: 'pool/kubeadm_1.30.2-1.1_amd64.deb', size: 10 });
    expect(r.external.map((e) => e.group.join('|'))).toEqual(['init-system-helpers', 'iptables', 'iproute2', 'socat|netcat-openbsd', 'mount']);
    expect(r.notFound).toEqual([]);
  });
  it('keeps a preferred (locked) version while the index carries it, else takes the highest', () => {
    expect(resolveUpstream(index, ['kubeadm'], new Map([['kubeadm', '1.30.1-1.1']])).packages.find((p) => p.name === 'kubeadm')!.version).toBe('1.30.1-1.1');
    expect(resolveUpstream(index, ['kubeadm'], new Map([['kubeadm', '1.29.0-1.1']])).packages.find((p) => p.name === 'kubeadm')!.version).toBe('1.30.2-1.1');
  });
  it('names a declared package the index does not carry', () => {
    expect(resolveUpstream(index, ['kubeadm', 'kubelet-nope']).notFound).toEqual(['kubelet-nope']);
  });
  it('dependencies from Debian: an alternative in the lock satisfies a group', () => {
    const r = resolveUpstream(index, ['kubelet']);
    const unmet = unmetDependencies(r.external, new Set(['iptables', 'iproute2', 'netcat-openbsd', 'mount']));
    expect(unmet).toEqual([{ from: 'kubelet', group: ['init-system-helpers'] }]);
  });
  it('splits dependency fields', () => {
    expect(dependencyGroups('a (>= 1), b:any | c [amd64], d')).toEqual([['a'], ['b', 'c'], ['d']]);
    expect(dependencyGroups(undefined)).toEqual([]);
  });
});

describe('key files', () => {
  it('decodes an armored key block and passes a binary one through', () => {
    const bin = new Uint8Array(Buffer.from('binary key packets \u0099\u0001', 'latin1'));
    const b64 = Buffer.from(bin).toString('base64');
    const armored = `-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\n${b64.slice(0, 10)}\n${b64.slice(10)}\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n`;
    expect(Buffer.from(dearmor(Buffer.from(armored))).equals(Buffer.from(bin))).toBe(true);
    expect(dearmor(bin)).toBe(bin);
  });
});
