// Each bad input gives one actionable message and leaves no half-created VM behind (or names
// it for cleanup): wrong host, refused key, unknown / changed host key, wrong passphrase,
// storage full, VMID taken, QEMU missing. Also: ProxyJump and encrypted keys work.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../common/plan/schema';
import type { ArtifactFile } from '../../main/substrate/driver';
import { SubstrateError } from '../../main/substrate/driver';
import { provision } from '../../main/substrate/provision';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';
import { lab3Plan, standInDriver } from './helpers';

async function failure(p: Promise<unknown>): Promise<SubstrateError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SubstrateError);
  return err as SubstrateError;
}

describe('bad input against the stand-in', () => {
  let standin: ProxmoxStandIn;
  let p: Plan;
  let dir: string;
  let image: ArtifactFile;

  beforeAll(async () => {
    standin = await startProxmoxStandIn({ startQemu: false });
    p = lab3Plan();
    dir = mkdtempSync(join(tmpdir(), 'kubedos-bad-'));
    const path = join(dir, 'tiny.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, '64M']);
    image = { path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex'), sizeBytes: statSync(path).size, kind: 'disk-image', name: 'kubedos-tiny.qcow2' };
  });

  afterAll(async () => {
    await standin?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const vmConfs = (): string[] => readdirSync(join(standin.root, 'etc/pve/qemu-server')).sort();

  it('wrong host: connection refused, with what to check', async () => {
    const cfg = join(dir, 'cfg-wrong');
    writeFileSync(cfg, `Host pve-standin\n  HostName 127.0.0.1\n  Port 1\n  User root\n  IdentityFile ${standin.clientKey}\n`);
    const d = standInDriver(standin, p, { sshConfigPath: cfg, reconnect: { attempts: 1, backoffMs: 50 } });
    const err = await failure(d.inventory());
    expect(err.code).toBe('unreachable');
    expect(err.message).toContain('127.0.0.1:1');
    expect(err.hint).toMatch(/sshd running|port/);
    await d.close();
  });

  it('refused key: says which keys were offered and where to authorise them', async () => {
    const key = join(dir, 'stranger');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const cfg = join(dir, 'cfg-stranger');
    writeFileSync(cfg, `Host pve-standin\n  HostName 127.0.0.1\n  Port ${standin.port}\n  User root\n  IdentityFile ${key}\n`);
    const d = standInDriver(standin, p, { sshConfigPath: cfg });
    const err = await failure(d.inventory());
    expect(err.code).toBe('auth-refused');
    expect(err.message).toContain(key);
    expect(err.hint).toMatch(/authorized_keys/);
    await d.close();
  });

  it('unknown host key: shown as SHA256 fingerprint, refused unless accepted, remembered once accepted', async () => {
    const kh = join(dir, 'known_hosts_empty');
    writeFileSync(kh, '');
    const d1 = standInDriver(standin, p, { knownHostsPath: kh });
    const err = await failure(d1.inventory());
    expect(err.code).toBe('host-key-unknown');
    expect(err.message).toContain(standin.hostKeyFingerprint);
    await d1.close();
    const seen: string[] = [];
    const d2 = standInDriver(standin, p, {
      knownHostsPath: kh,
      confirmHostKey: async (prompt) => {
        seen.push(prompt.fingerprint);
        return true;
      },
    });
    await d2.inventory();
    expect(seen).toEqual([standin.hostKeyFingerprint]);
    expect(readFileSync(kh, 'utf8')).toContain(`[127.0.0.1]:${standin.port} ssh-ed25519 `);
    await d2.close();
    const d3 = standInDriver(standin, p, { knownHostsPath: kh });
    await expect(d3.inventory()).resolves.toBeTruthy();
    await d3.close();
  });

  it('changed host key: refused, with how to clear the old entry', async () => {
    const kh = join(dir, 'known_hosts_changed');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'impostor')]);
    const pub = readFileSync(join(dir, 'impostor.pub'), 'utf8').split(' ');
    writeFileSync(kh, `[127.0.0.1]:${standin.port} ${pub[0]} ${pub[1]}\n`);
    let asked = false;
    const d = standInDriver(standin, p, {
      knownHostsPath: kh,
      confirmHostKey: async () => {
        asked = true;
        return true;
      },
    });
    const err = await failure(d.inventory());
    expect(err.code).toBe('host-key-changed');
    expect(err.message).toContain(standin.hostKeyFingerprint);
    expect(err.hint).toContain('ssh-keygen -R');
    expect(asked).toBe(false);
    await d.close();
  });

  it('encrypted key: passphrase asked through the callback; a wrong one is reported as such', async () => {
    const key = join(dir, 'locked');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse', '-f', key]);
    appendFileSync(join(standin.dir, 'authorized_keys'), readFileSync(`${key}.pub`));
    const cfg = join(dir, 'cfg-locked');
    writeFileSync(cfg, `Host pve-standin\n  HostName 127.0.0.1\n  Port ${standin.port}\n  User root\n  IdentityFile ${key}\n`);
    const asked: string[] = [];
    const ok = standInDriver(standin, p, { sshConfigPath: cfg, passphrase: async (k) => (asked.push(k), 'correct horse') });
    await expect(ok.inventory()).resolves.toBeTruthy();
    expect(asked).toEqual([key]);
    await ok.close();
    const bad = standInDriver(standin, p, { sshConfigPath: cfg, passphrase: async () => 'battery staple' });
    const err = await failure(bad.inventory());
    expect(err.code).toBe('bad-passphrase');
    await bad.close();
  });

  it('ssh-agent: a key held only by the agent is used (no IdentityFile on disk)', async () => {
    const sock = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      execFileSync('ssh-add', ['-q', standin.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const cfg = join(dir, 'cfg-agent');
      writeFileSync(cfg, `Host pve-standin\n  HostName 127.0.0.1\n  Port ${standin.port}\n  User root\n  IdentityFile ${join(dir, 'no-such-key')}\n`);
      const d = standInDriver(standin, p, { sshConfigPath: cfg, agentSocket: sock });
      await expect(d.inventory()).resolves.toMatchObject({ node: 'pve-standin' });
      await d.close();
    } finally {
      agent.kill('SIGTERM');
    }
  });

  it('ProxyJump from ~/.ssh/config: the target is reached through the jump host', async () => {
    const cfg = join(dir, 'cfg-jump');
    writeFileSync(cfg, `Host pve-standin\n  HostName 127.0.0.1\n  Port ${standin.port}\n  User root\n  IdentityFile ${standin.clientKey}\n  ProxyJump bastion\nHost bastion\n  HostName 127.0.0.1\n  Port ${standin.port}\n  User root\n  IdentityFile ${standin.clientKey}\n`);
    const d = standInDriver(standin, p, { sshConfigPath: cfg });
    expect(d.sshTarget.jumps.map((j) => j.alias)).toEqual(['bastion']);
    const inv = await d.inventory();
    expect(inv.node).toBe('pve-standin');
    await d.close();
  });

  it('storage full: refused before anything is uploaded or created', async () => {
    standin.update((s) => {
      (s.storages.local as { capacity: number }).capacity = 64 * 1024;
    });
    const d = standInDriver(standin, p);
    try {
      const err = await failure(provision({ plan: p, driver: d, artifact: image, storage: 'local', allowDestroy: false }));
      expect(err.code).toBe('storage-full');
      expect(err.message).toMatch(/storage "local" .* free/);
      expect(existsSync(join(standin.root, 'var/lib/vz/import', image.name))).toBe(false);
      expect(vmConfs()).toEqual([]);
      // Room for the image but not for the disks: Proxmox rolls the create back; nothing is left.
      standin.update((s) => {
        (s.storages.local as { capacity: number }).capacity = 4 * 1024 * 1024;
      });
      const err2 = await failure(provision({ plan: p, driver: d, artifact: image, storage: 'local', allowDestroy: false }));
      expect(err2.code).toBe('storage-full');
      expect(err2.hint).toMatch(/no VM was left behind/);
      expect(vmConfs()).toEqual([]);
      expect(readdirSync(join(standin.root, 'var/lib/vz/images')).flatMap((v) => readdirSync(join(standin.root, 'var/lib/vz/images', v)))).toEqual([]);
    } finally {
      standin.update((s) => {
        (s.storages.local as { capacity: number }).capacity = 64 * 1024 ** 3;
      });
      await d.close();
    }
  });

  it('VMID taken by someone else: nothing is changed and the owner is named', async () => {
    const d = standInDriver(standin, p);
    await d.run(['qm', 'create', '3001', '--name', 'payroll-db', '--tags', 'finance']);
    const err = await failure(provision({ plan: p, driver: d, artifact: image, storage: 'local', allowDestroy: true }));
    expect(err.code).toBe('vmid-taken');
    expect(err.message).toContain('VMID 3001');
    expect(err.message).toContain('payroll-db');
    expect(vmConfs()).toEqual(['3001.conf']);
    await d.run(['qm', 'destroy', '3001']);
    await d.close();
  });

  it('QEMU missing on the host: the created VMs are named for cleanup, and a rerun after the fix converges', async () => {
    standin.update((s) => {
      s.startQemu = true;
      s.qemu = '/nonexistent/qemu-system-x86_64';
    });
    const d = standInDriver(standin, p);
    try {
      const err = await failure(provision({ plan: p, driver: d, artifact: image, storage: 'local', allowDestroy: false }));
      expect(err.code).toBe('start-failed');
      expect(err.message).toMatch(/\(VMID 30\d\d\) exists but did not start/);
      expect(err.stderrTail).toContain('could not find');
      expect(err.leftBehind).toBeGreaterThanOrEqual(3000);
      expect(err.hint).toMatch(/rerun|qm destroy/);
      standin.update((s) => {
        s.startQemu = false;
      });
      const again = await provision({ plan: p, driver: d, artifact: image, storage: 'local', allowDestroy: false });
      expect(again.decisions.every((x) => x.action === 'keep')).toBe(true);
      expect(again.upload).toBeUndefined();
      expect(vmConfs()).toEqual(['3000.conf', '3001.conf', '3002.conf']);
    } finally {
      await d.close();
    }
  });
});
