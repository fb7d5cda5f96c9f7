// A two-node namespace lab for the node terminal: a hub ("master") and a node ("w-1") with the
// real backplane payload (wg1/wg2/wg3 through wireguard-go, nftables: SSH open on wg1 only), an
// sshd in each with an ed25519 host key made for this run, the cluster's operator key (made by the
// engine's build-key code in a private workspace) authorized for the spec's `ops` user, and a
// first-boot record in the workspace journal carrying the host keys, as the firstboot stage writes it.
//
// This machine (the test process) joins the lab as an operator: a veth into the lab's LAN bridge
// (one /32 address, one /32 route: nothing else of the host's routing changes) and a wireguard-go
// interface that is a wg1 peer of the hub. So `kubedos ssh` takes exactly its default path: hub at
// its wg1 address, then the hub's tunnel to the node's wg1 address.
// Host-side names carry the prefix h17 and this process's PID; destroy() removes them by name/PID.
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Plan } from '../../common/plan/index';
import { plan as planOf } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { opsSshKey } from '../../main/build/keys';
import { run } from '../../main/exec/runner';
import { bringUp, makeTrust } from '../../main/lab/backplane';
import type { EnrollmentWindow } from '../../main/lab/backplane';
import { Lab } from '../../main/lab/harness';
import { FirstbootOutput } from '../../main/stages/context';
import { clusterWorkspace, makePrivateDir, WORKSPACE_LAYOUT } from '../../main/workspace';

export const TERMINAL_CLUSTER = 'h17-term';
const LAN = { cidr: '10.208.0.0/20', apiVip: '10.208.0.10', operator: '10.208.15.250' };
const PLANES = { wg1: '10.218.0.0/24', wg2: '10.219.0.0/24', wg3: '10.220.0.0/24' };
const OPERATOR_WG1 = '10.218.0.250';

/** Another lab of the same shape beside this one (another suite running at the same time): its own names and ranges. */
export interface TerminalLabOptions {
  cluster: string;
  /** Prefix of host-side names and the private dir (a few letters; the PID is appended). */
  tag: string;
  lan: typeof LAN;
  planes: typeof PLANES;
  operatorWg1: string;
}
const DEFAULTS: TerminalLabOptions = { cluster: TERMINAL_CLUSTER, tag: 'h17', lan: LAN, planes: PLANES, operatorWg1: OPERATOR_WG1 };

/** solo-1 plus one worker, on address ranges no other lab of this repository uses. */
export function terminalSpecText(o: TerminalLabOptions = DEFAULTS): string {
  const { cluster: TERMINAL_CLUSTER, lan: LAN, planes: PLANES } = o;
  const doc = parse(TEMPLATES['solo-1'].text) as {
    metadata: { name: string };
    spec: {
      nodes: { inventory: { name: string; role: string; vmid: number }[] };
      networking: { lan: { cidr: string }; apiVip: string; planes: Record<string, { cidr: string }> };
    };
  };
  doc.metadata.name = TERMINAL_CLUSTER;
  const master = doc.spec.nodes.inventory[0]!;
  doc.spec.nodes.inventory.push({ ...structuredClone(master), name: 'w-1', role: 'worker', vmid: master.vmid + 1 });
  doc.spec.networking.lan.cidr = LAN.cidr;
  doc.spec.networking.apiVip = LAN.apiVip;
  for (const [p, cidr] of Object.entries(PLANES)) doc.spec.networking.planes[p]!.cidr = cidr;
  return stringify(doc);
}

export interface TerminalLab {
  lab: Lab;
  plan: Plan;
  spec: ClusterSpec;
  specPath: string;
  env: NodeJS.ProcessEnv;
  workspace: string;
  /** "ssh-ed25519 AAAA…" per node, as recorded. */
  hostKeys: Record<string, string>;
  /** Private dir of this run (workspace, keys, spec). */
  dir: string;
  /** Rewrites the first-boot record (a later successful firstboot run) with these host keys. */
  recordFirstboot(keys: Record<string, string>): void;
  destroy(): void;
}

const sh = (argv: string[]) => run(argv, { timeoutMs: 30_000, hint: 'terminal lab setup' });

export async function createTerminalLab(log: (l: string) => void = () => undefined, options: Partial<TerminalLabOptions> = {}): Promise<TerminalLab> {
  const o: TerminalLabOptions = { ...DEFAULTS, ...options };
  const { cluster: TERMINAL_CLUSTER, lan: LAN, planes: PLANES, operatorWg1: OPERATOR_WG1 } = o;
  const text = terminalSpecText(o);
  const parsed = parseSpec(text);
  if (!parsed.spec) throw new Error(`terminal lab spec does not validate: ${parsed.diagnostics.map((d) => d.message).join('; ')}`);
  const spec = parsed.spec;
  const dir = mkdtempSync(join(tmpdir(), `${o.tag}-term-`));
  const env: NodeJS.ProcessEnv = { ...process.env, KUBEDOS_WORKSPACE: join(dir, 'ws') };
  delete env.KUBEDOS_AGE_IDENTITY_FILE;
  const specPath = join(dir, 'cluster.yaml');
  writeFileSync(specPath, text, { mode: 0o600 });
  const plan = planOf(spec);
  const tag = `${o.tag}${process.pid}`;
  const hostVeth = `${tag}v`;
  const wgIf = `${tag}w`;
  let wg: ChildProcess | undefined;
  let lab: Lab | undefined;
  const destroy = (): void => {
    if (wg?.pid && wg.exitCode === null) process.kill(wg.pid, 'SIGKILL');
    spawnSync('ip', ['link', 'del', wgIf]);
    rmSync(`/var/run/wireguard/${wgIf}.sock`, { force: true });
    spawnSync('ip', ['link', 'del', hostVeth]);
    lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ops = await opsSshKey(TERMINAL_CLUSTER, env, { log });
    lab = await Lab.create(plan, { log });
    const trust = await makeTrust(lab);
    const window: EnrollmentWindow = await bringUp(lab, trust);
    window.process.kill('SIGKILL');
    const hostKeys: Record<string, string> = {};
    for (const n of lab.nodes.values()) {
      // '*' and not useradd's '!': without PAM, sshd refuses a locked account even with a key.
      await lab.exec(n.name, ['useradd', '-m', '-s', '/bin/bash', '-p', '*', 'ops']);
      const labPub = (await sh(['ssh-keygen', '-y', '-f', lab.sshKey])).stdout.trim();
      // sshd reads AuthorizedKeysFile as the user logging in: ops must be able to reach and read it.
      await lab.writeFile(n.name, '/etc/kubedos-lab/authorized_keys', `${labPub}\n${ops.publicKey}\n`, 0o644);
      await lab.exec(n.name, ['chmod', '0755', '/etc/kubedos-lab']);
      hostKeys[n.name] = (await lab.readFile(n.name, '/etc/kubedos-lab/ssh_host_ed25519_key.pub')).trim().split(' ').slice(0, 2).join(' ');
    }
    // This machine on the lab's LAN: one address, one route to the hub.
    const hub = lab.hub;
    const hubLan = hub.plan.lan.address;
    await sh(['ip', 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', `${tag}l`, 'netns', lab.lanNetns]);
    await sh(['ip', '-n', lab.lanNetns, 'link', 'set', `${tag}l`, 'master', 'br0', 'up']);
    await sh(['ip', 'addr', 'add', `${LAN.operator}/32`, 'dev', hostVeth]);
    await sh(['ip', 'link', 'set', hostVeth, 'up']);
    await sh(['ip', 'route', 'add', `${hubLan}/32`, 'dev', hostVeth]);
    // … and a wg1 peer of the hub.
    const pair = generateKeyPairSync('x25519');
    const raw = (k: { export: (o: { format: 'jwk' }) => unknown }, f: 'd' | 'x'): string => Buffer.from((k.export({ format: 'jwk' }) as Record<string, string>)[f]!, 'base64url').toString('base64');
    const opPriv = raw(pair.privateKey, 'd');
    const opPub = raw(pair.publicKey, 'x');
    const keyFile = join(dir, 'wg-operator.key');
    writeFileSync(keyFile, `${opPriv}\n`, { mode: 0o600 });
    wg = spawn('wireguard-go', ['-f', wgIf], { stdio: 'ignore' });
    for (let i = 0; i < 50 && spawnSync('ip', ['link', 'show', wgIf]).status !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    const hubPub = (await lab.exec(hub.name, ['wg', 'show', hub.plan.planes.wg1.interface, 'public-key'])).stdout.trim();
    await sh(['wg', 'set', wgIf, 'private-key', keyFile, 'peer', hubPub, 'endpoint', `${hubLan}:${hub.plan.planes.wg1.listenPort}`, 'allowed-ips', PLANES.wg1, 'persistent-keepalive', '25']);
    await sh(['ip', 'addr', 'add', `${OPERATOR_WG1}/32`, 'dev', wgIf]);
    await sh(['ip', 'link', 'set', wgIf, 'up']);
    await sh(['ip', 'route', 'add', PLANES.wg1, 'dev', wgIf]);
    await lab.exec(hub.name, ['wg', 'set', hub.plan.planes.wg1.interface, 'peer', opPub, 'allowed-ips', `${OPERATOR_WG1}/32`]);
    const workspace = makePrivateDir(clusterWorkspace(TERMINAL_CLUSTER, env));
    let seq = 0;
    const recordFirstboot = (keys: Record<string, string>): void => {
      const runId = `${o.tag}-firstboot-${seq}`;
      const time = new Date().toISOString();
      const output = FirstbootOutput.parse({
        nodes: Object.fromEntries(plan.nodes.map((n) => [n.name, { node: n.name, vmid: n.vmid, sshHostKey: keys[n.name] }])),
        hub: {
          node: hub.name,
          lanAddress: hubLan,
          enrollment: { address: hubLan, port: plan.enrollment.port },
          wgPublicKeys: { wg1: hubPub, wg2: hubPub, wg3: hubPub },
          listenPorts: { wg1: hub.plan.planes.wg1.listenPort, wg2: hub.plan.planes.wg2.listenPort, wg3: hub.plan.planes.wg3.listenPort },
        },
        summary: { stage: 'firstboot', changes: plan.nodes.length, notes: [] },
      });
      const events = [
        { runId, seq: seq++, time, type: 'run', state: 'started', stages: ['firstboot'], pipeline: 'deploy' },
        { runId, seq: seq++, time, type: 'stage', stage: 'firstboot', state: 'success', rerun: 'safe-rerun', attempt: 1, output },
      ];
      writeFileSync(join(workspace, WORKSPACE_LAYOUT.journal), events.map((e) => `${JSON.stringify(e)}\n`).join(''), { flag: 'a', mode: 0o600 });
    };
    recordFirstboot(hostKeys);
    return { lab, plan, spec, specPath, env, workspace, hostKeys, dir, recordFirstboot, destroy };
  } catch (err) {
    destroy();
    throw err;
  }
}

