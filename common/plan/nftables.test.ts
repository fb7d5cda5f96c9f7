import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../../main/testing/temp-dir';
import { parseSpec } from '../spec/parse';
import { TEMPLATES } from '../spec/templates/index';
import { plan } from './plan';

afterAll(removeTempDirs);

const p = plan(parseSpec(TEMPLATES['reference-16'].text).spec!);
const hub = p.nodes.find((n) => n.hub)!;
const worker = p.nodes.find((n) => n.name === 'w-1')!;
const lb = p.nodes.find((n) => n.name === 'lb-1')!;

describe('nftables rendering', () => {
  it('denies inbound by default and drops through a named counter', () => {
    expect(worker.nftables).toContain('type filter hook input priority filter; policy drop;');
    expect(worker.nftables).toMatch(/counter name default_deny_input drop/);
  });
  it('opens only the WireGuard underlay and the role services on the LAN', () => {
    const lanRules = (text: string) => text.split('\n').filter((l) => l.includes('iifname "lan0"') && l.includes('accept'));
    expect(lanRules(worker.nftables)).toEqual(['\t\tiifname "lan0" udp dport { 51821, 51822, 51823 } accept comment "wireguard underlay"']);
    expect(lanRules(lb.nftables).map((l) => l.trim())).toEqual([
      'iifname "lan0" udp dport { 51821, 51822, 51823 } accept comment "wireguard underlay"',
      'iifname "lan0" tcp dport 6443 accept comment "haproxy"',
      'iifname "lan0" ip protocol vrrp accept comment "keepalived"',
    ]);
    expect(lanRules(hub.nftables).some((l) => l.includes('tcp dport 8443'))).toBe(true);
  });
  it('forwards between planes on the hub only for declared flows, default deny with a counter', () => {
    expect(hub.nftables).toContain('type filter hook forward priority filter; policy drop;');
    expect(hub.nftables).toContain('iifname "wg1" oifname "wg3" ip saddr 10.101.0.0/24 ip daddr 10.103.0.0/24 tcp dport { 6443, 2379-2380 } accept comment "allow wg1->wg3"');
    expect(hub.nftables).not.toMatch(/iifname "wg3" oifname "wg1"/);
    expect(hub.nftables).toContain('counter name default_deny_inter_plane drop');
  });
  it('never lets a spoke carry traffic between planes', () => {
    expect(worker.nftables).toContain('iifname "wg1" oifname { "wg2", "wg3" } counter name default_deny_inter_plane drop');
  });
  it('is accepted by the real nft parser for every node of reference-16', () => {
    const which = spawnSync('nft', ['--version']);
    if (which.error) throw new Error('nft is not installed: run scripts/setup-host.sh (package nftables)');
    const dir = tempDir('kubedos-nft-');
    for (const n of p.nodes) {
      const file = join(dir, `${n.name}.nft`);
      writeFileSync(file, n.nftables);
      // A private network namespace, so checking can never touch the host's ruleset.
      execFileSync('unshare', ['--net', 'nft', '-c', '-f', file], { stdio: 'pipe' });
    }
  });
  it('is applied twice in a row without error (idempotent reload)', () => {
    const dir = tempDir('kubedos-nft-');
    const file = join(dir, 'hub.nft');
    writeFileSync(file, hub.nftables);
    const out = execFileSync('unshare', ['--net', 'sh', '-c', `nft -f ${file} && nft -f ${file} && nft list counters`], { encoding: 'utf8' });
    expect(out).toContain('counter default_deny_inter_plane');
  });
});
