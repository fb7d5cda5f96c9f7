// What the upgrade VM tests share (upgrade-vm.slow.test.ts: slot switches on lab-3;
// upgrade-replace-vm.slow.test.ts: replaced VMs on five nodes): the lab's start (its driver, a
// kept run's VMs and the workspace removed) and end (endLab), a node's boot status, the artifact it
// runs and its update agent through its guest agent, N+1's build from an edited copy of payload/,
// and the per-node clock of `kubedos upgrade`'s event lines for the [bench] lines. Test helper only.
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Plan } from '../../common/plan/index';
import { AGENT_JOURNAL_FILE, AGENT_STATE_FILE, AgentJournalLine, AgentState } from '../../common/upgrade/agent';
import type { GuestExecResult } from '../../main/substrate/driver';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { deployEnv, kubedosAsync as kubedosRun, REPO, requireRoot } from '../deploy/env';
import { dropLabBulk } from '../lab-output';

export const PAYLOAD = join(REPO, 'payload');
export const BOOT = '/usr/local/sbin/kubedos-boot';

export type InGuest = (name: string, argv: string[], timeoutS?: number) => Promise<GuestExecResult>;

/** The qemu-local driver of the lab workspace `ws`'s VMs (`kubedos deploy`'s state directory), owned by the plan's tags and VMID range. */
export function labDriver(plan: Plan, ws: string): QemuLocalDriver {
  return new QemuLocalDriver({ stateDir: join(ws, 'clusters', plan.cluster.name, 'vms'), ownership: { tags: ownershipTags(plan), vmidRange: plan.substrate.vmidRange } });
}

/**
 * The start of an upgrade VM test (root): the lab's driver; the plan's VMs a kept run left
 * (KUBEDOS_UPGRADE_KEEP=1) destroyed before their workspace goes; the workspace removed; the lab
 * directory made; `remove` (files of the last run) and the last run's serial-NODE.log removed.
 */
export async function startLab(o: { plan: Plan; lab: string; ws: string; remove?: readonly string[] }): Promise<QemuLocalDriver> {
  requireRoot();
  const driver = labDriver(o.plan, o.ws);
  for (const n of o.plan.nodes) await driver.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
  rmSync(o.ws, { recursive: true, force: true });
  mkdirSync(o.lab, { recursive: true });
  for (const f of o.remove ?? []) rmSync(f, { force: true });
  for (const n of o.plan.nodes) rmSync(join(o.lab, `serial-${n.name}.log`), { force: true });
  return driver;
}

/** argv in a node of `plan` through its guest agent. */
export function guestOf(driver: () => QemuLocalDriver, plan: Plan): InGuest {
  return (name, argv, timeoutS = 120) => {
    const n = plan.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name} in ${plan.cluster.name}`);
    return driver().guestExec(n.vmid, argv, { timeoutS });
  };
}

/** `kubedos-boot status` of a node as key → value (booted, active, try, …). */
export async function bootStatusOf(inGuest: InGuest, name: string): Promise<Record<string, string>> {
  const r = await inGuest(name, [BOOT, 'status']);
  expect(r.exitCode, `${name}: kubedos-boot status: ${r.stderr}`).toBe(0);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** The artifact version the node's payload was installed from (/etc/kubedos/payload.json). */
export async function artifactVersionOf(inGuest: InGuest, name: string): Promise<string> {
  const r = await inGuest(name, ['cat', '/etc/kubedos/payload.json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { artifactVersion: string }).artifactVersion;
}

/**
 * A node's update agent, as the node keeps it on its data partition (the foundry feeds it, the
 * node holds it: main/upgrade/node-agent.ts): the state file parses, every journal line parses,
 * the journal's sequence has no gap and its last line ends in the state file's state.
 */
export async function agentOn(inGuest: InGuest, name: string): Promise<AgentState> {
  const st = await inGuest(name, ['cat', AGENT_STATE_FILE]);
  expect(st.exitCode, `${name}: cat ${AGENT_STATE_FILE}: ${st.stderr}`).toBe(0);
  const state = AgentState.parse(JSON.parse(st.stdout));
  const j = await inGuest(name, ['cat', AGENT_JOURNAL_FILE]);
  expect(j.exitCode, `${name}: cat ${AGENT_JOURNAL_FILE}: ${j.stderr}`).toBe(0);
  const lines = j.stdout.trim().split('\n').map((l) => AgentJournalLine.parse(JSON.parse(l)));
  expect(lines.map((l) => l.seq), `${name}: the journal's sequence`).toEqual(lines.map((_, i) => i));
  expect(lines.at(-1)?.to, `${name}: the journal's last transition`).toBe(state.state);
  return state;
}

export interface LabBuild {
  /** The lab directory (specs, builds, logs). */
  lab: string;
  /** The lab's workspace (KUBEDOS_WORKSPACE). */
  ws: string;
  /** The spec's text at a version. */
  specText: (version: string) => string;
  /** Extra options of the CLI runs (the upgrade lab keeps its lock out of the shared build). */
  offerSharedBuild?: boolean;
}

/** Where buildWith leaves the build of `version` in the lab directory `lab`: the artifact directory and the spec it was built from. */
export function builtAt(lab: string, version: string): { dir: string; spec: string } {
  return { dir: join(lab, `build-${version}`), spec: join(lab, `lab-3-${version}.yaml`) };
}

/** `kubedos build` of the spec at `version` into LAB/build-VERSION, from a copy of payload/ that `edit` changes (given the copy's path). */
export async function buildWith(l: LabBuild, version: string, edit: (payload: string) => void): Promise<{ dir: string; spec: string }> {
  const { dir, spec } = builtAt(l.lab, version);
  writeFileSync(spec, l.specText(version));
  rmSync(dir, { recursive: true, force: true });
  const payload = join(l.lab, `payload-${version}`);
  rmSync(payload, { recursive: true, force: true });
  cpSync(PAYLOAD, payload, { recursive: true, verbatimSymlinks: true });
  edit(payload);
  const r = await kubedosRun(['build', '--spec', spec, '--out', dir], { env: { ...deployEnv(l.ws), KUBEDOS_PAYLOAD_DIR: payload }, cwd: l.lab, logFile: join(l.lab, `build-${version}.log`), timeoutMs: 50 * 60_000, ...(l.offerSharedBuild === false ? { offerSharedBuild: false } : {}) });
  console.log(`[bench] build of ${version}: ${(r.ms / 1000).toFixed(0)} s`);
  expect(r.status, r.stderr.slice(-3000)).toBe(0);
  return { dir, spec };
}

/**
 * Per node, from its first event line of `kubedos upgrade` (`NODE: STEP …`) to its last: the CLI
 * prints one line per event on stderr; the time is when the test read it.
 */
export function eventClock(nodes: readonly string[], steps: readonly string[]): { onStderr: (chunk: string) => void; durations: () => Record<string, number> } {
  const first: Record<string, number> = {};
  const last: Record<string, number> = {};
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  const line = new RegExp(`^(${nodes.map(esc).join('|')}): (${steps.map(esc).join('|')}) `);
  let partial = '';
  return {
    onStderr(chunk) {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      const t = Date.now();
      for (const l of lines) {
        const m = line.exec(l);
        if (!m) continue;
        first[m[1]!] ??= t;
        last[m[1]!] = t;
      }
    },
    durations: () => Object.fromEntries(Object.keys(first).map((n) => [n, (last[n]! - first[n]!) / 1000])),
  };
}

/**
 * The end of an upgrade VM test: KUBEDOS_UPGRADE_KEEP=1 leaves the VMs and the workspace for a look
 * (or a rerun of one step with the CLI; the next run of the file removes them). Otherwise each
 * node's serial console (every boot of the run: GRUB's choice, the kernel, the gate's lines) is
 * kept in the lab directory as serial-NODE.log before the VM and its folder go, then the
 * workspace's bulk is dropped.
 */
export async function endLab(o: { tag: string; driver: QemuLocalDriver | undefined; plan: Plan; lab: string; ws: string }): Promise<void> {
  if (process.env.KUBEDOS_UPGRADE_KEEP === '1') {
    console.log(`[${o.tag}] KUBEDOS_UPGRADE_KEEP=1: VMs ${o.plan.nodes.map((n) => n.vmid).join(', ')} and ${o.ws} left in place`);
    return;
  }
  for (const n of o.plan.nodes) {
    const log = o.driver ? join(o.driver.vmDir(n.vmid), 'serial.log') : '';
    if (log && existsSync(log)) cpSync(log, join(o.lab, `serial-${n.name}.log`));
  }
  for (const n of o.plan.nodes) await o.driver?.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
  dropLabBulk(o.ws, [join(o.ws, 'cache')]);
}
