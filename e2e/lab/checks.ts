// Small lab checks shared by the lab tests.
import { PLANE_NAMES } from '../../common/spec/schema';
import type { PlaneName } from '../../common/spec/schema';
import { bin } from '../../main/lab/backplane';
import type { Lab } from '../../main/lab/harness';

/** The hub's peers per plane, as the /32s they are allowed (sorted). */
export async function hubPeerIps(lab: Lab): Promise<Record<PlaneName, string[]>> {
  const out = {} as Record<PlaneName, string[]>;
  for (const p of PLANE_NAMES) {
    const r = await lab.exec(lab.hub.name, ['wg', 'show', p, 'allowed-ips']);
    out[p] = r.stdout
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => (l.split('\t')[1] ?? '').split(' ').filter((x) => x && x !== '(none)'))
      .sort();
  }
  return out;
}

export interface PathResult {
  from: string;
  to: string;
  plane: PlaneName;
  ok: boolean;
  result: string;
}

/**
 * TCP from each source node to every other node on every plane (sshd's port 22 answers on all
 * nodes, and the same-plane rule admits it), so it needs no extra listeners.
 */
export async function planeReachability(lab: Lab, sources: readonly string[], o: { timeout?: number } = {}): Promise<PathResult[]> {
  const all: PathResult[] = [];
  await Promise.all(
    sources.map(async (src) => {
      const s = lab.node(src).plan;
      const targets = [...lab.nodes.values()].filter((n) => n.name !== src);
      const checks = targets.flatMap((t) => PLANE_NAMES.map((p) => ({ to: t.name, plane: p, from: s.planes[p].address.replace('/32', ''), dst: t.plan.planes[p].address.replace('/32', '') })));
      const r = await lab.exec(src, ['/usr/bin/python3', bin('kubedos-probe'), 'connect-many'], {
        input: JSON.stringify(checks.map((c) => ({ from: c.from, to: c.dst, port: 22, timeout: o.timeout ?? 3 }))),
      });
      const got = JSON.parse(r.stdout) as { result: string }[];
      checks.forEach((c, i) => all.push({ from: src, to: c.to, plane: c.plane, ok: got[i]?.result === 'open', result: got[i]?.result ?? 'none' }));
    }),
  );
  return all;
}
