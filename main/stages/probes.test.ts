import { describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { enrollDrift } from './enroll';
import { factsDrift } from './firstboot';
import { provisionDrift } from './provision';

const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheNodeHostKeyOfTheNode01';
const marker = { node: 'w-1', startedAt: 1700000000, completedAt: 1700000090, steps: ['network', 'planes'] };
const recorded = { node: 'w-1', vmid: 3002, firstboot: marker, sshHostKey: key };

describe('firstboot probe (factsDrift)', () => {
  it('finds nothing moved whether or not the marker file ends with a newline', () => {
    expect(factsDrift(recorded, `${JSON.stringify(marker)}\n\n${key} root@w-1\n`)).toEqual([]);
    expect(factsDrift(recorded, `${JSON.stringify(marker)}\n${key} root@w-1\n`)).toEqual([]);
  });
  it('names a new first boot, a changed host key, a missing marker', () => {
    expect(factsDrift(recorded, `${JSON.stringify({ ...marker, startedAt: 1700009999 })}\n${key}\n`)).toEqual(['it booted for the first time again (a new VM)']);
    expect(factsDrift(recorded, `${JSON.stringify(marker)}\nssh-ed25519 AAAAOther root@w-1\n`)).toEqual(['its SSH host key changed']);
    expect(factsDrift(recorded, `\n${key}\n`)).toEqual(['its first-boot marker is missing or unreadable']);
    expect(factsDrift(undefined, '')).toEqual(['no facts were recorded for it']);
  });
});

describe('provision probe (provisionDrift)', () => {
  const vms = p.nodes.map((n) => ({ vmid: n.vmid, name: n.name, tags: ['kubedos', `cluster-${p.cluster.name}`], status: 'running' as const }));
  it('is quiet when every planned VM is present, ours and running', () => {
    expect(provisionDrift(p, vms)).toEqual([]);
  });
  it('names a VM that is absent, stopped, or not this cluster\'s', () => {
    expect(provisionDrift(p, vms.slice(1))).toEqual([`master (VMID ${p.nodes[0]!.vmid}) is absent`]);
    expect(provisionDrift(p, vms.map((v, i) => (i === 2 ? { ...v, status: 'stopped' as const } : v)))).toEqual([`w-1 (VMID ${p.nodes[2]!.vmid}) is stopped`]);
    expect(provisionDrift(p, vms.map((v, i) => (i === 1 ? { ...v, tags: ['kubedos', 'cluster-other'] } : v)))).toEqual([`VMID ${p.nodes[1]!.vmid} is not this cluster's`]);
  });
});

describe('enroll probe (enrollDrift)', () => {
  const now = 1_800_000_000;
  const peers = (age: number) => [{ publicKey: 'a', endpoint: 'x', allowedIps: [], latestHandshake: now - age }, { publicKey: 'b', endpoint: 'y', allowedIps: [], latestHandshake: now - age }];
  const planes = (age: number) => ({ node: 'master', hub: true, nftables: true, planes: Object.fromEntries(['wg1', 'wg2', 'wg3'].map((x) => [x, { up: true, peers: peers(age) }])) });
  const hub = { enrolled: ['cp-1', 'w-1'], revoked: [], window: null };
  it('is quiet when every spoke is enrolled, no window is open and every peer shook hands recently', () => {
    expect(enrollDrift(p, hub, planes(30), now)).toEqual([]);
  });
  it('names what moved: a spoke off the roster, an open window, stale handshakes', () => {
    expect(enrollDrift(p, { ...hub, enrolled: ['cp-1'] }, planes(30), now)).toContain('not enrolled on the hub: w-1');
    expect(enrollDrift(p, { ...hub, window: { listen: '0.0.0.0', port: 8443, closesAt: now + 60 } }, planes(30), now)).toContain('the enrollment window is open');
    expect(enrollDrift(p, hub, planes(400), now)).toContain('wg1: a peer has no handshake in the last 300 s');
  });
});
