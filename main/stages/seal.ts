// Stage "seal": the cluster's recovery bundle in <workspace>/bundle (main/bundle): the spec as
// deployed, the plan, the build's attestations, the public trust material the enroll stage left
// in <workspace>/trust, every node's facts and the run's stage states, signed with the build
// signing key (main/bundle/seal.ts sealBundle, which a completed upgrade's reseal shares). The bundle
// is written next to its place, verified there with the same checks as `kubedos verify`, and only
// then moved in, so a bundle that does not verify never replaces a good one. Safe to rerun: the
// same inputs give a byte-identical bundle.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE_PATHS } from '../bundle/schema';
import { sealBundle, trustFileDigests } from '../bundle/seal';
import { BundleInputError } from '../bundle/write';
import { takeEtcdSnapshot } from './seal-snapshot';
import { stagesRecord } from '../bundle/stages';
import { readJournal } from '../pipeline/journal';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { WORKSPACE_LAYOUT } from '../workspace';
import { sha256Hex } from '../../common/canonical';
import type { DeployContext, DeployOutputs, StageSummary } from './context';
import { deployStage, SealOutput } from './context';

const fileSha = (path: string): string | null => (existsSync(path) ? sha256Hex(readFileSync(path)) : null);

const SEALED: readonly (keyof DeployOutputs)[] = ['build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload'];

export function sealStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'seal',
    description: 'Write and verify the recovery bundle: spec, plan, build attestations, public trust, node facts, signed',
    needs: ['workload'],
    reads: ['validate', 'plan', ...SEALED],
    rerun: 'safe-rerun',
    // What the bundle is made of: the spec, the plan, the build's attestations, the public trust
    // files, the nodes' facts and every stage's summary.
    inputs: (i) => ({
      spec: sha256Hex(ctx.source.text),
      plan: sha256Hex(i.plan.json),
      build: i.build.outputs.map((o) => ({ path: o.path, sha256: o.sha256 })),
      trust: trustFileDigests(ctx.workspace),
      facts: i.firstboot,
      keys: i.backplanes.wgPublicKeys,
      summaries: SEALED.map((n) => (i[n] as { summary: StageSummary }).summary),
    }),
    output: SealOutput,
    // The bundle in place is the one the last seal wrote (one hash of bundle.json).
    async probe(_p, _i, last) {
      const have = fileSha(join(ctx.workspace, WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.manifest));
      if (have !== last.bundleSha256) return { moved: true, reason: have ? 'the bundle in place is not the one the last seal wrote' : 'there is no bundle in place' };
      return { moved: false, note: 'the bundle in place is the one the last seal wrote' };
    },
    async run(s, outputs) {
      const plan = outputs.plan.plan;
      const build = outputs.build;
      const summaries = Object.fromEntries(SEALED.map((n) => [n, (outputs[n] as { summary: StageSummary }).summary]));
      const nodes = Object.fromEntries(
        Object.entries(outputs.firstboot.nodes).map(([n, f]) => [n, { ...f, ...(outputs.backplanes.wgPublicKeys[n] ? { wgPublicKeys: outputs.backplanes.wgPublicKeys[n] } : {}) }]),
      );

      const journal = readJournal(join(ctx.workspace, WORKSPACE_LAYOUT.journal));
      let sealed;
      try {
        sealed = await sealBundle({
          workspace: ctx.workspace,
          env: ctx.env,
          specText: ctx.source.text,
          plan,
          buildDir: build.outDir,
          hub: outputs.firstboot.hub,
          nodes,
          stages: stagesRecord(journal, s.runId, summaries),
          snapshot: () => (ctx.etcdSnapshot ?? ((p, signal) => takeEtcdSnapshot(ctx.substrate(outputs.validate.spec, p).driver, p, signal)))(plan, s.signal),
          log: (line) => s.log(line),
          progress: (f, what) => s.progress(f, what),
        });
      } catch (err) {
        if (err instanceof BundleInputError) throw new StageError(`seal: ${err.message}`, err.hint ? { hint: err.hint.replace(/seal again$/, 'run kubedos deploy again') } : {});
        throw err;
      }
      const { written, changes, notes } = sealed;
      s.changed(changes);
      return { bundleSha256: written.bundleSha256, summary: { stage: 'seal', changes, notes } };
    },
  });
}
