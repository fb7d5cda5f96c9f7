import { z } from 'zod';

export const Severity = z.enum(['error', 'warning', 'info']);
export type Severity = z.infer<typeof Severity>;

/** One finding about a spec, anchored to where it is in the YAML text (1-based line/column). */
export const Diagnostic = z.object({
  code: z.string().describe('Stable identifier, e.g. schema.unknown-field or invariant.duplicate-vmid.'),
  severity: Severity,
  message: z.string(),
  path: z.string().describe('Dotted YAML path, e.g. spec.nodes.inventory[3].vmid.'),
  line: z.number().int().min(1),
  column: z.number().int().min(1),
  endLine: z.number().int().min(1),
  endColumn: z.number().int().min(1),
});
export type Diagnostic = z.infer<typeof Diagnostic>;

export type PathSegment = string | number;

export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out === '' ? '(document)' : out;
}

/** `file:line:column: severity: message [yaml.path]`; the path is left out when the finding is about the whole document. */
export function formatDiagnostic(file: string, d: Diagnostic): string {
  return `${file}:${d.line}:${d.column}: ${d.severity}: ${d.message}${d.path === DOCUMENT_PATH ? '' : ` [${d.path}]`}`;
}

/** The path of a finding about the whole document rather than one field (a YAML syntax error, an empty file). */
export const DOCUMENT_PATH = '(document)';
