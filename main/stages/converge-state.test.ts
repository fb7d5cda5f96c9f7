import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convergeInputs, fingerprintCommand, nodesToConverge, readConvergeState, writeConvergeState } from './converge-state';

const fp = (c: string): string => c.repeat(64);
const inputs = convergeInputs({ planJson: '{"a":1}', payload: [{ path: 'payload/master/x', sha256: fp('1') }], tags: ['baseline'], salt: false });
const state = { inputs, runId: 'run-1', nodes: { master: fp('a'), 'w-1': fp('b') } };

describe('converge skipping', () => {
  it('skips the nodes whose fingerprint matches and runs the one that moved', () => {
    const d = nodesToConverge({ nodes: ['master', 'w-1'], inputs, state, force: false, probes: [{ node: 'master', fingerprint: fp('a') }, { node: 'w-1', fingerprint: fp('c') }] });
    expect(d.skip).toEqual(['master']);
    expect(d.run).toEqual([{ node: 'w-1', why: 'its managed files or services changed since the last converge' }]);
  });

  it('never skips a node whose probe failed, and runs everything on new inputs, --force or no record', () => {
    expect(nodesToConverge({ nodes: ['master'], inputs, state, force: false, probes: [{ node: 'master', error: 'guest agent timeout' }] }).run[0]!.why).toMatch(/probe could not run \(guest agent timeout\)/);
    const other = convergeInputs({ planJson: '{"a":2}', payload: [{ path: 'payload/master/x', sha256: fp('1') }], tags: ['baseline'], salt: false });
    expect(other).not.toBe(inputs);
    expect(nodesToConverge({ nodes: ['master', 'w-1'], inputs: other, state, force: false, probes: [] }).run).toHaveLength(2);
    expect(nodesToConverge({ nodes: ['master'], inputs, state, force: true, probes: [{ node: 'master', fingerprint: fp('a') }] }).run[0]!.why).toBe('--force');
    expect(nodesToConverge({ nodes: ['master'], inputs, force: false, probes: [], stateReason: 'no record of an earlier converge' }).run[0]!.why).toBe('no record of an earlier converge');
    expect(nodesToConverge({ nodes: ['w-2'], inputs, state, force: false, probes: [{ node: 'w-2', fingerprint: fp('a') }] }).run[0]!.why).toBe('never converged');
  });

  it('a corrupt record forces a full converge with a one-line reason', () => {
    const ws = mkdtempSync(join(tmpdir(), 'kd-conv-'));
    try {
      expect(readConvergeState(ws).reason).toBe('no record of an earlier converge');
      writeConvergeState(ws, state);
      expect(readConvergeState(ws).state).toEqual(state);
      writeFileSync(join(ws, 'converge-state.json'), '{"inputs": "x"');
      expect(readConvergeState(ws).reason).toMatch(/is not JSON .*every node converges$/);
      writeFileSync(join(ws, 'converge-state.json'), '{"inputs": "x", "runId": "r", "nodes": {}}');
      expect(readConvergeState(ws).reason).toMatch(/is not a converge record/);
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  it('the fingerprint follows the role-managed files, not the known_hosts or etcd host_vars the engine writes (a replaced node does not move the hub)', () => {
    const root = mkdtempSync(join(tmpdir(), 'kubedos-fp-'));
    try {
      mkdirSync(join(root, 'etc/kubedos/ansible'), { recursive: true });
      mkdirSync(join(root, 'etc/sysctl.d'), { recursive: true });
      writeFileSync(join(root, 'etc/kubedos/ansible/known_hosts'), '10.111.0.4 ssh-ed25519 AAAAold\n');
      writeFileSync(join(root, 'etc/kubedos/ansible/inventory.yml'), 'all: {}\n');
      writeFileSync(join(root, 'etc/sysctl.d/90-kubedos.conf'), 'net.ipv4.ip_forward = 0\n');
      const [sh, c, script] = fingerprintCommand(root);
      const take = () => execFileSync(sh!, [c!, script!], { encoding: 'utf8' }).trim();
      const first = take();
      expect(first).toMatch(/^[0-9a-f]{64}$/);
      writeFileSync(join(root, 'etc/kubedos/ansible/known_hosts'), '10.111.0.4 ssh-ed25519 AAAAnew\n');
      expect(take()).toBe(first);
      // The etcd role's variables the drill engine records for a re-added member (the node's input, not the hub's).
      mkdirSync(join(root, 'etc/kubedos/ansible/host_vars/cp-3'), { recursive: true });
      writeFileSync(join(root, 'etc/kubedos/ansible/host_vars/cp-3/kubedos-etcd-member.yml'), 'kubedos_etcd_initial_cluster_state: existing\n');
      expect(take()).toBe(first);
      writeFileSync(join(root, 'etc/sysctl.d/90-kubedos.conf'), 'net.ipv4.ip_forward = 1\n');
      const moved = take();
      expect(moved).not.toBe(first);
      writeFileSync(join(root, 'etc/kubedos/ansible/inventory.yml'), 'all: {hosts: {}}\n');
      expect(take()).not.toBe(moved);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('the probe is one shell command that prints a sha256 (run here on this host)', () => {
    const [sh, c, script] = fingerprintCommand();
    const out = execFileSync(sh!, [c!, script!], { encoding: 'utf8' }).trim();
    expect(out).toMatch(/^[0-9a-f]{64}$/);
    expect(execFileSync(sh!, [c!, script!], { encoding: 'utf8' }).trim()).toBe(out);
  });
});
