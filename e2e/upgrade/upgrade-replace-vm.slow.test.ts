// `kubedos upgrade` under `kubernetes.ha.upgradeStrategy: replace` on deployed VMs (issue 18,
// "replace-based reuses the drill machinery"), end to end on qemu-local: lab-3 with two more
// control planes (cp-2, cp-3: three etcd members, so the quorum rule lets one be replaced; lab-3's
// lone cp-1 is refused) and w-1, A/B disks, stages.drill.allowDestroy: true, deployed by `kubedos
// deploy` in its own lab directory and workspace (e2e/output/upgrade-replace-lab). An etcd key is
// written and a marker file on every node's data partition; N+1 built (artifactVersion bumped, one
// payload file changed); `kubedos upgrade SPEC --to N+1`: every node but the hub is a NEW VM
// (its marker gone) booted from slot A of N+1's image, running N+1; the master (the hub:
// slot-switched, it keeps its identity) on slot B running N+1 with its marker; the key read back
// from each etcd member alone. Markers written again; `kubedos upgrade SPEC --rollback`: the master
// back on slot A, every other node a new VM again, running N; the key read back from each member.
//
// The five VMs: master 1 GiB, cp-1..3 2 GiB each, w-1 1.5 GiB (lab-3's shapes): 8.5 GiB of this
// machine's 23 GiB. Not asserted: the replaced nodes' update agents (the replace loop resets the
// agent of a new VM and writes no state for it: main/upgrade/apply-run.ts replacePhase).
//
// Run (root, TCG, nothing else on lab-3's VMIDs 3000-3004: not beside test:deploy or
// test:upgrade:vm): npm run test:upgrade:replace:vm. Written, never run (2026-12-05).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { AB_DATA_MOUNT } from '../../main/build/image/ab';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { etcdMembers } from '../../main/stages/converge';
import { deployEnv, etcdctlOn, kubedosAsync, outcomes, REPO, requireRoot } from '../deploy/env';
import { artifactVersionOf, bootStatusOf, buildWith, endLab, eventClock, guestOf, PAYLOAD } from './vm-lab';

const LAB = join(REPO, 'e2e/output/upgrade-replace-lab');
const WS = join(LAB, 'workspace');
const N = '0.1.0';
const N1 = '0.1.1';
const KEY = '/kubedos/upgrade-replace-vm/key';
/** On the data partition: a slot switch keeps it, a new VM has none. */
const MARKER = posix.join(AB_DATA_MOUNT, 'upgrade-replace-marker');
const GATE = join(PAYLOAD, 'upgrade/kubedos-health-gate');
const STEPS = ['drain', 'fence', 'destroy', 'provision', 'converge', 'gate', 'uncordon', 'write', 'progress', 'reboot', 'wait', 'observe', 'rollback', 'stop'];

/** lab-3 with cp-2 and cp-3 (three etcd members), A/B disks, strategy replace, drills (and replacements) allowed to destroy VMs. */
function specText(version: string): string {
  const doc = parse(TEMPLATES['lab-3'].text) as { metadata: { artifactVersion: string }; spec: Record<string, unknown> & { kubernetes: { ha: { upgradeStrategy: string } }; nodes: { inventory: Record<string, unknown>[] }; stages?: Record<string, unknown> } };
  if (doc.metadata.artifactVersion !== N) throw new Error(`lab-3's artifactVersion is ${doc.metadata.artifactVersion}, this test expects ${N}: update N and N1`);
  doc.metadata.artifactVersion = version;
  doc.spec.upgrades = { diskLayout: 'ab' };
  doc.spec.kubernetes.ha.upgradeStrategy = 'replace';
  doc.spec.stages = { ...(doc.spec.stages ?? {}), drill: { allowDestroy: true } };
  const cp1 = doc.spec.nodes.inventory.find((n) => n.name === 'cp-1')!;
  doc.spec.nodes.inventory.push({ ...cp1, name: 'cp-2', vmid: 3003 }, { ...cp1, name: 'cp-3', vmid: 3004 });
  const text = stringify(doc);
  if (!parseSpec(text).spec) throw new Error(`the replace lab's spec at ${version} does not parse`);
  return text;
}

const p: Plan = plan(parseSpec(specText(N)).spec!);
const HUB = p.nodes.find((n) => n.hub)!.name;
const REPLACED = p.nodes.filter((n) => !n.hub).map((n) => n.name);
const NAMES = p.nodes.map((n) => n.name);
let driver: QemuLocalDriver;
const inGuest = guestOf(() => driver, p);
const gateOriginal = readFileSync(GATE);
const env = (): NodeJS.ProcessEnv => deployEnv(WS);

async function writeMarkers(nodes: readonly string[], what: string): Promise<void> {
  for (const n of nodes) {
    const r = await inGuest(n, ['/bin/sh', '-c', 'printf "%s\\n" "$1" > "$2"', 'sh', what, MARKER]);
    expect(r.exitCode, `${n}: write ${MARKER}: ${r.stderr}`).toBe(0);
  }
}

async function hasMarker(n: string): Promise<boolean> {
  const r = await inGuest(n, ['test', '-e', MARKER]);
  return r.exitCode === 0;
}

/** The key written on N, read from each etcd member alone (its own endpoint, its own store). */
async function expectKeyOnEveryMember(): Promise<void> {
  for (const m of etcdMembers(p)) {
    const get = await inGuest(m.name, [...etcdctlOn(m), 'get', KEY, '--print-value-only', '--consistency=s']);
    expect(get.exitCode, `${m.name}: etcdctl get: ${get.stderr}`).toBe(0);
    expect(get.stdout.trim(), `${m.name}'s own member`).toBe(`written on ${N}`);
  }
}

/** Every replaced node: a new VM (no marker), booted from slot A of `version`'s image; the hub on `hubSlot` with its marker. */
async function expectReplacedOn(version: string, hubSlot: 'A' | 'B'): Promise<void> {
  for (const n of REPLACED) {
    expect(await hasMarker(n), `${n}: a new VM has no ${MARKER}`).toBe(false);
    expect(await bootStatusOf(inGuest, n), n).toMatchObject({ booted: 'A', active: 'A', try: '' });
    expect(await artifactVersionOf(inGuest, n), n).toBe(version);
  }
  expect(await hasMarker(HUB), `${HUB} keeps its data partition`).toBe(true);
  expect(await bootStatusOf(inGuest, HUB), HUB).toMatchObject({ booted: hubSlot, active: hubSlot, try: '' });
  expect(await artifactVersionOf(inGuest, HUB), HUB).toBe(version);
}

describe('kubedos upgrade under strategy replace on five A/B VMs (qemu-local, TCG): N → N+1 → --rollback', () => {
  let n1: { dir: string; spec: string };

  beforeAll(async () => {
    requireRoot();
    driver = new QemuLocalDriver({ stateDir: join(WS, 'clusters/lab-3/vms'), ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange } });
    for (const n of p.nodes) await driver.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
    rmSync(WS, { recursive: true, force: true });
    mkdirSync(LAB, { recursive: true });
    for (const n of p.nodes) rmSync(join(LAB, `serial-${n.name}.log`), { force: true });
  }, 5 * 60_000);

  // KUBEDOS_UPGRADE_KEEP=1 keeps the VMs; else the serial consoles are kept as serial-NODE.log and the VMs go.
  afterAll(() => endLab({ tag: 'upgrade-replace-vm', driver, plan: p, lab: LAB, ws: WS }));

  it('deploys five nodes with A/B disks (three etcd members): every stage succeeds, every node on slot A running N', async () => {
    const spec = join(LAB, `lab-3-${N}.yaml`);
    writeFileSync(spec, specText(N));
    const r = await kubedosAsync(['deploy', spec, '--target', 'qemu-local', '--verbose'], { env: env(), cwd: LAB, logFile: join(LAB, 'deploy.log'), timeoutMs: 80 * 60_000 });
    console.log(`[bench] deploy of lab-3 with five nodes (A/B): ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    for (const [s, o] of Object.entries(outcomes(r.stdout))) expect(o, s).not.toMatch(/failed|skipped|aborted/);
    for (const n of NAMES) {
      expect(await bootStatusOf(inGuest, n), n).toMatchObject({ booted: 'A', active: 'A', try: '' });
      expect(await artifactVersionOf(inGuest, n), n).toBe(N);
    }
  }, 81 * 60_000);

  it('an etcd key and a marker on every node are written', async () => {
    const put = await inGuest('cp-1', [...etcdctlOn(p.nodes.find((n) => n.name === 'cp-1')!), 'put', KEY, `written on ${N}`]);
    expect(put.exitCode, put.stderr).toBe(0);
    await writeMarkers(NAMES, `before the upgrade to ${N1}`);
    await expectKeyOnEveryMember();
  });

  it(`N+1 (${N1}, one payload file changed) is built`, async () => {
    n1 = await buildWith({ lab: LAB, ws: WS, specText }, N1, (payload) => writeFileSync(join(payload, 'upgrade/kubedos-health-gate'), Buffer.concat([gateOriginal, Buffer.from(`# ${N1}: changed by e2e/upgrade/upgrade-replace-vm.slow.test.ts\n`)])));
    expect(existsSync(join(n1.dir, 'images/lab-3-control-plane.qcow2'))).toBe(true);
  }, 51 * 60_000);

  it('kubedos upgrade --to N+1: cp-1, cp-2, cp-3, w-1 are new VMs on N+1; the master on slot B; the key on every member', async () => {
    const clock = eventClock(NAMES, STEPS);
    const r = await kubedosAsync(['upgrade', n1.spec, '--to', n1.dir, '--target', 'qemu-local'], { env: env(), cwd: LAB, logFile: join(LAB, 'upgrade.log'), timeoutMs: 150 * 60_000, onStderr: clock.onStderr });
    for (const [n, s] of Object.entries(clock.durations())) console.log(`[bench] upgrade (replace) ${n}: ${s.toFixed(0)} s`);
    console.log(`[bench] upgrade (replace) of lab-3 ${N} → ${N1}: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    expect(r.stdout).toMatch(/^wave {2}1 {2}control-plane .* cp-1 .*: replace$/m);
    expect(r.stdout).toMatch(/master: slot switch \(the hub keeps its identity\)$/m);
    for (const n of REPLACED) {
      expect(r.stderr, n).toMatch(new RegExp(`^${n}: destroy VM \\d+ \\(${n}\\) destroyed with its disks and TPM state$`, 'm'));
      expect(r.stderr, n).toMatch(new RegExp(`^${n}: provision VM \\d+ \\(${n}\\) created from ${N1.replace(/\./g, '\\.')};`, 'm'));
    }
    await expectReplacedOn(N1, 'B');
    await expectKeyOnEveryMember();
  }, 151 * 60_000);

  it('kubedos upgrade --rollback: the master back on slot A, the others replaced again from N; the key on every member', async () => {
    await writeMarkers(NAMES, `before the rollback to ${N}`);
    const clock = eventClock(NAMES, STEPS);
    const r = await kubedosAsync(['upgrade', n1.spec, '--rollback', '--target', 'qemu-local'], { env: env(), cwd: LAB, logFile: join(LAB, 'rollback.log'), timeoutMs: 150 * 60_000, onStderr: clock.onStderr });
    for (const [n, s] of Object.entries(clock.durations())) console.log(`[bench] rollback (replace) ${n}: ${s.toFixed(0)} s`);
    console.log(`[bench] rollback (replace) of lab-3 ${N1} → ${N}: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    for (const n of REPLACED) expect(r.stderr, n).toMatch(new RegExp(`^${n}: provision VM \\d+ \\(${n}\\) created from ${N.replace(/\./g, '\\.')};`, 'm'));
    await expectReplacedOn(N, 'A');
    await expectKeyOnEveryMember();
  }, 151 * 60_000);
});
