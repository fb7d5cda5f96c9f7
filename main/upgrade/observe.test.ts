// The observer (common/upgrade/observe.ts) fed with what the REAL node scripts print, one case per
// way an upgrade of a node can end, walked boot by boot without a VM:
// - payload/upgrade/kubedos-slot-write writes N+1 into slot B of a real loop-device A/B disk and
//   sets the try (as in slot-write.test.ts);
// - boot-select.cfg (GRUB's side) picks each boot's slot through the bash simulator (testing.ts);
// - kubedos-health-gate runs with its checks stubbed on PATH (as boot-counting.test.ts does) and
//   writes kubedos.prom;
// - `kubedos-boot status` and kubedos.prom go to observeBoot, which must give the verdict;
// - the update agent's state machine (common/upgrade/agent.ts) is walked beside it on the same
//   outputs (bootedEvent, gateEvent) and must end in the matching state.
// Needs root and loop devices for the loop-device half (skipped with the reason otherwise).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentEvent, AgentState, BuildRef } from '../../common/upgrade/agent';
import { initialAgentState, next } from '../../common/upgrade/agent';
import { bootedEvent, gateEvent, observeBoot, parseBootStatus, parseGateMetrics } from '../../common/upgrade/observe';
import { abDiskBytes, renderAbPartitionTable, type AbLayoutInput } from './ab-layout';
import { grubBootSelect, killSlotWriteMidWrite } from './testing';

const UPGRADE = join(import.meta.dirname, '../../payload/upgrade');
const MiB = 1024 * 1024;
const ROOT_MIB = 16;
const root = mkdtempSync(join(tmpdir(), 'kd-h18a-observe-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('observeBoot: parsing and edge cases', () => {
  const status = (o: Record<string, string>): string => Object.entries({ booted: 'A', active: 'A', try: '', tries: '0', failed: '', ...o }).map(([k, v]) => `${k}=${v}`).join('\n');
  it('refuses output it cannot read, and a node not booted through grub-ab.cfg, with what it got', () => {
    expect(parseBootStatus('kubedos-boot: no boot environment at /x')).toMatchObject({ ok: false, message: expect.stringMatching(/kubedos-boot status is unreadable \(booted missing\): got "kubedos-boot: no boot environment at \/x"/) });
    expect(observeBoot({ tried: 'B', status: status({ booted: '' }) })).toMatchObject({ verdict: 'unreadable', message: expect.stringMatching(/no kubedos\.slot= on the kernel command line/) });
    expect(observeBoot({ tried: 'B', status: status({ active: 'C' }) })).toMatchObject({ verdict: 'unreadable', message: expect.stringMatching(/^kubedos-boot status is unreadable \(active "C": .*\): got "booted=A/) });
  });
  it('the agent\'s events from the scripts\' lines', () => {
    expect(gateEvent('gate: services ok\ngate: pass (slot B after 5 s)\n')).toEqual({ type: 'gate', pass: true });
    expect(gateEvent('gate: services FAILED: not active: etcd\ngate: fail (services: not active: etcd) after 240 s on slot B\nkubedos-boot: slot B failed')).toEqual({ type: 'gate', pass: false, check: 'services: not active: etcd' });
    expect(gateEvent('gate: fail (planes: planes down: wg2) on the active slot A: nothing to fall back to; heal the node')).toEqual({ type: 'gate', pass: false, check: 'planes: planes down: wg2' });
    expect(gateEvent('gate: planes ok\n')).toBeUndefined();
    const st = parseBootStatus('booted=A\nactive=A\ntry=\ntries=0\nfailed=B\n');
    expect(st.ok && bootedEvent(st.value)).toEqual({ type: 'booted', booted: 'A', failed: 'B' });
  });

  it('metrics of the fallback slot are never blamed on the tried slot', () => {
    const fallbackProm = 'kubedos_boot_slot{slot="A"} 1\nkubedos_boot_success 0\nkubedos_health_gate_check{check="planes"} 0\n';
    expect(observeBoot({ tried: 'B', status: status({ failed: 'B' }), metrics: fallbackProm })).toEqual({ verdict: 'rolled-back', slot: 'B', fellBackTo: 'A', reason: expect.stringMatching(/^slot B ran out of boot tries/) });
    expect(parseGateMetrics(fallbackProm)).toEqual({ booted: 'A', success: false, checks: { planes: false }, unitsFailed: [] });
  });

  it('a unit systemd gave up on names the failure (services and the unit), whatever other check failed with it', () => {
    // As kubedos-health-gate writes it when kubedos-backplane failed for good on slot B (its planes down with it).
    const onB = 'kubedos_boot_slot{slot="B"} 1\nkubedos_boot_success 0\nkubedos_health_gate_check{check="planes"} 0\nkubedos_health_gate_check{check="services"} 0\nkubedos_health_gate_unit_failed{unit="kubedos-backplane.service"} 1\n';
    expect(parseGateMetrics(onB).unitsFailed).toEqual(['kubedos-backplane.service']);
    expect(observeBoot({ tried: 'B', status: status({ booted: 'B', try: 'B' }), metrics: onB })).toEqual({ verdict: 'pending', slot: 'B', triesLeft: 0, gateFailing: 'services' });
    expect(observeBoot({ tried: 'B', status: status({ failed: 'B' }), metrics: onB })).toEqual({
      verdict: 'rolled-back',
      slot: 'B',
      fellBackTo: 'A',
      check: 'services',
      reason: 'slot B failed its health gate (services: kubedos-backplane.service failed, systemd gave up); the node fell back to slot A',
    });
    expect(gateEvent('gate: fail (services: kubedos-backplane.service failed (systemd gave up): not waiting) after 0 s on slot B')).toEqual({ type: 'gate', pass: false, check: 'services: kubedos-backplane.service failed (systemd gave up): not waiting' });
  });
});

// ---- the real scripts on a loop-device A/B disk ----

const isRoot = process.getuid?.() === 0;
const loopTools = spawnSync('losetup', ['--version']).status === 0 && spawnSync('partx', ['--version']).status === 0;
const skipReason = !isRoot ? 'they need root (losetup, partx, writing a block device)' : !existsSync('/dev/loop-control') ? 'this machine has no loop devices (/dev/loop-control)' : !loopTools ? 'losetup or partx is missing (package mount / util-linux)' : undefined;
if (skipReason) console.warn(`observe: the loop-device tests are skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('observeBoot on the outputs of kubedos-slot-write, the GRUB simulator, kubedos-boot and kubedos-health-gate', () => {
  let dev: string | undefined;
  let image: Buffer;
  let sha256: string;
  let env: string;
  let n = 0;
  let n1: BuildRef;
  let agent: AgentState;
  /** One agent transition; a refusal fails the test with its message. */
  const agentStep = (e: AgentEvent | undefined): AgentState => {
    if (!e) throw new Error('no event for the agent');
    const r = next(agent, e);
    if (!r.ok) throw new Error(`agent refused ${e.type} in ${agent.state}: ${r.message}`);
    agent = r.state;
    return agent;
  };
  const bootedNow = (): AgentEvent | undefined => {
    const p = parseBootStatus(status());
    return p.ok ? bootedEvent(p.value) : undefined;
  };
  const cmdline = join(root, 'cmdline');
  // TMPDIR inside this test's folder: the SIGKILLed writer below cannot remove its scratch folder.
  const childEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, KUBEDOS_GRUBENV: env, KUBEDOS_CMDLINE: cmdline, KUBEDOS_DATA: join(root, 'data'), TMPDIR: root });

  beforeAll(() => {
    const layout: AbLayoutInput = { cluster: 'lab-3', role: 'worker', espMiB: 64, rootMiB: ROOT_MIB, dataMiB: 8 };
    const disk = join(root, 'node-disk.raw');
    writeFileSync(disk, '');
    execFileSync('truncate', ['-s', String(abDiskBytes(layout)), disk]);
    execFileSync('sfdisk', ['--quiet', disk], { input: renderAbPartitionTable(layout) });
    dev = execFileSync('losetup', ['--find', '--show', disk], { encoding: 'utf8' }).trim();
    execFileSync('partx', ['--add', dev]); // this machine's loop driver does not scan partitions
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-A', `${dev}p2`]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-B', `${dev}p3`]);
    // N+1's slot B image: an ext4 labelled for slot B, as the engine's cut gives it (slot-write.test.ts proves the cut).
    const img = join(root, 'n1-root-b.img');
    execFileSync('truncate', ['-s', String(ROOT_MIB * MiB), img]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-B', '-U', '7b0a5d1e-0000-4000-8000-000000000018', img]);
    image = readFileSync(img);
    sha256 = createHash('sha256').update(image).digest('hex');
    n1 = { version: '0.2.0', digest: sha256 };
  }, 60_000);

  afterAll(() => {
    if (!dev) return;
    // Exactly the device this test attached: its partitions first, then the loop device itself.
    spawnSync('partx', ['--delete', dev]);
    spawnSync('losetup', ['-d', dev]);
  });

  /** A node on slot A with N, nothing tried; its agent has received N+1 and is about to write it. */
  function freshNode(): void {
    agent = initialAgentState({ version: '0.1.0', digest: '0'.repeat(64) });
    for (const e of [{ type: 'stage', build: n1 }, { type: 'checked', ok: true }, { type: 'received', ok: true }] as AgentEvent[]) agentStep(e);
    env = join(root, `kubedos-${n++}.env`);
    execFileSync('grub-editenv', [env, 'create']);
    execFileSync('grub-editenv', [env, 'set', 'kubedos_active=A']);
    writeFileSync(cmdline, 'BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-A rw panic=10 kubedos.slot=A\n');
  }
  const writeB = (): { status: number; out: string } => {
    const r = spawnSync(join(UPGRADE, 'kubedos-slot-write'), ['--disk', dev!, 'B', sha256, String(image.length)], { input: image, encoding: 'utf8', env: childEnv(), timeout: 60_000 });
    const out = `${r.stdout}${r.stderr}`;
    agentStep(r.status === 0 ? { type: 'written', ok: true } : { type: 'written', ok: false, reason: out.trim().split('\n').pop() ?? 'failed' });
    return { status: r.status ?? -1, out };
  };
  /** One boot: GRUB picks the slot (and may count a try down); the kernel gets kubedos.slot=. */
  const boot = (): string => {
    const slot = grubBootSelect(env, join(UPGRADE, 'boot-select.cfg'));
    writeFileSync(cmdline, `BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-${slot} rw panic=10 kubedos.slot=${slot}\n`);
    return slot;
  };
  const status = (): string => execFileSync(join(UPGRADE, 'kubedos-boot'), ['status'], { encoding: 'utf8', env: childEnv() });
  /** The real gate with its checks stubbed; returns its output and the kubedos.prom it wrote. */
  function gate(failUnit?: string): { status: number; out: string; prom: string } {
    const d = mkdtempSync(join(root, 'gate-'));
    const bin = join(d, 'bin');
    for (const sub of [bin, join(d, 'conf'), join(d, 'textfile')]) mkdirSync(sub, { recursive: true });
    const stub = (name: string, body: string): void => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    stub('systemctl', `case "$*" in *reboot*) echo reboot >> '${join(d, 'log')}'; exit 0 ;; esac\n[ "$3" != '${failUnit ?? ''}' ] || exit 3\nexit 0`);
    stub('kubedos-boot', `exec '${join(UPGRADE, 'kubedos-boot')}' "$@"`);
    writeFileSync(join(d, 'conf/gate-checks'), 'services\n');
    writeFileSync(join(d, 'conf/gate-units'), 'ssh\netcd\n');
    const r = spawnSync(join(UPGRADE, 'kubedos-health-gate'), ['--timeout', failUnit ? '0' : '1', '--interval', '0.5'], {
      encoding: 'utf8',
      env: { ...childEnv(), PATH: `${bin}:${process.env.PATH}`, KUBEDOS_UPGRADE_CONF: join(d, 'conf'), KUBEDOS_METRICS_DIR: join(d, 'textfile') },
      timeout: 30_000,
    });
    const prom = join(d, 'textfile/kubedos.prom');
    return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`, prom: existsSync(prom) ? readFileSync(prom, 'utf8') : '' };
  }

  it('a good B: staged after the write, pending after the reboot, committed after its gate', () => {
    freshNode();
    expect(writeB()).toMatchObject({ status: 0, out: expect.stringMatching(/read back from the device/) });
    expect(observeBoot({ tried: 'B', status: status() })).toEqual({ verdict: 'staged', slot: 'B', fallback: 'A' });
    expect(agent.state).toBe('staged');
    expect(boot()).toBe('B');
    expect(agentStep(bootedNow()).state).toBe('verifying');
    expect(observeBoot({ tried: 'B', status: status() })).toEqual({ verdict: 'pending', slot: 'B', triesLeft: 2 });
    const g = gate();
    expect(g).toMatchObject({ status: 0, out: expect.stringMatching(/gate: pass \(slot B after 0 s\)/) });
    expect(observeBoot({ tried: 'B', status: status(), metrics: g.prom })).toEqual({ verdict: 'committed', slot: 'B' });
    expect(agentStep(gateEvent(g.out))).toMatchObject({ state: 'committed', active: 'B', running: n1, bad: [] });
    expect(boot()).toBe('B');
    expect(observeBoot({ tried: 'B', status: status(), metrics: g.prom }).verdict).toBe('committed');
  });

  it('a B that never boots: GRUB tries it 3 times and falls back; rolled back to A, no gate check to blame', () => {
    freshNode();
    expect(writeB().status).toBe(0);
    // The kernel never comes up: no gate runs on B; GRUB counts the tries down.
    expect([boot(), boot(), boot()]).toEqual(['B', 'B', 'B']);
    expect(observeBoot({ tried: 'B', status: status() })).toMatchObject({ verdict: 'pending', triesLeft: 0 });
    expect(boot()).toBe('A');
    const onA = gate(); // the gate of the fallback boot (active slot): it reports, it rewrites kubedos.prom
    expect(onA.status).toBe(0);
    expect(onA.prom).toMatch(/^kubedos_boot_failed_slot\{slot="B"\} 1$/m);
    expect(observeBoot({ tried: 'B', status: status(), metrics: onA.prom })).toEqual({
      verdict: 'rolled-back',
      slot: 'B',
      fellBackTo: 'A',
      reason: 'slot B ran out of boot tries without passing its health gate (it never came up, or its gate never ran); the node fell back to slot A',
    });
    // The agent (it runs on the fallback boot) records the build as bad and refuses it from then on.
    expect(agentStep(bootedNow())).toMatchObject({ state: 'rolled-back', active: 'A', bad: [{ digest: sha256, slot: 'B', reason: 'it ran out of boot tries without passing its health gate' }] });
    expect(next(agent, { type: 'stage', build: n1 })).toMatchObject({ ok: false, code: 'bad-build' });
  });

  it('a B that fails its gate: pending with the failing check before the reboot, then rolled back naming the check', () => {
    freshNode();
    expect(writeB().status).toBe(0);
    expect(boot()).toBe('B');
    agentStep(bootedNow());
    const onB = gate('etcd');
    expect(agentStep(gateEvent(onB.out))).toMatchObject({ state: 'verifying', gateFailure: 'services: not active: etcd' });
    expect(onB).toMatchObject({ status: 1, out: expect.stringMatching(/gate: fail \(services: not active: etcd\) after 0 s on slot B/) });
    expect(onB.out).toMatch(/next boot falls back to slot A/);
    expect(observeBoot({ tried: 'B', status: status(), metrics: onB.prom })).toEqual({ verdict: 'pending', slot: 'B', triesLeft: 0, gateFailing: 'services' });
    expect(boot()).toBe('A');
    expect(observeBoot({ tried: 'B', status: status(), metrics: onB.prom })).toEqual({
      verdict: 'rolled-back',
      slot: 'B',
      fellBackTo: 'A',
      check: 'services',
      reason: 'slot B failed its health gate (services); the node fell back to slot A',
    });
    expect(agentStep(bootedNow())).toMatchObject({ state: 'rolled-back', reason: 'slot B (0.2.0) rolled back to slot A: its health gate failed (services: not active: etcd)' });
    expect(agent.bad.map((b) => b.digest)).toEqual([sha256]);
  });

  it('a writer killed mid-write (SIGKILL): after the reboot the node is on A, nothing recorded: not-tried; the next write is tried', async () => {
    freshNode();
    execFileSync('dd', ['if=/dev/zero', `of=${dev}p3`, 'bs=1M', `count=${ROOT_MIB}`, 'conv=fsync', 'status=none']);
    const head = (): Buffer => execFileSync('dd', [`if=${dev}p3`, 'bs=1M', 'count=1', 'iflag=direct', 'status=none']);
    const { signal, out } = await killSlotWriteMidWrite([join(UPGRADE, 'kubedos-slot-write'), '--disk', dev!, 'B', sha256, String(image.length)], childEnv(), image, head);
    expect(signal).toBe('SIGKILL');
    expect(out).not.toMatch(/holds/);
    // The agent died with the writer (a power cut): back up, it finds its state file at writing.
    expect(agent.state).toBe('writing');
    agentStep({ type: 'written', ok: false, reason: 'interrupted: the node restarted during the write' });
    expect(boot()).toBe('A'); // the foundry reboots the node (or power came back)
    expect(observeBoot({ tried: 'B', status: status() })).toEqual({
      verdict: 'not-tried',
      slot: 'B',
      bootedSlot: 'A',
      reason: 'the node booted slot A with no try of slot B pending and no failure recorded: the try was lost (the slot write did not finish, or was withdrawn); write slot B again',
    });
    expect(agent).toMatchObject({ state: 'failed', bad: [], reason: 'writing: interrupted: the node restarted during the write' });
    // Not the build's fault: the same build is staged again, and this time written.
    for (const e of [{ type: 'stage', build: n1 }, { type: 'checked', ok: true }, { type: 'received', ok: true }] as AgentEvent[]) agentStep(e);
    expect(writeB().status).toBe(0);
    expect(agent.state).toBe('staged');
    expect(observeBoot({ tried: 'B', status: status() }).verdict).toBe('staged');
  });
});
