// Stage "backplanes": on every node, kubedos-backplane.service brought wg1/wg2/wg3 up from the
// node's rendered config at first boot (keys generated on the node, the planned /32, the
// firewall loaded). Checked through the agent with `kubedos-planes status`: interfaces up, a
// public key per plane, the planned address, the nftables table present. Nodes already
// enrolled (a rerun) must also have fresh handshakes with the hub. Safe to rerun: it only reads.
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { sha256Hex } from '../../common/canonical';
import type { DeployContext } from './context';
import { BackplanesOutput, deployStage, scopedNodes } from './context';
import { eachNode } from './guest';
import { sleep } from '../pipeline/sleep';
import type { PlanesStatus } from './firstboot';
import { bootTimeoutMs, planesStatus } from './firstboot';

export const PLANE_NAMES = ['wg1', 'wg2', 'wg3'] as const;
/** A handshake older than this is stale (WireGuard re-handshakes every 2 minutes under traffic). */
export const HANDSHAKE_FRESH_S = 300;

/** What is wrong with a node's planes, or [] when they are up as planned. */
export function planeProblems(st: PlanesStatus, node: { name: string; planes: Record<string, { address: string }> }): string[] {
  const out: string[] = [];
  if (!st.nftables) out.push('the nftables table inet kubedos is not loaded');
  for (const p of PLANE_NAMES) {
    const pl = st.planes[p];
    if (!pl?.up) out.push(`${p} is down`);
    else if (!pl.publicKey) out.push(`${p} has no key`);
    else if (pl.address !== node.planes[p]?.address) out.push(`${p} has ${pl.address ?? 'no address'}, the plan says ${node.planes[p]?.address}`);
  }
  return out;
}

/** Planes whose hub peer has no recent handshake (spokes), judged by the node's own clock. */
export function staleHandshakes(st: PlanesStatus, nowS: number): string[] {
  return PLANE_NAMES.filter((p) => {
    const peers = st.planes[p]?.peers ?? [];
    return !peers.some((x) => x.latestHandshake > 0 && nowS - x.latestHandshake < HANDSHAKE_FRESH_S);
  });
}

type PlaneKeys = Record<(typeof PLANE_NAMES)[number], string>;
const keysOf = (st: PlanesStatus): PlaneKeys => Object.fromEntries(PLANE_NAMES.map((p) => [p, st.planes[p]?.publicKey ?? ''])) as PlaneKeys;

export function backplanesStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'backplanes',
    description: 'Check wg1/wg2/wg3 on every node through the agent: up, keyed, planned /32, firewall loaded; handshakes for enrolled nodes',
    needs: ['firstboot'],
    reads: ['validate', 'plan', 'firstboot'],
    rerun: 'safe-rerun',
    inputs: ({ plan, firstboot }) => ({ plan: sha256Hex(plan.json), nodes: firstboot.nodes }),
    output: BackplanesOutput,
    // One `kubedos-planes status` per node: planes as planned, with the keys recorded last time.
    async probe(p, { validate, plan }, last) {
      const { driver } = ctx.substrate(validate.spec, plan.plan);
      const drift = (
        await Promise.all(
          scopedNodes(ctx, plan.plan.nodes).map(async (n) => {
            const st = await planesStatus({ driver, node: n, signal: p.signal });
            const problems = planeProblems(st, n);
            const keys = keysOf(st);
            const was = last.wgPublicKeys[n.name];
            if (!problems.length && (!was || PLANE_NAMES.some((x) => was[x] !== keys[x]))) problems.push('its plane keys changed');
            return problems.map((x) => `${n.name}: ${x}`);
          }),
        )
      ).flat();
      return drift.length ? { moved: true, reason: drift.slice(0, 3).join('; ') } : { moved: false, note: 'every node\'s planes are up with the recorded keys' };
    },
    async run(s, { validate, plan: planned }) {
      const plan = planned.plan;
      const { driver } = ctx.substrate(validate.spec, plan);
      const deadline = Date.now() + Math.min(bootTimeoutMs(ctx.env), 300_000);
      const wgPublicKeys: Record<string, PlaneKeys> = {};
      const nodes = scopedNodes(ctx, plan.nodes);
      await eachNode(s, nodes, async (n) => {
        const g = { driver, node: n, signal: s.signal };
        let problems: string[];
        for (;;) {
          const st = await planesStatus(g);
          problems = planeProblems(st, n);
          if (!problems.length) {
            wgPublicKeys[n.name] = keysOf(st);
            const peers = PLANE_NAMES.map((p) => st.planes[p]?.peers?.length ?? 0);
            s.log(`${n.name}: ${PLANE_NAMES.map((p, i) => `${p} ${st.planes[p]!.address} (${peers[i]} peer${peers[i] === 1 ? '' : 's'})`).join(', ')}; firewall loaded`, { node: n.name });
            return;
          }
          if (Date.now() > deadline) break;
          await sleep(3000, s.signal);
        }
        throw new StageError(`${n.name}: backplanes not as planned: ${problems.join('; ')}`, {
          node: n.name,
          command: ['/usr/lib/kubedos/backplane/kubedos-planes', 'status'],
          hint: `see journalctl -u kubedos-backplane on ${n.name}; rerun kubedos-planes up there, then rerun the deploy`,
        });
      });
      s.changed(0);
      return {
        wgPublicKeys: Object.fromEntries(Object.entries(wgPublicKeys).sort(([a], [b]) => a.localeCompare(b))),
        summary: { stage: 'backplanes', changes: 0, notes: nodes.map((n) => `${n.name}: wg1 ${n.planes.wg1.address}, wg2 ${n.planes.wg2.address}, wg3 ${n.planes.wg3.address}`) },
      };
    },
  });
}
