// What the drill engine needs from a cluster it drills: its nodes, the facts the probes gather,
// and per scenario the four actions (inject, fence, replace, reintegrate). The namespace lab
// implements it today (lab-target.ts); a deployed cluster will implement the same interface.
import type { GuardNode, ScenarioName } from '../../common/drills/catalogue';
import type { HealthFacts, HealthReport } from '../../common/drills/health';
import type { WatcherStatus } from '../../common/drills/watcher';
import type { NodeShell } from './shell';

export interface PhaseContext {
  sh: NodeShell;
  node: string;
  /** The health verdict that detected the fault (fence) or the latest one. */
  health: HealthReport;
  signal?: AbortSignal;
  log: (line: string) => void;
}

export interface ScenarioOps {
  /** Makes the fault happen. Returns one line saying what it did. */
  inject(ctx: PhaseContext): Promise<string>;
  /** Takes the node out of quorum and the planes, safely. */
  fence(ctx: PhaseContext): Promise<string>;
  /** Puts a working replacement in the node's slot. */
  replace(ctx: PhaseContext): Promise<string>;
  /** Brings the replacement back into the planes and etcd. */
  reintegrate(ctx: PhaseContext): Promise<string>;
}

export interface DrillTarget {
  kind: 'lab' | 'cluster';
  cluster: string;
  nodes: GuardNode[];
  shell: NodeShell;
  /** The hub: where probes run from. */
  hub: string;
  gatherFacts(sh: NodeShell, now: number): Promise<HealthFacts>;
  ops(scenario: ScenarioName): ScenarioOps | undefined;
  /** Whether the target can destroy VMs for the scenarios that need it. */
  allowDestroy: boolean;
  /**
   * Reads the hub's health-watcher report through `sh` (readWatcherReport, watcher-report.ts).
   * Absent when no watcher runs on the target's hub; the detect phase then probes by itself.
   */
  readWatcher?: (sh: NodeShell, nowSeconds: number) => Promise<WatcherStatus>;
}
