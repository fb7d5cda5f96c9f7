// Stage "build": the foundry for this spec and plan — darksite + one qcow2 golden image per role,
// with manifest, SBOM, provenance and signatures (main/build). Safe to rerun: unchanged inputs
// are cache hits, so a warm rebuild only re-checks the cache and rewrites nothing.
import { join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import { runBuild } from '../build/index';
import { payloadDir } from '../paths';
import type { BuildTarget } from '../build/index';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { WORKSPACE_LAYOUT } from '../workspace';
import type { DeployContext } from './context';

/** The deploy provisions from golden images (the qcow2 path); ISOs are `kubedos build iso`. */
export const DEPLOY_BUILD_TARGETS: readonly BuildTarget[] = ['darksite', 'image'];

export function buildDir(ctx: DeployContext): string {
  return join(ctx.workspace, WORKSPACE_LAYOUT.build);
}

export function buildStage(ctx: DeployContext): StageDefinition {
  return {
    name: 'build',
    description: 'Build the darksite and a qcow2 golden image per role (cache-aware), with manifest, SBOM, provenance and signatures',
    needs: ['plan'],
    rerun: 'safe-rerun',
    async run(s) {
      if (!ctx.spec || !ctx.plan) throw new StageError('build: no validated spec and plan (the validate and plan stages run first)');
      const report = await runBuild({
        spec: ctx.spec,
        specPath: ctx.specPath ?? ctx.source.name,
        specSha256: sha256Hex(ctx.source.text),
        plan: ctx.plan,
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
      ctx.build = report;
      for (const o of report.outputs) if (o.kind === 'image') s.log(`${o.sha256}  ${o.path}`);
      s.changed(report.built.length);
      ctx.summaries.build = { stage: 'build', changes: report.built.length, notes: [report.built.length ? `built ${report.built.join(', ')}` : 'every artifact was a cache hit', `${report.downloaded} package(s) downloaded`] };
      s.log(`built ${report.built.length ? report.built.join(', ') : 'nothing (all cached)'}; ${(report.durationMs / 1000).toFixed(1)} s`);
    },
  };
}
