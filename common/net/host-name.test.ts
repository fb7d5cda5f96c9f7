import { describe, expect, it } from 'vitest';
import { HOST_NAME_PATTERN, isHostName } from './host-name';

describe('host-name rule', () => {
  it('accepts ssh aliases and host names', () => {
    for (const h of ['pve1', 'pve.lab.example', 'PVE_2', '10.0.0.5', 'a']) expect(isHostName(h), h).toBe(true);
  });
  it('rejects what ssh would read as options, users, ports or paths', () => {
    for (const h of ['', '-oProxyCommand=x', 'root@pve1', 'pve1:22', '.hidden', 'pve 1', 'a/b', 'pve1\n']) expect(isHostName(h), JSON.stringify(h)).toBe(false);
  });
  it('embeds in larger patterns without anchors', () => {
    expect(HOST_NAME_PATTERN.startsWith('^')).toBe(false);
    expect(new RegExp(`^proxmox://(${HOST_NAME_PATTERN})$`).exec('proxmox://pve1')?.[1]).toBe('pve1');
  });
});
