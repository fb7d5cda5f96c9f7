// Stage "workload": the Kubernetes layer — containerd, kubeadm HA (first control plane init,
// the others join with the certificate key, workers join), Cilium + Hubble. Its packages
// (kubeadm, kubelet, kubectl, Cilium images) come from upstream apt sources and OCI image
// tarballs that the darksite builder collects when the foundry is online. When the darksite
// carries them the master runs those plays for real; when it does not (a foundry that cannot
// reach them, like the CI machines), the master checks the baked plays with
// `ansible-playbook --syntax-check` and the stage says plainly that Kubernetes was NOT installed.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubOf } from '../../common/plan/index';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { sha256Hex } from '../../common/canonical';
import type { BuildReport } from '../build/index';
import type { DeployContext } from './context';
import { deployStage, WorkloadOutput } from './context';
import { failedTasks, parsePlayRecap, playbookCommand, runPlaybook } from './converge';
import type { GuestCall } from './guest';
import { guestRun, tail } from './guest';

export const WORKLOAD_TAGS = ['runtime', 'kubernetes', 'cni'] as const;
/** What the Kubernetes plays install that Debian bookworm does not carry. */
export const UPSTREAM_PACKAGES = ['kubeadm', 'kubelet', 'kubectl'] as const;

/** Pure: which of the upstream packages a darksite lock lacks. */
export function missingUpstream(lockText: string | undefined): string[] {
  if (!lockText) return [...UPSTREAM_PACKAGES];
  const names = new Set((JSON.parse(lockText) as { packages?: { name: string }[] }).packages?.map((p) => p.name) ?? []);
  return UPSTREAM_PACKAGES.filter((p) => !names.has(p));
}

function missingIn(build: BuildReport): string[] {
  const lockPath = join(build.outDir, 'darksite', 'darksite.lock.json');
  return missingUpstream(existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : undefined);
}

export function workloadStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'workload',
    description: 'Kubernetes HA (kubeadm), containerd, Cilium/Hubble — for real when the darksite carries them, else syntax-checked on the master',
    needs: ['converge'],
    reads: ['validate', 'plan', 'build', 'converge'],
    rerun: 'remediates-drift',
    // Disabled, or checked only (the darksite lacks the packages): the outcome follows from the
    // plan and the baked plays alone. Installed for real: no inputs declared, it always runs.
    inputs: ({ validate, plan, build }) => {
      if (!validate.spec.spec.kubernetes.enabled) return { kubernetes: false };
      const missing = missingIn(build);
      if (!missing.length) return undefined;
      return { kubernetes: true, plan: sha256Hex(plan.json), missing, payload: build.outputs.filter((o) => o.kind === 'payload').map((o) => o.sha256) };
    },
    output: WorkloadOutput,
    // Nothing on the nodes to look at when the layer is disabled or only checked; the recorded
    // verdict is repeated so a skipped stage still says what is not installed.
    async probe(_p, _inputs, last) {
      return { moved: false, note: last.summary.notes[0] ?? 'unchanged' };
    },
    async run(s, { validate, plan: planned, build }) {
      const plan = planned.plan;
      const spec = validate.spec;
      if (!spec.spec.kubernetes.enabled) {
        s.log('kubernetes.enabled is false: no workload layer');
        s.changed(0);
        return { kubernetes: 'disabled', summary: { stage: 'workload', changes: 0, notes: ['Kubernetes disabled in the spec'] } };
      }
      const { driver } = ctx.substrate(spec, plan);
      const hub = hubOf(plan);
      const hubG: GuestCall = { driver, node: hub, signal: s.signal };
      const missing = missingIn(build);
      if (missing.length) {
        const r = await guestRun(hubG, [...playbookCommand(), '--syntax-check', '--tags', WORKLOAD_TAGS.join(','), 'site.yml'], {
          okCodes: [0, 1, 4],
          timeoutS: 600,
          what: 'ansible-playbook --syntax-check',
        });
        if (r.exitCode !== 0) {
          throw new StageError(`${hub.name}: the baked Kubernetes plays do not pass --syntax-check`, { node: hub.name, command: ['ansible-playbook', '--syntax-check', 'site.yml'], exitCode: r.exitCode, stderrTail: tail(r.stderr || r.stdout) });
        }
        const note = `Kubernetes NOT installed: the darksite has no ${missing.join(', ')} (upstream packages this foundry could not download); the plays ${WORKLOAD_TAGS.join(', ')} passed ansible-playbook --syntax-check on ${hub.name}. Build the darksite on a foundry that reaches the upstream Kubernetes apt source and redeploy.`;
        s.log(note, { stream: 'warn' });
        for (const n of plan.nodes) s.node(n.name, 'skipped', 'Kubernetes packages not in the darksite');
        s.changed(0);
        return { kubernetes: 'not-installed', summary: { stage: 'workload', changes: 0, notes: [note] } };
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
      return { kubernetes: 'installed', summary: { stage: 'workload', changes: changed, notes: Object.entries(recap).sort().map(([h, x]) => `${h}: ok=${x.ok} changed=${x.changed}`) } };
    },
  });
}
