// Runs a wiring matrix against something that can execute the probe on nodes (the lab harness
// now; the master over wg1 once deployments exist) and judges the results.
import { renderTable } from '../../common/text/table';
import type { WiringCheck } from './matrix';
import { listenPorts } from './matrix';
import { plural } from '../../common/text/plural';

export type Observed = 'open' | 'timeout' | 'refused' | 'error';

export interface WiringTarget {
  /**
   * Starts probe listeners on a node; resolves when they accept. Returns a stop function (a
   * listener that could not be stopped still exits by itself after its --seconds).
   */
  serve(node: string, ports: readonly number[]): Promise<() => void | Promise<void>>;
  /** Tries the given connections from `node` at once; results in the same order. */
  connectMany(node: string, checks: readonly { from: string; to: string; port: number; timeout: number }[]): Promise<{ result: Observed; error?: string }[]>;
  /** Named nftables counters of a node (packets). */
  counters(node: string): Promise<Record<string, number>>;
}

export interface CheckResult extends WiringCheck {
  observed: Observed;
  ok: boolean;
  error?: string;
}

export interface WiringReport {
  results: CheckResult[];
  passed: number;
  failed: number;
  /** Sum over nodes of each named counter, before and after the checks. */
  counters: { before: Record<string, number>; after: Record<string, number> };
  durationMs: number;
}

export async function runWiringChecks(target: WiringTarget, nodes: readonly string[], checks: readonly WiringCheck[], o: { timeoutSeconds?: number } = {}): Promise<WiringReport> {
  const t0 = performance.now();
  const timeout = o.timeoutSeconds ?? 2;
  const sum = async (): Promise<Record<string, number>> => {
    const total: Record<string, number> = {};
    for (const c of await Promise.all(nodes.map((n) => target.counters(n)))) for (const [k, v] of Object.entries(c)) total[k] = (total[k] ?? 0) + v;
    return total;
  };
  const stops: (() => void | Promise<void>)[] = [];
  try {
    for (const [node, ports] of listenPorts(checks)) stops.push(await target.serve(node, ports));
    const before = await sum();
    const bySource = new Map<string, number[]>();
    checks.forEach((c, i) => bySource.set(c.from.node, [...(bySource.get(c.from.node) ?? []), i]));
    const results: CheckResult[] = new Array(checks.length);
    await Promise.all(
      [...bySource].map(async ([node, idx]) => {
        const got = await target.connectMany(
          node,
          idx.map((i) => {
            const c = checks[i] as WiringCheck;
            return { from: c.from.address, to: c.to.address, port: c.port, timeout };
          }),
        );
        idx.forEach((i, k) => {
          const c = checks[i] as WiringCheck;
          const g = got[k] ?? { result: 'error' as const, error: 'no result' };
          const allowed = g.result === 'open' || g.result === 'refused';
          results[i] = { ...c, observed: g.result, ok: g.result !== 'error' && (c.expect === 'allow' ? g.result === 'open' : !allowed), ...(g.error ? { error: g.error } : {}) };
        });
      }),
    );
    const after = await sum();
    const passed = results.filter((r) => r.ok).length;
    return { results, passed, failed: results.length - passed, counters: { before, after }, durationMs: Math.round(performance.now() - t0) };
  } finally {
    await Promise.allSettled(stops.map(async (s) => s()));
  }
}

/** One row per (from plane -> to plane, port): what the policy says and what was observed. */
export function renderWiringReport(r: WiringReport): string {
  const rows = new Map<string, { from: string; to: string; port: number; expect: string; n: number; open: number; closed: number; bad: number }>();
  for (const c of r.results) {
    const key = `${c.from.plane}|${c.to.plane}|${c.port}`;
    const row = rows.get(key) ?? { from: c.from.plane, to: c.to.plane, port: c.port, expect: c.expect, n: 0, open: 0, closed: 0, bad: 0 };
    row.n++;
    if (c.observed === 'open') row.open++;
    else row.closed++;
    if (!c.ok) row.bad++;
    rows.set(key, row);
  }
  const sorted = [...rows.values()].sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to) || a.port - b.port);
  const table = renderTable(
    ['FROM', 'TO', 'PORT', 'POLICY', 'CONNECTED', 'TIMED OUT', 'VERDICT'],
    sorted.map((x) => [x.from, x.to, `${x.port}/tcp`, x.expect, `${x.open}/${x.n}`, `${x.closed}/${x.n}`, x.bad ? `MISMATCH ${x.bad}` : 'ok']),
  );
  const failures = r.results.filter((c) => !c.ok).map((c) => `  ${c.from.node}/${c.from.plane} ${c.from.address} -> ${c.to.node}/${c.to.plane} ${c.to.address}:${c.port}: expected ${c.expect}, observed ${c.observed}${c.error ? ` (${c.error})` : ''}`);
  const counters = Object.keys({ ...r.counters.before, ...r.counters.after })
    .sort()
    .map((k) => `  ${k}: ${r.counters.before[k] ?? 0} -> ${r.counters.after[k] ?? 0} packets`);
  return [table, '', `${r.passed}/${plural(r.results.length, 'flow')} as declared in ${r.durationMs} ms`, 'default-deny counters (all nodes):', ...counters, ...(failures.length ? ['mismatches:', ...failures] : [])].join('\n');
}
