import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { parseProxmoxUrl, resolveSshTarget } from './ssh-target';

afterAll(removeTempDirs);

describe('ssh target resolution', () => {
  it('follows Host aliases, HostName, User, Port, IdentityFile and ProxyJump from ~/.ssh/config', () => {
    const home = tempDir('kubedos-sshcfg-');
    const cfg = join(home, 'config');
    writeFileSync(cfg, ['Host pve', '  HostName 10.9.0.2', '  User root', '  Port 2222', '  IdentityFile ~/.ssh/pve_key', '  ProxyJump bastion', 'Host bastion', '  HostName 10.9.0.1', '  User jump', 'Host *', '  User nobody', ''].join('\n'));
    const t = resolveSshTarget('pve', { configPath: cfg, home });
    expect(t).toMatchObject({ alias: 'pve', hostName: '10.9.0.2', port: 2222, user: 'root', identityFiles: [join(home, '.ssh/pve_key')] });
    expect(t.jumps).toHaveLength(1);
    expect(t.jumps[0]).toMatchObject({ hostName: '10.9.0.1', user: 'jump', port: 22 });
    expect(resolveSshTarget('elsewhere', { configPath: cfg, home })).toMatchObject({ hostName: 'elsewhere', user: 'nobody', port: 22 });
  });

  it('parses proxmox:// targets and rejects anything else', () => {
    expect(parseProxmoxUrl('proxmox://pve1')).toEqual({ host: 'pve1' });
    expect(parseProxmoxUrl('proxmox://root@10.0.0.1:2222')).toEqual({ host: '10.0.0.1', user: 'root', port: 2222 });
    expect(() => parseProxmoxUrl('proxmox://pve1;reboot')).toThrow(/not a Proxmox target/);
    expect(() => parseProxmoxUrl('ssh://pve1')).toThrow(/not a Proxmox target/);
  });
});
