// A vendor apt repository on loopback, for the tests that move a declared upstream package
// (spec.sources.apt): `kubedos-standin` built with dpkg-deb, indexed by apt-ftparchive, InRelease
// clearsigned with a throwaway ed25519 key (its own GNUPGHOME under `dir`), served by python3's
// http.server on 127.0.0.1 (started by start(), stopped by its PID in stop()). publish() replaces
// what the repository serves, as an upstream does when it moves to a new version and drops the old.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const STANDIN_PACKAGE = 'kubedos-standin';

export class AptStandin {
  readonly fingerprint: string;
  private readonly gnupg: string;
  private readonly www: string;
  private server: ChildProcess | undefined;
  private base = '';

  /** `dir` must exist and belong to the test (the key, the packages and the served tree go under it). */
  constructor(private readonly dir: string) {
    this.gnupg = join(dir, 'standin-gnupg');
    this.www = join(dir, 'standin-www');
    mkdirSync(this.www, { recursive: true });
    rmSync(this.gnupg, { recursive: true, force: true });
    mkdirSync(this.gnupg, { mode: 0o700 });
    chmodSync(this.gnupg, 0o700);
    this.gpg(['--quick-generate-key', 'Upstream stand-in <upstream@test.invalid>', 'ed25519', 'sign', 'never']);
    this.fingerprint = this.gpg(['--with-colons', '--list-secret-keys']).toString().split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  }

  private gpg(args: string[], input?: string): Buffer {
    return execFileSync('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { env: { ...process.env, GNUPGHOME: this.gnupg, LC_ALL: 'C' }, input, stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** The repository serves exactly this version of kubedos-standin (any earlier one is gone). */
  publish(version: string, depends?: string): void {
    const pkg = join(this.dir, `standin-pkg-${version}`);
    rmSync(pkg, { recursive: true, force: true });
    mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
    mkdirSync(join(pkg, `usr/share/doc/${STANDIN_PACKAGE}`), { recursive: true });
    writeFileSync(join(pkg, 'DEBIAN/control'), `Package: ${STANDIN_PACKAGE}\nVersion: ${version}\nArchitecture: all\nMaintainer: lab <lab@test.invalid>\n${depends ? `Depends: ${depends}\n` : ''}Description: upstream stand-in (a vendor agent)\n`);
    writeFileSync(join(pkg, `usr/share/doc/${STANDIN_PACKAGE}/README`), `stand-in ${version}\n`);
    const repo = join(this.www, 'repo');
    rmSync(repo, { recursive: true, force: true });
    const dist = join(repo, 'dists/stable');
    mkdirSync(join(repo, 'pool'), { recursive: true });
    mkdirSync(join(dist, 'main/binary-amd64'), { recursive: true });
    execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, join(repo, 'pool', `${STANDIN_PACKAGE}_${version}_all.deb`)], { stdio: 'ignore' });
    writeFileSync(join(dist, 'main/binary-amd64/Packages'), execFileSync('apt-ftparchive', ['packages', 'pool'], { cwd: repo }));
    const release = execFileSync('apt-ftparchive', ['-o', 'APT::FTPArchive::Release::Suite=stable', '-o', 'APT::FTPArchive::Release::Components=main', 'release', dist]);
    writeFileSync(join(dist, 'InRelease'), this.gpg(['--clearsign', '--local-user', this.fingerprint], release.toString()));
    writeFileSync(join(repo, 'key.asc'), this.gpg(['--armor', '--export', this.fingerprint]));
  }

  /** Serve the tree on 127.0.0.1 (a free port); resolves with the base URL. */
  async start(): Promise<string> {
    const server = spawn('/usr/bin/python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', this.www], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.server = server;
    this.base = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the apt stand-in (python3 http.server) did not start in 10 s')), 10_000);
      server.stdout!.on('data', (d: Buffer) => {
        const m = /port (\d+)/.exec(d.toString());
        if (m) {
          clearTimeout(t);
          resolve(`http://127.0.0.1:${m[1]}`);
        }
      });
      server.on('exit', (code) => reject(new Error(`the apt stand-in (python3 http.server) exited (${code})`)));
    });
    return this.base;
  }

  /** spec.sources.apt entry for this repository (start() first). */
  source(name: string, installOn?: readonly string[]): Record<string, unknown> {
    if (!this.base) throw new Error('AptStandin.source: start() the server first');
    return { name, url: `${this.base}/repo`, suite: 'stable', components: ['main'], signedBy: this.fingerprint, key: `${this.base}/repo/key.asc`, packages: [STANDIN_PACKAGE], ...(installOn ? { installOn: [...installOn] } : {}) };
  }

  /** Stops the server (by its PID) and the key's gpg-agent. */
  stop(): void {
    if (this.server?.pid && this.server.exitCode === null) process.kill(this.server.pid, 'SIGTERM');
    this.server = undefined;
    try {
      execFileSync('gpgconf', ['--homedir', this.gnupg, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    } catch {
      /* no agent */
    }
  }
}
