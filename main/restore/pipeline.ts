// `kubedos restore`'s engine steps as pipeline stages, for the workbench's Recovery view: the same
// verifyRestore → restoreWorkspace → writeRestoreTimeline as the CLI (service.ts), with their
// events on the pipeline's stream so the view follows a restore like a deploy. What a restore
// from here does not do (rebuild the VMs, then put etcd back from the snapshot: kubedos restore
// --target does both) it says in its last stage's log, with the command that does it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import type { RestorePhase, RestoreRequest, VerifiedRestore } from './service';
import { RestoreRefused, restoreWorkspace, verifyRestore, writeRestoreTimeline } from './service';

export interface RestoreRun {
  /** Filled as the stages run: the restored workspace, once the workspace stage is done. */
  workspace?: string;
  specPath?: string;
}

/** The three stages of a restore run; `out` receives what the run made. */
export function restoreStages(req: RestoreRequest, out: RestoreRun = {}): StageDefinition[] {
  const phases: RestorePhase[] = [];
  let verified: VerifiedRestore | undefined;
  const timed = async <T>(name: string, fn: () => Promise<T>, detail: (v: T) => string): Promise<T> => {
    const t0 = Date.now();
    const v = await fn();
    phases.push({ name, startedAtMs: t0, durationMs: Date.now() - t0, detail: detail(v) });
    return v;
  };
  return [
    {
      name: 'verify',
      description: 'the bundle, the recovery key and the artifact, checked offline; nothing is written',
      needs: [],
      rerun: 'safe-rerun',
      async run(ctx) {
        try {
          verified = await timed('verify', () => verifyRestore({ ...req, log: (l) => ctx.log(l) }), (v) => `bundle, recovery key and artifact of ${v.cluster} check out offline (root CA ${v.rootFingerprint})`);
        } catch (err) {
          if (err instanceof RestoreRefused) throw new StageError(err.summary, { hint: err.hint });
          throw err;
        }
        for (const c of verified.checks) ctx.log(`ok    ${c}`);
        return { cluster: verified.cluster, rootFingerprint: verified.rootFingerprint };
      },
    },
    {
      name: 'workspace',
      description: 'a fresh workspace with the same cluster identity: spec, plan, trust, secrets, the artifact as build/',
      needs: ['verify'],
      rerun: 'safe-rerun',
      async run(ctx) {
        const v = verified!;
        const made = v.resumed
          ? await timed('workspace', async () => ({ workspace: v.workspace, specPath: join(v.workspace, 'spec.yaml') }), (r) => `${r.workspace}: resumed (an earlier run of this restore made it)`)
          : await timed('workspace', () => restoreWorkspace(v, req), (r) => `${r.workspace}: same root CA and plan ${v.planSha256.slice(0, 16)}…, ${r.secrets} secrets, ${r.artifactFiles} artifact files`);
        out.workspace = made.workspace;
        out.specPath = made.specPath;
        ctx.log(phases.at(-1)!.detail);
        return { workspace: made.workspace, specPath: made.specPath };
      },
    },
    {
      name: 'timeline',
      description: 'the restore timeline (restore-timeline.json) and what is left to do by hand',
      needs: ['workspace'],
      rerun: 'safe-rerun',
      async run(ctx) {
        const v = verified!;
        const path = writeRestoreTimeline(out.workspace!, { cluster: v.cluster, bundleSha256: sha256Hex(readFileSync(join(req.bundleDir, 'bundle.json'))), rootFingerprint: v.rootFingerprint, phases });
        ctx.log(`timeline: ${path} (${(phases.reduce((s, p) => s + p.durationMs, 0) / 1000).toFixed(1)} s in all)`);
        const rerun = `KUBEDOS_WORKSPACE=${req.env.KUBEDOS_WORKSPACE ?? '…'} kubedos restore ${req.bundleDir} --artifact ${req.artifactDir} --recovery-key RECOVERY-KEY --target TARGET`;
        ctx.log(`not done from here: the VMs are not rebuilt${v.opened.etcdSnapshot ? ' and etcd is not put back from the bundle\'s snapshot' : ''}; this command resumes the restored workspace and does it: ${rerun}`, { stream: 'warn' });
        return { timeline: path };
      },
    },
  ];
}
