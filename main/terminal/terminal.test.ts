// The node terminal's pins (what first boot recorded, nothing else), its transcript record and
// its output frames. The SSH path itself is exercised in e2e/terminal/terminal.lab.test.ts.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { nodeDeployJournal, WORKSPACE_LAYOUT } from '../workspace';
import { FrameBatcher } from './frames';
import { hostKeyFingerprint, terminalRoute, TerminalTrustError } from './pins';
import { readTranscriptRecords, TranscriptWriter } from './transcript';

const lab3 = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
const KEY = (n: string): string => `ssh-ed25519 ${Buffer.concat([Buffer.from('0000000b7373682d65643235353139', 'hex'), Buffer.from('00000020', 'hex'), createHash('sha256').update(n).digest()]).toString('base64')}`;

let ws: string;
beforeEach(() => {
  ws = mkdtempSync(join(tmpdir(), 'h17-unit-'));
});
afterEach(() => rmSync(ws, { recursive: true, force: true }));

function journal(nodes: Record<string, string | undefined>, extra: object[] = []): void {
  const hub = lab3.nodes.find((n) => n.hub)!;
  const output = {
    nodes: Object.fromEntries(Object.entries(nodes).map(([n, k]) => [n, { node: n, vmid: 1, ...(k ? { sshHostKey: k } : {}) }])),
    hub: { node: hub.name, lanAddress: hub.lan.address, enrollment: { address: hub.lan.address, port: 8443 }, wgPublicKeys: { wg1: 'a', wg2: 'b', wg3: 'c' }, listenPorts: { wg1: 1, wg2: 2, wg3: 3 } },
    summary: { stage: 'firstboot', changes: 0, notes: [] },
  };
  const t = '2026-01-01T00:00:00.000Z';
  const lines = [
    { runId: 'r1', seq: 0, time: t, type: 'run', state: 'started', stages: ['firstboot'], pipeline: 'deploy' },
    { runId: 'r1', seq: 1, time: t, type: 'stage', stage: 'firstboot', state: 'success', rerun: 'safe-rerun', attempt: 1, output },
    ...extra,
  ];
  writeFileSync(join(ws, WORKSPACE_LAYOUT.journal), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}

describe('terminalRoute: host keys only from the first-boot record', () => {
  const all = Object.fromEntries(lab3.nodes.map((n) => [n.name, KEY(n.name)]));

  it('routes a node through the hub at its wg1 address, each hop with its recorded key', () => {
    journal(all);
    const hub = lab3.nodes.find((n) => n.hub)!;
    const w1 = lab3.nodes.find((n) => n.name === 'w-1')!;
    const r = terminalRoute(ws, lab3, 'w-1');
    expect(r.hub).toEqual({ node: hub.name, host: hub.planes.wg1.address.replace(/\/32$/, ''), port: 22, hostKey: all[hub.name] });
    expect(r.target).toEqual({ node: 'w-1', host: w1.planes.wg1.address.replace(/\/32$/, ''), port: 22, hostKey: all['w-1'] });
  });

  it('a node replaced since the deploy (its own scoped deploy run, newer): its new key; an older run of it is not taken', () => {
    journal(all);
    const path = join(ws, nodeDeployJournal('w-1'));
    const run = (time: string, key: string) => {
      const hub = lab3.nodes.find((n) => n.hub)!;
      const output = { nodes: { 'w-1': { node: 'w-1', vmid: 1, sshHostKey: key } }, hub: { node: hub.name, lanAddress: hub.lan.address, enrollment: { address: hub.lan.address, port: 8443 }, wgPublicKeys: { wg1: 'a', wg2: 'b', wg3: 'c' }, listenPorts: { wg1: 1, wg2: 2, wg3: 3 } }, summary: { stage: 'firstboot', changes: 0, notes: [] } };
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, [{ runId: 'n1', seq: 0, time, type: 'run', state: 'started', stages: ['firstboot'], pipeline: 'deploy w-1' }, { runId: 'n1', seq: 1, time, type: 'stage', stage: 'firstboot', state: 'success', rerun: 'safe-rerun', attempt: 1, output }].map((l) => JSON.stringify(l)).join('\n') + '\n');
    };
    run('2025-12-31T00:00:00.000Z', KEY('w-1 before the deploy'));
    expect(terminalRoute(ws, lab3, 'w-1').target?.hostKey).toBe(all['w-1']);
    run('2026-01-02T00:00:00.000Z', KEY('w-1 replaced'));
    expect(terminalRoute(ws, lab3, 'w-1').target?.hostKey).toBe(KEY('w-1 replaced'));
    expect(terminalRoute(ws, lab3, 'w-1').hub.hostKey).toBe(all[lab3.nodes.find((n) => n.hub)!.name]);
  });

  it('opens the hub itself without a second hop; --via replaces the hub address only', () => {
    journal(all);
    const hub = lab3.nodes.find((n) => n.hub)!;
    expect(terminalRoute(ws, lab3, hub.name).target).toBeUndefined();
    const r = terminalRoute(ws, lab3, 'w-1', { hubAddress: '192.0.2.7', port: 2222 });
    expect([r.hub.host, r.hub.port, r.target!.port]).toEqual(['192.0.2.7', 2222, 2222]);
  });

  it('refuses without a deploy: no journal means nothing to pin', () => {
    expect(() => terminalRoute(ws, lab3, 'w-1')).toThrow(TerminalTrustError);
    expect(() => terminalRoute(ws, lab3, 'w-1')).toThrow(/no first-boot record .*deploy the cluster first/);
  });

  it('refuses a node whose key first boot did not record (no trust on first use)', () => {
    journal({ ...all, 'w-1': undefined });
    expect(() => terminalRoute(ws, lab3, 'w-1')).toThrow(/no SSH host key of w-1 in the first-boot record .*no connection is made/);
  });

  it('takes the newest successful firstboot, and forgets one that a later failure replaced', () => {
    journal(all, [{ runId: 'r2', seq: 0, time: 't', type: 'stage', stage: 'firstboot', state: 'failed', rerun: 'safe-rerun', attempt: 1 }]);
    expect(() => terminalRoute(ws, lab3, 'w-1')).toThrow(/no first-boot record/);
  });

  it('names the closest node for a typo', () => {
    journal(all);
    expect(() => terminalRoute(ws, lab3, 'w1')).toThrow(/no node "w1" in cluster lab-3; did you mean w-1\?/);
  });

  it('fingerprints keys the way ssh-keygen -l prints them', () => {
    const key = KEY('x');
    const blob = Buffer.from(key.split(' ')[1]!, 'base64');
    expect(hostKeyFingerprint(key)).toBe(`SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`);
    expect(hostKeyFingerprint(blob)).toBe(hostKeyFingerprint(key));
  });
});

describe('TranscriptWriter', () => {
  it('writes a private file and records its sha256, size and exit in transcripts.jsonl', () => {
    const w = new TranscriptWriter(ws, 'w-1', 'uptime', new Date('2026-01-01T00:00:00Z'));
    w.write(Buffer.from('hello '));
    w.write(Buffer.from('world\n'));
    const rec = w.close(0, new Date('2026-01-01T00:00:05Z'));
    expect(rec).toMatchObject({ node: 'w-1', command: 'uptime', bytes: 12, exitCode: 0, startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:05.000Z' });
    expect(rec.sha256).toBe(createHash('sha256').update('hello world\n').digest('hex'));
    expect(readFileSync(rec.file, 'utf8')).toBe('hello world\n');
    expect(statSync(rec.file).mode & 0o777).toBe(0o600);
    expect(statSync(join(ws, 'terminal')).mode & 0o777).toBe(0o700);
    expect(w.close(1)).toBe(rec);
    expect(readTranscriptRecords(ws)).toEqual([rec]);
  });
});

describe('FrameBatcher', () => {
  it('joins chunks into one frame per interval, and flushes at once past maxBytes', () => {
    vi.useFakeTimers();
    try {
      const frames: string[] = [];
      const b = new FrameBatcher((f) => frames.push(f.toString()), 16, 10);
      b.push(Buffer.from('ab'));
      b.push(Buffer.from('cd'));
      expect(frames).toEqual([]);
      vi.advanceTimersByTime(16);
      expect(frames).toEqual(['abcd']);
      b.push(Buffer.from('0123456789xyz'));
      expect(frames).toEqual(['abcd', '0123456789xyz']);
      b.flush();
      expect(frames).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
