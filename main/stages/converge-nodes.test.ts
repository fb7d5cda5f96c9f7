// convergeNodes (converge.ts): the converge of a few nodes outside a deploy run, as `kubedos
// upgrade` runs it for a node whose gate passed on N+1. A fake driver answers the guest agent;
// what is checked is what reaches the nodes: the playbook limited to the node, the converge key
// authorized where needed, the pinned host keys of every node on the hub, the failure's message.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/index';
import type { GuestExecResult, SubstrateDriver } from '../substrate/driver';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { nodeDeployJournal, WORKSPACE_LAYOUT } from '../workspace';
import { CONVERGE_TAGS, convergeNodes, firstbootFacts, KNOWN_HOSTS } from './converge';

afterAll(removeTempDirs);

const spec = (ansible = true): ClusterSpec => {
  const s = structuredClone(parseSpec(TEMPLATES['lab-3'].text).spec!);
  s.spec.orchestration.ansible.enabled = ansible;
  return s;
};
const p = plan(spec());
const vmid = (name: string): number => p.nodes.find((n) => n.name === name)!.vmid;
const hostKey = (name: string): string => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA${Buffer.from(name).toString('base64')}`;

/** A workspace whose journal holds a deploy's first-boot record (the nodes' host keys). */
function workspace(withFirstboot = true): string {
  const ws = tempDir('kd-h18c-converge-nodes-');
  const nodes = Object.fromEntries(p.nodes.map((n) => [n.name, { node: n.name, vmid: n.vmid, sshHostKey: hostKey(n.name) }]));
  const keys = { wg1: 'k1', wg2: 'k2', wg3: 'k3' };
  const events = [
    { seq: 0, time: '2026-12-02T10:00:00.000Z', runId: 'deploy-1', type: 'run', state: 'started', stages: ['firstboot'], pipeline: 'deploy' },
    ...(withFirstboot ? [{ seq: 1, time: '2026-12-02T10:01:00.000Z', runId: 'deploy-1', type: 'stage', stage: 'firstboot', state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 1, output: { nodes, hub: { node: 'master', lanAddress: '10.0.0.1', enrollment: { address: '10.0.0.1', port: 7443 }, wgPublicKeys: keys, listenPorts: { wg1: 51821, wg2: 51822, wg3: 51823 } }, summary: { stage: 'firstboot', changes: 0, notes: [] } } }] : []),
  ];
  const path = join(ws, WORKSPACE_LAYOUT.journal);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return ws;
}

const RECAP = (hosts: string[], failed = ''): string =>
  [...(failed ? ['TASK [kubedos_etcd : Etcd configuration] ***', `fatal: [${failed}]: FAILED! => {"changed": false, "msg": "etcd did not start"}`] : []), 'PLAY RECAP ***', ...hosts.map((h) => `${h}                       : ok=9    changed=2    unreachable=0    failed=${h === failed ? 1 : 0}    skipped=0    rescued=0    ignored=0`), ''].join('\n');

/** Records every argv and write; the hub already has its converge key; no node has it authorized. */
function fakeDriver(recap: string, ansibleLog?: { path: string; text: string }): { driver: SubstrateDriver; calls: { vmid: number; argv: readonly string[] }[]; writes: { vmid: number; path: string; content: string }[] } {
  const calls: { vmid: number; argv: readonly string[] }[] = [];
  const writes: { vmid: number; path: string; content: string }[] = [];
  const driver = {
    async guestExec(id: number, argv: readonly string[]): Promise<GuestExecResult> {
      calls.push({ vmid: id, argv });
      if (argv.includes('ansible-playbook')) return { exitCode: recap.includes('fatal:') ? 2 : 0, stdout: recap, stderr: '' };
      if (argv[0] === 'sh') return { exitCode: 0, stdout: `${'f'.repeat(64)}\n`, stderr: '' };
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    async guestFileRead(id: number, path: string): Promise<Buffer> {
      if (id === vmid('master') && path === '/root/.ssh/kubedos_converge.pub') return Buffer.from('ssh-ed25519 AAAAhubkey kubedos-converge@master\n');
      // ansible's own log, once the playbook ran (the follower's first look comes only after 4 s).
      if (id === vmid('master') && path === ansibleLog?.path && calls.some((c) => c.argv.includes('ansible-playbook'))) return Buffer.from(ansibleLog.text);
      throw new Error('no such file');
    },
    async guestFileWrite(id: number, path: string, content: string | Uint8Array): Promise<void> {
      writes.push({ vmid: id, path, content: Buffer.from(content).toString('utf8') });
    },
  } as unknown as SubstrateDriver;
  return { driver, calls, writes };
}

const AUTHORIZED = '/home/ops/.ssh/authorized_keys';

describe('convergeNodes: one node converged from the hub, outside a deploy run', () => {
  it('w-1: the playbook with the converge tags limited to w-1; the key authorized on w-1 only; the hub pins every node', async () => {
    const { driver, calls, writes } = fakeDriver(RECAP(['w-1']));
    const logs: string[] = [];
    expect(await convergeNodes({ spec: spec(), plan: p, driver, workspace: workspace(), env: {}, nodes: ['w-1'], log: (l) => logs.push(l) })).toEqual({ changes: 6 }); // the key on w-1, known_hosts, deploy vars, inventory, 2 by Ansible
    const play = calls.find((c) => c.argv.includes('ansible-playbook'))!;
    expect(play.vmid).toBe(vmid('master'));
    expect(play.argv.slice(play.argv.indexOf('--tags'))).toEqual(['--tags', CONVERGE_TAGS.join(','), '--limit', 'w-1', 'site.yml']);
    expect(play.argv).toContain('ANSIBLE_LOG_PATH=/var/log/kubedos/converge-upgrade-w-1.log');
    expect(writes.filter((w) => w.path === AUTHORIZED).map((w) => w.vmid)).toEqual([vmid('w-1')]);
    const known = writes.find((w) => w.path === KNOWN_HOSTS)!;
    expect(known.vmid).toBe(vmid('master'));
    for (const n of p.nodes) expect(known.content).toContain(hostKey(n.name));
    expect(logs).toContain('converged: w-1 changed=2');
  });

  it('ansible\'s log read once more after the run: its last lines streamed, and one line of where the time went', async () => {
    const at = (t: string, text: string): string => `2026-12-06 ${t} p=9 u=root n=ansible | ${text}`;
    const text = [at('10:00:00,000', 'PLAY [Baseline hardening] ***'), at('10:00:01,000', 'TASK [kubedos_baseline : Auditd runs] ***'), at('10:01:31,000', 'changed: [w-1]'), at('10:01:31,000', 'TASK [kubedos_wireguard : Read the planes\' state] ***'), at('10:01:40,000', 'ok: [w-1]'), at('10:01:41,000', 'PLAY RECAP ***'), at('10:01:41,000', 'w-1 : ok=2 changed=1 unreachable=0 failed=0'), ''].join('\n');
    const { driver } = fakeDriver(RECAP(['w-1']), { path: '/var/log/kubedos/converge-upgrade-w-1.log', text });
    const logs: string[] = [];
    await convergeNodes({ spec: spec(), plan: p, driver, workspace: workspace(), env: {}, nodes: ['w-1'], log: (l) => logs.push(l) });
    expect(logs).toContain('PLAY RECAP ***');
    expect(logs).toContain('w-1 : ok=2 changed=1 unreachable=0 failed=0');
    expect(logs).toContain("time in ansible 1m41s: 2 tasks, median 50.0 s each; the 2 slowest (99% of it): kubedos_baseline : Auditd runs 1m30s, kubedos_wireguard : Read the planes' state 10.0 s (per task: /var/log/kubedos/converge-upgrade-w-1.log on master)");
  });

  it('the hub: its new slot made its converge key anew, so the key is authorized on every node', async () => {
    const { driver, writes } = fakeDriver(RECAP(['master']));
    await convergeNodes({ spec: spec(), plan: p, driver, workspace: workspace(), env: {}, nodes: ['master'] });
    expect(writes.filter((w) => w.path === AUTHORIZED).map((w) => w.vmid).sort()).toEqual(p.nodes.map((n) => n.vmid).sort());
  });

  it('a failed task: the error names the node, the task, the message and the log on the hub', async () => {
    const { driver } = fakeDriver(RECAP(['w-1'], 'w-1'));
    await expect(convergeNodes({ spec: spec(), plan: p, driver, workspace: workspace(), env: {}, nodes: ['w-1'] })).rejects.toThrow('w-1: converge task "kubedos_etcd : Etcd configuration" failed: etcd did not start; full log on master: /var/log/kubedos/converge-upgrade-w-1.log');
  });

  it('no first-boot record: refused before any node is touched, saying what to run; Ansible off: nothing to converge', async () => {
    const { driver, calls, writes } = fakeDriver(RECAP(['w-1']));
    await expect(convergeNodes({ spec: spec(), plan: p, driver, workspace: workspace(false), env: {}, nodes: ['w-1'] })).rejects.toThrow(/^no usable first-boot record in .*journal.*: rerun the deploy \(kubedos deploy SPEC\), then the upgrade$/);
    expect(await convergeNodes({ spec: spec(false), plan: p, driver, workspace: workspace(), env: {}, nodes: ['w-1'] })).toEqual({ changes: 0 });
    expect(calls).toEqual([]);
    expect(writes).toEqual([]);
  });
});

describe('firstbootFacts: the host keys a converge outside a deploy pins', () => {
  /** A scoped deploy run of `node` (a replacement) recorded at `time` with its new host key. */
  function nodeRun(ws: string, node: string, time: string, key: string): void {
    const n = p.nodes.find((x) => x.name === node)!;
    const keys = { wg1: 'k1', wg2: 'k2', wg3: 'k3' };
    const events = [
      { seq: 0, time, runId: `deploy-${node}`, type: 'run', state: 'started', stages: ['firstboot'], pipeline: `deploy ${node}` },
      { seq: 1, time, runId: `deploy-${node}`, type: 'stage', stage: 'firstboot', state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 1, output: { nodes: { [node]: { node, vmid: n.vmid, sshHostKey: key } }, hub: { node: 'master', lanAddress: '10.0.0.1', enrollment: { address: '10.0.0.1', port: 7443 }, wgPublicKeys: keys, listenPorts: { wg1: 51821, wg2: 51822, wg3: 51823 } }, summary: { stage: 'firstboot', changes: 0, notes: [] } } },
    ];
    const path = join(ws, nodeDeployJournal(node));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  }

  it('a node replaced since the deploy: its new key from its own run\'s journal; the others\' (and an older run\'s) from the deploy', () => {
    const ws = workspace();
    nodeRun(ws, 'w-1', '2026-12-03T09:00:00.000Z', hostKey('w-1 replaced'));
    nodeRun(ws, 'cp-1', '2026-12-01T09:00:00.000Z', hostKey('cp-1 before the deploy'));
    const f = firstbootFacts(ws, ['w-1', 'cp-1']);
    expect(f.data.nodes['w-1']?.sshHostKey).toBe(hostKey('w-1 replaced'));
    expect(f.data.nodes['cp-1']?.sshHostKey).toBe(hostKey('cp-1'));
    expect(f.data.nodes.master?.sshHostKey).toBe(hostKey('master'));
    // Only the nodes converged are looked up.
    expect(firstbootFacts(ws, ['cp-1']).data.nodes['w-1']?.sshHostKey).toBe(hostKey('w-1'));
  });

  it('no first-boot record in the cluster journal: the deploy first', () => {
    expect(() => firstbootFacts(workspace(false), ['w-1'])).toThrow(/no usable first-boot record in .*journal\.jsonl/);
  });
});
