// YAML text -> typed ClusterSpec + diagnostics anchored at line:column.
// Hostile input (huge files, alias bombs, deep nesting, bad bytes) ends in a diagnostic,
// never in an exception or a hang.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode, YAMLError } from 'yaml';
import type { z } from 'zod';
import type { SpecSection } from './invariants';
import { ClusterSpec, ClusterSpecBody } from './schema';
import type { Diagnostic, PathSegment, Severity } from './diagnostic';
import { formatPath } from './diagnostic';
import { checkInvariants } from './invariants';
import { checkCompleteness } from './completeness';
import { closest } from '../text/suggest';

export const MAX_SPEC_BYTES = 5 * 1024 * 1024;
const MAX_ALIAS_COUNT = 100;
const MAX_NESTING = 64;

export interface ParseResult {
  /** Present only when there is no error-severity diagnostic. */
  spec?: ClusterSpec;
  diagnostics: Diagnostic[];
}

export interface TextRange {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

/** Finds where a path lives in the document; falls back to the deepest existing ancestor. */
export type Locator = (path: readonly PathSegment[], at?: 'key' | 'value') => TextRange;

export interface ParseOptions {
  /**
   * Also run the completeness preflight (common/spec/completeness.ts): every enabled feature has
   * a provider. The commands that act on a spec (validate, plan, deploy) ask for it; the editor's
   * live analysis and the unit tests of other rules do not need it.
   */
  completeness?: boolean | 'warn';
}

export function parseSpec(input: string | Uint8Array, options: ParseOptions = {}): ParseResult {
  let text: string;
  if (typeof input === 'string') {
    text = input;
    if (text.length > MAX_SPEC_BYTES) return fail('input.too-large', `spec is larger than ${MAX_SPEC_BYTES / 1048576} MiB; a ClusterSpec is a few KiB to a few MiB — is this the right file?`);
  } else {
    if (input.byteLength > MAX_SPEC_BYTES) return fail('input.too-large', `spec is ${input.byteLength} bytes, over the ${MAX_SPEC_BYTES / 1048576} MiB limit; a ClusterSpec is a few KiB to a few MiB — is this the right file?`);
    const decoded = decodeUtf8(input);
    if ('badByte' in decoded) {
      return { diagnostics: [at('input.not-utf8', 'error', `not valid UTF-8 (byte 0x${decoded.byteValue.toString(16).padStart(2, '0')} at offset ${decoded.badByte}); save the file as UTF-8`, '(document)', decoded.position)] };
    }
    text = decoded.text;
  }
  if (text.includes('\u0000')) {
    const pos = offsetToPosition(text, text.indexOf('\u0000'));
    return { diagnostics: [at('input.binary', 'error', 'contains a NUL character: this is not a YAML text file', '(document)', pos)] };
  }
  const depth = nestingDepth(text);
  if (depth > MAX_NESTING) {
    return fail('yaml.too-deep', `YAML nests deeper than ${MAX_NESTING} levels; a ClusterSpec needs fewer than 10`);
  }

  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });
  } catch (err) {
    return fail('yaml.parse', `YAML could not be parsed: ${(err as Error).message}`);
  }
  const diagnostics: Diagnostic[] = [];
  const rangeAt = (offset: number, end: number): TextRange => {
    const s = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    const e = lineCounter.linePos(Math.max(0, Math.min(end, text.length)));
    return { line: s.line, column: s.col, endLine: e.line, endColumn: e.col };
  };
  diagnostics.push(...yamlErrors(doc.errors, text, rangeAt));
  for (const w of doc.warnings) {
    diagnostics.push(at(`yaml.${w.code.toLowerCase()}`, 'warning', firstLine(w.message), '(document)', rangeAt(w.pos[0], w.pos[1])));
  }
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics };

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    const code = /alias/i.test(message) ? 'yaml.alias-bomb' : 'yaml.convert';
    const hint = code === 'yaml.alias-bomb' ? `aliases expand too much (limit ${MAX_ALIAS_COUNT}); write the values out instead of nesting anchors` : message;
    return { diagnostics: [at(code, 'error', hint, '(document)', rangeAt(0, 0))] };
  }
  if (value === null || value === undefined) {
    return { diagnostics: [at('spec.empty', 'error', 'the document is empty; start from `kubedos init --template lab-3`', '(document)', rangeAt(0, 0))] };
  }

  const locate = makeLocator(doc, rangeAt);
  const parsed = ClusterSpec.safeParse(value);
  if (!parsed.success) {
    const schemaDiagnostics = parsed.error.issues.flatMap((issue) => issueDiagnostics(issue, value, locate));
    diagnostics.push(...mergeTypos(schemaDiagnostics));
    diagnostics.push(...invariantsOfWhatParsed(value, parsed.error.issues, locate));
    return { diagnostics: sortDiagnostics(diagnostics) };
  }
  diagnostics.push(...checkInvariants(parsed.data, locate));
  if (options.completeness) {
    const gaps = checkCompleteness(parsed.data, locate);
    // 'warn' (planning): the same findings, as warnings; building and deploying refuse them.
    diagnostics.push(...(options.completeness === 'warn' ? gaps.map((d) => ({ ...d, severity: 'warning' as const, message: `${d.message} (build and deploy refuse this spec until then)` })) : gaps));
  }
  const sorted = sortDiagnostics(diagnostics);
  return sorted.some((d) => d.severity === 'error') ? { diagnostics: sorted } : { spec: parsed.data, diagnostics: sorted };
}

// ---------------------------------------------------------------- YAML syntax errors

/**
 * The parser's syntax errors, without the cascade one mistake sets off: a tab in the indentation
 * makes every later line of its mapping "wrongly indented", so tabs are reported alone, one per
 * line that has one, with the fix; otherwise the first error of each line is kept.
 */
function yamlErrors(errors: readonly YAMLError[], text: string, rangeAt: (s: number, e: number) => TextRange): Diagnostic[] {
  const tabs = errors.filter((e) => e.code === 'TAB_AS_INDENT');
  const out: Diagnostic[] = [];
  const lines = new Set<number>();
  if (tabs.length) {
    for (const e of tabs) {
      const r = rangeAt(e.pos[0], e.pos[1]);
      if (lines.has(r.line)) continue;
      lines.add(r.line);
      const lineStart = e.pos[0] - (r.column - 1);
      const indent = /^[ \t]*/.exec(text.slice(lineStart, lineStart + 200))?.[0] ?? '';
      const column = indent.indexOf('\t') + 1 || r.column;
      const count = [...indent].filter((c) => c === '\t').length;
      out.push(
        at('yaml.tab-as-indent', 'error', `tabs are not allowed for indentation in YAML; replace the ${count > 1 ? `${count} tabs` : 'tab'} at line ${r.line} with spaces`, '(document)', {
          line: r.line,
          column,
          endLine: r.line,
          endColumn: column + 1,
        }),
      );
    }
    return out;
  }
  for (const e of errors) {
    const r = rangeAt(e.pos[0], e.pos[1]);
    if (lines.has(r.line)) continue;
    lines.add(r.line);
    out.push(at(`yaml.${e.code.toLowerCase()}`, 'error', firstLine(e.message), '(document)', r));
  }
  return out;
}

// ---------------------------------------------------------------- zod issues -> diagnostics

/** A misspelt required field is one mistake: report the unknown key with its suggestion only. */
function mergeTypos(ds: Diagnostic[]): Diagnostic[] {
  const suggested = new Set<string>();
  for (const d of ds) {
    const m = /did you mean "([^"]+)"/.exec(d.message);
    if (d.code === 'schema.unknown-field' && m) suggested.add(`${parentPath(d.path)}|${m[1]}`);
  }
  return ds.filter((d) => {
    if (d.code !== 'schema.missing-field') return true;
    const name = /^required field "([^"]+)"/.exec(d.message)?.[1];
    return !suggested.has(`${parentPath(d.path)}|${name}`);
  });
}

function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
  return cut < 0 ? '' : path.slice(0, cut);
}

// ---------------------------------------------------------------- invariants despite schema errors

/**
 * Still check the invariants, so one pass shows every problem. Fields the schema rejected are
 * patched with placeholder values (findings that land on a patched field are dropped); when a
 * section still does not parse (a required section missing, a field no placeholder fits), the
 * invariants run on the sections that do and skip only the checks that need the others.
 */
function invariantsOfWhatParsed(value: unknown, issues: readonly z.core.$ZodIssue[], locate: Locator): Diagnostic[] {
  const { copy, patchedPaths } = repairForInvariants(value, issues);
  let findings: Diagnostic[];
  const whole = ClusterSpec.safeParse(copy);
  if (whole.success) {
    findings = checkInvariants(whole.data, locate);
  } else {
    const body = copy.spec;
    if (!body || typeof body !== 'object' || Array.isArray(body)) return [];
    const sections: Record<string, unknown> = {};
    for (const [name, schema] of Object.entries(ClusterSpecBody.shape) as [SpecSection, z.ZodType][]) {
      const r = schema.safeParse((body as Record<string, unknown>)[name]);
      if (r.success) sections[name] = r.data;
    }
    // The invariants read only spec.spec.<section>, and only the sections in `available`.
    const partial = { ...copy, spec: sections } as unknown as ClusterSpec;
    findings = checkInvariants(partial, locate, new Set(Object.keys(sections) as SpecSection[]));
  }
  return findings.filter((d) => !patchedPaths.some((p) => d.path === p || d.path.startsWith(`${p}.`) || d.path.startsWith(`${p}[`)));
}

/** Placeholders tried, in order, for a rejected field (an enum's own values first). */
const PLACEHOLDERS: unknown[] = [false, 1, 4, 100, 512, 1024, 4096, 65536, 'x', 'x0', [], {}];

/** Best effort: every field that a placeholder fits is patched; the rest stay as they were. */
function repairForInvariants(value: unknown, issues: readonly z.core.$ZodIssue[]): { copy: Record<string, unknown>; patchedPaths: string[] } {
  const copy = (value && typeof value === 'object' ? structuredClone(value) : {}) as Record<string, unknown>;
  const patchedPaths: string[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is PathSegment => typeof p === 'string' || typeof p === 'number');
    const parent = valueAt(copy, path.slice(0, -1)) as Record<string | number, unknown> | undefined;
    if (issue.code === 'unrecognized_keys') {
      const target = valueAt(copy, path) as Record<string, unknown> | undefined;
      if (target && typeof target === 'object') for (const k of issue.keys) delete target[k];
      continue;
    }
    const leaf = path[path.length - 1];
    if (leaf === undefined || !parent || typeof parent !== 'object') continue;
    const schema = unwrap(schemaAt(path)) as { safeParse?: (v: unknown) => { success: boolean } } | undefined;
    const def = (schema as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod?.def;
    const candidates = def?.type === 'enum' ? Object.values(def.entries as Record<string, unknown>) : PLACEHOLDERS;
    const fit = candidates.find((c) => schema?.safeParse?.(c).success);
    if (fit !== undefined) parent[leaf] = structuredClone(fit);
    // An optional field (or one with a default) that nothing fits is left out instead.
    else if (!Array.isArray(parent) && (schemaAt(path) as { safeParse?: (v: unknown) => { success: boolean } } | undefined)?.safeParse?.(undefined).success) delete parent[leaf];
    else continue;
    patchedPaths.push(formatPath(path));
  }
  return { copy, patchedPaths };
}

function schemaAt(path: readonly PathSegment[]): unknown {
  let schema: unknown = ClusterSpec;
  for (const seg of path) {
    schema = unwrap(schema);
    const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return undefined;
    if (def.type === 'object' && typeof seg === 'string') schema = (def.shape as Record<string, unknown>)[seg];
    else if (def.type === 'array' && typeof seg === 'number') schema = def.element;
    else if (def.type === 'record') schema = def.valueType;
    else return undefined;
  }
  return schema;
}

function issueDiagnostics(issue: z.core.$ZodIssue, root: unknown, locate: Locator): Diagnostic[] {
  const path = issue.path.filter((p): p is PathSegment => typeof p === 'string' || typeof p === 'number');
  const actual = valueAt(root, path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const keyPath = [...path, key];
        const known = knownKeys(path);
        const suggestion = closest(key, known);
        const hint = suggestion ? `; did you mean "${suggestion}"?` : known.length ? `; allowed here: ${known.join(', ')}` : '';
        return at('schema.unknown-field', 'error', `unknown field "${key}"${hint}`, formatPath(keyPath), locate(keyPath, 'key'));
      });
    case 'invalid_type': {
      if (actual === undefined) {
        const name = path[path.length - 1];
        return [at('schema.missing-field', 'error', `required field "${String(name)}" is missing (expected ${issue.expected})`, formatPath(path), locate(path))];
      }
      return [at('schema.wrong-type', 'error', `expected ${issue.expected}, got ${describe(actual)}`, formatPath(path), locate(path))];
    }
    case 'invalid_value': {
      const options = issue.values.map((v) => JSON.stringify(v)).join(', ');
      const message = issue.values.length === 1 ? `must be ${options} (got ${describe(actual)})` : `must be one of ${options} (got ${describe(actual)})`;
      return [at('schema.invalid-value', 'error', message, formatPath(path), locate(path))];
    }
    case 'too_small':
    case 'too_big': {
      const gotText = Array.isArray(actual) ? `${actual.length} item(s)` : describe(actual);
      return [at(`schema.${issue.code.replace('_', '-')}`, 'error', `${lowerFirst(issue.message)} (got ${gotText})`, formatPath(path), locate(path))];
    }
    case 'invalid_union':
      return [at('schema.invalid-union', 'error', `${lowerFirst(issue.message)} (got ${describe(actual)})`, formatPath(path), locate(path))];
    default:
      return [at(`schema.${issue.code.replace(/_/g, '-')}`, 'error', `${issue.message} (got ${describe(actual)})`, formatPath(path), locate(path))];
  }
}

/** Keys the schema allows at `path`, for "did you mean" hints. */
function knownKeys(path: readonly PathSegment[]): string[] {
  const def = (unwrap(schemaAt(path)) as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod?.def;
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
}

function unwrap(schema: unknown): unknown {
  let s = schema as { _zod?: { def?: Record<string, unknown> } } | undefined;
  for (let i = 0; i < 8 && s?._zod?.def; i++) {
    const def = s._zod.def;
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault') s = def.innerType as typeof s;
    else if (def.type === 'pipe') s = def.in as typeof s;
    else break;
  }
  return s;
}

// ---------------------------------------------------------------- positions

function makeLocator(doc: Document.Parsed, rangeAt: (s: number, e: number) => TextRange): Locator {
  const whole = rangeAt(0, 0);
  return (path, where = 'value') => {
    let node: unknown = doc.contents;
    let best: TextRange = node && (node as YamlNode).range ? rangeOf(node as YamlNode) : whole;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return best;
        const last = i === path.length - 1;
        if (last && where === 'key' && pair.key && (pair.key as YamlNode).range) return rangeOf(pair.key as YamlNode);
        node = pair.value;
        if (node && (node as YamlNode).range) best = rangeOf(node as YamlNode);
        else if (pair.key && (pair.key as YamlNode).range) best = rangeOf(pair.key as YamlNode);
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        if (node && (node as YamlNode).range) best = rangeOf(node as YamlNode);
        else return best;
      } else {
        return best;
      }
    }
    return best;
  };

  function rangeOf(node: YamlNode): TextRange {
    const [start, valueEnd] = node.range ?? [0, 0, 0];
    return rangeAt(start, Math.max(start, valueEnd));
  }
}

function offsetToPosition(text: string, offset: number): TextRange {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return { line, column: col, endLine: line, endColumn: col + 1 };
}

function decodeUtf8(bytes: Uint8Array): { text: string } | { badByte: number; byteValue: number; position: TextRange } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes) };
  } catch {
    // Find the first offending byte to point at it.
    const lenient = new TextDecoder('utf-8').decode(bytes);
    const charIndex = lenient.indexOf('\uFFFD');
    const prefix = new TextEncoder().encode(lenient.slice(0, Math.max(0, charIndex)));
    const badByte = prefix.byteLength;
    return { badByte, byteValue: bytes[badByte] ?? 0, position: offsetToPosition(lenient, Math.max(0, charIndex)) };
  }
}

/** Upper bound of flow/block nesting, computed without recursion. */
function nestingDepth(text: string): number {
  let flow = 0;
  let maxFlow = 0;
  let maxIndent = 0;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      lineStart = true;
      indent = 0;
      continue;
    }
    if (lineStart) {
      if (c === 32 || c === 45 /* - */) {
        indent++;
        continue;
      }
      lineStart = false;
      if (indent > maxIndent) maxIndent = indent;
    }
    if (c === 91 || c === 123) {
      flow++;
      if (flow > maxFlow) maxFlow = flow;
    } else if (c === 93 || c === 125) flow = Math.max(0, flow - 1);
  }
  // Two spaces per level is the common indentation; be generous.
  return Math.max(maxFlow, Math.floor(maxIndent / 4));
}

// ---------------------------------------------------------------- helpers

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return `${typeof v} ${String(v)}`;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function at(code: string, severity: Severity, message: string, path: string, r: TextRange): Diagnostic {
  return { code, severity, message, path, line: r.line, column: r.column, endLine: r.endLine, endColumn: r.endColumn };
}

function fail(code: string, message: string): ParseResult {
  return { diagnostics: [at(code, 'error', message, '(document)', { line: 1, column: 1, endLine: 1, endColumn: 1 })] };
}

export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => a.line - b.line || a.column - b.column || a.code.localeCompare(b.code) || a.message.localeCompare(b.message));
}
