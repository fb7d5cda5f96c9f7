import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseStanzas } from '../darksite/udebs';
import { satisfies } from '../darksite/index';
import type { Candidate } from './apt-index';
import { compareDebVersions, dearmor, dependencyGroups, dependencyRelations, lockedRelations, packagesIndexes, packageUrl, relationText, releaseFileUrl, releaseHashes, resolveUpstream, signedText, unmetRelations } from './apt-index';

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
    // A repository that lists only the xz form (many upstream ones): read, never named missing.
    expect(packagesIndexes(source, new Map([['main/binary-amd64/Packages.xz', 1]]))).toEqual({ found: ['main/binary-amd64/Packages.xz'], missing: [] });
    expect(packagesIndexes(source, new Map([['main/binary-amd64/Packages.xz', 1], ['main/binary-amd64/Packages.gz', 1]]))).toEqual({ found: ['main/binary-amd64/Packages.gz'], missing: [] });
    // Listed uncompressed but (as Debian's archive does) not served: the compressed form is taken.
    expect(packagesIndexes(source, new Map([['main/binary-amd64/Packages', 1], ['main/binary-amd64/Packages.xz', 1]]))).toEqual({ found: ['main/binary-amd64/Packages.xz'], missing: [] });
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
  const offerOf = (r: ReturnType<typeof resolveUpstream>, debian: Record<string, string>): Map<string, Candidate[]> => {
    const m = new Map<string, Candidate[]>();
    for (const p of r.packages) m.set(p.name, [{ version: p.version, where: 'k8s' }]);
    for (const [n, v] of Object.entries(debian)) m.set(n, [...(m.get(n) ?? []), { version: v, where: 'Debian lock' }]);
    return m;
  };
  // The build's comparison: dpkg itself, through the runner.
  const dpkg = (v: string, op: '<<' | '<=' | '=' | '>=' | '>>', w: string): Promise<boolean> => satisfies(v, op, w);
  it('dependencies from Debian: an alternative in the lock satisfies a group, by name and version', async () => {
    const r = resolveUpstream(index, ['kubelet']);
    const debian = { iptables: '1.8.9-2', iproute2: '6.1.0-3', 'netcat-openbsd': '1.219-1', mount: '2.38.1-5+deb12u3' };
    const unmet = await unmetRelations(lockedRelations(r.packages).relations, offerOf(r, debian), lockedRelations(r.packages).provided, dpkg);
    expect(unmet).toEqual([
      { from: 'kubelet', group: [{ name: 'init-system-helpers' }], found: [] },
      { from: 'kubelet', group: [{ name: 'kubernetes-cni', op: '>=', version: '1.1.1' }], found: ['cni-plugins provides kubernetes-cni without a version'] },
    ]);
  });
  it('an unmet versioned dependency names the package, the relation and what was found (Debian lock or the repository)', async () => {
    const r = resolveUpstream(index, ['kubelet']);
    const unmet = await unmetRelations(lockedRelations(r.packages).relations, offerOf(r, { 'init-system-helpers': '1.65', iptables: '1.4.20-1', iproute2: '6.1.0-3', mount: '2.38' }), lockedRelations(r.packages).provided, dpkg);
    expect(unmet.map((u) => `${u.from} needs ${u.group.map(relationText).join(' | ')} (found ${u.found.join(', ') || 'none'})`)).toEqual([
      'kubelet needs iptables (>= 1.4.21) (found iptables 1.4.20-1 (Debian lock))',
      // cni-plugins provides kubernetes-cni without a version: it cannot satisfy a versioned relation (Debian's rule).
      'kubelet needs kubernetes-cni (>= 1.1.1) (found cni-plugins provides kubernetes-cni without a version)',
      'kubelet needs socat | netcat-openbsd (found none)',
    ]);
    // Within the repository: kubeadm needs cri-tools (>= 1.28.0); an index holding only 1.27 is refused.
    const old = parseStanzas([stanza('kubeadm', '1.30.2-1.1', 'Depends: cri-tools (>= 1.28.0)'), stanza('cri-tools', '1.27.0-1.1')].join('\n\n'));
    const ro = resolveUpstream(old, ['kubeadm']);
    expect(await unmetRelations(lockedRelations(ro.packages).relations, offerOf(ro, {}), lockedRelations(ro.packages).provided, dpkg)).toEqual([{ from: 'kubeadm', group: [{ name: 'cri-tools', op: '>=', version: '1.28.0' }], found: ['cri-tools 1.27.0-1.1 (k8s)'] }]);
  });
  it('a versioned Provides (= v) satisfies a versioned relation; epochs and ~ follow dpkg', async () => {
    const idx = parseStanzas([stanza('a', '1.0', 'Depends: virt (>= 2), b (<< 1:0), c (>= 1.0~rc1)'), stanza('p', '1.0', 'Provides: virt (= 2.1)'), stanza('b', '9.9'), stanza('c', '1.0~rc2')].join('\n\n'));
    const r = resolveUpstream(idx, ['a', 'p']);
    expect(await unmetRelations(lockedRelations(r.packages).relations, offerOf(r, {}), lockedRelations(r.packages).provided, dpkg)).toEqual([]);
    const calls: string[] = [];
    const counting = (v: string, op: '<<' | '<=' | '=' | '>=' | '>>', w: string): Promise<boolean> => (calls.push(`${v} ${op} ${w}`), dpkg(v, op, w));
    const { relations, provided } = lockedRelations(r.packages);
    await unmetRelations([...relations, ...relations], offerOf(r, {}), provided, counting);
    expect(calls).toHaveLength(3);
  });
  it('splits dependency fields', () => {
    expect(dependencyGroups('a (>= 1), b:any | c [amd64], d')).toEqual([['a'], ['b', 'c'], ['d']]);
    expect(dependencyGroups(undefined)).toEqual([]);
    expect(dependencyRelations('a (>= 1), b:any (<< 2) | c [amd64], d (> 3),e(=1:2~x)')).toEqual([
      [{ name: 'a', op: '>=', version: '1' }],
      [{ name: 'b', op: '<<', version: '2' }, { name: 'c' }],
      [{ name: 'd', op: '>=', version: '3' }],
      [{ name: 'e', op: '=', version: '1:2~x' }],
    ]);
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
