// Stage "workload": the Kubernetes layer — containerd, kubeadm HA (first control plane init,
// the others join with the certificate key, workers join), Cilium + Hubble. Its packages
// (kubeadm, kubelet, kubectl) and images come from the sources the spec declares (spec.sources;
// the completeness preflight refuses a spec that enables Kubernetes without them). When the
// darksite carries them the master runs those plays for real; when it does not, the stage FAILS:
// a deploy never reports done for a Kubernetes the spec asked for and nothing runs.
// With Kubernetes off but images declared (spec.sources.images), it runs the container runtime
// play only (tag `runtime`: containerd from the darksite, the artifact's OCI layout imported) and
// then asks containerd on every node the play ran on for each declared reference.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubOf } from '../../common/plan/index';
import type { z } from 'zod';
import type { StageContext, StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { enabledFeatures } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/index';
import type { Plan } from '../../common/plan/index';
import type { BuildReport } from '../build/index';
import { CONTAINERD_ROLES } from '../build/index';
import { LOCK_FILE } from '../build/darksite/index';
import { OCI_NODE_DIR } from '../build/image/index';
import type { DeployContext } from './context';
import { deployStage, WorkloadOutput } from './context';
import { etcdMembers, failedTasks, parsePlayRecap, refreshConvergeRecord, runPlaybook } from './converge';
import type { GuestCall } from './guest';
import { guestRun, tail } from './guest';

export const WORKLOAD_TAGS = ['runtime', 'kubernetes', 'cni'] as const;
/** What the Kubernetes plays install that Debian bookworm does not carry. */
export const UPSTREAM_PACKAGES = ['kubeadm', 'kubelet', 'kubectl'] as const;

/** The container runtime play alone (playbooks/40-runtime.yml). */
export const RUNTIME_TAGS = WORKLOAD_TAGS.slice(0, 1);

/** Pure: which of `wanted` a darksite lock lacks (Debian's packages and the declared sources'). */
export function missingFromLock(lockText: string | undefined, wanted: readonly string[]): string[] {
  if (!lockText) return [...wanted];
  // Declared upstream apt sources lock their packages in `upstream` (main/build/sources/apt.ts).
  const lock = JSON.parse(lockText) as { packages?: { name: string }[]; upstream?: { name: string }[] };
  const names = new Set([...(lock.packages ?? []), ...(lock.upstream ?? [])].map((p) => p.name));
  return wanted.filter((p) => !names.has(p));
}

/** Pure: which of the upstream packages a darksite lock lacks. */
export function missingUpstream(lockText: string | undefined): string[] {
  return missingFromLock(lockText, UPSTREAM_PACKAGES);
}

function missingIn(build: BuildReport, wanted: readonly string[]): string[] {
  const lockPath = join(build.outDir, 'darksite', LOCK_FILE);
  return missingFromLock(existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : undefined, wanted);
}

export interface DeclaredImage {
  name: string;
  reference: string;
  digest: string;
}

/** What the stage does for a spec: the one place that decides it. */
export type WorkloadMode = { kind: 'kubernetes'; tags: readonly string[] } | { kind: 'runtime'; tags: readonly string[]; images: DeclaredImage[] } | { kind: 'none' };

/** Pure: Kubernetes when the spec enables it; else the runtime alone when it declares images; else nothing. */
export function workloadMode(spec: ClusterSpec): WorkloadMode {
  if (enabledFeatures(spec).some((f) => f.feature === 'kubernetes')) return { kind: 'kubernetes', tags: WORKLOAD_TAGS };
  const images = spec.spec.sources.images.map((i) => ({ name: i.name, reference: i.reference, digest: i.digest })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return images.length ? { kind: 'runtime', tags: RUNTIME_TAGS, images } : { kind: 'none' };
}

/** Pure: the stage's declared inputs. Kubernetes: none (it always runs). The runtime alone: the
 * images by digest, so a new digest runs it again. Nothing: the spec's verdict alone. */
export function workloadInputs(spec: ClusterSpec): unknown {
  const mode = workloadMode(spec);
  if (mode.kind === 'kubernetes') return undefined;
  if (mode.kind === 'runtime') return { kubernetes: false, runtime: mode.images.map((i) => `${i.name}=${i.reference}@${i.digest}`) };
  return { kubernetes: false };
}

/** Pure: the declared references `ctr images list --quiet` does not list. */
export function missingImages(images: readonly DeclaredImage[], ctrList: string): string[] {
  const have = new Set(ctrList.split('\n').map((l) => l.trim()));
  return images.map((i) => i.reference).filter((r) => !have.has(r));
}

/** Pure: the verdict once containerd answered on `nodes`. */
export function runtimeNote(imageCount: number, nodes: readonly string[]): string {
  return `Kubernetes off; containerd running with ${imageCount} image${imageCount === 1 ? '' : 's'} from the artifact on ${nodes.join(', ')}`;
}

/** What containerd holds, one reference per line (the probe and the check after the runtime play). */
const CTR_IMAGES_LIST = ['ctr', '--namespace', 'k8s.io', 'images', 'list', '--quiet'];

/** The nodes that run containerd (playbooks/40-runtime.yml). */
const containerdNodes = (plan: Plan): Plan['nodes'] => plan.nodes.filter((n) => CONTAINERD_ROLES.includes(n.role));

/** Runs the workload plays with `tags` on the hub; a failed task or exit stops the stage naming the host and task. */
async function runWorkloadPlay(s: StageContext, hubG: GuestCall, tags: readonly string[], what: string, exitWhat: string): Promise<{ recap: ReturnType<typeof parsePlayRecap>; stdout: string }> {
  const r = await runPlaybook(s, hubG, { tags, logName: `workload-${s.runId.slice(0, 8)}` });
  const f = failedTasks(r.stdout)[0];
  if (r.exitCode !== 0 || f) {
    throw new StageError(f ? `${f.host}: ${what} task "${f.task}" failed: ${f.message.split('\n')[0]}` : `${exitWhat} exited ${r.exitCode}`, {
      node: f?.host ?? hubG.node.name,
      command: ['ansible-playbook', '--tags', tags.join(','), 'site.yml'],
      exitCode: r.exitCode,
      stderrTail: tail(f?.message ?? (r.stderr || r.stdout)),
      hint: 'fix the cause and rerun the deploy: it resumes at workload',
    });
  }
  return { recap: parsePlayRecap(r.stdout), stdout: r.stdout };
}

export function workloadStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'workload',
    description: 'Kubernetes HA (kubeadm), containerd, Cilium/Hubble from the declared sources in the darksite; fails when the spec enables Kubernetes and the darksite lacks them',
    needs: ['converge'],
    reads: ['validate', 'plan', 'build', 'converge'],
    rerun: 'remediates-drift',
    // Disabled: the outcome follows from the spec alone (with the images' digests when the runtime
    // runs). Enabled: no inputs declared, it always runs.
    inputs: ({ validate }) => workloadInputs(validate.spec),
    output: WorkloadOutput,
    // Nothing on the nodes to look at when the layer is disabled; the recorded verdict is repeated
    // so a skipped stage still says what the spec enabled. The runtime alone: containerd on each
    // control plane and worker must still list every declared image.
    async probe(p, { validate, plan: planned }, last) {
      const mode = workloadMode(validate.spec);
      if (mode.kind === 'runtime') {
        const { driver } = ctx.substrate(validate.spec, planned.plan);
        for (const n of containerdNodes(planned.plan)) {
          const list = await guestRun({ driver, node: n, signal: p.signal }, CTR_IMAGES_LIST, { timeoutS: 60, what: 'ctr images list' });
          const lacking = missingImages(mode.images, list.stdout);
          if (lacking.length) return { moved: true, reason: `${n.name}: containerd does not list ${lacking[0]}` };
        }
      }
      return { moved: false, note: last.summary.notes[0] ?? 'unchanged' };
    },
    async run(s, { validate, plan: planned, build }) {
      const plan = planned.plan;
      const spec = validate.spec;
      const enabled = `the spec enables ${enabledList(spec, plan)}`;
      const mode = workloadMode(spec);
      if (mode.kind === 'runtime') return runRuntime(ctx, s, spec, plan, build, mode.images, enabled);
      if (mode.kind === 'none') {
        const note = `Kubernetes off in the spec: no workload layer installed; ${enabled}, set up by the converge stage`;
        s.log(note);
        s.changed(0);
        return { kubernetes: 'disabled', summary: { stage: 'workload', changes: 0, notes: [note] } };
      }
      const { driver } = ctx.substrate(spec, plan);
      const hub = hubOf(plan);
      const hubG: GuestCall = { driver, node: hub, signal: s.signal };
      const missing = missingIn(build, UPSTREAM_PACKAGES);
      if (missing.length) {
        for (const n of plan.nodes) s.node(n.name, 'failed', 'Kubernetes packages not in the darksite');
        throw new StageError(`the spec enables Kubernetes but the darksite has no ${missing.join(', ')}: Kubernetes is NOT running`, {
          node: hub.name,
          hint: 'build the artifact on a foundry that reaches the sources declared under spec.sources (kubedos build lists the upstream packages it locked), or set kubernetes.enabled: false; then rerun the deploy',
        });
      }
      const { recap } = await runWorkloadPlay(s, hubG, mode.tags, 'workload', 'ansible-playbook');
      const changed = Object.values(recap).reduce((a, x) => a + x.changed, 0);
      s.changed(changed);
      const notes = [`Kubernetes installed; ${enabled}`, ...Object.entries(recap).sort().map(([h, x]) => `${h}: ok=${x.ok} changed=${x.changed}`)];
      return { kubernetes: 'installed', summary: { stage: 'workload', changes: changed, notes } };
    },
  });
}

/** Kubernetes off, images declared: containerd and the artifact's images on the control planes and
 * workers, each reference then asked of containerd on every node the play ran on. */
async function runRuntime(ctx: DeployContext, s: StageContext, spec: ClusterSpec, plan: Plan, build: BuildReport, images: DeclaredImage[], enabled: string): Promise<z.infer<typeof WorkloadOutput>> {
  const { driver } = ctx.substrate(spec, plan);
  const hub = hubOf(plan);
  const hubG: GuestCall = { driver, node: hub, signal: s.signal };
  const targets = containerdNodes(plan);
  if (!targets.length) {
    const note = `Kubernetes off; ${images.length} image(s) declared but the plan has no control plane or worker to run containerd; ${enabled}`;
    s.log(note, { stream: 'warn' });
    s.changed(0);
    return { kubernetes: 'disabled', summary: { stage: 'workload', changes: 0, notes: [note] } };
  }
  if (missingIn(build, ['containerd']).length) {
    for (const n of targets) s.node(n.name, 'failed', 'containerd not in the darksite');
    throw new StageError(`the spec declares ${images.length} image(s) under spec.sources.images but the darksite has no containerd: no container runs`, {
      node: hub.name,
      hint: 'containerd is in Debian main: list it in payload/packages/control-plane.list and worker.list and rebuild (a default build resolves the changed lists; --frozen refuses them), or remove spec.sources.images; then rerun the deploy',
    });
  }
  const { recap, stdout } = await runWorkloadPlay(s, hubG, RUNTIME_TAGS, 'container runtime', `ansible-playbook --tags ${RUNTIME_TAGS.join(',')}`);
  // The nodes the play ran on, by its recap (not the plan): each must list every declared image.
  const ran = targets.filter((n) => recap[n.name]);
  if (!ran.length) {
    throw new StageError(`the container runtime play ran on no control plane or worker (recap hosts: ${Object.keys(recap).sort().join(', ') || 'none'})`, {
      node: hub.name,
      command: ['ansible-playbook', '--tags', RUNTIME_TAGS.join(','), 'site.yml'],
      stderrTail: tail(stdout),
      hint: 'check the inventory groups role_control_plane and role_worker on the hub, then rerun the deploy',
    });
  }
  for (const n of ran) {
    const list = await guestRun({ driver, node: n, signal: s.signal }, CTR_IMAGES_LIST, { timeoutS: 60, what: 'ctr images list' });
    const lacking = missingImages(images, list.stdout);
    if (lacking.length) {
      s.node(n.name, 'failed', `containerd lacks ${lacking.length} declared image(s)`);
      throw new StageError(`${n.name}: containerd does not list ${lacking.slice(0, 3).join(', ')}${lacking.length > 3 ? ` and ${lacking.length - 3} more` : ''} after the runtime play`, {
        node: n.name,
        command: CTR_IMAGES_LIST,
        stderrTail: tail(list.stdout),
        hint: `the node's image must carry the artifact's OCI layout at /${OCI_NODE_DIR} (the qcow2 images of control planes and workers carry it; their role ISOs carry it and the installer copies it there, docs/sources.md); rebuild, reinstall or re-image the node, then rerun the deploy`,
      });
    }
    s.node(n.name, 'ok', `containerd with ${images.length} image(s)`);
  }
  const changed = Object.values(recap).reduce((a, x) => a + x.changed, 0);
  // containerd's config and unit are in the converge fingerprint: re-taken, or the next deploy's
  // converge (and the hub's drift check) would read the runtime as drift on these nodes.
  if (changed) await refreshConvergeRecord(ctx.workspace, s, driver, plan, ran.map((n) => n.name));
  s.changed(changed);
  const note = `${runtimeNote(images.length, ran.map((n) => n.name))}; ${enabled}`;
  s.log(note);
  const notes = [note, ...Object.entries(recap).sort().map(([h, x]) => `${h}: ok=${x.ok} changed=${x.changed}`)];
  return { kubernetes: 'disabled', summary: { stage: 'workload', changes: changed, notes } };
}

/** Pure: what the spec turned on, for the summary (etcd whenever it has members). */
export function enabledList(spec: ClusterSpec, plan: Plan): string {
  const names = enabledFeatures(spec).map((f) => f.feature);
  if (etcdMembers(plan).length) names.unshift('etcd');
  return names.length ? names.join(', ') : 'no optional feature';
}
