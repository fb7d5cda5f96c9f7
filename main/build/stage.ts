// Stage "build" of the convergence DAG: runs the foundry for the validated spec and plan.
// Safe to rerun: unchanged inputs are cache hits (a warm rebuild takes well under a second).
// Wire it in main/stages/index.ts in place of the not-implemented "build" stage:
//   buildStage(validated, planned, { outDir, repoRoot })
import type { Plan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/schema';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { sha256Of } from './files';
import type { BuildOptions, BuildReport, BuildTarget } from './index';
import { ALL_TARGETS, runBuild } from './index';

export interface BuildStageInput {
  spec?: ClusterSpec;
  specPath?: string;
  specText?: string;
}

export interface BuildStageOptions extends Partial<Pick<BuildOptions, 'offline' | 'installerMirror' | 'netinstIso' | 'poweroff' | 'env'>> {
  outDir: string;
  repoRoot: string;
  targets?: readonly BuildTarget[];
}

export function buildStage(input: BuildStageInput, planned: { plan?: Plan }, opts: BuildStageOptions, out: { report?: BuildReport } = {}): StageDefinition {
  return {
    name: 'build',
    description: 'Build role ISOs, qcow2 images and the darksite (cache-aware), with manifest, SBOM, provenance and signatures',
    needs: ['plan'],
    rerun: 'safe-rerun',
    async run(ctx) {
      if (!input.spec || !planned.plan) throw new StageError('build: no validated spec and plan (the validate and plan stages run first)');
      const report = await runBuild({
        spec: input.spec,
        specPath: input.specPath ?? '(in memory)',
        specSha256: sha256Of(input.specText ?? JSON.stringify(input.spec)),
        plan: planned.plan,
        outDir: opts.outDir,
        repoRoot: opts.repoRoot,
        targets: opts.targets ?? ALL_TARGETS,
        offline: opts.offline,
        installerMirror: opts.installerMirror,
        netinstIso: opts.netinstIso,
        poweroff: opts.poweroff,
        env: opts.env,
        signal: ctx.signal,
        log: (line) => ctx.log(line),
      });
      out.report = report;
      for (const o of report.outputs) if (o.kind === 'iso' || o.kind === 'image') ctx.log(`${o.sha256}  ${o.path}`);
      ctx.log(`built ${report.built.length ? report.built.join(', ') : 'nothing (all cached)'}; ${(report.durationMs / 1000).toFixed(1)} s`);
    },
  };
}
