// Reads a ClusterSpec file for a command: size-checked before reading, bytes decoded strictly.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ClusterSpec, Diagnostic } from '../../common/spec/index';
import { formatDiagnostic, MAX_SPEC_BYTES, parseSpec } from '../../common/spec/index';
import type { CliIo } from './command';
import { plural } from '../../common/text/plural';
import { fsErrorText } from './fs-error';

export interface LoadedSpec {
  path: string;
  spec?: ClusterSpec;
  diagnostics: Diagnostic[];
  /** false when the file could not be read at all (missing, not a file, too large). */
  read: boolean;
}

/**
 * `completeness`: also refuse a spec that enables a feature no source provides (validate,
 * build and deploy ask for it; plan asks for 'warn': the same findings as warnings; status, stop,
 * destroy, heal and drill must work on any spec).
 */
export function loadSpec(file: string, cwd: string, options: { completeness?: boolean | 'warn' } = {}): LoadedSpec {
  const path = resolve(cwd, file);
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return single(path, `${path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}, not a spec file`);
    size = st.size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return single(path, code === 'ENOENT' ? `spec file not found: ${path}; create one with: kubedos init --template lab-3 ${file}` : `cannot read the spec file ${path}: ${fsErrorText(err)}`);
  }
  if (size > MAX_SPEC_BYTES) return single(path, `${file} is ${size} bytes, over the ${MAX_SPEC_BYTES / 1048576} MiB limit for a ClusterSpec; is this the right file?`);
  const result = parseSpec(readFileSync(path), { completeness: options.completeness ?? false });
  return { path, read: true, ...result };
}

function single(path: string, message: string): LoadedSpec {
  return { path, read: false, diagnostics: [{ code: 'input.read', severity: 'error', message, path: '(document)', line: 1, column: 1, endLine: 1, endColumn: 1 }] };
}

/** Prints `file:line:col: severity: message` lines; returns true when there are errors. */
export function reportDiagnostics(loaded: LoadedSpec, file: string, io: CliIo, quietWarnings = false): boolean {
  let errors = 0;
  for (const d of loaded.diagnostics) {
    if (d.severity === 'error') errors++;
    if (d.severity !== 'error' && quietWarnings) continue;
    // Every diagnostic on stderr, so errors, warnings and notes stay in line order in one stream;
    // stdout carries only the command's result.
    // A file that could not be read has no line to point at.
    io.err(loaded.read ? formatDiagnostic(file, d) : `kubedos: ${d.message}`);
  }
  return errors > 0;
}

/**
 * For a command that runs something on the spec's cluster (drill, heal): the loaded spec, or
 * undefined after printing its errors and that nothing ran.
 */
export function loadSpecToRun(file: string, io: CliIo): (LoadedSpec & { spec: ClusterSpec }) | undefined {
  const loaded = loadSpec(file, io.cwd);
  if (loaded.spec) return { ...loaded, spec: loaded.spec };
  reportDiagnostics(loaded, file, io, true);
  io.err(`${file}: not valid; nothing run (run kubedos validate ${file})`);
  return undefined;
}

/**
 * For a command that needs a valid spec: prints why it has none (errors only) and what did not
 * happen (`consequence`, e.g. "nothing planned"), then returns the exit status 1.
 */
export function reportInvalidSpec(loaded: LoadedSpec, file: string, io: CliIo, consequence?: string): number {
  reportDiagnostics(loaded, file, io, true);
  if (loaded.read) {
    const n = loaded.diagnostics.filter((d) => d.severity === 'error').length;
    io.err(`${file}: not valid${consequence ? `; ${consequence}` : ''} (${plural(n, 'error')})`);
  }
  return 1;
}
