// Stage "validate" (seed 003 §12.1): schema, constraints and invariants. Safe to rerun.
import { formatDiagnostic, parseSpec } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/index';
import { sha256Hex } from '../../common/canonical';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { deployStage } from './context';
import { plural } from '../../common/text/plural';

export interface SpecSource {
  /** Name shown in diagnostics (a file path or "editor"). */
  name: string;
  text: string;
}

export interface ValidatedSpec {
  spec: ClusterSpec;
}

/** completeness: 'refuse' (deploy: a feature no source provides stops it) or 'warn' (planning). */
export function validateStage(source: SpecSource, o: { completeness: 'refuse' | 'warn' } = { completeness: 'refuse' }): StageDefinition {
  return deployStage({
    name: 'validate',
    description: 'Validate the ClusterSpec: schema, constraints and invariants',
    needs: [],
    reads: [],
    rerun: 'safe-rerun',
    // No inputs declared: always re-validated (cheap); its output, the parsed spec, is never journaled.
    async run(ctx) {
      ctx.log(`validating ${source.name} (${source.text.length} bytes, sha256 ${sha256Hex(source.text).slice(0, 16)})`);
      const result = parseSpec(source.text, { completeness: o.completeness === 'warn' ? 'warn' : true });
      for (const d of result.diagnostics) ctx.log(formatDiagnostic(source.name, d), { stream: d.severity === 'error' ? 'stderr' : 'info' });
      if (!result.spec) {
        const n = result.diagnostics.filter((d) => d.severity === 'error').length;
        throw new StageError(`${source.name}: ${n} error(s) in the spec`, { hint: `fix them (kubedos validate ${source.name}) and run again` });
      }
      ctx.log(`valid: cluster ${result.spec.metadata.name}, ${plural(result.spec.spec.nodes.inventory.length, 'node')}`);
      ctx.progress(1);
      ctx.changed(0);
      return { spec: result.spec };
    },
  });
}
