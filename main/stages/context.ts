// What the deploy stages share while one `kubedos deploy` runs. Each stage reads what the stages
// it `needs` left here and adds its own results; nothing in it is persisted as-is (the journal
// and the workspace files are the durable record), so a resumed run rebuilds it: stages that
// were skipped as converged still fill in what later stages need (see hydrate() in each stage).
import type { Plan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/index';
import type { BuildReport } from '../build/index';
import type { SubstrateDriver } from '../substrate/driver';
import type { HubFacts, NodeFacts } from '../node-facts';
import type { Target } from '../target';
import type { SpecSource } from './validate';

/** A stage's outcome as the seal stage records it in the bundle. */
export interface StageSummary {
  stage: string;
  changes: number;
  notes: string[];
}

export interface DeployContext {
  source: SpecSource;
  /** Absolute path of the spec file when it came from disk. */
  specPath?: string;
  target: Target;
  /** The cluster's workspace directory (journal, plan, build, vms, secrets, trust, bundle). */
  workspace: string;
  /** Repository (or installed app resources) root: payload/ lives here. */
  repoRoot: string;
  env: NodeJS.ProcessEnv;
  /** Accept this SHA256 fingerprint for a Proxmox host not in known_hosts yet. */
  acceptHostKey?: string;
  /** ~/.ssh/config and known_hosts overrides (tests). */
  sshConfigPath?: string;
  knownHostsPath?: string;
  passphrase?: (keyPath: string) => Promise<string | undefined>;
  /** --force: stages that skip converged work (converge's fingerprints) run it all. */
  force?: boolean;
  /** Filled by the stages. */
  spec?: ClusterSpec;
  plan?: Plan;
  /** The plan as canonical JSON (what plan.json holds). */
  json?: string;
  build?: BuildReport;
  driver?: SubstrateDriver;
  /** Where the driver stores uploaded artifacts (Proxmox storage id; "local" for qemu). */
  storage?: string;
  hub?: HubFacts;
  nodes: Record<string, NodeFacts>;
  summaries: Record<string, StageSummary>;
}

export function newDeployContext(init: Omit<DeployContext, 'nodes' | 'summaries'>): DeployContext {
  return { ...init, nodes: {}, summaries: {} };
}
