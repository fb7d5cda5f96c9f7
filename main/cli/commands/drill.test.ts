// `kubedos drill` / `kubedos heal` without root: what they refuse and say before touching
// anything, and the history table from records in the workspace. The lab runs are in
// e2e/lab/drills.lab.test.ts.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../../testing/temp-dir';
import { emptyPhases } from '../../../common/drills/timeline';
import type { DrillRecord } from '../../../common/drills/timeline';
import { TEMPLATES } from '../../../common/spec/index';
import { saveDrillRecord } from '../../drills/history';
import { writeDeployJournal } from '../../upgrade/testing';
import { acquireDeployLock, clusterWorkspace } from '../../workspace';
import type { CliIo } from '../command';
import { drillCommand } from './drill';
import { healCommand } from './heal';

afterAll(removeTempDirs);

function setup() {
  const dir = tempDir('kd-drill-');
  writeFileSync(join(dir, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
  const out: string[] = [];
  const err: string[] = [];
  const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
  const io: CliIo = { out: (t) => out.push(t), err: (t) => err.push(t), cwd: dir, env, signal: new AbortController().signal, isTty: false };
  return { dir, out, err, io, env };
}

describe('kubedos drill / heal', () => {
  it('without --lab acts on the deployed cluster: refused on a cluster that was never deployed and on the only etcd member (no quorum without it), before anything is touched', async () => {
    const s = setup();
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'delete-worker-vm', '--allow-destroy'], s.io)).toBe(1);
    expect(s.err.at(-1)).toMatch(/^refused: lab-3 has no deploy in its journal \(.*journal.*\): deploy it first \(kubedos deploy lab-3\.yaml\), then run the drill$/);
    expect(await healCommand.run(['lab-3.yaml'], s.io)).toBe(1);
    expect(s.err.at(-1)).toMatch(/^refused: lab-3 has no deploy in its journal/);
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'power-off-node', '--node', 'cp-1'], s.io)).toBe(1);
    // lab-3's only etcd member: taking it out leaves no quorum, whatever the scenario.
    const single = /^cp-1 is an etcd member of lab-3 and taking cp-1's etcd member out would leave 0 of 1 members healthy; quorum needs 1 \(cp-1 is the only member\): an etcd member is drilled only when the others keep quorum without it \(3 or more members\); nothing was touched$/;
    expect(s.err.at(-1)).toMatch(single);
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'kill-etcd-member'], s.io)).toBe(1);
    expect(s.err.at(-1)).toMatch(single);
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'delete-control-plane-vm', '--allow-destroy'], s.io)).toBe(1);
    expect(s.err.at(-1)).toMatch(single);
    // Deployed, but another operation holds the cluster's lock: refused before the fault, not at replace.
    writeDeployJournal('lab-3', s.env);
    const release = acquireDeployLock(clusterWorkspace('lab-3', s.env), 'kubedos stop lab-3.yaml');
    try {
      expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'partition-node'], s.io)).toBe(1);
      expect(s.err.at(-1)).toMatch(new RegExp(`^refused: another operation holds lab-3's lock \\(pid ${process.pid}, kubedos stop lab-3\\.yaml, since .*\\): wait for it to end or stop it, then run the drill$`));
      expect(await healCommand.run(['lab-3.yaml'], s.io)).toBe(1);
      expect(s.err.at(-1)).toMatch(/^refused: another operation holds lab-3's lock .*then run the heal$/);
    } finally {
      release();
    }
    expect(s.out).toEqual([]);
    // Nothing was written: no drill record, no VM state.
    expect(existsSync(join(s.env.KUBEDOS_WORKSPACE, 'clusters/lab-3/drills'))).toBe(false);
    expect(existsSync(join(s.env.KUBEDOS_WORKSPACE, 'clusters/lab-3/vms'))).toBe(false);
  });

  it('an invalid or missing spec: both say why and that nothing ran, before anything is touched', async () => {
    const s = setup();
    writeFileSync(join(s.dir, 'bad.yaml'), 'apiVersion: kubedos.io/v1\nkind: ClusterSpec\n');
    for (const run of [() => drillCommand.run(['bad.yaml', '--scenario', 'partition-node', '--lab'], s.io), () => healCommand.run(['bad.yaml'], s.io)]) {
      s.err.length = 0;
      expect(await run()).toBe(1);
      expect(s.err.length).toBeGreaterThan(1);
      expect(s.err.at(-1)).toBe('bad.yaml: not valid; nothing run (run kubedos validate bad.yaml)');
    }
    s.err.length = 0;
    expect(await healCommand.run(['gone.yaml'], s.io)).toBe(1);
    expect(s.err[0]).toMatch(/^kubedos: spec file not found: .*gone\.yaml/);
    expect(s.out).toEqual([]);
    expect(existsSync(s.env.KUBEDOS_WORKSPACE)).toBe(false);
  });

  it('refuses a scenario outside the catalogue, a node that does not exist, the hub and a lone etcd member', async () => {
    const s = setup();
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'rotate-wireguard-keys', '--lab'], s.io)).toBe(1);
    expect(s.err.at(-1)).toMatch(/^rotate-wireguard-keys: key rotation is maintenance/);
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'partition-plane-wg3'], s.io)).toBe(1);
    expect(s.err.at(-1)).toBe('"partition-plane-wg3" is called partition-node in the catalogue: kubedos drill lab-3.yaml --scenario partition-node');
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'partition-node', '--node', 'w-9', '--lab'], s.io)).toBe(1);
    expect(s.err.at(-1)).toBe('there is no node "w-9" in lab-3; nodes: master, cp-1, w-1');
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'partition-node', '--node', 'master', '--lab'], s.io)).toBe(1);
    expect(s.err.at(-1)).toMatch(/^refused: master is the hub/);
    expect(await drillCommand.run(['lab-3.yaml', '--scenario', 'delete-worker-vm', '--lab'], s.io)).toBe(1);
    expect(s.err.at(-1)).toMatch(/^delete-worker-vm cannot run in the namespace lab: it needs a hypervisor/);
    await expect(drillCommand.run(['lab-3.yaml'], s.io)).rejects.toThrow(/--scenario NAME is needed/);
  });

  it('--history prints the recorded drills, oldest first', async () => {
    const s = setup();
    expect(await drillCommand.run(['lab-3.yaml', '--history'], s.io)).toBe(0);
    expect(s.out.at(-1)).toBe('no drills recorded for lab-3');
    const base: DrillRecord = {
      schema: 'kubedos.drill/v1',
      id: 'b',
      kind: 'drill',
      cluster: 'lab-3',
      scenario: 'partition-node',
      node: 'w-1',
      target: 'lab',
      status: 'passed',
      startedAtMs: Date.UTC(2026, 11, 2, 10, 0, 0),
      phases: emptyPhases().map((p, i) => ({ ...p, state: 'done', startedAtMs: 1000 * i, endedAtMs: 1000 * i + 900, durationMs: 900 })),
      mttrMs: 4900,
      pass: true,
      goal: { minutes: 30, source: 'acceptance.mttrTargetMinutes' },
      thresholds: { heartbeatSeconds: 10, silenceSeconds: 60, handshakeMaxAgeSeconds: 180, signals: ['guest-agent', 'wg-handshake', 'etcd-member'], source: 'spec' },
      guard: { ok: true, reasons: [] },
    };
    saveDrillRecord(base, s.env);
    saveDrillRecord({ ...base, id: 'a', startedAtMs: base.startedAtMs - 60_000, status: 'interrupted', mttrMs: undefined, pass: undefined }, s.env);
    expect(await drillCommand.run(['lab-3.yaml', '--history'], s.io)).toBe(0);
    const rows = s.out.at(-1)?.split('\n') ?? [];
    expect(rows[0]).toMatch(/^ID\s+STARTED\s+SCENARIO\s+NODE\s+WHERE\s+DETECT\s+DETECTED BY\s+MTTR\s+TARGET\s+RESULT$/);
    expect(rows[1]).toMatch(/^a\s+2026-12-02T09:59:00Z\s+partition-node\s+w-1\s+lab\s+0\.90 s\s+30 min\s+interrupted$/);
    expect(rows[2]).toMatch(/^b\s+2026-12-02T10:00:00Z\s+partition-node\s+w-1\s+lab\s+0\.90 s\s+4\.90 s\s+30 min\s+pass$/);

    // --export: the same report as the workbench's, JSON or HTML by the file name, private mode.
    expect(await drillCommand.run(['lab-3.yaml', '--history', '--export', 'r.json'], s.io)).toBe(0);
    expect(s.out.at(-1)).toBe(`wrote the drill report of lab-3 (2 drills) to ${join(s.dir, 'r.json')}`);
    const rep = JSON.parse(readFileSync(join(s.dir, 'r.json'), 'utf8'));
    expect(rep.records.map((r: DrillRecord) => r.id)).toEqual(['a', 'b']);
    expect(rep.scenarios[0]).toMatchObject({ scenario: 'partition-node', drills: 2, measured: 1, passed: 1, medianMttrMs: 4900 });
    expect(statSync(join(s.dir, 'r.json')).mode & 0o777).toBe(0o600);
    expect(await drillCommand.run(['lab-3.yaml', '--history', '--export', 'r.html'], s.io)).toBe(0);
    expect(readFileSync(join(s.dir, 'r.html'), 'utf8')).toContain('<h1>Drill report — lab-3</h1>');
    await expect(drillCommand.run(['lab-3.yaml', '--history', '--export', 'r.txt'], s.io)).rejects.toThrow(/\.json or \.html/);
    await expect(drillCommand.run(['lab-3.yaml', '--export', 'r.json'], s.io)).rejects.toThrow(/--export goes with --history/);
    mkdirSync(join(s.dir, 'd.json'));
    expect(await drillCommand.run(['lab-3.yaml', '--history', '--export', 'd.json'], s.io)).toBe(1);
    expect(s.err.at(-1)).toMatch(/is a directory/);
  });
});
