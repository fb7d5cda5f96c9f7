import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DeployOptions } from '../stages/index';
import { prepareDeploy } from './start';

describe('prepareDeploy (CLI and workbench start a deploy the same way)', () => {
  it('holds one lock per cluster workspace, passes force to the DAG and the runner, and close() releases', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kd-start-'));
    try {
      const seen: DeployOptions[] = [];
      let closed = 0;
      const start = (by: string) =>
        prepareDeploy({
          cluster: 'lab-3',
          source: { name: 'lab-3.yaml', text: 'apiVersion: kubedos.ca/v1alpha1\nkind: ClusterSpec\n' },
          target: { kind: 'qemu-local' },
          env: { KUBEDOS_WORKSPACE: root },
          allowDestroy: false,
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
