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
// Each node's update agent (state.json and its journal, read through the guest agent: vm-lab.ts
// agentOn) after each step: every replaced node's `committed` on slot A running the build it was
// replaced with; the master's `committed` on B after the upgrade and `rolled-back` on A after
// --rollback (its slot switch, as in upgrade-vm.slow.test.ts). After each run the recovery bundle is
// sealed again for the build every node runs, its node records holding the replaced nodes' new SSH
// host keys (expectBundleFor). The replaced nodes' agent is
// written by the replace loop only from h22a's change on: before it these assertions fail on VMs.
//
// The five VMs: master 1 GiB, cp-1..3 2 GiB each, w-1 1.5 GiB (lab-3's shapes): 8.5 GiB of this
// machine's 23 GiB.
//
// Run (root, TCG, nothing else on lab-3's VMIDs 3000-3004: not beside test:deploy or
// test:upgrade:vm): npm run test:upgrade:replace:vm. First run 2026-12-06 stopped at cp-1's fence
// (etcd's member list timed out under TCG with TLS; mended: docs/upgrades.md). Second run the same
// day (part 1, stopped by hand): deploy 3,750 s, N+1 built, preflight passed, cp-1 replaced through
// its gate (35 min from fence to gate: provision ~7 min, its one-node converge 26 min), cp-2 fenced,
// destroyed, provisioned and rejoined, converging when stopped. Nothing after the first replacement
// has passed on VMs yet. Third run (2026-12-07, part 1, 8,774 s): deploy 1,908 s, N+1 379 s, the upgrade
// exit 0 in 6,460 s (replacements 993-1,570 s each, the master's slot switch 1,105 s); the file's two
// failures were its own (the key's put at etcdctl's 5 s default, this plan regex's indent), mended, not
// rerun. It runs in two parts:
//  1. KUBEDOS_REPLACE_ROLLBACK=0 KUBEDOS_UPGRADE_KEEP=1: the deploy, the key and markers, N+1's
//     build and the upgrade; the --rollback case skipped; the VMs and the workspace kept. 2.4 h on
//     the third run: the five-node deploy 1,908 s, N+1's build 379 s, four replacements 993-1,570 s
//     each, the master's slot switch 1,105 s.
//  2. KUBEDOS_REPLACE_FROM=kept: from the kept VMs, the --rollback case alone (no destroy, no
//     deploy, no build: N+1's spec and build read from the lab directory, where part 1 left them).
//     Part 1's VMs may have been stopped since (`kubedos stop` of N+1's spec, with the workspace's
//     KUBEDOS_WORKSPACE, e.g. at a session's end): they are started first by `kubedos start`. When
//     part 1's upgrade was interrupted (SIGINT to `kubedos upgrade`, e.g. at a session's end), it is
//     run again first and must continue from its record: no VM already created from N+1 destroyed
//     again, every node on N+1, the bundle sealed for it, the key on every member.
//     When a part 2 was interrupted during its --rollback (rollback.log in the lab), the rollback is
//     run again instead and must go on from its record: no node already replaced from N destroyed
//     again.
//     Refused before anything runs when the kept lab is not there (its files, its VMs answering);
//     then every replaced node must be a new VM on slot A running N+1 and the master on B. Fifth run
//     (2026-12-07): start 269 s, the interrupted upgrade's rerun 3,101 s (w-1 not destroyed again,
//     the master switched), its bundle line failed (N+1 built by an older kubedos planning the spec
//     differently: mended, docs/upgrades.md); --rollback: the master back in 104 s, w-1 and cp-3
//     replaced from N (1,685 s, 2,202 s), interrupted with cp-2 fenced; the lab kept there. Sixth run
//     (2026-12-07, from there): passed, 4,217 s — start 304 s (cp-2 fenced, not waited for), the
//     rollback's rerun 3,842 s (cp-2 from its fence 1,902 s, cp-1 1,870 s; master, w-1, cp-3 not
//     touched again), the bundle sealed again for N with the four new VMs' keys.
// The two parts assert what one whole run asserts (each step's checks are in its own `it`).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { AB_DATA_MOUNT } from '../../main/build/image/ab';
import { NodeRecord } from '../../main/bundle/schema';
import type { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { etcdMembers } from '../../main/stages/converge';
import { hasNewVm } from '../../common/upgrade/progress';
import { readUpgradeRecord, upgradeRecordPath } from '../../main/upgrade/apply-run';
import { deployEnv, etcdctlOn, kubedosAsync, outcomes, REPO, requireRoot } from '../deploy/env';
import { agentOn, artifactVersionOf, bootStatusOf, builtAt, buildWith, endLab, eventClock, guestOf, labDriver, PAYLOAD, startLab } from './vm-lab';

const LAB = join(REPO, 'e2e/output/upgrade-replace-lab');
const WS = join(LAB, 'workspace');
const N = '0.1.0';
const N1 = '0.1.1';
const KEY = '/kubedos/upgrade-replace-vm/key';
/** On the data partition: a slot switch keeps it, a new VM has none. */
const MARKER = posix.join(AB_DATA_MOUNT, 'upgrade-replace-marker');
const GATE = join(PAYLOAD, 'upgrade/kubedos-health-gate');
/** KUBEDOS_REPLACE_ROLLBACK=0: the --rollback case skipped (run it later from the kept VMs). */
const ROLLBACK = process.env.KUBEDOS_REPLACE_ROLLBACK !== '0';
/** KUBEDOS_REPLACE_FROM=kept: start from a kept run's VMs after its upgrade and run the --rollback case alone. */
const FROM_KEPT = process.env.KUBEDOS_REPLACE_FROM === 'kept';
/** The first --rollback's log: an earlier part 2 began the rollback (it may have been interrupted); this run continues it. */
const ROLLBACK_LOG = join(LAB, 'rollback.log');
const ROLLBACK_BEGUN = FROM_KEPT && existsSync(ROLLBACK_LOG);
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

/**
 * Every replaced node: a new VM (no marker), booted from slot A of `version`'s image, its update
 * agent committed on A running `version`; the hub on `hubSlot` with its marker, its agent in `hubAgent` there.
 */
async function expectReplacedOn(version: string, hubSlot: 'A' | 'B', hubAgent: 'committed' | 'rolled-back'): Promise<void> {
  for (const n of REPLACED) {
    expect(await hasMarker(n), `${n}: a new VM has no ${MARKER}`).toBe(false);
    expect(await bootStatusOf(inGuest, n), n).toMatchObject({ booted: 'A', active: 'A', try: '' });
    expect(await artifactVersionOf(inGuest, n), n).toBe(version);
    expect(await agentOn(inGuest, n), `${n}: its update agent`).toMatchObject({ state: 'committed', active: 'A', running: { version } });
  }
  expect(await hasMarker(HUB), `${HUB} keeps its data partition`).toBe(true);
  expect(await bootStatusOf(inGuest, HUB), HUB).toMatchObject({ booted: hubSlot, active: hubSlot, try: '' });
  expect(await artifactVersionOf(inGuest, HUB), HUB).toBe(version);
  expect(await agentOn(inGuest, HUB), `${HUB}: its update agent`).toMatchObject({ state: hubAgent, active: hubSlot, running: { version } });
}

const esc = (v: string): string => v.replace(/\./g, '\\.');

/** The build the cluster's recovery bundle names (bundle.json's artifactVersion). */
const bundleVersion = (): string => (JSON.parse(readFileSync(join(WS, 'clusters/lab-3/bundle/bundle.json'), 'utf8')) as { artifactVersion: string }).artifactVersion;

/**
 * The recovery bundle sealed again for `version` once the run completed (main/upgrade/reseal.ts),
 * verified by `kubedos verify`, its node records holding the SSH host key each node has now: the
 * replaced nodes' new keys (from their own deploy runs' journals), the master's kept.
 */
async function expectBundleFor(stdout: string, version: string, was: string): Promise<void> {
  expect(stdout).toMatch(new RegExp(`^recovery bundle sealed again for ${esc(version)} \\(was ${esc(was)}\\): .*etcd snapshot of \\d+ bytes from cp-\\d`, 'm'));
  const bundle = join(WS, 'clusters/lab-3/bundle');
  expect(bundleVersion()).toBe(version);
  for (const n of NAMES) {
    const rec = NodeRecord.parse(JSON.parse(readFileSync(join(bundle, 'nodes', `${n}.json`), 'utf8')));
    const key = await inGuest(n, ['cat', '/etc/ssh/ssh_host_ed25519_key.pub']);
    expect(key.exitCode, `${n}: ${key.stderr}`).toBe(0);
    expect(rec.sshHostKey?.split(' ').slice(0, 2).join(' '), `${n}: the bundle's host key is the one the node has`).toBe(key.stdout.trim().split(' ').slice(0, 2).join(' '));
  }
  const v = await kubedosAsync(['verify', bundle], { env: env(), cwd: LAB, logFile: join(LAB, `verify-bundle-${version}.log`), timeoutMs: 5 * 60_000 });
  expect(v.status, v.stderr.slice(-2000)).toBe(0);
}

/** KUBEDOS_REPLACE_FROM=kept: what the kept lab lacks (N+1's spec and build, the workspace, a VM answering its guest agent), or undefined. */
async function keptLabMissing(n1: { dir: string; spec: string }): Promise<string | undefined> {
  for (const f of [n1.spec, join(n1.dir, 'images/lab-3-control-plane.qcow2'), WS]) if (!existsSync(f)) return `${f} is missing`;
  for (const n of p.nodes) if (!(await driver.guestPing(n.vmid))) return `VM ${n.vmid} (${n.name}) does not answer its guest agent`;
  return undefined;
}

/** Where the kept lab is not where part 1 leaves it (replaced nodes booted A, the master B, each running N+1), or undefined. */
async function notUpgradedYet(): Promise<string | undefined> {
  for (const n of NAMES) {
    const slot = n === HUB ? 'B' : 'A';
    let st: Record<string, string>;
    let version: string;
    try {
      st = await bootStatusOf(inGuest, n);
      version = await artifactVersionOf(inGuest, n);
    } catch (e) {
      return `${n}'s boot status or artifact could not be read: ${(e as Error).message.split('\n')[0]}`;
    }
    if (st.booted !== slot || st.active !== slot || st.try !== '' || version !== N1) return `${n} is booted=${st.booted} active=${st.active} try=${st.try} running ${version}, not slot ${slot} running ${N1}`;
  }
  return undefined;
}

describe('kubedos upgrade under strategy replace on five A/B VMs (qemu-local, TCG): N → N+1 → --rollback', () => {
  let n1: { dir: string; spec: string };

  /** `kubedos upgrade` of N+1's spec with `args` on qemu-local, its output in LAB/`log`; `[bench]` lines per node and for the run, as `what` (`span`: the builds). */
  async function timedUpgrade(args: readonly string[], log: string, what: string, span: string): ReturnType<typeof kubedosAsync> {
    const clock = eventClock(NAMES, STEPS);
    const r = await kubedosAsync(['upgrade', n1.spec, ...args, '--target', 'qemu-local'], { env: env(), cwd: LAB, logFile: join(LAB, log), timeoutMs: 150 * 60_000, onStderr: clock.onStderr });
    for (const [n, sec] of Object.entries(clock.durations())) console.log(`[bench] ${what} ${n}: ${sec.toFixed(0)} s`);
    console.log(`[bench] ${what} of lab-3 ${span}: ${(r.ms / 1000).toFixed(0)} s`);
    return r;
  }

  beforeAll(async () => {
    if (!FROM_KEPT) {
      driver = await startLab({ plan: p, lab: LAB, ws: WS });
      return;
    }
    // The kept lab as it is: no destroy, the workspace kept; N+1 where part 1's build left it.
    requireRoot();
    driver = labDriver(p, WS);
    n1 = builtAt(LAB, N1);
    // Part 1 may have ended in another session with `kubedos stop` (no VM left running): started
    // again the way a user would, the hub first, waiting for the agents, the planes and etcd.
    const stopped: string[] = [];
    for (const n of p.nodes) if ((await driver.status(n.vmid)) === 'stopped') stopped.push(n.name);
    if (stopped.length && existsSync(n1.spec)) {
      const r = await kubedosAsync(['start', n1.spec], { env: env(), cwd: LAB, logFile: join(LAB, 'start.log'), timeoutMs: 25 * 60_000 });
      console.log(`[bench] kubedos start of the kept lab (${stopped.join(', ')} stopped): ${(r.ms / 1000).toFixed(0)} s`);
      if (r.status !== 0) throw new Error(`KUBEDOS_REPLACE_FROM=kept: kubedos start of the kept lab failed (exit ${r.status}): ${(r.stdout + r.stderr).slice(-2000)}`);
    }
    const why = await keptLabMissing(n1);
    if (why) throw new Error(`KUBEDOS_REPLACE_FROM=kept: the kept lab (${LAB}) cannot be used: ${why}; nothing was touched. Run the file with KUBEDOS_REPLACE_ROLLBACK=0 KUBEDOS_UPGRADE_KEEP=1 first (or without KUBEDOS_REPLACE_FROM for a whole run)`);
  }, 30 * 60_000);

  // KUBEDOS_UPGRADE_KEEP=1 keeps the VMs; else the serial consoles are kept as serial-NODE.log and the VMs go.
  afterAll(() => endLab({ tag: 'upgrade-replace-vm', driver, plan: p, lab: LAB, ws: WS }));

  it.skipIf(FROM_KEPT)('deploys five nodes with A/B disks (three etcd members): every stage succeeds, every node on slot A running N', async () => {
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

  it.skipIf(FROM_KEPT)('an etcd key and a marker on every node are written', async () => {
    const put = await inGuest('cp-1', [...etcdctlOn(p.nodes.find((n) => n.name === 'cp-1')!), 'put', KEY, `written on ${N}`]);
    expect(put.exitCode, put.stderr).toBe(0);
    await writeMarkers(NAMES, `before the upgrade to ${N1}`);
    await expectKeyOnEveryMember();
  });

  it.skipIf(FROM_KEPT)(`N+1 (${N1}, one payload file changed) is built`, async () => {
    n1 = await buildWith({ lab: LAB, ws: WS, specText }, N1, (payload) => writeFileSync(join(payload, 'upgrade/kubedos-health-gate'), Buffer.concat([gateOriginal, Buffer.from(`# ${N1}: changed by e2e/upgrade/upgrade-replace-vm.slow.test.ts\n`)])));
    expect(existsSync(join(n1.dir, 'images/lab-3-control-plane.qcow2'))).toBe(true);
  }, 51 * 60_000);

  it.skipIf(FROM_KEPT)('kubedos upgrade --to N+1: cp-1, cp-2, cp-3, w-1 are new VMs on N+1; the master on slot B; the key on every member', async () => {
    const r = await timedUpgrade(['--to', n1.dir], 'upgrade.log', 'upgrade (replace)', `${N} → ${N1}`);
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    expect(r.stdout).toMatch(/^ {2}wave {2}1 {2}control-plane .* cp-1 .*: replace$/m);
    expect(r.stdout).toMatch(/master: slot switch \(the hub keeps its identity\)$/m);
    for (const n of REPLACED) {
      expect(r.stderr, n).toMatch(new RegExp(`^${n}: destroy VM \\d+ \\(${n}\\) destroyed with its disks and TPM state$`, 'm'));
      expect(r.stderr, n).toMatch(new RegExp(`^${n}: provision VM \\d+ \\(${n}\\) created from ${N1.replace(/\./g, '\\.')};`, 'm'));
    }
    await expectReplacedOn(N1, 'B', 'committed');
    await expectKeyOnEveryMember();
    await expectBundleFor(r.stdout, N1, N);
  }, 151 * 60_000);

  it.runIf(FROM_KEPT && !ROLLBACK_BEGUN)('the kept upgrade is complete (rerun from its record when part 1 was interrupted: no VM created from N+1 destroyed again); the key on every member', async () => {
    const unfinished = await notUpgradedYet();
    if (unfinished) {
      // A replacement that got as far as provisioning runs N+1 on its VM: the rerun must not destroy it.
      const record = readUpgradeRecord(upgradeRecordPath('lab-3', env()));
      const keep = Object.entries(record.replaced ?? {}).filter(([, r]) => r.build.version === N1 && r.state !== 'destroying').map(([n]) => n);
      console.log(`[upgrade-replace-vm] the kept upgrade is unfinished (${unfinished}): kubedos upgrade --to N+1 again; replaced as far as provisioning: ${keep.join(', ') || 'none'}`);
      const r = await timedUpgrade(['--to', n1.dir], 'upgrade-rerun.log', 'upgrade rerun (replace)', `to ${N1}`);
      expect(r.status, r.stderr.slice(-4000)).toBe(0);
      for (const n of keep) expect(r.stderr, n).not.toMatch(new RegExp(`^${n}: destroy VM`, 'm'));
      await expectBundleFor(r.stdout, N1, N);
    }
    await expectReplacedOn(N1, 'B', 'committed');
    await expectKeyOnEveryMember();
  }, 151 * 60_000);

  it.skipIf(!ROLLBACK)('kubedos upgrade --rollback: the master back on slot A, the others replaced again from N; the key on every member (skipped with KUBEDOS_REPLACE_ROLLBACK=0)', async () => {
    // A rollback begun by an earlier part 2 (interrupted, e.g. at a session's end) is run again and
    // must go on from its record: a node whose new VM from N exists is not destroyed again. The
    // markers stay as the first attempt wrote them (a node not replaced yet still has its own).
    const doneFromN = ROLLBACK_BEGUN
      ? Object.entries(readUpgradeRecord(upgradeRecordPath('lab-3', env())).replaced ?? {})
          .filter(([, r]) => r.build.version === N && hasNewVm(r.state))
          .map(([n]) => n)
      : [];
    if (ROLLBACK_BEGUN) console.log(`[upgrade-replace-vm] the rollback was begun by an earlier run (${ROLLBACK_LOG}): kubedos upgrade --rollback again; new VMs from ${N} already: ${doneFromN.join(', ') || 'none'}`);
    else await writeMarkers(NAMES, `before the rollback to ${N}`);
    // What the bundle holds before: N+1 once the upgrade resealed it (a failed reseal leaves N, which the rollback's reseal names).
    const held = bundleVersion();
    const r = await timedUpgrade(['--rollback'], ROLLBACK_BEGUN ? 'rollback-rerun.log' : 'rollback.log', ROLLBACK_BEGUN ? 'rollback rerun (replace)' : 'rollback (replace)', `${N1} → ${N}`);
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    for (const n of REPLACED) {
      if (doneFromN.includes(n)) expect(r.stderr, n).not.toMatch(new RegExp(`^${n}: destroy VM`, 'm'));
      else expect(r.stderr, n).toMatch(new RegExp(`^${n}: provision VM \\d+ \\(${n}\\) created from ${N.replace(/\./g, '\\.')};`, 'm'));
    }
    await expectReplacedOn(N, 'A', 'rolled-back');
    await expectKeyOnEveryMember();
    await expectBundleFor(r.stdout, N, held);
  }, 151 * 60_000);
});
