import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plan as makePlan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { substrateFor } from './factory';
import { ProxmoxSshDriver } from './proxmox-ssh';
import { QemuLocalDriver } from './qemu-local';
import type { HostKeyPrompt } from './ssh-session';

const dir = mkdtempSync(join(tmpdir(), 'kubedos-factory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sshConfig = join(dir, 'ssh_config');
writeFileSync(sshConfig, '');

function spec(template: 'lab-3' | 'reference-16'): ClusterSpec {
  const parsed = parseSpec(TEMPLATES[template].text);
  if (!parsed.spec) throw new Error(`${template} does not parse`);
  return parsed.spec;
}
const prompt = (fingerprint: string): HostKeyPrompt => ({ host: 'pve1', port: 22, fingerprint, keyType: 'ssh-ed25519' });

describe('substrateFor', () => {
  it('qemu-local: state under <workspace>/vms, accel from the spec, storage "local"', () => {
    const s = spec('lab-3');
    const { driver, storage } = substrateFor({ spec: s, plan: makePlan(s), target: { kind: 'qemu-local' }, workspace: join(dir, 'ws'), env: {} });
    expect(driver).toBeInstanceOf(QemuLocalDriver);
    expect((driver as QemuLocalDriver).options).toMatchObject({ stateDir: join(dir, 'ws', 'vms'), accel: s.spec.substrate.qemu?.accel ?? 'auto' });
    expect((driver as QemuLocalDriver).options.ownership.tags).toEqual(['kubedos', `cluster-${s.metadata.name}`]);
    expect(storage).toBe('local');
  });

  it('qemu-local: a relative spec.qemu.stateDir is resolved against cwd', () => {
    const s = spec('lab-3');
    if (!s.spec.substrate.qemu) throw new Error('lab-3 is qemu');
    s.spec.substrate.qemu.stateDir = 'state/here';
    const { driver } = substrateFor({ spec: s, plan: makePlan(s), target: { kind: 'qemu-local' }, workspace: join(dir, 'ws'), cwd: '/srv/project', env: {} });
    expect((driver as QemuLocalDriver).options.stateDir).toBe('/srv/project/state/here');
  });

  it('proxmox: the driver for the host, isoStorage, node from the spec; host keys: only the accepted fingerprint', async () => {
    const s = spec('reference-16');
    const warnings: string[] = [];
    const { driver, storage } = substrateFor({ spec: s, plan: makePlan(s), target: { kind: 'proxmox', host: 'root@pve1:2222' }, workspace: dir, env: {}, sshConfigPath: sshConfig, knownHostsPath: join(dir, 'kh'), acceptHostKey: 'SHA256:good', warn: (m) => warnings.push(m) });
    expect(driver).toBeInstanceOf(ProxmoxSshDriver);
    const px = driver as ProxmoxSshDriver;
    expect(px.target).toBe('proxmox://pve1');
    expect(px.sshTarget).toMatchObject({ user: 'root', port: 2222 });
    expect(storage).toBe(s.spec.substrate.proxmox?.isoStorage);
    expect(px.options.knownHostsPath).toBe(join(dir, 'kh'));
    expect(await px.options.confirmHostKey?.(prompt('SHA256:good'))).toBe(true);
    expect(await px.options.confirmHostKey?.(prompt('SHA256:evil'))).toBe(false);
    expect(warnings).toEqual(['host key of pve1:22 is SHA256:evil, not the SHA256:good you accepted']);
    expect(px.options.reconnect).toBeUndefined();
    await driver.close();
  });

  it('proxmox: without acceptHostKey nothing new is trusted; dry run connects once with a short timeout', async () => {
    const s = spec('reference-16');
    const { driver } = substrateFor({ spec: s, plan: makePlan(s), target: { kind: 'proxmox', host: 'pve1' }, workspace: dir, env: {}, sshConfigPath: sshConfig, dryRun: true });
    const px = driver as ProxmoxSshDriver;
    expect(await px.options.confirmHostKey?.(prompt('SHA256:any'))).toBe(false);
    expect(px.options).toMatchObject({ reconnect: { attempts: 0, backoffMs: 0 }, readyTimeoutMs: 8000 });
  });

  it('proxmox: $KUBEDOS_SSH_PASSPHRASE first, then the passphrase callback; SSH_AUTH_SOCK is the agent', async () => {
    const s = spec('reference-16');
    const asked: string[] = [];
    const passphrase = async (k: string): Promise<string> => {
      asked.push(k);
      return 'typed';
    };
    const withEnv = substrateFor({ spec: s, plan: makePlan(s), target: { kind: 'proxmox', host: 'pve1' }, workspace: dir, env: { KUBEDOS_SSH_PASSPHRASE: 'from-env', SSH_AUTH_SOCK: '/run/agent.sock' }, sshConfigPath: sshConfig, passphrase }).driver as ProxmoxSshDriver;
    expect(await withEnv.options.passphrase?.('/k')).toBe('from-env');
    expect(withEnv.options.agentSocket).toBe('/run/agent.sock');
    const withoutEnv = substrateFor({ spec: s, plan: makePlan(s), target: { kind: 'proxmox', host: 'pve1' }, workspace: dir, env: {}, sshConfigPath: sshConfig, passphrase }).driver as ProxmoxSshDriver;
    expect(await withoutEnv.options.passphrase?.('/k2')).toBe('typed');
    expect(asked).toEqual(['/k2']);
    const none = substrateFor({ spec: s, plan: makePlan(s), target: { kind: 'proxmox', host: 'pve1' }, workspace: dir, env: {}, sshConfigPath: sshConfig }).driver as ProxmoxSshDriver;
    expect(await none.options.passphrase?.('/k3')).toBeUndefined();
  });

  it('proxmox without a host is refused', () => {
    const s = spec('reference-16');
    expect(() => substrateFor({ spec: s, plan: makePlan(s), target: { kind: 'proxmox', host: '' }, workspace: dir, env: {} })).toThrow(/names no Proxmox host/);
  });
});
