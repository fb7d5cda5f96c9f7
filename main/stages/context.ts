// What the deploy stages share while one `kubedos deploy` runs, and what they hand each other.
//
// The context holds only the run's settings (spec source, target, workspace, environment, SSH
// options) and the one substrate driver, created on first use and closed by the deploy. Every
// result a stage produces is its typed output (DeployOutputs below): the runner passes the
// outputs of a stage's `needs` and `reads` to it, and journals the outputs of the stages that
// can be skipped as converged, so a skipped stage still hands its dependants what they need.
import { dirname } from 'node:path';
import { z } from 'zod';
import type { Plan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/index';
import type { BuildReport } from '../build/index';
import type { ProbeContext, ProbeVerdict, StageContext, StageDefinition } from '../pipeline/runner';
import type { SubstrateDriver } from '../substrate/driver';
import { substrateFor } from '../substrate/factory';
import { HubFactsSchema, NodeFactsSchema } from '../node-facts';
import type { Target } from '../target';
import type { SpecSource } from './validate';

/** A stage's outcome as the seal stage records it in the bundle. */
export const StageSummary = z.object({ stage: z.string(), changes: z.number().int().min(0), notes: z.array(z.string()) });
export type StageSummary = z.infer<typeof StageSummary>;

/** Outputs journaled by the stages that can be skipped as converged (zod: checked on replay). */
export const ProvisionOutput = z.object({ summary: StageSummary });
export const FirstbootOutput = z.object({ nodes: z.record(z.string(), NodeFactsSchema), hub: HubFactsSchema, summary: StageSummary });
export const BackplanesOutput = z.object({ wgPublicKeys: z.record(z.string(), z.object({ wg1: z.string(), wg2: z.string(), wg3: z.string() })), summary: StageSummary });
export const EnrollOutput = z.object({ hubPin: z.string(), enrolled: z.array(z.string()), summary: StageSummary });
export const ConvergeOutput = z.object({ summary: StageSummary });
// 'not-installed' is only read from journals written before the stage failed in that case.
export const WorkloadOutput = z.object({ kubernetes: z.enum(['disabled', 'not-installed', 'installed']), summary: StageSummary });
export const SealOutput = z.object({ bundleSha256: z.string(), summary: StageSummary });

/** What each deploy stage hands to the stages after it. */
export interface DeployOutputs {
  validate: { spec: ClusterSpec };
  /** The plan and its canonical JSON (what plan.json holds). */
  plan: { plan: Plan; json: string };
  build: BuildReport & { summary: StageSummary };
  provision: z.infer<typeof ProvisionOutput>;
  firstboot: z.infer<typeof FirstbootOutput>;
  backplanes: z.infer<typeof BackplanesOutput>;
  enroll: z.infer<typeof EnrollOutput>;
  converge: z.infer<typeof ConvergeOutput>;
  workload: z.infer<typeof WorkloadOutput>;
  seal: z.infer<typeof SealOutput>;
}
export type DeployStageName = keyof DeployOutputs;

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
  /** --force: nothing is skipped as converged, and converge runs on every node. */
  force?: boolean;
  /**
   * One node only (a replace-based upgrade's new VM in its plan slot): provision, firstboot,
   * backplanes and enroll act on and check that node alone (the hub is read, and its enrollment
   * window opened for it); the cluster's other VMs are not touched. Unset: every planned node.
   */
  only?: string;
  /** How the seal takes the bundle's etcd snapshot (default: etcdctl on the first etcd member through the guest agent). */
  etcdSnapshot?: (plan: Plan, signal?: AbortSignal) => Promise<{ node: string; data: Buffer } | { skipped: string }>;
  /** The run's substrate driver (created once, on first use; closed by the deploy). */
  substrate(spec: ClusterSpec, plan: Plan): { driver: SubstrateDriver; storage: string };
  /** Closes the driver if one was created. */
  close(): Promise<void>;
}

type Settings = Omit<DeployContext, 'substrate' | 'close'>;

/** The nodes a stage acts on: the plan's, or the one node of a scoped run (DeployContext.only). */
export function scopedNodes<N extends { name: string }>(ctx: Pick<DeployContext, 'only'>, nodes: readonly N[]): N[] {
  return ctx.only === undefined ? [...nodes] : nodes.filter((n) => n.name === ctx.only);
}

export function newDeployContext(init: Settings): DeployContext {
  let made: { driver: SubstrateDriver; storage: string } | undefined;
  return {
    ...init,
    substrate(spec, plan) {
      made ??= substrateFor({
        spec,
        plan,
        target: init.target,
        workspace: init.workspace,
        env: init.env,
        // A relative spec.qemu.stateDir is relative to the spec file, wherever the engine runs.
        ...(init.specPath ? { cwd: dirname(init.specPath) } : {}),
        ...(init.acceptHostKey ? { acceptHostKey: init.acceptHostKey } : {}),
        ...(init.sshConfigPath ? { sshConfigPath: init.sshConfigPath } : {}),
        ...(init.knownHostsPath ? { knownHostsPath: init.knownHostsPath } : {}),
        ...(init.passphrase ? { passphrase: init.passphrase } : {}),
      });
      return made;
    },
    async close() {
      await made?.driver.close?.();
    },
  };
}

/** A deploy stage, typed: `reads` names the stage outputs it receives (its needs and further ancestors). */
export interface DeployStage<K extends DeployStageName, R extends DeployStageName> {
  name: K;
  description: string;
  needs: readonly DeployStageName[];
  reads: readonly R[];
  rerun: StageDefinition['rerun'];
  retries?: StageDefinition['retries'];
  /** Everything the outcome depends on; with `output` and `probe`, what lets the runner skip it. */
  inputs?: (inputs: Pick<DeployOutputs, R>) => unknown | Promise<unknown>;
  output?: z.ZodType<DeployOutputs[K]>;
  /** Runs only when the inputs match; `recorded` is the output the last success journaled. */
  probe?: (p: ProbeContext, inputs: Pick<DeployOutputs, R>, recorded: DeployOutputs[K]) => Promise<ProbeVerdict>;
  run(s: StageContext, inputs: Pick<DeployOutputs, R>): Promise<DeployOutputs[K]>;
}

/** Registers a typed deploy stage with the generic runner. A skippable stage must journal its output. */
export function deployStage<K extends DeployStageName, R extends DeployStageName>(d: DeployStage<K, R>): StageDefinition {
  if (d.inputs && !d.output) throw new Error(`internal: deploy stage "${d.name}" declares inputs but no output schema (a skipped stage must replay its output)`);
  const reads = d.reads.filter((r) => !d.needs.includes(r));
  return {
    name: d.name,
    description: d.description,
    needs: d.needs,
    ...(reads.length ? { reads } : {}),
    rerun: d.rerun,
    ...(d.retries ? { retries: d.retries } : {}),
    ...(d.inputs ? { inputs: (i) => d.inputs!(i as Pick<DeployOutputs, R>) } : {}),
    ...(d.output ? { output: d.output as z.ZodType<unknown> } : {}),
    ...(d.probe ? { probe: (p, i, recorded) => d.probe!(p, i as Pick<DeployOutputs, R>, recorded as DeployOutputs[K]) } : {}),
    run: (s, i) => d.run(s, i as Pick<DeployOutputs, R>),
  };
}
