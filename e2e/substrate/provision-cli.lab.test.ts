// `kubedos provision` end to end against the stand-in over real SSH: host key accepted by
// fingerprint, image uploaded once, VMs created and started, rerun converged, --dry-run on the
// live host shows only what is missing.
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../main/cli/main';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';

describe('kubedos provision against the Proxmox stand-in', () => {
  let standin: ProxmoxStandIn;
  const cli = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await main(args, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`), cwd: standin.dir, env: { ...process.env, KUBEDOS_WORKSPACE: join(standin.dir, 'ws'), SSH_AUTH_SOCK: '' }, signal: new AbortController().signal, isTty: false });
    return { code, out, err };
  };
  const hostArgs = (): string[] => ['--target', 'proxmox://pve-standin', '--ssh-config', standin.sshConfig, '--known-hosts', join(standin.dir, 'kh')];

  beforeAll(async () => {
    standin = await startProxmoxStandIn({ startQemu: false });
    writeFileSync(join(standin.dir, 'kh'), '');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(standin.dir, 'golden.qcow2'), '64M']);
  });
  afterAll(async () => standin?.stop());

  it('refuses an unknown host key and names its fingerprint; accepts it when the fingerprint is given', async () => {
    expect((await cli(['init', '--template', 'lab-3', 'lab3.yaml'])).code).toBe(0);
    const refused = await cli(['provision', 'lab3.yaml', ...hostArgs(), '--image', 'golden.qcow2']);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(standin.hostKeyFingerprint);
    expect(refused.err).toMatch(/hint: .*--accept-host-key/);
    expect(readdirSync(join(standin.root, 'etc/pve/qemu-server'))).toEqual([]);

    const ok = await cli(['provision', 'lab3.yaml', ...hostArgs(), '--image', 'golden.qcow2', '--accept-host-key', standin.hostKeyFingerprint]);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/\$ qm create 3000 --name master/);
    expect(ok.out).toMatch(/master\s+3000\s+create \+ start/);
    expect(readdirSync(join(standin.root, 'etc/pve/qemu-server')).sort()).toEqual(['3000.conf', '3001.conf', '3002.conf']);
  });

  it('a rerun is converged, and --dry-run against the live host plans nothing to create', async () => {
    const again = await cli(['provision', 'lab3.yaml', ...hostArgs(), '--image', 'golden.qcow2']);
    expect(again.code).toBe(0);
    expect(again.out).toContain('already converged, nothing changed');
    const dry = await cli(['provision', 'lab3.yaml', ...hostArgs(), '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('3 VMs found (3000, 3001, 3002)');
    expect(dry.out).toMatch(/## master \(VMID 3000\): keep\n/);
    expect(dry.out).not.toContain('qm create');
  });

  it('the real CLI process exits by itself after talking to the host (the SSH connection is closed, nothing keeps node alive)', () => {
    const bin = join(process.cwd(), 'bin', 'kubedos.mjs');
    const env = { ...process.env, KUBEDOS_WORKSPACE: join(standin.dir, 'ws'), SSH_AUTH_SOCK: '' };
    for (const extra of [['--dry-run'], ['--image', 'golden.qcow2']]) {
      const started = Date.now();
      // execFileSync throws if the process is killed by the timeout (i.e. it hung) or exits non-zero.
      const out = execFileSync(process.execPath, [bin, 'provision', 'lab3.yaml', ...hostArgs(), ...extra], { cwd: standin.dir, env, encoding: 'utf8', timeout: 90_000, killSignal: 'SIGKILL' });
      expect(out).toMatch(extra[0] === '--dry-run' ? /3 VMs found/ : /already converged/);
      expect(Date.now() - started).toBeLessThan(90_000);
    }
  });
});
