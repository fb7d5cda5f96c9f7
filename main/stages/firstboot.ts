// Stage "firstboot": every VM's guest agent answers, its first boot finished (the marker
// /var/lib/kubedos/firstboot-complete written by kubedos-firstboot.sh), and the facts the later
// stages need are read through the agent — each node's SSH host key (converge pins it) and the
// hub's facts from the master (seed 001 reads hub.env the same way): LAN address, enrollment
// endpoint, WireGuard public keys and ports. Safe to rerun: it only reads.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubOf } from '../../common/plan/index';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { waitForAgents } from '../substrate/provision';
import type { HubFacts, NodeFacts } from '../node-facts';
import type { BuildReport } from '../build/index';
import type { SubstrateDriver } from '../substrate/driver';
import type { DeployContext, DeployOutputs } from './context';
import { deployStage, FirstbootOutput, scopedNodes } from './context';
import type { GuestCall, PlanNode } from './guest';
import { eachNode, guestJson, guestReadMaybe, guestRun, tail } from './guest';
import { sleep } from '../pipeline/sleep';

export const FIRSTBOOT_MARKER = '/var/lib/kubedos/firstboot-complete';
export const PLANES_BIN = '/usr/lib/kubedos/backplane/kubedos-planes';
const PLANES = ['wg1', 'wg2', 'wg3'] as const;

/** How long a guest may take (TCG boots are slow); $KUBEDOS_BOOT_TIMEOUT_S overrides. */
export function bootTimeoutMs(env: NodeJS.ProcessEnv): number {
  const s = Number(env.KUBEDOS_BOOT_TIMEOUT_S ?? 1200);
  return (Number.isFinite(s) && s > 0 ? s : 1200) * 1000;
}

export interface PlanesStatus {
  node: string;
  hub: boolean;
  nftables: boolean;
  planes: Record<string, { up: boolean; publicKey?: string; address?: string; peers?: { publicKey: string; endpoint: string; allowedIps: string[]; latestHandshake: number }[] }>;
}

export async function planesStatus(g: GuestCall): Promise<PlanesStatus> {
  return guestJson<PlanesStatus>(g, [PLANES_BIN, 'status'], { what: 'kubedos-planes status', timeoutS: 60 });
}

async function unitFailure(g: GuestCall, unit: string): Promise<string | undefined> {
  const r = await g.driver.guestExec(g.node.vmid, ['systemctl', 'is-failed', '--quiet', unit], { timeoutS: 30, ...(g.signal ? { signal: g.signal } : {}) }).catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  const j = await g.driver.guestExec(g.node.vmid, ['journalctl', '--no-pager', '-o', 'cat', '-n', '40', '-u', unit], { timeoutS: 30 }).catch(() => undefined);
  return j ? tail(j.stdout, 40) : '(journal unavailable)';
}

/** Waits until the node's first boot wrote its marker; fails early when the unit failed. */
async function waitMarker(g: GuestCall, deadline: number, log: (l: string) => void): Promise<NodeFacts['firstboot']> {
  let polls = 0;
  for (;;) {
    const raw = await guestReadMaybe(g, FIRSTBOOT_MARKER);
    if (raw) {
      const rec = JSON.parse(raw.toString('utf8')) as NonNullable<NodeFacts['firstboot']>;
      if (rec.node !== g.node.name) {
        throw new StageError(`${g.node.name} (VMID ${g.node.vmid}) finished first boot as "${rec.node}": the VM picked the wrong node.json`, {
          node: g.node.name,
          hint: 'the NIC MAC of the VM must be the plan\'s (kubedos plan --node); was the VM created by another spec?',
        });
      }
      return rec;
    }
    if (++polls % 10 === 0) {
      const failed = await unitFailure(g, 'kubedos-firstboot.service');
      if (failed !== undefined) {
        throw new StageError(`${g.node.name}: first boot failed (kubedos-firstboot.service)`, {
          node: g.node.name,
          command: ['/usr/lib/kubedos/firstboot/kubedos-firstboot.sh'],
          stderrTail: failed,
          hint: 'fix the cause in the payload or the plan, rebuild (kubedos build) and recreate the VM (kubedos deploy --allow-destroy)',
        });
      }
      log(`${g.node.name}: first boot still running`);
    }
    if (Date.now() > deadline) {
      throw new StageError(`${g.node.name}: no first-boot marker (${FIRSTBOOT_MARKER}) after ${Math.round((Date.now() - deadline) / 1000 + 0)} s past the boot timeout`, {
        node: g.node.name,
        hint: 'read the VM\'s serial console (qemu-local: serial.log in clusters/<cluster>/vms/vms/<vmid>/ of the workspace); raise KUBEDOS_BOOT_TIMEOUT_S on slow hosts',
      });
    }
    await sleep(3000, g.signal);
  }
}

/** The hub's facts: its planes must be up (kubedos-backplane.service ran after first boot). */
export async function readHubFacts(g: GuestCall, deadline: number): Promise<HubFacts> {
  const n = g.node;
  for (;;) {
    const st = await planesStatus(g).catch((err: unknown) => {
      if (Date.now() > deadline) throw err;
      return undefined;
    });
    if (st && PLANES.every((p) => st.planes[p]?.up && st.planes[p]?.publicKey)) {
      return {
        node: n.name,
        lanAddress: n.lan.address,
        enrollment: { address: n.lan.address, port: 0 },
        wgPublicKeys: Object.fromEntries(PLANES.map((p) => [p, st.planes[p]!.publicKey!])) as HubFacts['wgPublicKeys'],
        listenPorts: Object.fromEntries(PLANES.map((p) => [p, n.planes[p].listenPort])) as HubFacts['listenPorts'],
      };
    }
    if (Date.now() > deadline) {
      const failed = await unitFailure(g, 'kubedos-backplane.service');
      throw new StageError(`${n.name}: the hub's planes are not up (kubedos-planes status)`, {
        node: n.name,
        command: [PLANES_BIN, 'status'],
        ...(failed ? { stderrTail: failed } : {}),
        hint: 'see kubedos-backplane.service on the master (journalctl -u kubedos-backplane)',
      });
    }
    await sleep(3000, g.signal);
  }
}

/**
 * A node installed from an older artifact than this build's (its /etc/kubedos/payload.json
 * names the payload it was installed with): a warning, not a failure — the new artifact reaches
 * a running node only when it is recreated.
 */
async function payloadDrift(build: BuildReport, g: GuestCall): Promise<string | undefined> {
  const built = join(build.outDir, 'payload', g.node.role, 'payload.json');
  if (!existsSync(built)) return undefined;
  const want = (JSON.parse(readFileSync(built, 'utf8')) as { payloadSha256?: string }).payloadSha256;
  const raw = await guestReadMaybe(g, '/etc/kubedos/payload.json');
  const have = raw ? (JSON.parse(raw.toString('utf8')) as { payloadSha256?: string }).payloadSha256 : undefined;
  if (!want || have === want) return undefined;
  return `${g.node.name} runs the ${g.node.role} payload ${have ? have.slice(0, 12) : '(unknown, older image)'}, this build's is ${want.slice(0, 12)}: the node keeps its payload until it is recreated (a rebuild drill, or kubedos deploy --allow-destroy after removing the VM)${g.node.hub ? '; converge runs the master\'s baked Ansible content' : ''}`;
}

/** The one command the probe runs per node: its first-boot record and its SSH host key. */
const FACTS_PROBE = ['sh', '-c', `cat ${FIRSTBOOT_MARKER} && echo && cat /etc/ssh/ssh_host_ed25519_key.pub`];

/** Pure: how a node's probe output differs from the facts recorded at its first boot ([] = same).
 * The output is the marker (JSON, with or without a final newline) and then the host key line. */
export function factsDrift(recorded: NodeFacts | undefined, probeStdout: string): string[] {
  if (!recorded) return ['no facts were recorded for it'];
  const lines = probeStdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const marker = lines.find((l) => l.startsWith('{')) ?? '';
  const key = lines.find((l) => l.startsWith('ssh-')) ?? '';
  const out: string[] = [];
  try {
    const rec = JSON.parse(marker) as NonNullable<NodeFacts['firstboot']>;
    if (rec.startedAt !== recorded.firstboot?.startedAt || rec.node !== recorded.node) out.push('it booted for the first time again (a new VM)');
  } catch {
    out.push('its first-boot marker is missing or unreadable');
  }
  if (key.split(' ').slice(0, 2).join(' ') !== recorded.sshHostKey) out.push('its SSH host key changed');
  return out;
}

async function probeFacts(driver: SubstrateDriver, nodes: readonly PlanNode[], recorded: DeployOutputs['firstboot'], signal: AbortSignal): Promise<string[]> {
  const drift = await Promise.all(
    nodes.map(async (n) => {
      const r = await driver.guestExec(n.vmid, FACTS_PROBE, { timeoutS: 30, signal });
      return r.exitCode === 0 ? factsDrift(recorded.nodes[n.name], r.stdout).map((d) => `${n.name}: ${d}`) : [`${n.name}: its first-boot marker is missing (exit ${r.exitCode})`];
    }),
  );
  return drift.flat();
}

export function firstbootStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'firstboot',
    description: 'Wait for the guest agents and the first-boot marker; read SSH host keys and the hub\'s facts through the agent',
    needs: ['provision'],
    reads: ['validate', 'plan', 'build', 'provision'],
    rerun: 'safe-rerun',
    inputs: ({ plan, build }) => ({
      nodes: scopedNodes(ctx, plan.plan.nodes).map((n) => ({ name: n.name, vmid: n.vmid, role: n.role, mac: n.lan.mac })),
      images: build.outputs.filter((o) => o.kind === 'image').map((o) => ({ role: o.role, sha256: o.sha256 })),
    }),
    output: FirstbootOutput,
    // One command per node: the same first boot (its marker) and the same host key as recorded.
    async probe(p, { validate, plan }, last) {
      const { driver } = ctx.substrate(validate.spec, plan.plan);
      const drift = await probeFacts(driver, scopedNodes(ctx, plan.plan.nodes), last, p.signal);
      return drift.length ? { moved: true, reason: drift.slice(0, 3).join('; ') } : { moved: false, note: 'every node\'s first-boot marker and host key are as recorded' };
    },
    async run(s, { validate, plan: planned, build }) {
      const plan = planned.plan;
      const { driver } = ctx.substrate(validate.spec, plan);
      const timeout = bootTimeoutMs(ctx.env);
      const deadline = Date.now() + timeout;
      // A scoped run (DeployContext.only) waits for its one node; the hub's facts are read below either way.
      const nodesNow = scopedNodes(ctx, plan.nodes);
      for (const n of nodesNow) s.node(n.name, 'running', 'waiting for the guest agent');
      const byVmid = new Map(nodesNow.map((n) => [n.vmid, n.name]));
      const answered = await waitForAgents(driver, nodesNow.map((n) => n.vmid), {
        timeoutMs: timeout,
        intervalMs: 3000,
        signal: s.signal,
        onReset: (vmid, why) => {
          const name = byVmid.get(vmid) ?? String(vmid);
          s.log(`${name}: the kernel hung before init (${why}); VM ${vmid} reset once, waiting for its agent again`, { node: name, stream: 'warn' });
          s.node(name, 'running', 'reset after a kernel hang; waiting for the guest agent');
        },
      });
      for (const n of nodesNow) s.log(`${n.name}: guest agent answered after ${((answered.get(n.vmid) ?? 0) / 1000).toFixed(1)} s`, { node: n.name });
      let done = 0;
      const stale: string[] = [];
      const nodes: Record<string, NodeFacts> = {};
      await eachNode(s, nodesNow, async (n: PlanNode) => {
        const g = { driver, node: n, signal: s.signal };
        const firstboot = await waitMarker(g, deadline, (l) => s.log(l, { node: n.name }));
        const key = (await guestRun(g, ['cat', '/etc/ssh/ssh_host_ed25519_key.pub'], { what: 'read the SSH host key' })).stdout.trim();
        if (!/^ssh-ed25519 [A-Za-z0-9+/=]+/.test(key)) throw new StageError(`${n.name}: unexpected SSH host key ${JSON.stringify(key.slice(0, 40))}`, { node: n.name });
        nodes[n.name] = { node: n.name, vmid: n.vmid, ...(firstboot ? { firstboot } : {}), sshHostKey: key.split(' ').slice(0, 2).join(' ') };
        const drift = await payloadDrift(build, g);
        if (drift) {
          s.log(drift, { node: n.name, stream: 'warn' });
          stale.push(drift);
        }
        s.log(`${n.name}: first boot completed in ${firstboot ? firstboot.completedAt - firstboot.startedAt : '?'} s (${firstboot?.steps.join(', ')})`, { node: n.name });
        s.progress(++done / nodesNow.length, undefined, n.name);
      });
      const hub = hubOf(plan);
      const facts = await readHubFacts({ driver, node: hub, signal: s.signal }, deadline);
      facts.enrollment = { address: plan.enrollment.listen, port: plan.enrollment.port };
      s.log(`hub ${hub.name}: LAN ${facts.lanAddress}, enrollment ${facts.enrollment.address}:${facts.enrollment.port}, ${PLANES.map((p) => `${p} ${facts.wgPublicKeys[p].slice(0, 8)}…:${facts.listenPorts[p]}`).join(', ')}`, { node: hub.name });
      s.changed(0);
      const sorted = Object.fromEntries(Object.entries(nodes).sort(([a], [b]) => a.localeCompare(b)));
      return { nodes: sorted, hub: facts, summary: { stage: 'firstboot', changes: 0, notes: [...nodesNow.map((n) => `${n.name}: first boot complete`), ...stale] } };
    },
  });
}
