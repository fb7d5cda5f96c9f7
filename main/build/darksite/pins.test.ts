import { describe, expect, it } from 'vitest';
import { parseAptSources, debianSources, renderSourcesList } from './apt-sources';
import { DarksiteLock, diffIsEmpty, diffLocks, diffSummary, driftMessage, firstFew, packageLists, packagesFor, parseList, upstreamInstalledFor, parseMadison, parseShow, parseSimulation, PinError, renderDiff, unresolvedWants } from './pins';
import type { LockedPackage } from './pins';

describe('package lists', () => {
  it('parses names and Debian relations with comments, and names the bad line', () => {
    expect(parseList('base.list', '# c\nopenssh-server\n\nlinux-image-amd64 (>= 6.1.192) # why\n')).toEqual([
      { name: 'openssh-server', origin: 'base.list:2' },
      { name: 'linux-image-amd64', constraint: { op: '>=', version: '6.1.192' }, origin: 'base.list:4' },
    ]);
    expect(() => parseList('lb.list', 'haproxy (~> 2)\n')).toThrow(/lb\.list:1: "haproxy \(~> 2\)" is not a package name/);
    expect(() => parseList('lb.list', 'haproxy\nhaproxy\n')).toThrow(/lb\.list:2: haproxy is listed twice/);
  });

  it('refuses an exact name=version pin with the reason and the relation to write instead', () => {
    expect(() => parseList('base.list', 'linux-image-amd64=6.1.192-2\n')).toThrow(/exact versions go stale.*linux-image-amd64 \(>= 6\.1\.192-2\)/);
  });

  it('hashes every list so an edit is seen, and requires a base list', () => {
    const a = packageLists({ 'base.list': 'bash\n', 'lb.list': 'haproxy\n' });
    const b = packageLists({ 'base.list': 'bash\n', 'lb.list': 'haproxy\nkeepalived\n' });
    expect(a.sha256).not.toBe(b.sha256);
    expect(b.roles.lb).toHaveLength(2);
    expect(() => packageLists({ 'lb.list': 'xz\n' })).toThrow(PinError);
  });

  it('reads apt simulation, apt-cache show and madison output', () => {
    expect(parseSimulation('Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])\nConf libc6 (2.36 x [amd64])\nInst tzdata [2024a-0] (2025b-0+deb12u2 Debian:12.15/oldstable [all])\n')).toEqual([
      { name: 'libc6', version: '2.36-9+deb12u14', architecture: 'amd64' },
      { name: 'tzdata', version: '2025b-0+deb12u2', architecture: 'all' },
    ]);
    const show = 'Package: keepalived\nVersion: 1:2.2.7-1+b2\nArchitecture: amd64\nFilename: pool/main/k/keepalived/keepalived_2.2.7-1+b2_amd64.deb\nSize: 123\nSHA256: ' + 'a'.repeat(64) + '\n\n';
    expect(parseShow(show)).toEqual([{ name: 'keepalived', version: '1:2.2.7-1+b2', architecture: 'amd64', filename: 'keepalived_2.2.7-1+b2_amd64.deb', size: 123, sha256: 'a'.repeat(64) }]);
    const madison = ' linux-image-amd64 | 6.1.192-3 | http://archive.invalid/debian-security bookworm-security/main amd64 Packages\n linux-image-amd64 | 6.1.170-1 | http://archive.invalid/debian bookworm/main amd64 Packages\n';
    expect(parseMadison(madison).get('linux-image-amd64')).toEqual([
      { version: '6.1.192-3', suite: 'bookworm-security' },
      { version: '6.1.170-1', suite: 'bookworm' },
    ]);
  });

  it('names the listed packages apt could not find', () => {
    const wants = parseList('base.list', 'nftables (= 9.9)\nbogus-pkg\nbash\n');
    const err = "E: Version '9.9' for 'nftables' was not found\nE: Unable to locate package bogus-pkg\n";
    expect(unresolvedWants(err, wants).map((p) => p.name)).toEqual(['nftables', 'bogus-pkg']);
  });
});

const pkg = (name: string, roles: LockedPackage['roles'], version = '1'): LockedPackage => ({ name, version, architecture: 'amd64', sha256: '0'.repeat(64), size: 1, filename: `${name}_1_amd64.deb`, roles, source: 'debian/bookworm' });

describe('lock', () => {
  it('selects the locked packages of the requested roles only', () => {
    const lock: DarksiteLock = { apiVersion: 'kubedos.ca/v1alpha2', kind: 'DarksiteLock', codename: 'bookworm', architecture: 'amd64', listsSha256: 'f'.repeat(64), packages: [pkg('haproxy', ['lb']), pkg('bash', ['lb', 'worker']), pkg('etcd-server', ['etcd'])] };
    expect(packagesFor(lock, ['worker']).map((p) => p.name)).toEqual(['bash']);
    expect(packagesFor(lock, ['lb', 'etcd']).map((p) => p.name)).toEqual(['bash', 'etcd-server', 'haproxy']);
  });

  it('installs on a role every locked package of the apt sources whose installOn names it (their same-repository dependencies too), sorted by name', () => {
    const up = (name: string, source: string) => ({ name, version: '1.0', architecture: 'all', sha256: 'a'.repeat(64), size: 1, filename: `${name}_1.0_all.deb`, path: `pool/${name}_1.0_all.deb`, source });
    const upstream = [up('vendor-agent', 'vendor'), up('libvendor', 'vendor'), up('grafana', 'grafana'), up('kubeadm', 'kubernetes')];
    const sources = [{ name: 'vendor', installOn: ['master', 'worker'] as const }, { name: 'grafana' }, { name: 'kubernetes', installOn: ['control-plane'] as const }];
    expect(upstreamInstalledFor(upstream, sources, 'worker').map((p) => p.name)).toEqual(['libvendor', 'vendor-agent']);
    expect(upstreamInstalledFor(upstream, sources, 'control-plane').map((p) => p.name)).toEqual(['kubeadm']);
    // No installOn: only in the darksite, for the converge roles that install it.
    expect(upstreamInstalledFor(upstream, sources, 'grafana')).toEqual([]);
    expect(upstreamInstalledFor(upstream, [], 'master')).toEqual([]);
  });

  it('diffs two closures into changed, added and removed, sorted by name', () => {
    const d = diffLocks([pkg('b', ['lb'], '1'), pkg('a', ['lb'], '1'), pkg('gone', ['lb'])], [pkg('a', ['lb'], '2'), pkg('b', ['lb'], '1'), pkg('new', ['lb'], '3')]);
    expect(d).toEqual({ changed: [{ name: 'a', architecture: 'amd64', from: '1', to: '2' }], added: [{ name: 'new', architecture: 'amd64', version: '3' }], removed: [{ name: 'gone', architecture: 'amd64', version: '1' }] });
    expect(diffSummary(d)).toBe('1 changed, 1 added, 1 removed');
    expect(renderDiff(d)).toEqual([expect.stringMatching(/^ {2}~ a +1 → 2$/), expect.stringMatching(/^ {2}\+ new +3$/), expect.stringMatching(/^ {2}- gone +1$/)]);
    expect(diffIsEmpty(diffLocks([pkg('aa', ['lb'])], [pkg('aa', ['worker'])]))).toBe(true);
  });

  it('keeps the drift message short however many packages moved, with the command that accepts it', () => {
    const sup = Array.from({ length: 200 }, (_, i) => ({ name: `pkg-${String(i).padStart(3, '0')}`, architecture: 'amd64', locked: '1.0-1', available: '1.0-2' }));
    const { message, detail } = driftMessage(sup, { mode: 'default', lockPath: '/ws/clusters/c/darksite.lock.json', acceptCommand: 'kubedos lock update --spec c.yaml' });
    const lines = message.split('\n');
    expect(lines.length).toBeLessThanOrEqual(15);
    expect(lines[0]).toMatch(/no longer serves 200 locked package/);
    expect(message).toContain('pkg-000                      1.0-1 → 1.0-2');
    expect(message).toContain('… and 192 more (full list in the build log)');
    expect(message).toContain('kubedos lock update --spec c.yaml');
    expect(message).not.toContain('pkg-199');
    expect(detail.split('\n')).toHaveLength(201);
    expect(driftMessage([{ name: 'x', architecture: 'all', locked: '1' }], { mode: 'frozen', lockPath: 'l', acceptCommand: 'a' }).message).toMatch(/--frozen: the lock cannot be satisfied[^]*x +1 → \(no longer served at all\)/);
  });

  it('rejects a lock edited into nonsense by schema (bad hash, unknown role, empty)', () => {
    const good = { apiVersion: 'kubedos.ca/v1alpha2', kind: 'DarksiteLock', codename: 'bookworm', architecture: 'amd64', listsSha256: 'f'.repeat(64), packages: [pkg('aa', ['lb'])] };
    expect(DarksiteLock.safeParse(good).success).toBe(true);
    expect(DarksiteLock.safeParse({ ...good, packages: [{ ...pkg('aa', ['lb']), sha256: 'xyz' }] }).success).toBe(false);
    expect(DarksiteLock.safeParse({ ...good, packages: [{ ...pkg('aa', ['lb']), filename: '../../etc/passwd' }] }).success).toBe(false);
    expect(DarksiteLock.safeParse({ ...good, packages: [] }).success).toBe(false);
  });

  it('shows a few names and a count', () => {
    expect(firstFew(['a', 'b'])).toBe('a, b');
    expect(firstFew(['a', 'b', 'c', 'd', 'e', 'f', 'g'], 3)).toBe('a, b, c … and 4 more');
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
