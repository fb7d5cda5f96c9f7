// Stage "build": the foundry for this spec and plan — darksite + one qcow2 golden image per role,
// with manifest, SBOM, provenance and signatures (main/build). Safe to rerun: unchanged inputs
// are cache hits, so a warm rebuild only re-checks the cache and rewrites nothing. It declares no
// inputs to the runner on purpose: its inputs (spec, plan, payload tree, lock, host tools) are
// hashed per artifact by the build's own content-addressed cache, which is its convergence check.
import { join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import { runBuild } from '../build/index';
import { payloadDir } from '../paths';
import type { BuildTarget } from '../build/index';
import type { StageDefinition } from '../pipeline/runner';
import { WORKSPACE_LAYOUT } from '../workspace';
import type { DeployContext } from './context';
import { deployStage } from './context';
import { PREBUILT_DIGEST_ENV, PREBUILT_ENV, prebuiltReport } from './prebuilt';

/** The deploy provisions from golden images (the qcow2 path); ISOs are `kubedos build iso`. */
export const DEPLOY_BUILD_TARGETS: readonly BuildTarget[] = ['darksite', 'image'];

export function buildDir(ctx: DeployContext): string {
  return join(ctx.workspace, WORKSPACE_LAYOUT.build);
}

export function buildStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'build',
    description: 'Build the darksite and a qcow2 golden image per role (cache-aware), with manifest, SBOM, provenance and signatures',
    needs: ['plan'],
    reads: ['validate', 'plan'],
    rerun: 'safe-rerun',
    async run(s, { validate, plan }) {
      const prebuilt = ctx.env[PREBUILT_ENV];
      if (prebuilt) {
        const kept = await prebuiltReport(prebuilt, plan.plan.cluster.name, (line) => s.log(line), ctx.env[PREBUILT_DIGEST_ENV]);
        return { ...kept, summary: { stage: 'build', changes: 0, notes: [`the kept artifact ${prebuilt}: ${kept.outputs.length} outputs verified, nothing built`] } };
      }
      const report = await runBuild({
        spec: validate.spec,
        specPath: ctx.specPath ?? ctx.source.name,
        specSha256: sha256Hex(ctx.source.text),
        plan: plan.plan,
        outDir: buildDir(ctx),
        repoRoot: ctx.repoRoot,
        payloadDir: payloadDir(),
        targets: DEPLOY_BUILD_TARGETS,
        lockMode: ctx.env.KUBEDOS_OFFLINE === '1' ? 'offline' : 'default',
        acceptCommand: `kubedos lock update --spec ${ctx.specPath ?? ctx.source.name}`,
        env: ctx.env,
        signal: s.signal,
        log: (line) => s.log(line),
      });
      for (const o of report.outputs) if (o.kind === 'image') s.log(`${o.sha256}  ${o.path}`);
      s.changed(report.built.length);
      s.log(`built ${report.built.length ? report.built.join(', ') : 'nothing (all cached)'}; ${(report.durationMs / 1000).toFixed(1)} s`);
      return { ...report, summary: { stage: 'build', changes: report.built.length, notes: [report.built.length ? `built ${report.built.join(', ')}` : 'every artifact was a cache hit', `${report.downloaded} package(s) downloaded`] } };
    },
  });
}
