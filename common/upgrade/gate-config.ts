// What the node's health gate (payload/upgrade/kubedos-health-gate) judges on a boot of each
// role's A/B image: the units of gate-units and the checks of gate-checks, both written into
// /etc/kubedos/upgrade of the image by the build (main/build/image/ab.ts, docs/upgrades.md "Health
// gate"). Pure plan logic, one rule.
//
// The gate of a slot being tried runs on N+1 BEFORE the foundry converges the node (the upgrade
// converges a node only after its gate passed), so a unit belongs in gate-units only when the slot
// itself brings it up, from its own files: the image build, the role's packages, first boot (which
// runs again on every freshly written slot) or the payload's units. What converge installs,
// configures or renders (etcd's configuration, kubelet, Prometheus's targets, haproxy, containerd
// for the workload) would be missing on every upgrade and fail every gate.
import type { ClusterSpec, NodeRole } from '../spec/schema';
import type { Plan } from '../plan/schema';

/** The gate's checks, in the order it runs them. */
export const GATE_CHECKS = ['planes', 'services', 'fingerprint', 'node-ready'] as const;
export type GateCheck = (typeof GATE_CHECKS)[number];

export interface GateConfig {
  /** systemd units that must be active (sorted). */
  units: string[];
  /** The checks this role's gate runs (in the gate's order); the others say "not checked". */
  checks: GateCheck[];
  /** The gate's window on a slot being tried (GATE_WINDOW): seconds per check, and between passes. */
  window: GateWindow;
}

export interface GateWindow {
  /** Per check of `checks` (in the gate's order): how long a tried boot may retry it, counted from the gate's start. */
  checks: Partial<Record<GateCheck, number>>;
  /** Seconds between two passes. */
  intervalS: number;
}

/**
 * How long the gate of a tried boot retries each check before it marks the slot bad and reboots,
 * in seconds of real time from the gate's start (its unit is ordered after kubedos-backplane and
 * every unit of gate-units, so that start is when what the checks depend on came up). Issue 18
 * asks a node whose N+1 fails its gate to be back on its previous slot within 5 minutes here
 * (TCG): the boot into B, this window, the reboot and the boot of A share those 300 s, and the
 * foundry has to see it back. Measured on lab-3's VMs under TCG (docs/upgrades.md "Health gate"):
 * a good tried boot's gate passed 5-23 s after its start (the gate's own count on the serial
 * console, twelve tried boots of 2026-12-05/06); the gate injection of 2026-12-06 with a window of
 * 120 s stopped 375 s after w-1's reboot: ~45 s to B's kernel (A's shutdown, firmware, GRUB), 71 s
 * to the gate, the window, 9 s to the reset, ~70 s to A's agent, and ~60 s until the foundry saw it
 * (its 30 s guest-agent waits; it pings first since, a poll of ~10 s). A check that can tell a
 * definite failure (a unit systemd gave up on; a plane down, without its key file or its hub peer
 * after kubedos-backplane ran) fails at once instead.
 *   planes, services: 60 s: 2.6x the slowest good pass measured (23 s); the injection's stop
 *     comes to ~375 - 120 - 60 + 15 + 60 = 270 s, under 300 s.
 *   node-ready: 240 s (the window before per-check windows): the kubelet registering Ready with its
 *     network plugin under TCG has not been measured here (lab-3 runs no Kubernetes), and an
 *     upgrade's tried boot says "not checked" anyway (/etc/kubernetes is the slot's, not converged).
 *   fingerprint: 120 s (the build never lists it in gate-checks).
 */
export const GATE_WINDOW: { checks: Record<GateCheck, number>; intervalS: number } = { checks: { planes: 60, services: 60, fingerprint: 120, 'node-ready': 240 }, intervalS: 5 };

/** The two runs of kubedos-persist per boot in A/B images (main/build/image/ab.ts installs and enables them). */
export const AB_PERSIST_UNITS = { early: 'kubedos-persist-early.service', late: 'kubedos-persist-late.service' } as const;

/** Every role's image brings these up before any converge (why, per unit). */
const EVERY_ROLE: Record<string, string> = {
  'kubedos-backplane.service': 'the planes from node.json (payload/firstboot, enabled by install-payload.sh)',
  [AB_PERSIST_UNITS.early]: "binds the node's identity and state from data (A/B images)",
  [AB_PERSIST_UNITS.late]: 'binds what first boot made (A/B images)',
  'prometheus-node-exporter.service': "the boot metrics' reader (base package, enabled by Debian's package)",
  'ssh.service': "administration over wg1 and the foundry's converge (base package openssh-server, enabled by its package)",
};

/** The hub's image adds its health watcher (install-payload.sh enables it where health-watch.json is). */
const HUB: Record<string, string> = {
  'kubedos-health-watch.service': 'the hub watcher (payload/backplane, enabled by install-payload.sh on the hub)',
};

/** Roles where the plan runs a kubelet (kubeadm) when kubernetes.enabled. */
const KUBELET_ROLES: readonly NodeRole[] = ['control-plane', 'worker'];

/**
 * The gate's configuration for the image of `role`. Units: what that image itself enables (above);
 * not nftables.service or qemu-guest-agent.service (first boot loads the ruleset with `nft -f` and
 * only enables the unit, so on the first boot of a freshly written slot it is inactive; the guest
 * agent depends on the substrate), nor anything converge brings. Checks: planes and services
 * everywhere; node-ready on roles where the plan runs a kubelet (the gate says "not checked" where
 * /etc/kubernetes/kubelet.conf is absent); never fingerprint: the converge fingerprint covers what
 * converge renders, which a freshly written slot has only after the foundry converges the node,
 * after its gate (the foundry then takes the node's fingerprint again, refreshConvergeRecord in
 * main/stages/converge.ts), so no value can honestly be expected at the gate.
 */
export function gateConfig(spec: ClusterSpec, plan: Plan, role: NodeRole): GateConfig {
  const hub = plan.nodes.some((n) => n.hub && n.role === role);
  const units = Object.keys({ ...EVERY_ROLE, ...(hub ? HUB : {}) }).sort();
  const kubelet = spec.spec.kubernetes.enabled && KUBELET_ROLES.includes(role);
  const checks = GATE_CHECKS.filter((c) => c === 'planes' || c === 'services' || (c === 'node-ready' && kubelet));
  return { units, checks, window: gateWindow(checks) };
}

/** Pure: the window (GATE_WINDOW) of a gate that runs `checks`. */
export function gateWindow(checks: readonly GateCheck[]): GateWindow {
  return { checks: Object.fromEntries(checks.map((c) => [c, GATE_WINDOW.checks[c]])), intervalS: GATE_WINDOW.intervalS };
}

/** Pure: gate-window as the gate reads it: `CHECK SECONDS` per check, in the gate's order, then `interval SECONDS`. */
export function renderGateWindow(w: GateWindow): string {
  const lines = GATE_CHECKS.filter((c) => w.checks[c] !== undefined).map((c) => `${c} ${w.checks[c]}`);
  return renderGateList([...lines, `interval ${w.intervalS}`]);
}

/** Pure: gate-units or gate-checks as the gate reads them (one per line). */
export function renderGateList(lines: readonly string[]): string {
  return lines.map((l) => `${l}\n`).join('');
}
