// `kubedos status` reads the last run out of the journal with the same fold as the progress
// display and the workbench (common/pipeline/fold.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../../testing/temp-dir';
import type { PipelineEventBody } from '../../../common/pipeline/events';
import type { CliIo } from '../command';
import { makeStatusCommand, statusCommand } from './status';
import { ClusterStatus, ClusterStatusError } from '../../../common/pipeline/status';
import { LAB3_AGENT_PINGS, lab3MixedFacts, lab3NodeMetrics, watcherReportFor } from '../../../common/health/testing';
import { injectedReader } from '../../health/testing';
import { TEMPLATES } from '../../../common/spec/index';

afterAll(removeTempDirs);

function workspaceWith(lines: string[]): string {
  const ws = tempDir('kd-status-');
  mkdirSync(join(ws, 'clusters/lab-3'), { recursive: true });
  writeFileSync(join(ws, 'clusters/lab-3/journal.jsonl'), `${lines.join('\n')}\n`);
  return ws;
}
let seq = 0;
const line = (runId: string, body: PipelineEventBody) => JSON.stringify({ ...body, runId, seq: seq++, time: '2026-12-01T10:00:00.000Z' });

describe('kubedos status', () => {
  it('shows the last run only, a node a later stage skipped still ok, and the failure', async () => {
    const ws = workspaceWith([
      line('old', { type: 'run', state: 'started', stages: ['provision'], pipeline: 'deploy' }),
      line('old', { type: 'stage', stage: 'provision', state: 'failed', rerun: 'remediates-drift', attempt: 1 }),
      line('new', { type: 'run', state: 'started', stages: ['converge', 'workload'], pipeline: 'deploy' }),
      line('new', { type: 'stage', stage: 'converge', state: 'success', rerun: 'remediates-drift', attempt: 1, durationMs: 2000, changes: 0 }),
      line('new', { type: 'node', stage: 'converge', node: 'w-1', state: 'ok' }),
      line('new', { type: 'node', stage: 'workload', node: 'w-1', state: 'skipped', message: 'no Kubernetes packages' }),
      line('new', { type: 'failed', error: { message: 'kubeadm join timed out', stage: 'workload' } }),
      line('new', { type: 'stage', stage: 'workload', state: 'failed', rerun: 'safe-rerun', attempt: 1, reason: 'kubeadm join timed out' }),
      line('new', { type: 'done', summary: { converge: 'success', workload: 'failed' }, durationMs: 5000 }),
    ]);
    const out: string[] = [];
    const io: CliIo = { out: (t) => out.push(t), err: () => {}, cwd: ws, env: { KUBEDOS_WORKSPACE: ws }, signal: new AbortController().signal, isTty: false };
    expect(await statusCommand.run(['--cluster', 'lab-3', '--json'], io)).toBe(0);
    const st = JSON.parse(out.join('\n'));
    expect(st).toMatchObject({ runId: 'new', finished: true, stages: { converge: { state: 'success', duration: 2000 }, workload: { state: 'failed', reason: 'kubeadm join timed out' } } });
    expect(Object.keys(st.stages)).toEqual(['converge', 'workload']);
    expect(st.nodes['w-1']).toBe('converge: ok (workload skipped: no Kubernetes packages)');
    expect(st.failures).toEqual([{ message: 'kubeadm join timed out', stage: 'workload' }]);
  });

  it('--health reads the hub\'s watcher report through the guest agent, or says plainly why it could not', async () => {
    const ws = workspaceWith([
      line('r1', { type: 'run', state: 'started', stages: ['converge'], pipeline: 'deploy' }),
      line('r1', { type: 'stage', stage: 'converge', state: 'success', rerun: 'remediates-drift', attempt: 1, durationMs: 2000, changes: 0 }),
      line('r1', { type: 'done', summary: { converge: 'success' }, durationMs: 2000 }),
    ]);
    writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const out: string[] = [];
    const io: CliIo = { out: (t) => out.push(t), err: () => {}, cwd: ws, env: { KUBEDOS_WORKSPACE: ws }, signal: new AbortController().signal, isTty: false };
    // No VM runs here: the qemu-local guest agent of the master cannot be reached.
    expect(await statusCommand.run(['lab-3.yaml', '--json', '--health'], io)).toBe(0);
    const st = JSON.parse(out.join('\n'));
    expect(st.health).toMatchObject({ readable: false, hub: 'master', path: '/var/lib/kubedos/health/report.json', reason: expect.stringMatching(/^could not (reach|read)|^no report/) });
    out.length = 0;
    expect(await statusCommand.run(['lab-3.yaml', '--health'], io)).toBe(0);
    expect(out.join('\n')).toMatch(/health \(watcher on master\): could not be read: /);
    await expect(statusCommand.run(['--cluster', 'lab-3', '--health'], io)).rejects.toThrow(/--health needs a SPEC/);
  });

  it('--json prints JSON in every case: bad usage, an unknown option, a missing or invalid spec, with --health too', async () => {
    const ws = workspaceWith([]);
    writeFileSync(join(ws, 'bad.yaml'), 'kind: ClusterSpec\nmetadata: {}\n');
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { out: (t) => out.push(t), err: (t) => err.push(t), cwd: ws, env: { KUBEDOS_WORKSPACE: ws }, signal: new AbortController().signal, isTty: false };
    const json = async (argv: string[]): Promise<{ code: number; value: unknown }> => {
      out.length = 0;
      const code = await statusCommand.run(argv, io);
      return { code, value: JSON.parse(out.join('\n')) };
    };
    const errorOf = (v: unknown) => ClusterStatusError.parse(v).error;
    let r = await json(['--json']);
    expect([r.code, errorOf(r.value).code, errorOf(r.value).message]).toEqual([2, 'usage', expect.stringMatching(/^give a SPEC or --cluster NAME; usage: kubedos status/)]);
    r = await json(['--json', '--health', '--cluster', 'lab-3']);
    expect([r.code, errorOf(r.value).message]).toEqual([2, expect.stringMatching(/^--health needs a SPEC/)]);
    r = await json(['--json', '--helth', 'lab-3.yaml']);
    expect([r.code, errorOf(r.value).message]).toEqual([2, 'unknown option --helth for `kubedos status`; did you mean --health?']);
    r = await json(['missing.yaml', '--json', '--health']);
    expect([r.code, errorOf(r.value).code, errorOf(r.value).message]).toEqual([1, 'invalid-spec', expect.stringMatching(/^spec file not found: /)]);
    r = await json(['bad.yaml', '--json']);
    expect(r.code).toBe(1);
    expect(errorOf(r.value)).toMatchObject({ code: 'invalid-spec', message: expect.stringMatching(/^bad\.yaml: not valid \(\d+ errors?\)$/), diagnostics: expect.arrayContaining([expect.objectContaining({ severity: 'error' })]) });
    expect(err).toEqual([]);
  });

  it('--health --json carries the health now: from the journal when never deployed, else per node from the hub report', async () => {
    const ws = workspaceWith([]);
    writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const at = 1_800_000_000;
    const reader = injectedReader({ report: watcherReportFor(lab3MixedFacts(at), { nodeMetrics: lab3NodeMetrics(at) }), nowSeconds: () => at + 4, agents: LAB3_AGENT_PINGS });
    const status = makeStatusCommand({ reader, nowSeconds: () => at + 4 });
    const out: string[] = [];
    const io: CliIo = { out: (t) => out.push(t), err: () => {}, cwd: ws, env: { KUBEDOS_WORKSPACE: join(ws, 'elsewhere') }, signal: new AbortController().signal, isTty: false };
    expect(await status.run(['lab-3.yaml', '--health', '--json'], io)).toBe(1);
    const never = ClusterStatus.parse(JSON.parse(out.join('\n')));
    expect(never).toMatchObject({ deployed: false, live: { unavailable: { code: 'never-deployed' } } });
    expect(never.health).toBeUndefined();
    expect(reader.calls).toBe(0);

    out.length = 0;
    const deployed = { ...io, env: { KUBEDOS_WORKSPACE: ws } };
    writeFileSync(join(ws, 'clusters/lab-3/journal.jsonl'), `${[line('d1', { type: 'run', state: 'started', stages: ['converge'], pipeline: 'deploy' }), line('d1', { type: 'done', summary: { converge: 'success' }, durationMs: 1 })].join('\n')}\n`);
    expect(await status.run(['lab-3.yaml', '--health', '--json'], deployed)).toBe(0);
    const st = ClusterStatus.parse(JSON.parse(out.join('\n')));
    expect(st.health).toMatchObject({ readable: true, ageSeconds: 4 });
    expect(st.live?.nodes.map((n) => `${n.name}:${n.state}`)).toEqual(['master:healthy', 'cp-1:degraded', 'w-1:unreachable']);

    out.length = 0;
    expect(await status.run(['lab-3.yaml', '--health'], deployed)).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/health now of lab-3: 1 healthy, 1 degraded, 1 unreachable, 0 unknown; report of \d\d:\d\d:\d\d UTC, 4 s old; etcd 0\/1 healthy — NO QUORUM/);
    expect(text).toMatch(/w-1 +unreachable +not read +not read +FAIL: guest agent did not answer a ping at \d\d:\d\d:\d\d UTC +FAIL: wg1 handshake 900 s old \(limit 180 s\)/);
    expect(text).toMatch(/NODE +STATE +VERSION +SLOT +AGENT +WG1 +WG2 +WG3 +ETCD +CONVERGE/);
    // Each node's artifact version and boot slot, as its node exporter serves them to the hub's watcher.
    expect(text).toMatch(/master +healthy +2026\.12\.1 +single +/);
    expect(text).toMatch(/cp-1 +degraded +2026\.12\.2 +b +/);
    expect(st.live?.nodes.map((n) => (n.artifact.read ? `${n.name}:${n.artifact.version}/${n.artifact.slot}` : `${n.name}:-`))).toEqual(['master:2026.12.1/single', 'cp-1:2026.12.2/b', 'w-1:-']);
    expect(text).toMatch(/FAIL: wg1 handshake 900 s old \(limit 180 s\) +FAIL: wg2 handshake 900 s old \(limit 180 s\) +FAIL: no wg3 handshake yet/);
    expect(text).toMatch(/cp-1 +degraded .*ok: wg2 handshake 12 s old +ok: wg3 handshake 47 s old/);
  });
});

describe('kubedos status --health --watch', () => {
  /** Timers that fire at once (the waits asked for are recorded), and a clock that moves by them. */
  function quickTimers() {
    let now = Date.UTC(2026, 11, 3, 15, 0, 0);
    const waits: number[] = [];
    return {
      waits,
      timers: {
        set: (fn: () => void, ms: number) => {
          waits.push(ms);
          return setTimeout(() => {
            now += ms;
            fn();
          }, 1);
        },
        clear: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>),
        now: () => now,
      },
    };
  }

  it('re-prints the table after each read with a timestamp line, waits longer while the hub does not answer, and Ctrl-C exits 0', async () => {
    const ws = workspaceWith([line('w1', { type: 'run', state: 'started', stages: ['converge'], pipeline: 'deploy' }), line('w1', { type: 'done', summary: { converge: 'success' }, durationMs: 1 })]);
    writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const at = 1_800_000_000;
    const up = injectedReader({ report: watcherReportFor(lab3MixedFacts(at)), nowSeconds: () => at + 4, agents: LAB3_AGENT_PINGS });
    const down = injectedReader({ unreachable: 'could not reach master (VMID 9100) through qemu-local: the guest agent did not answer' });
    // The hub answers, then does not twice, then answers again.
    const script = [up, down, down, up];
    let calls = 0;
    const stop = new AbortController();
    let inFlight = 0;
    let overlapped = false;
    const reader: typeof up = Object.assign(
      async (q: Parameters<typeof up>[0]) => {
        overlapped ||= inFlight > 0;
        inFlight++;
        try {
          return await script[Math.min(calls++, script.length - 1)]!(q);
        } finally {
          inFlight--;
        }
      },
      { calls: 0 },
    );
    const { timers, waits } = quickTimers();
    const out: string[] = [];
    // Ctrl-C once the fourth table is printed.
    const io: CliIo = { out: (t) => out.push(t) === script.length && stop.abort(new Error('interrupted')), err: () => {}, cwd: ws, env: { KUBEDOS_WORKSPACE: ws }, signal: stop.signal, isTty: false };
    const status = makeStatusCommand({ reader, nowSeconds: () => at + 4, timers });
    expect(await status.run(['lab-3.yaml', '--health', '--watch', '--interval', '10'], io)).toBe(0);
    expect(calls).toBe(4);
    expect(overlapped).toBe(false);
    // Between reads: the interval, twice it after one failure, four times after two, the interval again.
    expect(waits).toEqual([10_000, 20_000, 40_000]);
    expect(out).toHaveLength(4);
    expect(out[0]).toMatch(/^--- 2026-12-03T15:00:00Z read 1, next in 10 s; Ctrl-C stops\nhealth now of lab-3: 1 healthy, 1 degraded, 1 unreachable, 0 unknown/);
    expect(out[0]).toMatch(/NODE +STATE +VERSION +SLOT +AGENT/);
    expect(out[1]).toMatch(/^--- 2026-12-03T15:00:10Z read 2, next in 20 s \(1 failed read in a row: waiting longer\); Ctrl-C stops\nhealth now of lab-3: cannot be read \(unreadable\): the hub master did not give its health report: could not reach master/);
    expect(out[2]).toMatch(/read 3, next in 40 s \(2 failed reads in a row/);
    expect(out[3]).toMatch(/read 4, next in 10 s; Ctrl-C stops\nhealth now of lab-3: 1 healthy/);
  });

  it('a terminal is redrawn in place; bad combinations are usage errors', async () => {
    const ws = workspaceWith([]);
    writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const stop = new AbortController();
    const out: string[] = [];
    const io: CliIo = { out: (t) => { out.push(t); stop.abort(); }, err: () => {}, cwd: ws, env: { KUBEDOS_WORKSPACE: join(ws, 'none') }, signal: stop.signal, isTty: true };
    const { timers } = quickTimers();
    const reader = injectedReader({ unreachable: 'never asked' });
    expect(await makeStatusCommand({ reader, timers }).run(['lab-3.yaml', '--health', '--watch'], io)).toBe(0);
    expect(out).toHaveLength(1);
    expect(out[0]?.startsWith('\x1b[2J\x1b[H2026-12-03T15:00:00Z read 1, next in 15 s; Ctrl-C stops\nhealth now of lab-3: cannot be read (never-deployed)')).toBe(true);
    expect(reader.calls).toBe(0); // never deployed here: the journal answers, nothing contacted
    const usage = (argv: string[]) => statusCommand.run(argv, { ...io, isTty: false });
    await expect(usage(['lab-3.yaml', '--watch'])).rejects.toThrow(/--watch needs --health/);
    await expect(usage(['lab-3.yaml', '--health', '--watch', '--interval', '1'])).rejects.toThrow(/--interval takes seconds, at least 2 \(got 1\)/);
    await expect(usage(['lab-3.yaml', '--health', '--interval', '5'])).rejects.toThrow(/--interval goes with --watch/);
    await expect(usage(['lab-3.yaml', '--health', '--watch', '--json'])).resolves.toBe(2);
  });
});
