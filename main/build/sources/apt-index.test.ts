import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseStanzas } from '../darksite/udebs';
import { satisfies } from '../darksite/index';
import type { Stanza } from '../darksite/udebs';
import type { Candidate, ResolveOptions, UpstreamResolution } from './apt-index';
import { compareDebVersions, conflictText, dearmor, shadowedByNewer, dependencyGroups, dependencyRelations, lockedRelations, packagesIndexes, packageUrl, relationText, releaseFileUrl, releaseHashes, resolveUpstream, signedText, unmetRelations } from './apt-index';

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
  // The build's comparison: dpkg itself, through the runner.
  const dpkg = (v: string, op: '<<' | '<=' | '=' | '>=' | '>>', w: string): Promise<boolean> => satisfies(v, op, w);
  const resolve = (idx: Stanza[], wanted: string[], o: Omit<ResolveOptions, 'check'> = {}) => resolveUpstream(idx, wanted, { check: dpkg, where: 'k8s', ...o });
  it('takes the highest version and, transitively, what the same repository carries (by name or Provides)', async () => {
    const r = await resolve(index, ['kubeadm']);
    expect(r.packages.map((p) => `${p.name}=${p.version}`)).toEqual(['cni-plugins=1.4.0-1.1', 'cri-tools=1.30.0-1.1', 'kubeadm=1.30.2-1.1', 'kubectl=1.30.2-1.1', 'kubelet=1.30.2-1.1']);
    expect(r.packages.find((p) => p.name === 'kubeadm')).toMatchObject({ path: 'pool/kubeadm_1.30.2-1.1_amd64.deb', size: 10 });
    expect(r.external.map((e) => e.group.join('|'))).toEqual(['init-system-helpers', 'iptables', 'iproute2', 'socat|netcat-openbsd', 'mount']);
    expect(r.notFound).toEqual([]);
  });
  it('keeps a preferred (locked) version while the index carries it, else takes the highest', async () => {
    expect((await resolve(index, ['kubeadm'], { prefer: new Map([['kubeadm', '1.30.1-1.1']]) })).packages.find((p) => p.name === 'kubeadm')!.version).toBe('1.30.1-1.1');
    expect((await resolve(index, ['kubeadm'], { prefer: new Map([['kubeadm', '1.29.0-1.1']]) })).packages.find((p) => p.name === 'kubeadm')!.version).toBe('1.30.2-1.1');
  });
  it('names a declared package the index does not carry', async () => {
    expect((await resolve(index, ['kubeadm', 'kubelet-nope'])).notFound).toEqual(['kubelet-nope']);
  });
  const offerOf = (r: UpstreamResolution, debian: Record<string, string>): Map<string, Candidate[]> => {
    const m = new Map<string, Candidate[]>();
    for (const p of r.packages) m.set(p.name, [{ version: p.version, where: 'k8s' }]);
    for (const [n, v] of Object.entries(debian)) m.set(n, [...(m.get(n) ?? []), { version: v, where: 'Debian lock' }]);
    return m;
  };
  it('dependencies from Debian: an alternative in the lock satisfies a group, by name and version', async () => {
    const r = await resolve(index, ['kubelet']);
    const debian = { iptables: '1.8.9-2', iproute2: '6.1.0-3', 'netcat-openbsd': '1.219-1', mount: '2.38.1-5+deb12u3' };
    const unmet = await unmetRelations(lockedRelations(r.packages).relations, offerOf(r, debian), lockedRelations(r.packages).provided, dpkg);
    expect(unmet).toEqual([
      { from: 'kubelet', group: [{ name: 'init-system-helpers' }], found: [] },
      { from: 'kubelet', group: [{ name: 'kubernetes-cni', op: '>=', version: '1.1.1' }], found: ['cni-plugins provides kubernetes-cni without a version'] },
    ]);
  });
  it('an unmet versioned dependency names the package, the relation and what was found (Debian lock or the repository)', async () => {
    const r = await resolve(index, ['kubelet']);
    const unmet = await unmetRelations(lockedRelations(r.packages).relations, offerOf(r, { 'init-system-helpers': '1.65', iptables: '1.4.20-1', iproute2: '6.1.0-3', mount: '2.38' }), lockedRelations(r.packages).provided, dpkg);
    expect(unmet.map((u) => `${u.from} needs ${u.group.map(relationText).join(' | ')} (found ${u.found.join(', ') || 'none'})`)).toEqual([
      'kubelet needs iptables (>= 1.4.21) (found iptables 1.4.20-1 (Debian lock))',
      // cni-plugins provides kubernetes-cni without a version: it cannot satisfy a versioned relation (Debian's rule).
      'kubelet needs kubernetes-cni (>= 1.1.1) (found cni-plugins provides kubernetes-cni without a version)',
      'kubelet needs socat | netcat-openbsd (found none)',
    ]);
    // Within the repository: kubeadm needs cri-tools (>= 1.28.0); an index holding only 1.27 is refused.
    const old = parseStanzas([stanza('kubeadm', '1.30.2-1.1', 'Depends: cri-tools (>= 1.28.0)'), stanza('cri-tools', '1.27.0-1.1')].join('\n\n'));
    const ro = await resolve(old, ['kubeadm']);
    expect(await unmetRelations(lockedRelations(ro.packages).relations, offerOf(ro, {}), lockedRelations(ro.packages).provided, dpkg)).toEqual([{ from: 'kubeadm', group: [{ name: 'cri-tools', op: '>=', version: '1.28.0' }], found: ['cri-tools 1.27.0-1.1 (k8s)'] }]);
    expect(ro.conflicts.map(conflictText)).toEqual(['cri-tools: kubeadm needs cri-tools (>= 1.28.0); on offer 1.27.0-1.1 (k8s)']);
  });
  it('a versioned Provides (= v) satisfies a versioned relation; epochs and ~ follow dpkg', async () => {
    const idx = parseStanzas([stanza('a', '1.0', 'Depends: virt (>= 2), b (<< 1:0), c (>= 1.0~rc1)'), stanza('p', '1.0', 'Provides: virt (= 2.1)'), stanza('b', '9.9'), stanza('c', '1.0~rc2')].join('\n\n'));
    const r = await resolve(idx, ['a', 'p']);
    expect(await unmetRelations(lockedRelations(r.packages).relations, offerOf(r, {}), lockedRelations(r.packages).provided, dpkg)).toEqual([]);
    const calls: string[] = [];
    const counting = (v: string, op: '<<' | '<=' | '=' | '>=' | '>>', w: string): Promise<boolean> => (calls.push(`${v} ${op} ${w}`), dpkg(v, op, w));
    const { relations, provided } = lockedRelations(r.packages);
    await unmetRelations([...relations, ...relations], offerOf(r, {}), provided, counting);
    expect(calls).toHaveLength(3);
  });
  it('an upper bound (<<, <=, =) takes the newest version that meets it, not the newest the index carries', async () => {
    const idx = parseStanzas([stanza('foo', '1.8'), stanza('foo', '2.1'), stanza('foo', '1.9'), stanza('foo', '2.0~rc1'), stanza('lt', '1', 'Depends: foo (<< 2.0)'), stanza('le', '1', 'Depends: foo (<= 1.9)'), stanza('eq', '1', 'Depends: foo (= 1.8)')].join('\n\n'));
    const version = async (wanted: string[]): Promise<string | undefined> => (await resolve(idx, wanted)).packages.find((p) => p.name === 'foo')?.version;
    // 2.0~rc1 sorts before 2.0 (dpkg): it meets << 2.0 and is the newest that does.
    expect(await version(['lt'])).toBe('2.0~rc1');
    expect(await version(['le'])).toBe('1.9');
    expect(await version(['eq'])).toBe('1.8');
    expect(await version(['foo'])).toBe('2.1');
    const r = await resolve(idx, ['lt']);
    expect(r.conflicts).toEqual([]);
    // What the build checks afterwards (the locked depends) agrees.
    expect(await unmetRelations(lockedRelations(r.packages).relations, offerOf(r, {}), lockedRelations(r.packages).provided, dpkg)).toEqual([]);
  });
  it('every dependant\'s relation on a package counts together; a package declared too is bound by them', async () => {
    const idx = parseStanzas([stanza('foo', '1.8'), stanza('foo', '1.9'), stanza('foo', '2.1'), stanza('a', '1', 'Depends: foo (<< 2.0)'), stanza('b', '1', 'Depends: foo (<= 1.8.5) | bar'), stanza('c', '1', 'Depends: foo (>= 1.8.1)')].join('\n\n'));
    expect((await resolve(idx, ['a', 'b', 'foo'])).packages.map((p) => `${p.name}=${p.version}`)).toEqual(['a=1', 'b=1', 'foo=1.8']);
    const r = await resolve(idx, ['a', 'b', 'c']);
    expect(r.conflicts.map(conflictText)).toEqual(['foo: a needs foo (<< 2.0) and b needs foo (<= 1.8.5) and c needs foo (>= 1.8.1); on offer 2.1 (k8s), 1.9 (k8s), 1.8 (k8s)']);
  });
  it('the relations come from the versions chosen: a package taken older asks for what that version depends on', async () => {
    const idx = parseStanzas([
      stanza('app', '1', 'Depends: lib (<< 2)'),
      stanza('lib', '2.0', 'Depends: helper (<< 1.5), extra'),
      stanza('lib', '1.9', 'Depends: helper (>= 1)'),
      stanza('helper', '1.0'),
      stanza('helper', '2.0'),
      stanza('extra', '1'),
    ].join('\n\n'));
    const r = await resolve(idx, ['app']);
    // lib 2.0's relations (helper << 1.5, extra) are gone with lib 2.0.
    expect(r.packages.map((p) => `${p.name}=${p.version}`)).toEqual(['app=1', 'helper=2.0', 'lib=1.9']);
    expect(r.conflicts).toEqual([]);
    // Index order does not matter.
    expect((await resolve([...idx].reverse(), ['app'])).packages).toEqual(r.packages);
  });
  it('a locked version is kept while it meets every relation, else the newest one that does', async () => {
    const idx = parseStanzas([stanza('foo', '1.8'), stanza('foo', '1.9'), stanza('foo', '2.1'), stanza('a', '1', 'Depends: foo (<< 2.0)')].join('\n\n'));
    expect((await resolve(idx, ['a'], { prefer: new Map([['foo', '1.8']]) })).packages.find((p) => p.name === 'foo')!.version).toBe('1.8');
    expect((await resolve(idx, ['a'], { prefer: new Map([['foo', '2.1']]) })).packages.find((p) => p.name === 'foo')!.version).toBe('1.9');
  });
  it('a dependency the repository cannot meet but the Debian lock can is left to Debian; nothing meeting it is a conflict naming every version', async () => {
    const idx = parseStanzas([stanza('foo', '2.1'), stanza('foo', '2.2'), stanza('a', '1', 'Depends: foo (<< 2.0)'), stanza('b', '1', 'Depends: foo (>= 1.5)')].join('\n\n'));
    const debian = new Map([['foo', [{ version: '1.5-3', where: 'Debian lock' }]]]);
    const r = await resolve(idx, ['a', 'b'], { outside: debian });
    expect(r.packages.map((p) => `${p.name}=${p.version}`)).toEqual(['a=1', 'b=1']);
    expect(r.external).toEqual([{ from: 'a', group: ['foo'] }, { from: 'b', group: ['foo'] }]);
    expect(r.conflicts).toEqual([]);
    expect(await unmetRelations(lockedRelations(r.packages).relations, offerOf(r, { foo: '1.5-3' }), lockedRelations(r.packages).provided, dpkg)).toEqual([]);
    // Without Debian's foo, or with one too old for b: no version meets both.
    const none = await resolve(idx, ['a', 'b']);
    expect(none.conflicts).toEqual([{ name: 'foo', relations: [{ from: 'a', relation: { name: 'foo', op: '<<', version: '2.0' } }, { from: 'b', relation: { name: 'foo', op: '>=', version: '1.5' } }], available: [{ version: '2.2', where: 'k8s' }, { version: '2.1', where: 'k8s' }] }]);
    const old = await resolve(idx, ['a', 'b'], { outside: new Map([['foo', [{ version: '1.4', where: 'Debian lock' }]]]) });
    expect(old.conflicts.map(conflictText)).toEqual(['foo: a needs foo (<< 2.0) and b needs foo (>= 1.5); on offer 2.2 (k8s), 2.1 (k8s), 1.4 (Debian lock)']);
    // An alternative: the first one something on offer meets.
    const alt = parseStanzas([stanza('foo', '2.1'), stanza('bar', '1'), stanza('c', '1', 'Depends: foo (<< 2.0) | bar')].join('\n\n'));
    expect((await resolve(alt, ['c'])).packages.map((p) => p.name)).toEqual(['bar', 'c']);
  });
  it('an upstream package older than the Debian lock\'s of its name, taken for an upper bound Debian\'s breaks, is one apt on a node would pass over', async () => {
    const idx = parseStanzas([stanza('foo', '1.9'), stanza('foo', '2.1'), stanza('a', '1', 'Depends: foo (<< 2.0)'), stanza('b', '1', 'Depends: foo (<< 2.0) | bar')].join('\n\n'));
    const r = await resolve(idx, ['a', 'b']);
    expect(r.packages.find((p) => p.name === 'foo')!.version).toBe('1.9');
    const { relations } = lockedRelations(r.packages);
    const debian = (v: string) => new Map([['foo', [{ version: v, where: 'Debian lock' }]]]);
    // Debian's 2.5 is newer, so apt takes it, and a's (<< 2.0) refuses it; b's group has an alternative: not counted.
    expect(await shadowedByNewer(r.packages, relations, debian('2.5'), dpkg)).toEqual([{ name: 'foo', version: '1.9', newer: { version: '2.5', where: 'Debian lock' }, from: 'a', relation: { name: 'foo', op: '<<', version: '2.0' } }]);
    // Older in Debian (apt takes the upstream one), or newer but accepted: nothing to say.
    expect(await shadowedByNewer(r.packages, relations, debian('1.5'), dpkg)).toEqual([]);
    expect(await shadowedByNewer(r.packages, relations, debian('1.9.1'), dpkg)).toEqual([]);
  });
  it('a choice that never settles ends, each package that keeps moving named as a conflict', async () => {
    // No pair works: x 2 needs y << 2, x 1 needs y >= 2, y 2 needs x >= 2, y 1 needs x << 2.
    const idx = parseStanzas([stanza('x', '2', 'Depends: y (<< 2)'), stanza('x', '1', 'Depends: y (>= 2)'), stanza('y', '2', 'Depends: x (>= 2)'), stanza('y', '1', 'Depends: x (<< 2)')].join('\n\n'));
    const r = await resolve(idx, ['x', 'y']);
    expect(r.conflicts.map((c) => [c.name, c.unsettled])).toEqual([
      ['x', true],
      ['y', true],
    ]);
    expect(conflictText(r.conflicts[0]!)).toMatch(/^x: no choice of versions settles \(each version chosen changes what the others ask for; last: y needs x \([<>=]+ 2\)\); on offer 2 \(k8s\), 1 \(k8s\)$/);
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
