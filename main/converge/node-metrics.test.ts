// kubedos-node-metrics (payload/ansible/roles/kubedos_node_exporter/files), the file every node's
// exporter serves on wg2, run for real with stand-ins for `wg` and `kubedos-boot` on PATH: the
// artifact from the payload manifest, the booted slot, the converge record, handshake ages; one
// sample per labelled series, written whole (no temporary file left), and a clear failure.
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { renderConvergeRecordOnNode } from '../../common/drills/watcher';
import { run } from '../exec/runner';
import { AGENT_STATES, initialAgentState, renderAgentState } from '../../common/upgrade/agent';
import type { AgentStateName } from '../../common/upgrade/agent';
import { sha256Hex } from '../../common/canonical';

afterAll(removeTempDirs);

const SCRIPT = resolve(__dirname, '../../payload/ansible/roles/kubedos_node_exporter/files/kubedos-node-metrics');

function node(o: { boot?: string; wg?: boolean } = {}) {
  const root = tempDir('kd18m-node-metrics-');
  const bin = join(root, 'bin');
  const out = join(root, 'textfile');
  mkdirSync(bin);
  mkdirSync(out);
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  const now = Math.floor(Date.now() / 1000);
  // wg1: the hub 12 s ago; wg2: never; wg3: no such interface.
  if (o.wg !== false) {
    stub(
      'wg',
      [
        'case "$2" in',
        `wg1) printf 'priv\\tpub\\t51820\\toff\\nHUBKEY=\\t(none)\\t192.0.2.1:51820\\t10.111.0.0/24\\t${now - 12}\\t1\\t2\\t25\\n';;`,
        `wg2) printf 'priv\\tpub\\t51821\\toff\\nHUBKEY2=\\t(none)\\t192.0.2.1:51821\\t10.112.0.0/24\\t0\\t0\\t0\\t25\\n';;`,
        '*) echo "Unable to access interface: No such device" >&2; exit 1;;',
        'esac',
      ].join('\n'),
    );
  }
  if (o.boot !== undefined) stub('kubedos-boot', `printf '${o.boot}'`);
  writeFileSync(join(root, 'payload.json'), JSON.stringify({ apiVersion: 'kubedos.ca/v1alpha1', kind: 'Payload', cluster: 'lab-3', artifactVersion: '2026.12.2', role: 'worker', payloadSha256: 'c'.repeat(64) }));
  const env = { PATH: `${bin}:/usr/bin:/bin`, KUBEDOS_METRICS_DIR: out, KUBEDOS_PAYLOAD_JSON: join(root, 'payload.json'), KUBEDOS_CONVERGE_RECORD: join(root, 'converge.json'), KUBEDOS_AGENT_STATE: join(root, 'upgrade/state.json') };
  return { root, out, env, now };
}

const samples = (text: string): string[] => text.split('\n').filter((l) => l && !l.startsWith('#'));

describe('kubedos-node-metrics', () => {
  it('writes the artifact, the booted slot, the converge record and handshake ages for the textfile collector', async () => {
    const n = node({ boot: 'booted=B\nactive=A\ntry=B\ntries=2\nfailed=\n' });
    writeFileSync(n.env.KUBEDOS_CONVERGE_RECORD, renderConvergeRecordOnNode({ runId: 'run-1', node: 'w-1', fingerprint: 'd'.repeat(64) }));
    await run(['python3', SCRIPT], { env: { ...n.env, PYTHONDONTWRITEBYTECODE: '1' } });
    expect(readdirSync(n.out)).toEqual(['kubedos-node.prom']);
    const text = readFileSync(join(n.out, 'kubedos-node.prom'), 'utf8');
    const s = samples(text);
    expect(s).toContain(`kubedos_artifact_info{build_digest="${'c'.repeat(64)}",cluster="lab-3",role="worker",slot="B",version="2026.12.2"} 1`);
    expect(s).toContain(`kubedos_converge_info{fingerprint="${'d'.repeat(64)}",run_id="run-1"} 1`);
    expect(s.find((l) => l.startsWith('kubedos_converge_recorded_timestamp_seconds '))).toMatch(/ \d{10}$/);
    const age = s.find((l) => l.startsWith('kubedos_wireguard_handshake_age_seconds'));
    expect(age).toMatch(/^kubedos_wireguard_handshake_age_seconds\{peer="10\.111\.0\.0\/24",plane="wg1"\} (1[2-9]|[2-9]\d)$/);
    // wg2's peer never shook hands: no age sample for it; wg3 does not answer.
    expect(s.filter((l) => l.startsWith('kubedos_wireguard_handshake_age_seconds'))).toHaveLength(1);
    expect(s.filter((l) => l.startsWith('kubedos_wireguard_up'))).toEqual(['kubedos_wireguard_up{plane="wg1"} 1', 'kubedos_wireguard_up{plane="wg2"} 1', 'kubedos_wireguard_up{plane="wg3"} 0']);
    expect(s.filter((l) => l.startsWith('kubedos_node_metrics_source_ok'))).toEqual([
      'kubedos_node_metrics_source_ok{source="boot"} 1',
      'kubedos_node_metrics_source_ok{source="converge"} 1',
      'kubedos_node_metrics_source_ok{source="payload"} 1',
      'kubedos_node_metrics_source_ok{source="update"} 1',
      'kubedos_node_metrics_source_ok{source="wireguard"} 0',
    ]);
    // One writer per metric: the gate's boot metrics (kubedos.prom) are never written here.
    expect(text).not.toMatch(/kubedos_boot_/);
    // Every sample's metric has its HELP and TYPE, once.
    for (const m of new Set(s.map((l) => l.split(/[{ ]/)[0]!))) {
      expect(text.match(new RegExp(`^# TYPE ${m} gauge$`, 'gm')), m).toHaveLength(1);
      expect(text.match(new RegExp(`^# HELP ${m} `, 'gm')), m).toHaveLength(1);
    }
  });

  it('says single on an image with one root, and nothing about converge before the first one', async () => {
    const n = node({ wg: false });
    await run(['python3', SCRIPT], { env: { ...n.env, PYTHONDONTWRITEBYTECODE: '1' } });
    const s = samples(readFileSync(join(n.out, 'kubedos-node.prom'), 'utf8'));
    expect(s.find((l) => l.startsWith('kubedos_artifact_info'))).toMatch(/slot="single",version="2026\.12\.2"\} 1$/);
    expect(s.some((l) => l.startsWith('kubedos_converge_'))).toBe(false);
    expect(s).toContain('kubedos_node_metrics_source_ok{source="converge"} 1');
  });

  it('without a payload manifest: no artifact sample, the source says 0; an unwritable directory fails saying what to do', async () => {
    const n = node();
    await run(['python3', SCRIPT], { env: { ...n.env, KUBEDOS_PAYLOAD_JSON: join(n.root, 'none.json'), PYTHONDONTWRITEBYTECODE: '1' } });
    const s = samples(readFileSync(join(n.out, 'kubedos-node.prom'), 'utf8'));
    expect(s.some((l) => l.startsWith('kubedos_artifact_info'))).toBe(false);
    expect(s).toContain('kubedos_node_metrics_source_ok{source="payload"} 0');
    const r = await run(['python3', SCRIPT], { env: { ...n.env, KUBEDOS_METRICS_DIR: join(n.root, 'missing'), PYTHONDONTWRITEBYTECODE: '1' }, okExitCodes: [1] });
    expect(r.stderr).toMatch(/^kubedos-node-metrics: cannot write kubedos-node\.prom in .*missing \(.*\): is the node exporter role converged\?\n$/);
  });
});

describe('kubedos-node-metrics: the update agent state (kubedos_update_state)', () => {
  const states = async (n: ReturnType<typeof node>): Promise<string[]> => {
    await run(['python3', SCRIPT], { env: { ...n.env, PYTHONDONTWRITEBYTECODE: '1' } });
    return samples(readFileSync(join(n.out, 'kubedos-node.prom'), 'utf8')).filter((l) => l.startsWith('kubedos_update_state') || l.startsWith('kubedos_node_metrics_source_ok{source="update"}'));
  };
  const expected = (current: AgentStateName): string[] => [...AGENT_STATES.map((s) => `kubedos_update_state{state="${s}"} ${s === current ? 1 : 0}`), 'kubedos_node_metrics_source_ok{source="update"} 1'];

  it('one sample per state of the agent (the same states as common/upgrade/agent.ts), 1 for the state file\'s; no file: idle', async () => {
    const n = node();
    expect(await states(n)).toEqual(expected('idle'));
    mkdirSync(join(n.root, 'upgrade'));
    const running = { version: '0.1.0', digest: sha256Hex('n') };
    const bad = [{ digest: sha256Hex('n1'), version: '0.2.0', slot: 'B' as const, reason: 'its health gate failed (services)' }];
    writeFileSync(n.env.KUBEDOS_AGENT_STATE, renderAgentState({ ...initialAgentState(running), state: 'rolled-back', bad, reason: 'slot B (0.2.0) rolled back to slot A: its health gate failed (services)' }));
    expect(await states(n)).toEqual(expected('rolled-back'));
    writeFileSync(n.env.KUBEDOS_AGENT_STATE, renderAgentState({ ...initialAgentState(running), state: 'verifying', target: { version: '0.2.0', digest: sha256Hex('n1') }, slot: 'B' }));
    expect(await states(n)).toEqual(expected('verifying'));
  });

  it('a state file that is not JSON or names no known state: no kubedos_update_state sample, source update 0', async () => {
    const n = node();
    mkdirSync(join(n.root, 'upgrade'));
    for (const text of ['{not json', JSON.stringify({ schema: 1, state: 'dancing' })]) {
      writeFileSync(n.env.KUBEDOS_AGENT_STATE, text);
      expect(await states(n)).toEqual(['kubedos_node_metrics_source_ok{source="update"} 0']);
    }
  });
});
