// Stage "validate" (seed 003 §12.1): schema, constraints and invariants. Safe to rerun.
import { formatDiagnostic, parseSpec } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/index';
import { sha256Hex } from '../../common/canonical';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { plural } from '../../common/text/plural';

export interface SpecSource {
  /** Name shown in diagnostics (a file path or "editor"). */
  name: string;
  text: string;
}

export interface ValidatedSpec {
  spec?: ClusterSpec;
}

export function validateStage(source: SpecSource, out: ValidatedSpec): StageDefinition {
  return {
    name: 'validate',
    description: 'Validate the ClusterSpec: schema, constraints and invariants',
    needs: [],
    rerun: 'safe-rerun',
    // Always re-validated: cheap, and later stages need the parsed spec in memory.
    async run(ctx) {
      ctx.log(`validating ${source.name} (${source.text.length} bytes, sha256 ${sha256Hex(source.text).slice(0, 16)})`);
      const result = parseSpec(source.text);
      for (const d of result.diagnostics) ctx.log(formatDiagnostic(source.name, d), { stream: d.severity === 'error' ? 'stderr' : 'info' });
      if (!result.spec) {
        const n = result.diagnostics.filter((d) => d.severity === 'error').length;
        throw new StageError(`${source.name}: ${n} error(s) in the spec`, { hint: `fix them (kubedos validate ${source.name}) and run again` });
      }
      out.spec = result.spec;
      ctx.log(`valid: cluster ${result.spec.metadata.name}, ${plural(result.spec.spec.nodes.inventory.length, 'node')}`);
      ctx.progress(1);
      ctx.changed(0);
    },
  };
}
