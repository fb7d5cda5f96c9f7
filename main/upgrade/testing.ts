// Test helpers for the upgrade preflight: small build directories signed with the project's own
// signing code (keys.ts buildSigningKey from an age-encrypted SecretStore, attest.ts manifest,
// SBOM, provenance and DSSE), a sealed deploy's bundle/build folder and a deploy journal. Real
// signatures, real verification; no image is built (that takes minutes).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import type { BuildRef, Slot } from '../../common/upgrade/agent';
import type { SlotWriteProgress } from '../../common/upgrade/progress';
import type { NodeOps, PowerCycle, ReplaceOps } from './apply-run';
import { UPGRADE_BOOT_TRIES } from './slot-image';
import type { AgentFiles } from './node-agent';
import { agentReadArgv, agentWriteArgv, agentWriteInput, parseAgentRead } from './node-agent';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { BuildManifest, OutputRecord } from '../build/attest';
import { envelopePath, MANIFEST_FILE, payloadTypeFor, PROVENANCE_FILE, PUBLIC_KEY_FILE, renderManifest, renderProvenance, renderSbom, SBOM_FILE, SIGNED_FILES, signDsse } from '../build/attest';
import type { LockedPackage } from '../build/darksite/pins';
import { deployedBuildDir, UPGRADE_BUILDS_DIR } from './preflight';
import { clusterWorkspace, makePrivateDir, WORKSPACE_LAYOUT } from '../workspace';

export interface SigningKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  keyid: string;
}

export interface ArtifactFixture {
  cluster: string;
  version: string;
  /** name → version */
  packages: Record<string, string>;
  /** output path (payload/<role>/… or images/<cluster>-<role>.qcow2) → content */
  payload: Record<string, string>;
  key: SigningKey;
  /** Leave the signatures out (an unsigned build). */
  unsigned?: boolean;
}

const EPOCH = 1_767_225_600; // 2026-01-01, fixed: nothing here reads the clock

function lockedPackages(packages: Record<string, string>): LockedPackage[] {
  return Object.keys(packages)
    .sort()
    .map((name) => ({ name, version: packages[name]!, architecture: 'amd64', sha256: sha256Hex(`${name}=${packages[name]}`), size: 1000, filename: `${name}_${packages[name]!.replace(/:/g, '%3a')}_amd64.deb`, roles: ['master'], source: 'debian/bookworm' }));
}

/** Writes a build directory as `kubedos build` lays it out (payload outputs only), signed unless `unsigned`. */
export function writeArtifact(dir: string, a: ArtifactFixture): void {
  const outputs: OutputRecord[] = [];
  for (const [path, text] of Object.entries(a.payload).sort(([x], [y]) => (x < y ? -1 : 1))) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
    const image = path.startsWith('images/');
    outputs.push({ path, sha256: sha256Hex(text), size: Buffer.byteLength(text), kind: image ? 'image' : 'payload', role: image ? path.replace(/^images\/[^-]+-|\.qcow2$/g, '') : path.split('/')[1] });
  }
  const manifest: BuildManifest = {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'BuildManifest',
    cluster: a.cluster,
    artifactVersion: a.version,
    sourceDateEpoch: EPOCH,
    roles: ['master'],
    inputs: { spec: { path: 'lab.yaml', sha256: sha256Hex(a.cluster) }, planSha256: sha256Hex('plan'), lockSha256: sha256Hex(JSON.stringify(a.packages)), payload: {}, hostFiles: [], tools: {} },
    outputs,
  };
  const files: Record<(typeof SIGNED_FILES)[number], string> = {
    [MANIFEST_FILE]: renderManifest(manifest),
    [SBOM_FILE]: renderSbom({
      cluster: a.cluster,
      artifactVersion: a.version,
      sourceDateEpoch: EPOCH,
      packages: lockedPackages(a.packages),
      payloadFiles: outputs.filter((o) => o.kind === 'payload').map((o) => ({ role: o.role!, path: o.path.split('/').slice(2).join('/'), sha256: o.sha256 })),
      tools: {},
      kubedosVersion: '0.1.0',
      outputs,
    }),
    [PROVENANCE_FILE]: renderProvenance({ manifest, externalParameters: {}, kubedosVersion: '0.1.0', nodeVersion: 'v20', invocationId: 'test' }),
  };
  mkdirSync(join(dir, 'signatures'), { recursive: true });
  for (const f of SIGNED_FILES) {
    writeFileSync(join(dir, f), files[f]);
    if (!a.unsigned) writeFileSync(join(dir, envelopePath(f)), JSON.stringify(signDsse(payloadTypeFor(f), Buffer.from(files[f]), a.key.privateKey, a.key.keyid)));
  }
  if (!a.unsigned) writeFileSync(join(dir, PUBLIC_KEY_FILE), a.key.publicKeyPem);
}

/** What a seal stage leaves of build N in the workspace: bundle/build/{manifest, SBOM, provenance, signatures}. */
export function writeSealedBuild(cluster: string, env: NodeJS.ProcessEnv, a: Omit<ArtifactFixture, 'cluster'>): string {
  const dir = deployedBuildDir(cluster, env);
  makePrivateDir(dir);
  writeArtifact(dir, { ...a, cluster, payload: {} });
  return dir;
}

/** A deploy run in the cluster's journal: every stage a success, or one failing on a node. */
export function writeDeployJournal(cluster: string, env: NodeJS.ProcessEnv, o: { failAt?: { stage: string; node: string; message: string }; finished?: boolean; after?: { pipeline: 'stop' | 'start' | 'destroy'; ok: boolean }[] } = {}): void {
  const stages = ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal'];
  const events: PipelineEvent[] = [];
  let seq = 0;
  let minute = 0;
  const time = (): string => `2026-12-02T10:${String(minute++).padStart(2, '0')}:00.000Z`;
  const add = (e: Record<string, unknown>): void => {
    events.push({ seq: seq++, time: time(), ...e } as PipelineEvent);
  };
  add({ runId: 'deploy-1', type: 'run', state: 'started', stages, pipeline: 'deploy' });
  const summary: Record<string, string> = {};
  for (const s of stages) {
    if (o.failAt?.stage === s) {
      add({ runId: 'deploy-1', type: 'node', stage: s, node: o.failAt.node, state: 'failed', message: o.failAt.message });
      add({ runId: 'deploy-1', type: 'stage', stage: s, state: 'failed', rerun: 'safe-rerun', attempt: 0 });
      add({ runId: 'deploy-1', type: 'failed', error: { stage: s, node: o.failAt.node, message: o.failAt.message } });
      summary[s] = 'failed';
      break;
    }
    add({ runId: 'deploy-1', type: 'stage', stage: s, state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 1 });
    summary[s] = 'success';
  }
  if (o.finished !== false) add({ runId: 'deploy-1', type: 'done', summary, durationMs: 1000 });
  (o.after ?? []).forEach((l, i) => {
    const runId = `${l.pipeline}-${i}`;
    add({ runId, type: 'run', state: 'started', stages: [l.pipeline], pipeline: l.pipeline });
    if (!l.ok) add({ runId, type: 'failed', error: { stage: l.pipeline, message: `${l.pipeline} failed on purpose` } });
    add({ runId, type: 'done', summary: { [l.pipeline]: l.ok ? 'success' : 'failed' }, durationMs: 10 });
  });
  const path = join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.journal);
  makePrivateDir(dirname(path));
  writeFileSync(path, events.map((e) => JSON.stringify(e)).join('\n') + '\n', { mode: 0o600 });
}

// GRUB's side of the A/B boot counter, run by bash: the shims do what GRUB's load_env, save_env
// and set do with the environment block, backed by the real grub-editenv (boot-counting.test.ts
// and slot-write.test.ts walk boots with it).
export const GRUB_SHIM = [
  'builtin set -eu',
  'load_env() {',
  '  local f="$2"; shift 2',
  '  local line k v name',
  '  while IFS= read -r line; do',
  '    k="${line%%=*}"; v="${line#*=}"',
  "    for name in \"$@\"; do if [ \"$name\" = \"$k\" ]; then printf -v \"$k\" '%s' \"$v\"; fi; done",
  '  done < <(grub-editenv "$f" list)',
  '}',
  'save_env() {',
  '  local f="$2"; shift 2',
  '  local kv=() name',
  '  for name in "$@"; do kv+=("$name=${!name-}"); done',
  '  grub-editenv "$f" set "${kv[@]}"',
  '}',
  "set() { printf -v \"${1%%=*}\" '%s' \"${1#*=}\"; }",
  'kubedos_env="$1"',
  'kubedos_active= kubedos_try= kubedos_tries= kubedos_failed=',
  '. "$2"',
  'echo "$kubedos_slot"',
].join('\n');

/** One boot's slot choice: payload/upgrade/boot-select.cfg run through GRUB_SHIM on `envFile` (it may count a try down). */
export function grubBootSelect(envFile: string, bootSelectCfg: string): string {
  return execFileSync('bash', ['-c', GRUB_SHIM, 'grub', envFile, bootSelectCfg], { encoding: 'utf8' }).trim();
}

/**
 * A slot write stopped mid-write: starts `argv` (kubedos-slot-write …) with the image's first 4 MiB on
 * its standard input, waits until `firstMiB()` (read back from the slot's partition) equals the
 * image's first MiB — dd is writing — then sends `sig` (default SIGKILL) to the writer's whole
 * process group, or with 'drop' does what a closed SSH connection does to it: its standard input
 * ends and its standard output and error lose their reader (no signal). A writer still running
 * 30 s later is SIGKILLed (and says so in `out`). Returns its exit code or signal and what it printed.
 */
export async function killSlotWriteMidWrite(argv: readonly string[], env: NodeJS.ProcessEnv, image: Buffer, firstMiB: () => Buffer, sig: NodeJS.Signals | 'drop' = 'SIGKILL'): Promise<{ signal: NodeJS.Signals | null; code: number | null; out: string }> {
  const MiB = 1024 * 1024;
  const child = spawn(argv[0]!, argv.slice(1), { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ signal: NodeJS.Signals | null; code: number | null }>((resolve) => child.on('exit', (code, signal) => resolve({ signal, code })));
  child.stdin.on('error', () => undefined); // the pipe breaks when the writer dies
  child.stdin.write(image.subarray(0, 4 * MiB));
  const first = image.subarray(0, MiB);
  const deadline = Date.now() + 15_000;
  while (!firstMiB().equals(first)) {
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL');
      throw new Error(`the writer never wrote its first MiB: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (sig === 'drop') {
    child.stdout.destroy();
    child.stderr.destroy();
    child.stdin.end();
  } else process.kill(-child.pid!, sig);
  const stuck = setTimeout(() => {
    out += '\n[still running 30 s after the stop: SIGKILLed by the test]';
    process.kill(-child.pid!, 'SIGKILL');
  }, 30_000);
  try {
    return { ...(await exited), out };
  } finally {
    clearTimeout(stuck);
  }
}

const UPGRADE_DIR = join(import.meta.dirname, '../../payload/upgrade');

/** One simulated A/B node: a GRUB environment block, a kernel command line, stubs for systemctl. */
/**
 * One simulated node's directory: a GRUB environment booting slot A, its kernel command line,
 * `systemctl` (a unit listed in `failing-units` is not active; a reboot is logged in `reboots`) and
 * the real `kubedos-boot` on its PATH, the gate's configuration (services: ssh, kubelet).
 */
export function simNodeDir(root: string, name: string): { dir: string; env: string; cmdline: string } {
  const dir = join(root, name);
  for (const d of ['bin', 'conf', 'textfile']) mkdirSync(join(dir, d), { recursive: true });
  const env = join(dir, 'kubedos.env');
  execFileSync('grub-editenv', [env, 'create']);
  execFileSync('grub-editenv', [env, 'set', 'kubedos_active=A']);
  const cmdline = join(dir, 'cmdline');
  writeFileSync(cmdline, 'BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-A rw kubedos.slot=A\n');
  const stub = (file: string, body: string): void => {
    writeFileSync(join(dir, 'bin', file), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, 'bin', file), 0o755);
  };
  stub('systemctl', `case "$1" in reboot) echo reboot >> '${join(dir, 'reboots')}'; exit 0 ;; esac\ngrep -qx "$3" '${join(dir, 'failing-units')}' 2>/dev/null && exit 3\nexit 0`);
  stub('kubedos-boot', `exec '${join(UPGRADE_DIR, 'kubedos-boot')}' "$@"`);
  writeFileSync(join(dir, 'conf/gate-checks'), 'services\n');
  writeFileSync(join(dir, 'conf/gate-units'), 'ssh\nkubelet\n');
  return { dir, env, cmdline };
}

export interface SimNode {
  name: string;
  dir: string;
  env: string;
  cmdline: string;
  /** What each slot really holds (the simulation's truth, not the foundry's record). */
  slots: Record<Slot, BuildRef>;
  /** The machine is going down / booting: the next observation boots it once. */
  rebooting: boolean;
  /** Powered off (powerOffDuringWrite): answers nothing until powerOn(). */
  off: boolean;
  /** The gate's kubedos.prom of each slot's last boot. */
  boots: number;
}

/**
 * A cluster of nodes whose boot counter and gate are the REAL node scripts (kubedos-boot,
 * boot-select.cfg through the GRUB simulator, kubedos-health-gate with its checks stubbed), behind
 * the apply loop's NodeOps. Time is compressed: a reboot happens at the next observation of the
 * node, one boot per observation (a gate that fails reboots the node again). Faults: a build whose
 * kernel never comes up on a node, a build that breaks a unit (the gate's services check) on a
 * node, a write the node refuses, a converge that fails on a node.
 */
export class SimCluster implements NodeOps, ReplaceOps {
  readonly nodes: Record<string, SimNode> = {};
  readonly calls: string[] = [];
  neverBoots: (node: string, b: BuildRef) => boolean = () => false;
  breaks: (node: string, b: BuildRef) => string | undefined = () => undefined;
  refuseWrite: (node: string) => string | undefined = () => undefined;
  /** The machine loses power while its slot is written: the slot half written, no try staged, the
   * writer's connection gone (its error message), the node silent until powerOn(). */
  powerOffDuringWrite: (node: string) => string | undefined = () => undefined;
  /** A drain that fails on a node (a PodDisruptionBudget, a timeout): its error message. */
  refuseDrain: (node: string) => string | undefined = () => undefined;
  /** A converge that fails on a node (a role that did not apply): its error message. */
  refuseConverge: (node: string) => string | undefined = () => undefined;
  /** A gate that fails reboots the node before the foundry looks (its next boot in the same observation). */
  missGateWindow = false;
  /** Runs while a slot is written, before it is read back: report progress, or hold the write (a test pausing the run mid-way). */
  duringWrite: (node: string, slot: Slot, onProgress: (p: SlotWriteProgress) => void) => Promise<void> | void = () => undefined;
  /** What a node's console shows (a VM's serial log); undefined: the substrate keeps none. */
  consoleText: (node: string) => string | undefined = () => undefined;
  /** The node hangs on its next boot (a kernel soft lockup under TCG): silent until powerOn(). */
  hangOnBoot: (node: string) => boolean = () => false;
  /** The node's firmware stalls after its next reboot (qemu-local's TPM stall): silent until recoverStall() power-cycles it. */
  stallOnReboot: (node: string) => boolean = () => false;
  /** ... and again at every power-on (a firmware that never gets past it). */
  stallOnPowerOn: (node: string) => boolean = () => false;
  /**
   * The node's kernel stops in the initramfs on this boot of `slot` (qemu-local's other stall under
   * TCG), after GRUB counted the boot: silent until recoverStall() power-cycles it, which says the
   * slot whose try was spent. `boot` counts the node's boots of that slot from 1.
   */
  stallInInitramfs: (node: string, slot: Slot, boot: number) => boolean = () => false;
  /** Nodes stalled now: in their firmware (undefined) or in the initramfs of a slot's boot. */
  readonly stalled = new Map<string, Slot | undefined>();
  /** Boots per node and slot (stallInInitramfs's count). */
  private readonly slotBoots = new Map<string, number>();
  /** Nodes cordoned now (kubectl drain cordons first; uncordon clears). */
  readonly cordoned = new Set<string>();

  // ---- Replacing a node (ReplaceOps: the drill machinery's steps on a deployed cluster)
  /** Nodes whose VM was destroyed and not provisioned again. */
  readonly gone = new Set<string>();
  /** VMs destroyed and created per node. */
  readonly destroyed: Record<string, number> = {};
  readonly created: Record<string, number> = {};
  /** Nodes fenced now (revoked at the hub, etcd member out) until a provision lifts it. */
  readonly fenced = new Set<string>();
  /** A fence, destroy or provision that fails on a node: its error message. */
  refuseReplace: (node: string, phase: 'fence' | 'destroy' | 'provision') => string | undefined = () => undefined;
  /** Runs as a replacement's fence, destroy or provision starts (a test cancelling the run there). */
  duringReplace: (node: string, phase: 'fence' | 'destroy' | 'provision') => void = () => undefined;

  constructor(
    private readonly root: string,
    names: readonly string[],
    n: BuildRef,
  ) {
    for (const name of names) this.nodes[name] = { name, ...simNodeDir(root, name), slots: { A: n, B: n }, rebooting: false, off: false, boots: 0 };
  }

  async exists(name: string): Promise<boolean> {
    this.node(name);
    return !this.gone.has(name);
  }

  async fence(name: string): Promise<string> {
    this.calls.push(`fence ${name}`);
    this.duringReplace(name, 'fence');
    const refusal = this.refuseReplace(name, 'fence');
    if (refusal) throw new Error(refusal);
    this.fenced.add(name);
    return `revoked at the hub; ${name}'s etcd member removed`;
  }

  /** The VM and its disks go: the node's directory (its boot environment, data, any marker a test left) is removed. */
  async destroy(name: string): Promise<string> {
    const n = this.node(name);
    this.calls.push(`destroy ${name}`);
    this.duringReplace(name, 'destroy');
    const refusal = this.refuseReplace(name, 'destroy');
    if (refusal) throw new Error(refusal);
    if (!this.gone.has(name)) {
      rmSync(n.dir, { recursive: true, force: true });
      n.off = true;
      this.gone.add(name);
      this.destroyed[name] = (this.destroyed[name] ?? 0) + 1;
    }
    return `VM of ${name} destroyed with its disks`;
  }

  /** A new VM in the same plan slot from `build`'s image (both slots hold it, slot A active), enrolled; one already there from `build` is kept (the deploy run skips it). */
  async provision(name: string, build: BuildRef): Promise<string> {
    const old = this.node(name);
    this.calls.push(`provision ${name} ${build.version}`);
    this.duringReplace(name, 'provision');
    let created = false;
    if (this.gone.has(name)) {
      this.nodes[name] = { name, ...simNodeDir(this.root, name), slots: { A: build, B: build }, rebooting: false, off: false, boots: 0 };
      this.gone.delete(name);
      this.created[name] = (this.created[name] ?? 0) + 1;
      created = true;
    } else if (old.slots.A.digest !== build.digest) throw new Error(`${name}: provision over a VM that runs ${old.slots.A.version}, not ${build.version} (it was never destroyed)`);
    // The deploy run fails after it created the VM (at first boot or enroll): the VM stays.
    const refusal = this.refuseReplace(name, 'provision');
    if (refusal) throw new Error(refusal);
    this.fenced.delete(name);
    return created ? `VM of ${name} created from ${build.version}, first boot, enrolled, planes up` : `VM of ${name} already created from ${build.version}: first boot, enrolled, planes up`;
  }

  /** The real kubedos-health-gate on the node's active slot (one pass: no try, nothing to fall back to); its kubedos.prom. */
  async gate(name: string): Promise<string | undefined> {
    const n = this.node(name);
    this.calls.push(`gate ${name}`);
    if (n.off) throw new Error(`${name}: no answer (the machine is powered off)`);
    writeFileSync(join(n.dir, 'failing-units'), `${this.breaks(n.name, n.slots.A) ?? ''}\n`);
    const g = spawnSync(join(UPGRADE_DIR, 'kubedos-health-gate'), ['--timeout', '0', '--interval', '0.2'], { encoding: 'utf8', env: this.envOf(n), timeout: 30_000 });
    if (!/^gate: (pass|fail)/m.test(g.stdout)) throw new Error(`${n.name}: the gate did not finish: ${g.stdout}${g.stderr}`);
    return this.metrics(name);
  }

  private node(name: string): SimNode {
    const n = this.nodes[name];
    if (!n) throw new Error(`no simulated node ${name}`);
    return n;
  }

  envOf(n: SimNode): NodeJS.ProcessEnv {
    return { PATH: `${join(n.dir, 'bin')}:${process.env.PATH}`, KUBEDOS_GRUBENV: n.env, KUBEDOS_CMDLINE: n.cmdline, KUBEDOS_UPGRADE_CONF: join(n.dir, 'conf'), KUBEDOS_METRICS_DIR: join(n.dir, 'textfile'), KUBEDOS_DATA: join(n.dir, 'data') };
  }

  private boot(args: string[], n: SimNode): string {
    return execFileSync(join(UPGRADE_DIR, 'kubedos-boot'), args, { encoding: 'utf8', env: this.envOf(n) });
  }

  /** One boot: GRUB picks a slot; a kernel that never comes up panics (reboots); else the gate runs and may reboot. */
  private bootOnce(n: SimNode): void {
    n.boots++;
    const slot = grubBootSelect(n.env, join(UPGRADE_DIR, 'boot-select.cfg')) as Slot;
    writeFileSync(n.cmdline, `BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-${slot} rw kubedos.slot=${slot}\n`);
    const nth = (this.slotBoots.get(`${n.name} ${slot}`) ?? 0) + 1;
    this.slotBoots.set(`${n.name} ${slot}`, nth);
    if (this.stallInInitramfs(n.name, slot, nth)) {
      n.off = true;
      this.stalled.set(n.name, slot);
      return;
    }
    if (this.neverBoots(n.name, n.slots[slot])) {
      n.rebooting = true; // panic=10: down again, never answering in between
      return;
    }
    writeFileSync(join(n.dir, 'failing-units'), `${this.breaks(n.name, n.slots[slot]) ?? ''}\n`);
    const reboots = (): string => (existsSync(join(n.dir, 'reboots')) ? readFileSync(join(n.dir, 'reboots'), 'utf8') : '');
    const before = reboots();
    const g = spawnSync(join(UPGRADE_DIR, 'kubedos-health-gate'), ['--timeout', '0', '--interval', '0.2'], { encoding: 'utf8', env: this.envOf(n), timeout: 30_000 });
    if (!/^gate: (pass|fail)/m.test(g.stdout)) throw new Error(`${n.name}: the gate did not finish: ${g.stdout}${g.stderr}`);
    n.rebooting = reboots() !== before;
  }

  async status(name: string): Promise<string> {
    const n = this.node(name);
    if (n.off) throw new Error(`${name}: no answer (the machine is powered off)`);
    if (n.rebooting) {
      n.rebooting = false;
      this.bootOnce(n);
      if (this.missGateWindow && n.rebooting && !this.neverBoots(n.name, n.slots[/kubedos\.slot=(.)/.exec(readFileSync(n.cmdline, 'utf8'))![1]! as Slot])) {
        n.rebooting = false;
        this.bootOnce(n);
      }
      if (n.rebooting && this.neverBoots(n.name, n.slots[/kubedos\.slot=(.)/.exec(readFileSync(n.cmdline, 'utf8'))![1]! as Slot])) throw new Error(`${name}: no answer (its kernel did not come up)`);
      if (n.off) throw new Error(`${name}: no answer (its kernel stopped in the initramfs)`);
    }
    return this.boot(['status'], n);
  }

  async metrics(name: string): Promise<string | undefined> {
    const f = join(this.node(name).dir, 'textfile/kubedos.prom');
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  }

  async triedMetrics(name: string, slot: Slot): Promise<string | undefined> {
    const f = join(this.node(name).dir, `data/upgrade/gate-${slot}.prom`);
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  }

  async writeSlot(name: string, slot: Slot, target: BuildRef, o: { onProgress?: (p: SlotWriteProgress) => void } = {}): Promise<void> {
    const n = this.node(name);
    this.calls.push(`write ${name} ${slot} ${target.version}`);
    const refusal = this.refuseWrite(name);
    if (refusal) throw new Error(refusal);
    await this.duringWrite(name, slot, (p) => o.onProgress?.(p));
    const cut = this.powerOffDuringWrite(name);
    if (cut) {
      // kubedos-slot-write stages the try only after its read-back: the cut leaves the environment block alone.
      n.off = true;
      throw new Error(cut);
    }
    // kubedos-slot-write's write and read-back (tested on a loop device and over wg1) end with this,
    // with the tries the engine asks for (slotWriteArgv):
    n.slots[slot] = target;
    this.boot(['try', slot, String(UPGRADE_BOOT_TRIES)], n);
  }

  async reboot(name: string): Promise<void> {
    this.calls.push(`reboot ${name}`);
    const n = this.node(name);
    if (this.hangOnBoot(name)) n.off = true;
    else if (this.stallOnReboot(name)) {
      n.off = true;
      this.stalled.set(name, undefined);
    } else n.rebooting = true;
  }

  /** NodeOps.recoverStall: a stalled node is powered off and on (its next observation boots it); others are left alone. */
  async recoverStall(name: string): Promise<PowerCycle | undefined> {
    const n = this.node(name);
    if (!this.stalled.has(name)) return undefined;
    const spent = this.stalled.get(name);
    this.stalled.delete(name);
    this.calls.push(`power-cycle ${name}`);
    n.off = false;
    if (this.stallOnPowerOn(name)) {
      n.off = true;
      this.stalled.set(name, undefined);
    } else n.rebooting = true;
    return spent ? { detail: `its console stayed at "Loading, please wait...": its boot of slot ${spent} stopped in the initramfs; powered it off and on`, spent } : { detail: `its console stayed at "reboot: machine restart": powered it off and on` };
  }

  async console(name: string): Promise<string> {
    return this.consoleText(name) ?? '';
  }

  async tryOnce(name: string, slot: Slot): Promise<void> {
    this.calls.push(`try ${name} ${slot}`);
    this.boot(['try', slot, '1'], this.node(name));
  }

  async cancel(name: string, slot: Slot): Promise<void> {
    this.calls.push(`cancel ${name} ${slot}`);
    this.boot(['cancel', slot], this.node(name));
  }

  async drain(name: string): Promise<void> {
    this.node(name);
    this.calls.push(`drain ${name}`);
    this.cordoned.add(name); // kubectl drain cordons before it evicts
    const refusal = this.refuseDrain(name);
    if (refusal) throw new Error(refusal);
  }

  async uncordon(name: string): Promise<void> {
    this.node(name);
    this.calls.push(`uncordon ${name}`);
    this.cordoned.delete(name);
  }

  async converge(name: string): Promise<void> {
    const n = this.node(name);
    this.calls.push(`converge ${name}`);
    // The foundry converges a node that runs: never one still going down or booting.
    if (n.rebooting) throw new Error(`${name}: converge called while the node reboots`);
    const refusal = this.refuseConverge(name);
    if (refusal) throw new Error(refusal);
  }

  /** The node's update agent directory (on its data partition: both slots see it). */
  agentDir(name: string): string {
    return join(this.node(name).dir, 'data/upgrade');
  }

  // The agent's state through the node-side scripts VmNodeOps runs through the guest agent, on the node's data directory.
  async readAgentState(name: string): Promise<AgentFiles> {
    if (this.node(name).off) throw new Error(`${name}: no answer (the machine is powered off)`);
    const [sh, ...rest] = agentReadArgv(this.agentDir(name));
    return parseAgentRead(execFileSync(sh!, rest, { encoding: 'utf8' }));
  }

  async writeAgentState(name: string, state: string, journal: readonly string[]): Promise<void> {
    if (this.node(name).off) throw new Error(`${name}: no answer (the machine is powered off)`);
    const [sh, ...rest] = agentWriteArgv(this.agentDir(name), journal.length);
    execFileSync(sh!, rest, { input: agentWriteInput(state, journal) });
  }

  /** Power on a machine that was powered off: its next observation is a boot. */
  powerOn(name: string): void {
    const n = this.node(name);
    n.off = false;
    n.rebooting = true;
  }

  /** `kubedos-boot status` without booting a pending reboot. */
  peek(name: string): string {
    return this.boot(['status'], this.node(name));
  }
}

/**
 * N+1's signed manifest as keepVerifiedBuild leaves it in the workspace under `env`
 * (UPGRADE_BUILDS_DIR/<its sha256>/manifest.json), listing `qcow2` as lab-3's worker image with its
 * size and sha256 — what the slot cut checks the image against. Returns N+1's reference.
 */
export function keepWorkerManifest(env: NodeJS.ProcessEnv, qcow2: string): BuildRef {
  const bytes = readFileSync(qcow2);
  const manifest = `${JSON.stringify({ artifactVersion: '0.1.1', cluster: 'lab-3', outputs: [{ path: 'images/lab-3-worker.qcow2', kind: 'image', role: 'worker', sha256: sha256Hex(bytes), size: bytes.length }] })}\n`;
  const digest = sha256Hex(manifest);
  const dir = join(clusterWorkspace('lab-3', env), UPGRADE_BUILDS_DIR, digest);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, MANIFEST_FILE), manifest);
  return { version: '0.1.1', digest };
}
