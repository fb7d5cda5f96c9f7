// Stage "backplanes": on every node, kubedos-backplane.service brought wg1/wg2/wg3 up from the
// node's rendered config at first boot (keys generated on the node, the planned /32, the
// firewall loaded). Checked through the agent with `kubedos-planes status`: interfaces up, a
// public key per plane, the planned address, the nftables table present. Nodes already
// enrolled (a rerun) must also have fresh handshakes with the hub. Safe to rerun: it only reads.
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import type { DeployContext } from './context';
import { eachNode, need } from './guest';
import { sleep } from '../pipeline/sleep';
import type { PlanesStatus } from './firstboot';
import { bootTimeoutMs, planesStatus } from './firstboot';
import { ensureDriver } from './provision';

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

export function backplanesStage(ctx: DeployContext): StageDefinition {
  return {
    name: 'backplanes',
    description: 'Check wg1/wg2/wg3 on every node through the agent: up, keyed, planned /32, firewall loaded; handshakes for enrolled nodes',
    needs: ['firstboot'],
    rerun: 'safe-rerun',
    async run(s) {
      const plan = need(ctx.plan, 'plan');
      const driver = ensureDriver(ctx);
      const deadline = Date.now() + Math.min(bootTimeoutMs(ctx.env), 300_000);
      await eachNode(s, plan.nodes, async (n) => {
        const g = { driver, node: n, signal: s.signal };
        let problems: string[];
        for (;;) {
          const st = await planesStatus(g);
          problems = planeProblems(st, n);
          if (!problems.length) {
            ctx.nodes[n.name] = { ...(ctx.nodes[n.name] ?? { node: n.name, vmid: n.vmid }), wgPublicKeys: Object.fromEntries(PLANE_NAMES.map((p) => [p, st.planes[p]!.publicKey!])) };
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
      ctx.summaries.backplanes = { stage: 'backplanes', changes: 0, notes: plan.nodes.map((n) => `${n.name}: wg1 ${n.planes.wg1.address}, wg2 ${n.planes.wg2.address}, wg3 ${n.planes.wg3.address}`) };
      s.changed(0);
    },
  };
}
