// Stage "provision": the substrate holds exactly the plan's VMs, each booting its role's golden
// image (main/substrate/provision.ts decides create/keep/update/replace/destroy and refuses
// to touch what the cluster does not own). Remediates drift: a rerun on a converged substrate
// reports 0 changes and runs no mutating command.
import { dirname, join } from 'node:path';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import type { ArtifactFile } from '../substrate/driver';
import { substrateFor } from '../substrate/factory';
import { provision } from '../substrate/provision';
import type { DeployContext } from './context';
import type { PlanNode } from './guest';
import { need } from './guest';

/** The golden image a node boots, from the build report (hashes already known: no re-read). */
export function imageArtifactFor(ctx: DeployContext): (node: PlanNode) => ArtifactFile | undefined {
  const plan = need(ctx.plan, 'plan');
  const report = need(ctx.build, 'build report');
  const version = plan.cluster.artifactVersion.replace(/[^A-Za-z0-9_.+-]/g, '-');
  return (node) => {
    const out = report.outputs.find((o) => o.kind === 'image' && o.role === node.role);
    if (!out) return undefined;
    return {
      path: join(report.outDir, out.path),
      sha256: out.sha256,
      sizeBytes: out.size,
      kind: 'disk-image',
      name: `kubedos-${plan.cluster.name}-${version}-${node.role}-${out.sha256.slice(0, 12)}.qcow2`,
    };
  };
}

/** The driver for this deploy's target, created once per run (closed by the deploy command). */
export function ensureDriver(ctx: DeployContext): NonNullable<DeployContext['driver']> {
  if (ctx.driver) return ctx.driver;
  const { driver, storage } = substrateFor({
    spec: need(ctx.spec, 'spec'),
    plan: need(ctx.plan, 'plan'),
    target: ctx.target,
    workspace: ctx.workspace,
    env: ctx.env,
    // A relative spec.qemu.stateDir is relative to the spec file, wherever the engine runs.
    ...(ctx.specPath ? { cwd: dirname(ctx.specPath) } : {}),
    ...(ctx.acceptHostKey ? { acceptHostKey: ctx.acceptHostKey } : {}),
    ...(ctx.sshConfigPath ? { sshConfigPath: ctx.sshConfigPath } : {}),
    ...(ctx.knownHostsPath ? { knownHostsPath: ctx.knownHostsPath } : {}),
    ...(ctx.passphrase ? { passphrase: ctx.passphrase } : {}),
  });
  ctx.driver = driver;
  ctx.storage = storage;
  return driver;
}

export function provisionStage(ctx: DeployContext): StageDefinition {
  return {
    name: 'provision',
    description: 'Create and start the plan\'s VMs through the substrate driver, each booting its role image',
    needs: ['build'],
    rerun: 'remediates-drift',
    async run(s) {
      const plan = need(ctx.plan, 'plan');
      const driver = ensureDriver(ctx);
      const storage = need(ctx.storage, 'storage');
      const allowDestroy = s.allowDestroy || plan.stages.provision?.allowDestroy === true;
      for (const n of plan.nodes) s.node(n.name, 'running');
      let result;
      try {
        result = await provision({
          plan,
          driver,
          artifactFor: imageArtifactFor(ctx),
          storage,
          allowDestroy,
          signal: s.signal,
          onEvent: (e) => {
            if (e.kind === 'command') s.log(`$ ${e.command}`);
            else if (e.kind === 'log') s.log(e.message, { ...(e.node ? { node: e.node } : {}), stream: e.level === 'warn' ? 'warn' : 'info' });
            else if (e.kind === 'vm') s.log(`VMID ${e.vmid}: ${e.state}`, { node: e.node });
            else if (e.kind === 'progress') s.progress(e.fraction, `${e.what}${e.message ? ` ${e.message}` : ''}`);
          },
        });
      } catch (err) {
        const e = err as Error & { node?: string };
        for (const n of plan.nodes) s.node(n.name, e.node && e.node !== n.name ? 'skipped' : 'failed', e.message.split('\n')[0]);
        throw err;
      }
      for (const d of result.decisions) {
        s.node(d.node, 'ok', `${d.action}${d.start ? ' + start' : ''}`);
        s.log(`${d.node} (VMID ${d.vmid}): ${d.action}${d.start ? ' + start' : ''} — ${d.reasons.join('; ')}`, { node: d.node });
      }
      s.changed(result.changes);
      ctx.summaries.provision = { stage: 'provision', changes: result.changes, notes: result.decisions.map((d) => `${d.node}: ${d.action}${d.start ? ' + start' : ''}`) };
      if (result.decisions.some((d) => d.action === 'destroy' || d.action === 'replace') && !allowDestroy) throw new StageError('internal: destructive decision without allowDestroy');
    },
  };
}
