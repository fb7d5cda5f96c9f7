// First boot picks its node.json by a NIC's MAC. Checked with the real script in a network +
// mount namespace of our own (veth pair with the planned MAC, sysfs remounted so /sys/class/net
// shows only that namespace): it must find the node every time — the earlier
// `cat /sys/class/net/*/address | grep -qx` lost the race with SIGPIPE under pipefail and failed
// a master's first boot — and refuse when no NIC has a planned MAC.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const SCRIPT = resolve(__dirname, '../../payload/firstboot/kubedos-firstboot.sh');
const lib = mkdtempSync(join(tmpdir(), 'kd-fb-nic-'));
afterAll(() => rmSync(lib, { recursive: true, force: true }));

function inNamespace(body: string): { status: number | null; out: string } {
  if (process.getuid?.() !== 0) throw new Error('this lab test needs root (unshare --net --mount); run it as root like CI does');
  const script = [
    'set -euo pipefail',
    'mount -t sysfs sysfs /sys',
    'ip link add kd0 type veth peer name kd1',
    `source <(sed 's/^main "\\$@"$//' ${SCRIPT})`,
    `LIB=${lib}`,
    body,
  ].join('\n');
  const r = spawnSync('unshare', ['--net', '--mount', 'bash', '-c', script], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('first boot: node selection by NIC MAC', () => {
  mkdirSync(join(lib, 'nodes'), { recursive: true });
  writeFileSync(join(lib, 'nodes/master.json'), JSON.stringify({ node: { name: 'master', lan: { mac: '02:ED:FB:8F:14:DB' } } }));
  writeFileSync(join(lib, 'nodes/w-1.json'), JSON.stringify({ node: { name: 'w-1', lan: { mac: '02:90:64:d2:65:f2' } } }));

  it('finds its node.json on every one of 200 tries, with more NICs listed after it', () => {
    const r = inNamespace('ip link set kd0 address 02:ed:fb:8f:14:db\nfor i in $(seq 1 200); do r=$(select_node) || { echo "missed at $i"; exit 1; }; done\necho "picked $r"');
    expect(r.out).toContain(`picked ${join(lib, 'nodes/master.json')}`);
    expect(r.status).toBe(0);
  });

  it('picks the other node for the other MAC, and fails when no NIC has a planned MAC', () => {
    const w = inNamespace('ip link set kd1 address 02:90:64:d2:65:f2\nselect_node');
    expect(w.out.trim()).toBe(join(lib, 'nodes/w-1.json'));
    const none = inNamespace('ip link set kd0 address 02:00:00:00:00:01\nip link set kd1 address 02:00:00:00:00:02\nselect_node || echo "no node"');
    expect(none.out.trim()).toBe('no node');
  });
});

describe('first boot: the planned LAN (step_lan)', () => {
  // Its own mount namespace: /etc/systemd and /etc/resolv.conf are this namespace's (a tmpfs, a
  // file bound over), systemctl says networkd is enabled, networkctl is a no-op.
  it('names the planned NIC lan0 with its address, writes the .link and .network, and removes the image\'s DHCP for any NIC', () => {
    const node = join(lib, 'lan-node.json');
    writeFileSync(node, JSON.stringify({ node: { name: 'w-1', lan: { mac: '02:90:64:D2:65:F2', address: '10.110.0.18', prefix: 20, dns: [] } } }));
    const resolv = join(lib, 'resolv.conf');
    writeFileSync(resolv, '');
    const r = inNamespace(
      [
        'mount -t tmpfs tmpfs /etc/systemd',
        'mkdir /etc/systemd/network',
        `mount --bind ${resolv} /etc/resolv.conf`,
        "printf '[Match]\\nName=en* eth*\\n\\n[Network]\\nDHCP=yes\\n' > /etc/systemd/network/90-kubedos-dhcp.network",
        'systemctl() { return 0; }',
        'networkctl() { :; }',
        `NODE_JSON=${node}`,
        'ip link set kd1 address 02:90:64:d2:65:f2',
        'step_lan',
        'ls /etc/systemd/network',
        'cat /etc/systemd/network/10-kubedos-lan0.link',
        'ip -br -4 addr show lan0',
      ].join('\n'),
    );
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toContain('90-kubedos-dhcp.network');
    expect(r.out).toContain('10-kubedos-lan0.link\n10-kubedos-lan0.network');
    expect(r.out).toMatch(/MACAddress=02:90:64:d2:65:f2\n\n\[Link\]\nName=lan0/);
    expect(r.out).toMatch(/^lan0(@\S+)?\s+\S+\s+10\.110\.0\.18\/20/m);
  });
});
