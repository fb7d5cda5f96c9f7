// A Debian mirror stand-in on loopback for the darksite lab: real .deb files (built here with
// dpkg-deb), indexed by apt-ftparchive, Release signed with a throwaway ed25519 key, served over
// HTTP on 127.0.0.1. It can move a package to a new version (dropping the old one, as the security
// archive does), serve a corrupted file, or sign its Release with a key apt does not trust.
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface StandinPackage {
  name: string;
  version: string;
  depends?: string;
}

export class MirrorStandin {
  readonly root: string;
  private server?: Server;
  private port = 0;
  /** Files served with different bytes than the index says (pool path → bytes). */
  private readonly corrupt = new Map<string, Buffer>();
  readonly keyring: string;
  private readonly gnupg: string;
  private readonly rogueGnupg: string;

  constructor(private readonly dir: string) {
    this.root = join(dir, 'mirror');
    this.gnupg = join(dir, 'gnupg');
    this.rogueGnupg = join(dir, 'gnupg-rogue');
    this.keyring = join(dir, 'mirror-keyring.gpg');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(this.root, 'pool/main'), { recursive: true });
    for (const home of [this.gnupg, this.rogueGnupg]) {
      mkdirSync(home, { recursive: true, mode: 0o700 });
      execFileSync('gpg', ['--batch', '--homedir', home, '--passphrase', '', '--quick-gen-key', `kubedos mirror stand-in ${home.endsWith('rogue') ? 'rogue' : 'archive'}`, 'ed25519', 'sign', 'never'], { stdio: 'ignore' });
    }
    writeFileSync(this.keyring, execFileSync('gpg', ['--batch', '--homedir', this.gnupg, '--export']));
  }

  /** Build a real .deb (control + one file under /usr/share/doc) into the pool. */
  add(p: StandinPackage): void {
    const build = join(this.dir, 'build', `${p.name}_${p.version}`);
    rmSync(build, { recursive: true, force: true });
    mkdirSync(join(build, 'DEBIAN'), { recursive: true });
    mkdirSync(join(build, 'usr/share/doc', p.name), { recursive: true });
    writeFileSync(join(build, 'usr/share/doc', p.name, 'README'), `${p.name} ${p.version}: a package of the darksite mirror stand-in\n`);
    writeFileSync(
      join(build, 'DEBIAN/control'),
      [`Package: ${p.name}`, `Version: ${p.version}`, 'Architecture: amd64', 'Maintainer: Kube\'d\'OS lab <lab@kubedos.invalid>', ...(p.depends ? [`Depends: ${p.depends}`] : []), 'Priority: optional', 'Section: misc', `Description: ${p.name} stand-in`, ''].join('\n'),
    );
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', build, join(this.root, 'pool/main', this.filename(p))], { stdio: 'ignore', env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } });
  }

  filename(p: StandinPackage): string {
    return `${p.name}_${p.version.replace(/^\d+:/, '')}_amd64.deb`;
  }

  /** Drop a version from the pool (the archive superseded it). */
  remove(p: StandinPackage): void {
    rmSync(join(this.root, 'pool/main', this.filename(p)), { force: true });
  }

  /** Serve different bytes for a pool file than the signed index lists. */
  corruptFile(p: StandinPackage): void {
    const bytes = readFileSync(join(this.root, 'pool/main', this.filename(p)));
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    this.corrupt.set(`pool/main/${this.filename(p)}`, bytes);
  }

  heal(): void {
    this.corrupt.clear();
  }

  /** Index and sign (with the archive key, or a rogue key apt does not trust). */
  publish(o: { rogue?: boolean } = {}): void {
    const dists = join(this.root, 'dists/bookworm');
    const bin = join(dists, 'main/binary-amd64');
    rmSync(dists, { recursive: true, force: true });
    mkdirSync(bin, { recursive: true });
    const packages = execFileSync('apt-ftparchive', ['packages', 'pool/main'], { cwd: this.root, encoding: 'utf8' });
    writeFileSync(join(bin, 'Packages'), packages);
    writeFileSync(join(bin, 'Packages.gz'), gzipSync(packages));
    const release = execFileSync('apt-ftparchive', ['-o', 'APT::FTPArchive::Release::Suite=bookworm', '-o', 'APT::FTPArchive::Release::Codename=bookworm', '-o', 'APT::FTPArchive::Release::Components=main', '-o', 'APT::FTPArchive::Release::Architectures=amd64', 'release', '.'], { cwd: dists, encoding: 'utf8' });
    writeFileSync(join(this.dir, 'Release'), release);
    writeFileSync(join(dists, 'Release'), release);
    const home = o.rogue ? this.rogueGnupg : this.gnupg;
    execFileSync('gpg', ['--batch', '--yes', '--homedir', home, '--clearsign', '--output', join(dists, 'InRelease'), join(dists, 'Release')], { stdio: 'ignore' });
    execFileSync('gpg', ['--batch', '--yes', '--homedir', home, '--armor', '--detach-sign', '--output', join(dists, 'Release.gpg'), join(dists, 'Release')], { stdio: 'ignore' });
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const rel = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)).replace(/^\/+/, '').replace(/^debian\//, '');
      if (rel.startsWith('..')) {
        res.writeHead(400).end();
        return;
      }
      const fake = this.corrupt.get(rel);
      if (fake) {
        res.writeHead(200, { 'content-length': fake.length }).end(fake);
        return;
      }
      const file = join(this.root, rel);
      if (!existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((ok) => this.server!.close(() => ok()));
    this.server = undefined;
  }

  /** An apt configuration root (sources.list) naming this mirror, for the darksite's aptRoot. */
  aptRoot(): string {
    const dir = join(this.dir, 'etc-apt');
    mkdirSync(join(dir, 'sources.list.d'), { recursive: true });
    writeFileSync(join(dir, 'sources.list'), `deb [signed-by=${this.keyring}] http://127.0.0.1:${this.port}/debian bookworm main\n`);
    return dir;
  }

  stopAgents(): void {
    for (const home of [this.gnupg, this.rogueGnupg]) {
      try {
        execFileSync('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore' });
      } catch {
        /* no agent */
      }
    }
  }

  poolFiles(): string[] {
    return readdirSync(join(this.root, 'pool/main')).sort();
  }
}
