// The wiring check over a NodeShell, written once for every place that can run argv on a node:
// the namespace lab (its own shell) and a deployed cluster's VMs (guestShell: the guest agent).
// - probe listeners start in the background with `setsid` + redirected output (so neither the
//   guest agent nor the runner waits for them), their PID in a private /run/kubedos-probe, and
//   stop by that PID (checked to be the probe); they also exit by themselves after --seconds;
// - connect-many gets its JSON on stdin; counters come from `nft -j list counters`;
// - the hub's WireGuard handshake ages per node and plane from `wg show <plane> ...`.
import { z } from 'zod';
import type { Plan } from '../../common/plan/index';
import { handshakesByNode, parseAllowedIps, parseLatestHandshakes } from '../../common/drills/health';
import type { HandshakeAge } from '../../common/wiring/last-check';
import { Observed } from '../../common/wiring/last-check';
import { PLANE_NAMES } from '../../common/spec/schema';
import type { NodeShell } from '../drills/shell';
import type { WiringTarget } from './check';

/** Where the node images install the probe (payload/backplane, every role). */
export const NODE_PROBE = '/usr/lib/kubedos/backplane/kubedos-probe';
export const PROBE_RUN_DIR = '/run/kubedos-probe';
/** A listener left behind (the check was killed) exits by itself after this long. */
export const PROBE_LIFETIME_SECONDS = 600;

// $1 id, $2 probe, $3 ports, $4 seconds, $5 the node's plane addresses (a port a service already
// holds is served on the addresses still free). Prints "ready" once the probe accepts, or fails
// with its output.
const SERVE_SCRIPT = [
  'set -eu',
  `d=${PROBE_RUN_DIR}`,
  'umask 077; mkdir -p "$d"; chmod 0700 "$d"',
  'log="$d/$1.log"; pidf="$d/$1.pid"',
  // Created here, before the probe's redirect: the readiness loop may read it first.
  ': >"$log"',
  'setsid /usr/bin/python3 "$2" serve --ports "$3" --seconds "$4" --addresses "$5" </dev/null >"$log" 2>&1 &',
  'echo $! >"$pidf"',
  'i=0',
  'while [ "$i" -lt 150 ]; do',
  '  if grep -q "^ready" "$log"; then echo ready; exit 0; fi',
  '  if ! kill -0 "$(cat "$pidf")" 2>/dev/null; then echo "the probe exited: $(tail -c 400 "$log")" >&2; exit 1; fi',
  '  sleep 0.1; i=$((i+1))',
  'done',
  'kill "$(cat "$pidf")" 2>/dev/null || true',
  'echo "the probe did not accept within 15 s: $(tail -c 400 "$log")" >&2; exit 1',
].join('\n');

// $1 id. Kills the PID only if it still is the probe (a reused PID is left alone).
const STOP_SCRIPT = [
  'set -u',
  `d=${PROBE_RUN_DIR}`,
  'pidf="$d/$1.pid"',
  '[ -f "$pidf" ] || exit 0',
  'p=$(cat "$pidf")',
  'if tr "\\000" " " <"/proc/$p/cmdline" 2>/dev/null | grep -q kubedos-probe; then kill "$p"; fi',
  'rm -f "$pidf" "$d/$1.log"',
].join('\n');

const ConnectResults = z.array(z.object({ result: Observed, error: z.string().optional() }).passthrough());

export interface ShellWiringOptions {
  /** Unique per check (names the PID and log files on the nodes). */
  runId: string;
  /** The probe's path on the nodes; default NODE_PROBE. */
  probe?: string;
  lifetimeSeconds?: number;
  /** The node's own addresses the checks aim at (where a port held by a service is still served). */
  addressesOf?: (node: string) => readonly string[];
}

const tail = (s: string): string => s.trim().split('\n').slice(-4).join(' | ').slice(0, 400);

function wrap(node: string, what: string, err: unknown, next: string): Error {
  const e = err as Error & { stderrTail?: string };
  const stderr = e.stderrTail ? `; stderr: ${e.stderrTail}` : '';
  return new Error(`${node}: ${what} failed: ${e.message.split('\n')[0]}${stderr}; ${next}`, { cause: err });
}

export function shellWiringTarget(shell: NodeShell, o: ShellWiringOptions): WiringTarget {
  const probe = o.probe ?? NODE_PROBE;
  if (!/^[A-Za-z0-9._-]+$/.test(o.runId)) throw new Error(`wiring: run id "${o.runId}" must be letters, digits, dot, dash, underscore`);
  return {
    async serve(node, ports) {
      const id = `${o.runId}-${node}`;
      try {
        await shell.exec(node, ['/bin/sh', '-c', SERVE_SCRIPT, 'kubedos-probe-serve', id, probe, ports.join(','), String(o.lifetimeSeconds ?? PROBE_LIFETIME_SECONDS), (o.addressesOf?.(node) ?? []).join(',')], { timeoutMs: 30_000 });
      } catch (err) {
        throw wrap(node, `starting probe listeners on ports ${ports.join(',')} (${probe} serve)`, err, `check that ${probe} and python3 exist on ${node} and that no service holds these ports`);
      }
      return async () => {
        await shell.exec(node, ['/bin/sh', '-c', STOP_SCRIPT, 'kubedos-probe-stop', id], { timeoutMs: 20_000, anyExit: true });
      };
    },
    async connectMany(node, checks) {
      let stdout: string;
      try {
        stdout = (await shell.exec(node, ['/usr/bin/python3', probe, 'connect-many'], { input: JSON.stringify(checks), timeoutMs: 120_000 })).stdout;
      } catch (err) {
        throw wrap(node, `${probe} connect-many (${checks.length} connections)`, err, `run it by hand on ${node} to see why`);
      }
      let parsed: z.infer<typeof ConnectResults>;
      try {
        parsed = ConnectResults.parse(JSON.parse(stdout));
      } catch (err) {
        throw new Error(`${node}: ${probe} connect-many printed something that is not its JSON result (${(err as Error).message.split('\n')[0]}): ${tail(stdout)}`, { cause: err });
      }
      if (parsed.length !== checks.length) throw new Error(`${node}: ${probe} connect-many answered ${parsed.length} results for ${checks.length} connections`);
      return parsed.map((x) => ({ result: x.result, ...(x.error ? { error: x.error } : {}) }));
    },
    async counters(node) {
      const r = await shell.exec(node, ['nft', '-j', 'list', 'counters', 'table', 'inet', 'kubedos'], { anyExit: true, timeoutMs: 30_000 });
      return r.exitCode === 0 ? parseCounters(r.stdout) : {};
    },
  };
}

const NftCounters = z.object({ nftables: z.array(z.object({ counter: z.object({ name: z.string(), packets: z.number() }).passthrough().optional() }).passthrough()) });

export function parseCounters(json: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of NftCounters.parse(JSON.parse(json)).nftables) if (item.counter) out[item.counter.name] = item.counter.packets;
  return out;
}

/** A planned node's plane addresses (wg1..wg3, without the /32). */
export function planeAddressesOf(plan: Plan): (node: string) => string[] {
  return (node) => {
    const n = plan.nodes.find((x) => x.name === node);
    return n ? PLANE_NAMES.map((p) => n.planes[p].address.replace(/\/\d+$/, '')) : [];
  };
}

/**
 * The hub's last handshake with every other node on each plane, as an age in seconds by the
 * hub's own clock (null: never). Sorted by node, then plane.
 */
export async function hubHandshakeAges(shell: NodeShell, plan: Plan): Promise<HandshakeAge[]> {
  const hub = plan.nodes.find((n) => n.hub);
  if (!hub) throw new Error(`${plan.cluster.name}: the plan has no hub`);
  const run = async (argv: string[]): Promise<string> => {
    try {
      return (await shell.exec(hub.name, argv, { timeoutMs: 30_000 })).stdout;
    } catch (err) {
      throw wrap(hub.name, argv.join(' '), err, `check the planes on ${hub.name} (kubedos-planes status)`);
    }
  };
  const [nowText, ...per] = await Promise.all([run(['date', '+%s']), ...PLANE_NAMES.flatMap((p) => [run(['wg', 'show', p, 'latest-handshakes']), run(['wg', 'show', p, 'allowed-ips'])])]);
  const now = Number((nowText ?? '').trim());
  if (!Number.isFinite(now)) throw new Error(`${hub.name}: date +%s printed "${(nowText ?? '').trim().slice(0, 40)}"`);
  const spokes = plan.nodes.filter((n) => !n.hub);
  const out: HandshakeAge[] = [];
  PLANE_NAMES.forEach((plane, i) => {
    const latest = parseLatestHandshakes(per[2 * i] ?? '');
    const allowed = parseAllowedIps(per[2 * i + 1] ?? '');
    const byNode = handshakesByNode(latest, allowed, Object.fromEntries(spokes.map((n) => [n.name, n.planes[plane].address])));
    for (const n of spokes) {
      const ts = byNode[n.name];
      out.push({ node: n.name, plane, ageSeconds: ts === undefined || ts === 0 ? null : Math.max(0, now - ts) });
    }
  });
  return out.sort((a, b) => a.node.localeCompare(b.node) || a.plane.localeCompare(b.plane));
}
