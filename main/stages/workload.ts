// Stage "workload": the Kubernetes layer — containerd, kubeadm HA (first control plane init,
// the others join with the certificate key, workers join), Cilium + Hubble. Its packages
// (kubeadm, kubelet, kubectl) and images come from the sources the spec declares (spec.sources;
// the completeness preflight refuses a spec that enables Kubernetes without them). When the
// darksite carries them the master runs those plays for real; when it does not, the stage FAILS:
// a deploy never reports done for a Kubernetes the spec asked for and nothing runs.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubOf } from '../../common/plan/index';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { enabledFeatures } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/index';
import type { Plan } from '../../common/plan/index';
import type { BuildReport } from '../build/index';
import type { DeployContext } from './context';
import { deployStage, WorkloadOutput } from './context';
import { etcdMembers, failedTasks, parsePlayRecap, runPlaybook } from './converge';
import type { GuestCall } from './guest';
import { tail } from './guest';

export const WORKLOAD_TAGS = ['runtime', 'kubernetes', 'cni'] as const;
/** What the Kubernetes plays install that Debian bookworm does not carry. */
export const UPSTREAM_PACKAGES = ['kubeadm', 'kubelet', 'kubectl'] as const;

/** Pure: which of the upstream packages a darksite lock lacks. */
export function missingUpstream(lockText: string | undefined): string[] {
  if (!lockText) return [...UPSTREAM_PACKAGES];
  // Declared upstream apt sources lock their packages in `upstream` (main/build/sources/apt.ts).
  const lock = JSON.parse(lockText) as { packages?: { name: string }[]; upstream?: { name: string }[] };
  const names = new Set([...(lock.packages ?? []), ...(lock.upstream ?? [])].map((p) => p.name));
  return UPSTREAM_PACKAGES.filter((p) => !names.has(p));
}

function missingIn(build: BuildReport): string[] {
  const lockPath = join(build.outDir, 'darksite', 'darksite.lock.json');
  return missingUpstream(existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : undefined);
}

export function workloadStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'workload',
    description: 'Kubernetes HA (kubeadm), containerd, Cilium/Hubble from the declared sources in the darksite; fails when the spec enables Kubernetes and the darksite lacks them',
    needs: ['converge'],
    reads: ['validate', 'plan', 'build', 'converge'],
    rerun: 'remediates-drift',
    // Disabled: the outcome follows from the spec alone. Enabled: no inputs declared, it always runs.
    inputs: ({ validate }) => (validate.spec.spec.kubernetes.enabled ? undefined : { kubernetes: false }),
    output: WorkloadOutput,
    // Nothing on the nodes to look at when the layer is disabled; the recorded verdict is repeated
    // so a skipped stage still says what the spec enabled.
    async probe(_p, _inputs, last) {
      return { moved: false, note: last.summary.notes[0] ?? 'unchanged' };
    },
    async run(s, { validate, plan: planned, build }) {
      const plan = planned.plan;
      const spec = validate.spec;
      const enabled = `the spec enables ${enabledList(spec, plan)}`;
      if (!spec.spec.kubernetes.enabled) {
        const note = `Kubernetes off in the spec: no workload layer installed; ${enabled}, set up by the converge stage`;
        s.log(note);
        s.changed(0);
        return { kubernetes: 'disabled', summary: { stage: 'workload', changes: 0, notes: [note] } };
      }
      const { driver } = ctx.substrate(spec, plan);
      const hub = hubOf(plan);
      const hubG: GuestCall = { driver, node: hub, signal: s.signal };
      const missing = missingIn(build);
      if (missing.length) {
        for (const n of plan.nodes) s.node(n.name, 'failed', 'Kubernetes packages not in the darksite');
        throw new StageError(`the spec enables Kubernetes but the darksite has no ${missing.join(', ')}: Kubernetes is NOT running`, {
          node: hub.name,
          hint: 'build the artifact on a foundry that reaches the sources declared under spec.sources (kubedos build lists the upstream packages it locked), or set kubernetes.enabled: false; then rerun the deploy',
        });
      }
      const r = await runPlaybook(s, hubG, { tags: WORKLOAD_TAGS, logName: `workload-${s.runId.slice(0, 8)}` });
      const recap = parsePlayRecap(r.stdout);
      const f = failedTasks(r.stdout)[0];
      if (r.exitCode !== 0 || f) {
        throw new StageError(f ? `${f.host}: workload task "${f.task}" failed: ${f.message.split('\n')[0]}` : `ansible-playbook exited ${r.exitCode}`, {
          node: f?.host ?? hub.name,
          command: ['ansible-playbook', '--tags', WORKLOAD_TAGS.join(','), 'site.yml'],
          exitCode: r.exitCode,
          stderrTail: tail(f?.message ?? (r.stderr || r.stdout)),
          hint: 'fix the cause and rerun the deploy: it resumes at workload',
        });
      }
      const changed = Object.values(recap).reduce((a, x) => a + x.changed, 0);
      s.changed(changed);
      const notes = [`Kubernetes installed; ${enabled}`, ...Object.entries(recap).sort().map(([h, x]) => `${h}: ok=${x.ok} changed=${x.changed}`)];
      return { kubernetes: 'installed', summary: { stage: 'workload', changes: changed, notes } };
    },
  });
}

/** Pure: what the spec turned on, for the summary (etcd whenever it has members). */
export function enabledList(spec: ClusterSpec, plan: Plan): string {
  const names = enabledFeatures(spec).map((f) => f.feature);
  if (etcdMembers(plan).length) names.unshift('etcd');
  return names.length ? names.join(', ') : 'no optional feature';
}
