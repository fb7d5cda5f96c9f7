// Test fixtures of the upgrade logic (tests only: shipped code never imports a testing.ts).
import { sha256Hex } from '../canonical';
import type { BuildRef } from './agent';
import type { UpgradeNode, UpgradeStrategy, Wave } from './waves';
import { planWaves } from './waves';

/** A build reference whose digest is derived from its version (distinct builds, stable digests). */
export const buildRef = (version: string): BuildRef => ({ version, digest: sha256Hex(`build ${version}`) });

/** lab-3 as the upgrade planner sees it: the hub, one control plane (the etcd member), one worker. */
export const LAB3_UPGRADE_NODES: readonly UpgradeNode[] = [
  { name: 'master', role: 'master', domain: 'laptop', hub: true, etcd: false },
  { name: 'cp-1', role: 'control-plane', domain: 'laptop', hub: false, etcd: true },
  { name: 'w-1', role: 'worker', domain: 'laptop', hub: false, etcd: false },
];

/** The waves of `nodes` (one domain, laptop) under `strategy`, one node at a time, every node healthy. */
function wavesOf(nodes: readonly UpgradeNode[], strategy: UpgradeStrategy): Wave[] {
  const plan = planWaves({ strategy, maxUnavailable: 1, failureDomains: ['laptop'], nodes: [...nodes], health: { observed: true, unhealthy: [] } });
  if (!plan.ok) throw new Error(plan.message);
  return plan.waves;
}

/** lab-3's waves for a rolling upgrade, one node at a time, every node healthy. */
export const lab3Waves = (): Wave[] => wavesOf(LAB3_UPGRADE_NODES, 'rolling');

/**
 * A cluster `replace` can upgrade: the hub, three control planes (the etcd members: one can be
 * taken out under the quorum rule, as a drill does) and a worker. lab-3's single member cannot.
 */
export const LAB5_UPGRADE_NODES: readonly UpgradeNode[] = [
  { name: 'master', role: 'master', domain: 'laptop', hub: true, etcd: false },
  { name: 'cp-1', role: 'control-plane', domain: 'laptop', hub: false, etcd: true },
  { name: 'cp-2', role: 'control-plane', domain: 'laptop', hub: false, etcd: true },
  { name: 'cp-3', role: 'control-plane', domain: 'laptop', hub: false, etcd: true },
  { name: 'w-1', role: 'worker', domain: 'laptop', hub: false, etcd: false },
];

/** LAB5_UPGRADE_NODES' waves under replace, one node at a time: cp-1, cp-2, cp-3, w-1 replaced, the hub slot-switched. */
export const replaceWaves = (): Wave[] => wavesOf(LAB5_UPGRADE_NODES, 'replace');
