import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DeployOptions } from '../stages/index';
import { deployPipeline } from '../stages/index';
import { PREBUILT_DIGEST_ENV, PREBUILT_ENV } from '../stages/prebuilt';
import { prepareDeploy } from './start';

/** lab-3 on qemu-local in the workspace root `root`, nothing destroyed. */
const lab3 = (root: string) => ({ cluster: 'lab-3', source: { name: 'lab-3.yaml', text: 'apiVersion: kubedos.ca/v1alpha1\nkind: ClusterSpec\n' }, target: { kind: 'qemu-local' as const }, env: { KUBEDOS_WORKSPACE: root }, allowDestroy: false });

describe('prepareDeploy (CLI and workbench start a deploy the same way)', () => {
  it('node: one plan slot from a kept artifact: the DAG scoped to it and ending at enroll, its own journal, no plan.json, the lock held', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kd-start-node-'));
    try {
      const seen: DeployOptions[] = [];
      const start = (node?: { name: string; artifactDir: string; manifestSha256?: string }) =>
        prepareDeploy({
          ...lab3(root),
          by: 'kubedos upgrade lab-3.yaml (replacing w-1)',
          ...(node ? { node } : {}),
          pipelineFor: (src, o) => {
            seen.push(o);
            return deployPipeline(src, o);
          },
        });
      const a = start({ name: 'w-1', artifactDir: '/kept/n1', manifestSha256: 'c'.repeat(64) });
      expect(a.runOptions).toMatchObject({ name: 'deploy w-1', journalPath: join(root, 'clusters/lab-3/upgrade/deploy-w-1.jsonl'), allowDestroy: false, force: false });
      expect(a.stages.map((s) => s.name)).toEqual(['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll']);
      expect(seen[0]).toMatchObject({ only: 'w-1', workspace: join(root, 'clusters/lab-3') });
      expect(seen[0]!.planPath).toBeUndefined();
      expect(seen[0]!.env).toEqual({ KUBEDOS_WORKSPACE: root, [PREBUILT_ENV]: '/kept/n1', [PREBUILT_DIGEST_ENV]: 'c'.repeat(64) });
      // The cluster's deploy lock: no deploy meanwhile.
      expect(() => start()).toThrow(/kubedos upgrade lab-3\.yaml \(replacing w-1\)/);
      await a.close();
      const full = start();
      expect(full.stages.map((s) => s.name)).toEqual(['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal']);
      expect(seen[1]!.only).toBeUndefined();
      await full.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('holds one lock per cluster workspace, passes force to the DAG and the runner, and close() releases', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kd-start-'));
    try {
      const seen: DeployOptions[] = [];
      let closed = 0;
      const start = (by: string) =>
        prepareDeploy({
          ...lab3(root),
          force: true,
          by,
          pipelineFor: (_s, o) => {
            seen.push(o);
            return { stages: [], close: async () => void closed++ };
          },
        });
      const a = start('kubedos deploy lab-3.yaml');
      expect(a.workspace).toBe(join(root, 'clusters/lab-3'));
      expect(a.runOptions).toEqual({ name: 'deploy', journalPath: join(root, 'clusters/lab-3/journal.jsonl'), concurrency: 2, allowDestroy: false, force: true, compat: 'deploy-journal/2 spec/kubedos.ca/v1alpha1' });
      expect(seen[0]).toMatchObject({ force: true, workspace: join(root, 'clusters/lab-3'), planPath: join(root, 'clusters/lab-3/plan.json') });
      expect(() => start('workbench')).toThrow(/kubedos deploy lab-3\.yaml/);
      await a.close();
      expect(closed).toBe(1);
      const b = start('workbench');
      await b.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
