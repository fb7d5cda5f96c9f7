// Deterministic, locally administered unicast MACs: 02 + 40 bits of sha256(cluster/node/nic).
// Collisions (astronomically rare) are resolved by rehashing with a counter, in a fixed order,
// so the result still depends only on the spec.
import { sha256Bytes } from '../canonical';

export function macFor(cluster: string, node: string, nic: number, attempt = 0): string {
  const h = sha256Bytes(`kubedos-mac/${cluster}/${node}/${nic}/${attempt}`);
  const bytes = [0x02, h[0] ?? 0, h[1] ?? 0, h[2] ?? 0, h[3] ?? 0, h[4] ?? 0];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** MACs for every NIC; explicit overrides win, derived ones avoid every other MAC. */
export function deterministicMacs(cluster: string, nodes: readonly { node: string; nics: readonly (string | undefined)[] }[]): Map<string, string[]> {
  const taken = new Set<string>();
  for (const n of nodes) for (const m of n.nics) if (m) taken.add(m);
  const out = new Map<string, string[]>();
  for (const n of nodes) {
    out.set(
      n.node,
      n.nics.map((explicit, i) => {
        if (explicit) return explicit;
        for (let attempt = 0; ; attempt++) {
          const mac = macFor(cluster, n.node, i, attempt);
          if (!taken.has(mac)) {
            taken.add(mac);
            return mac;
          }
        }
      }),
    );
  }
  return out;
}
