import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { TEMPLATES } from '../../../common/spec/templates/index';
import { buildSigningKey, keyidOf } from '../../build/keys';
import type { SigningKey } from '../../upgrade/testing';
import { writeArtifact, writeDeployJournal, writeSealedBuild } from '../../upgrade/testing';
import { signWithPolicy } from '../../testing/artifact-policy';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { makeUpgradeCommand, upgradeCommand as realUpgradeCommand } from './upgrade';
import type { UpgradeHealth } from '../../../common/upgrade/waves';

/** The cluster's live health as these tests' nodes would show it (no VMs run here): every node healthy (the real look: realUpgradeCommand). */
const health: UpgradeHealth = { observed: true, unhealthy: [], note: 'every node healthy (the tests\' look)' };
const upgradeCommand = makeUpgradeCommand({ observeHealth: async () => health });

let root: string;
let env: NodeJS.ProcessEnv;
let key: SigningKey;

/** lab-3 with a strategy; `etcd3`: two more control planes (cp-2, cp-3: three etcd members); `ab`: A/B disks. */
function specText(o: { strategy: 'rolling' | 'replace'; etcd3?: boolean; ab?: boolean }): string {
  const doc = parse(TEMPLATES['lab-3'].text) as { spec: { upgrades?: { diskLayout: string }; kubernetes: { ha: { upgradeStrategy: string } }; nodes: { inventory: Record<string, unknown>[] } } };
  doc.spec.kubernetes.ha.upgradeStrategy = o.strategy;
  if (o.ab) doc.spec.upgrades = { diskLayout: 'ab' };
  if (o.etcd3) {
    const cp1 = doc.spec.nodes.inventory.find((n) => n.name === 'cp-1')!;
    doc.spec.nodes.inventory.push({ ...cp1, name: 'cp-2', vmid: 3003 }, { ...cp1, name: 'cp-3', vmid: 3004 });
  }
  return stringify(doc);
}

function io(): CliIo & { outText: string[]; errText: string[] } {
  const outText: string[] = [];
  const errText: string[] = [];
  return { out: (t) => outText.push(t), err: (t) => errText.push(t), cwd: root, env, signal: new AbortController().signal, isTty: false, outText, errText };
}

const N1 = { packages: { 'base-files': '12.4+deb12u1', openssh: '1:9.2p1-2+deb12u7', wireguard: '1.0.20210914-1' }, payload: { 'payload/master/firstboot/firstboot.sh': 'echo N+1\n', 'images/lab-3-master.qcow2': 'not really a disk image\n' } };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'h18-upgrade-cli-'));
  env = { KUBEDOS_WORKSPACE: join(root, 'ws') };
  // lab-3 slot by slot: under the default replace its single etcd member is refused (the replace tests below).
  writeFileSync(join(root, 'lab.yaml'), specText({ strategy: 'rolling' }));
  writeFileSync(join(root, 'lab-replace.yaml'), TEMPLATES['lab-3'].text);
  writeFileSync(join(root, 'lab5.yaml'), specText({ strategy: 'replace', etcd3: true }));
  writeFileSync(join(root, 'lab5-ab.yaml'), specText({ strategy: 'replace', etcd3: true, ab: true }));
  key = await buildSigningKey('lab-3', env, { log: () => {} });
  writeSealedBuild('lab-3', env, { version: '0.1.0', key, packages: { 'base-files': '12.4+deb12u1', openssh: '1:9.2p1-2+deb12u5', tzdata: '2024a-0+deb12u1' }, payload: {} });
  writeDeployJournal('lab-3', env);
  writeArtifact(join(root, 'n1'), { cluster: 'lab-3', version: '0.2.0', key, ...N1 });
}, 60_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('kubedos upgrade', () => {
  it('rejects bad usage', async () => {
    await expect(upgradeCommand.run([], io())).rejects.toBeInstanceOf(UsageError);
    await expect(upgradeCommand.run(['lab.yaml'], io())).rejects.toThrow(/--to BUILD_DIR/);
    await expect(upgradeCommand.run(['lab.yaml', '--to', 'n1', '--rollback'], io())).rejects.toThrow(/either --to or --rollback/);
    await expect(upgradeCommand.run(['lab.yaml', '--reseal', '--to', 'n1'], io())).rejects.toThrow(/--reseal seals the recovery bundle for the build the cluster runs: give it alone/);
    await expect(upgradeCommand.run(['lab.yaml', '--reseal', '--rollback'], io())).rejects.toThrow(/give it alone/);
  });

  it('--dry-run: the checks, the package diff with versions, the payload diff and the waves; exit 0', async () => {
    const a = io();
    expect(await upgradeCommand.run(['lab.yaml', '--to', 'n1', '--dry-run'], a)).toBe(0);
    const out = a.outText.join('\n');
    expect(out).toMatch(/^ok {4}deployed: lab-3 runs artifact 0\.1\.0/m);
    expect(out).toMatch(/^ok {4}signed: 5 files of N\+1 match its manifest/m);
    expect(out).toContain('packages N → N+1: 1 changed, 1 added, 1 removed');
    expect(out).toMatch(/~ openssh\s+1:9\.2p1-2\+deb12u5 → 1:9\.2p1-2\+deb12u7/);
    expect(out).toMatch(/\+ wireguard\s+1\.0\.20210914-1/);
    expect(out).toMatch(/- tzdata\s+2024a-0\+deb12u1/);
    expect(out).toContain('  + payload/master/firstboot/firstboot.sh');
    // The SBOM lists payload files; an image is checked (and said so on stderr) but is no payload file.
    expect(out).not.toContain('images/lab-3-master.qcow2');
    expect(out).toMatch(/3 waves \(slot-switch: write N\+1 into the passive root slot/);
    expect(out).toMatch(/wave {2}1 {2}control-plane .* cp-1 {2}\(1 etcd member down\)\n.*wave {2}2 .* w-1\n.*wave {2}3 {2}hub .* master/);
    expect(out).toMatch(/dry run: every check passed; nothing was touched/);
    expect(out).toMatch(/^ok {4}live health: every node healthy \(the tests' look\)\nok {4}waves: 3,/m);
    expect(a.errText).toEqual(["checking images/lab-3-master.qcow2 against N+1's signed manifest…", 'looking at lab-3 through its guest agents (nodes, wg1 handshakes, etcd)…']);
  });

  it('the live health through the substrate the deploy used: no VM answers here, so a dry run is refused before anything is touched, naming the member', async () => {
    const a = io();
    expect(await realUpgradeCommand.run(['lab.yaml', '--to', 'n1', '--dry-run', '--target', 'qemu-local'], a)).toBe(1);
    expect(a.errText.at(-1)).toMatch(/^upgrade refused \(quorum\): etcd has no quorum now: 0 of 1 etcd members healthy \(unhealthy: cp-1: guest agent never answered\), quorum is 1\. Nothing was touched; heal the members first \(kubedos heal SPEC\), then upgrade$/);
    expect(a.outText.join('\n')).not.toMatch(/live health|waves:/);
  });

  it('without --dry-run, nodes built with one root partition: the checks, then one refusal saying how to get A/B, before any node is touched', async () => {
    const a = io();
    expect(await upgradeCommand.run(['lab.yaml', '--to', 'n1'], a)).toBe(1);
    expect(a.outText.join('\n')).toContain('packages N → N+1');
    expect(a.errText.join('\n')).toMatch(/^upgrade lab-3 0\.1\.0 → 0\.2\.0 refused: lab-3 was deployed with one root partition \(spec\.upgrades\.diskLayout is single \(the default\)\): .*set spec\.upgrades\.diskLayout: ab in the spec, rebuild \(kubedos build\) and redeploy .*nothing was touched$/m);
    expect(a.errText.join('\n')).not.toMatch(/not available/);
  });

  it('--rollback on nodes built with one root partition: the same refusal, exit 1', async () => {
    const a = io();
    expect(await upgradeCommand.run(['lab.yaml', '--rollback'], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/^upgrade --rollback lab-3 refused: lab-3 was deployed with one root partition/m);
  });

  it('--reseal without a sealed recovery bundle in place (only its build): one line saying so, exit 1, no VM asked', async () => {
    const a = io();
    expect(await upgradeCommand.run(['lab.yaml', '--reseal'], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/^upgrade --reseal lab-3: the recovery bundle was not sealed again: .*\/clusters\/lab-3\/bundle holds none \(kubedos deploy SPEC seals one\)$/m);
    expect(a.outText).toEqual([]);
  });

  it('an A/B spec (rolling) whose VMs do not answer: refused before any node is touched, naming the nodes', async () => {
    const doc = parse(TEMPLATES['lab-3'].text) as { spec: { upgrades?: { diskLayout: string }; kubernetes: { ha: { upgradeStrategy: string } } } };
    doc.spec.upgrades = { diskLayout: 'ab' };
    doc.spec.kubernetes.ha.upgradeStrategy = 'rolling';
    writeFileSync(join(root, 'lab-ab.yaml'), stringify(doc));
    const a = io();
    expect(await upgradeCommand.run(['lab-ab.yaml', '--to', 'n1', '--target', 'qemu-local'], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/^upgrade lab-3 0\.1\.0 → 0\.2\.0 refused: cannot read the boot status of 3 nodes of lab-3 \(cp-1, w-1, master; cp-1: VM \d+ is not running\): .*Nothing was touched$/m);
  });

  it('strategy replace: lab-3\'s single etcd member refused; with three members the plan says per wave "replace" or "slot switch (the hub keeps its identity)"; applying needs --allow-destroy, then replaces the VMs (no refusal of replace waves: only the slot-switched hub must answer first)', async () => {
    const a = io();
    expect(await upgradeCommand.run(['lab-replace.yaml', '--to', 'n1', '--dry-run'], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/^upgrade refused \(quorum\): replacing cp-1 \(strategy replace, the spec's kubernetes\.ha\.upgradeStrategy\) takes its etcd member out .*cp-1 is the only member\)\. Nothing was touched/m);
    const b = io();
    expect(await upgradeCommand.run(['lab5.yaml', '--to', 'n1', '--dry-run'], b)).toBe(0);
    const out = b.outText.join('\n');
    expect(out).toContain('5 waves (strategy replace):\n  replace: drain, fence, destroy the VM, provision the same plan slot from N+1\'s image (the drill machinery), converge it, wait for its health gate\n  slot switch: write N+1 into the passive root slot, reboot into it, wait for the health gate');
    expect(out).toMatch(/wave {2}1 {2}control-plane .* cp-1 {2}\(1 etcd member down\): replace\n.*cp-2 .*: replace\n.*cp-3 .*: replace\n.*wave {2}4 {2}nodes .* w-1: replace\n.*wave {2}5 {2}hub .* master: slot switch \(the hub keeps its identity\)/);
    const c = io();
    expect(await upgradeCommand.run(['lab5-ab.yaml', '--to', 'n1', '--target', 'qemu-local'], c)).toBe(1);
    expect(c.errText.join('\n')).toMatch(/^upgrade lab-3 0\.1\.0 → 0\.2\.0 refused: 4 waves replace 4 nodes \(cp-1, cp-2, cp-3, w-1; .*run kubedos upgrade --allow-destroy .*nothing was touched$/m);
    const d = io();
    expect(await upgradeCommand.run(['lab5-ab.yaml', '--to', 'n1', '--target', 'qemu-local', '--allow-destroy'], d)).toBe(1);
    // The replace waves are taken (replace operations for the VMs); the A/B check asks the slot-switched hub only.
    expect(d.errText.join('\n')).toMatch(/^upgrade lab-3 0\.1\.0 → 0\.2\.0 refused: cannot read the boot status of 1 node of lab-3 \(master; master: VM \d+ is not running\): .*Nothing was touched$/m);
    expect(d.errText.join('\n')).not.toMatch(/no replace operations|not wired/);
  });

  it('refuses each bad N+1 with one line naming the reason (exit 1)', async () => {
    const other = generateKeyPairSync('ed25519');
    const pem = other.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const cases: [string, () => void, RegExp][] = [
      ['unsigned', () => writeArtifact(join(root, 'unsigned'), { cluster: 'lab-3', version: '0.2.0', key, unsigned: true, ...N1 }), /^upgrade refused \(unsigned\): N\+1 is unsigned/],
      ['foreign-key', () => writeArtifact(join(root, 'foreign-key'), { cluster: 'lab-3', version: '0.2.0', key: { privateKey: other.privateKey, publicKeyPem: pem, keyid: keyidOf(pem) }, ...N1 }), /^upgrade refused \(bad-signature\): N\+1 is not signed by lab-3's build key/],
      ['other-cluster', () => writeArtifact(join(root, 'other-cluster'), { cluster: 'prod-7', version: '0.2.0', key, ...N1 }), /^upgrade refused \(other-cluster\): N\+1 was built for cluster prod-7, not lab-3/],
      ['older', () => writeArtifact(join(root, 'older'), { cluster: 'lab-3', version: '0.0.9', key, ...N1 }), /^upgrade refused \(downgrade\): N\+1 \(0\.0\.9\) is older than the deployed 0\.1\.0: a downgrade\. If that is what you want, add --allow-downgrade$/],
    ];
    for (const [dir, make, want] of cases) {
      make();
      const a = io();
      expect(await upgradeCommand.run(['lab.yaml', '--to', dir, '--dry-run'], a), dir).toBe(1);
      const refusals = a.errText.filter((l) => !l.startsWith('checking '));
      expect(refusals, dir).toHaveLength(1);
      expect(refusals[0], dir).toMatch(want);
    }
    const allowed = io();
    expect(await upgradeCommand.run(['lab.yaml', '--to', 'older', '--dry-run', '--allow-downgrade'], allowed)).toBe(0);
  });

  it('refuses an unconverged cluster, and a missing build directory', async () => {
    try {
      writeDeployJournal('lab-3', env, { failAt: { stage: 'enroll', node: 'w-1', message: 'enrollment token expired' } });
      const a = io();
      expect(await upgradeCommand.run(['lab.yaml', '--to', 'n1', '--dry-run'], a)).toBe(1);
      expect(a.errText.join('\n')).toMatch(/^upgrade refused \(unconverged\): lab-3 is not converged: its last deploy \(run deploy-1\) failed in enroll on w-1: enrollment token expired/m);
    } finally {
      writeDeployJournal('lab-3', env);
    }
    const b = io();
    expect(await upgradeCommand.run(['lab.yaml', '--to', 'nowhere'], b)).toBe(1);
    expect(b.errText.join('\n')).toMatch(/nowhere: no such directory/);
  });

  it('--key: a key the cluster\'s builds were not signed with refuses N itself, and the right key passes', async () => {
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    writeFileSync(join(root, 'other.pem'), other);
    writeFileSync(join(root, 'right.pem'), key.publicKeyPem);
    const a = io();
    expect(await upgradeCommand.run(['lab.yaml', '--to', 'n1', '--dry-run', '--key', 'other.pem'], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/^upgrade refused \(bad-signature\): the deployed build N in .* does not verify with the trusted key/);
    expect(await upgradeCommand.run(['lab.yaml', '--to', 'n1', '--dry-run', '--key', 'right.pem'], io())).toBe(0);
    const missing = io();
    expect(await upgradeCommand.run(['lab.yaml', '--to', 'n1', '--key', 'nope.pem'], missing)).toBe(1);
    expect(missing.errText.join('\n')).toMatch(/cannot read --key nope\.pem/);
  });

  it('--json carries the whole preflight result', async () => {
    const a = io();
    expect(await upgradeCommand.run(['lab.yaml', '--to', 'n1', '--dry-run', '--json'], a)).toBe(0);
    const r = JSON.parse(a.outText.join('\n'));
    expect(r).toMatchObject({ ok: true, cluster: 'lab-3', from: { version: '0.1.0' }, to: { version: '0.2.0' } });
    expect(r.waves).toHaveLength(3);
  });

  it('the policy gates: another channel refused (--channel takes it), the stepping stone, the maintenance window (--outside-window says it was used)', async () => {
    await expect(upgradeCommand.run(['lab.yaml', '--to', 'n1', '--channel', 'nightly'], io())).rejects.toThrow(/--channel nightly: one of stable, candidate, edge/);
    await expect(upgradeCommand.run(['lab.yaml', '--rollback', '--outside-window'], io())).rejects.toThrow(/--rollback is taken whatever the channel and the windows/);
    // Slot switches (rolling), so the waves do not depend on what replace waves need.
    const rolling = (file: string, upgrades?: Record<string, unknown>): void => {
      const doc = parse(TEMPLATES['lab-3'].text) as { spec: Record<string, any> };
      doc.spec.kubernetes.ha.upgradeStrategy = 'rolling';
      if (upgrades) doc.spec.upgrades = upgrades;
      writeFileSync(join(root, file), stringify(doc));
    };
    rolling('lab-rolling.yaml');
    writeArtifact(join(root, 'candidate'), { cluster: 'lab-3', version: '0.1.2', key, ...N1 });
    signWithPolicy(join(root, 'candidate'), { channel: 'candidate' }, key);
    const a = io();
    expect(await upgradeCommand.run(['lab-rolling.yaml', '--to', 'candidate', '--dry-run'], a)).toBe(1);
    expect(a.errText.filter((l) => !l.startsWith('checking '))).toEqual(['upgrade refused (channel): N+1 0.1.2 is on channel candidate, lab-3 follows stable (the channel of 0.1.0, the build it runs): a cluster takes builds of its channel or a more stable one (stable, candidate, edge). To move lab-3 to candidate, pass --channel candidate']);
    const b = io();
    expect(await upgradeCommand.run(['lab-rolling.yaml', '--to', 'candidate', '--dry-run', '--channel', 'candidate'], b)).toBe(0);
    expect(b.outText).toContain('ok    channel: N+1 is on candidate, lab-3 follows candidate (--channel; the build it runs, 0.1.0, is on stable)');
    expect(b.outText).toContain('ok    stepping stone: none (N+1 installs over any older version)');

    writeArtifact(join(root, 'stone'), { cluster: 'lab-3', version: '0.3.0', key, ...N1 });
    signWithPolicy(join(root, 'stone'), { channel: 'stable', requiresAtLeast: '0.2.0' }, key);
    const c = io();
    expect(await upgradeCommand.run(['lab-rolling.yaml', '--to', 'stone', '--dry-run'], c)).toBe(1);
    expect(c.errText.join('\n')).toMatch(/^upgrade refused \(stepping-stone\): N\+1 0\.3\.0 can only be installed on a cluster that runs 0\.2\.0 or later .*Upgrade lab-3 to a 0\.2\.0 build first/m);

    // Windows around the real clock (the CLI judges them at the time it runs): one every day 3 h from now, one open now.
    const hhmm = (t: number): string => new Date(t).toISOString().slice(11, 16);
    const everyDay = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
    const withWindow = (file: string, start: number, durationMinutes: number): void => rolling(file, { maintenanceWindows: [{ days: everyDay, start: hhmm(start), durationMinutes }] });
    withWindow('lab-later.yaml', Date.now() + 3 * 3_600_000, 30);
    const d = io();
    expect(await upgradeCommand.run(['lab-later.yaml', '--to', 'n1'], d)).toBe(1);
    expect(d.errText.filter((l) => !l.startsWith('checking ') && !l.startsWith('looking at '))).toEqual([expect.stringMatching(/^upgrade refused \(outside-window\): lab-3 is outside every maintenance window \(spec\.upgrades\.maintenanceWindows\): the next opens \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (2 h 5\d min|3 h)\)\. Rerun then, or pass --outside-window to upgrade now$/)]);
    const dry = io();
    expect(await upgradeCommand.run(['lab-later.yaml', '--to', 'n1', '--dry-run'], dry)).toBe(0);
    expect(dry.outText.join('\n')).toMatch(/^ok {4}window: closed: the next window opens .* — a dry run; the upgrade itself is refused until then \(or give --outside-window\)$/m);
    // --outside-window: past the window (said), then the one-root refusal of lab-3: no node is touched here.
    const forced = io();
    expect(await upgradeCommand.run(['lab-later.yaml', '--to', 'n1', '--outside-window'], forced)).toBe(1);
    expect(forced.outText.join('\n')).toMatch(/^ok {4}window: closed: the next window opens .* — upgrading now: --outside-window$/m);
    expect(forced.errText.join('\n')).toMatch(/refused: lab-3 was deployed with one root partition/);
    withWindow('lab-open.yaml', Date.now() - 3_600_000, 180);
    const open = io();
    expect(await upgradeCommand.run(['lab-open.yaml', '--to', 'n1', '--dry-run'], open)).toBe(0);
    expect(open.outText.join('\n')).toMatch(/^ok {4}window: open until .*UTC \((1 h 5\d min|2 h)\)$/m);
  });
});
