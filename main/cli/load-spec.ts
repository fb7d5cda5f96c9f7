// Reads a ClusterSpec file for a command: size-checked before reading, bytes decoded strictly.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ClusterSpec, Diagnostic } from '../../common/spec/index';
import { formatDiagnostic, MAX_SPEC_BYTES, parseSpec } from '../../common/spec/index';
import type { CliIo } from './command';

export interface LoadedSpec {
  path: string;
  spec?: ClusterSpec;
  diagnostics: Diagnostic[];
}

export function loadSpec(file: string, cwd: string): LoadedSpec {
  const path = resolve(cwd, file);
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return single(path, `${file} is not a regular file`);
    size = st.size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return single(path, code === 'ENOENT' ? `${file} does not exist (create one with: kubedos init --template lab-3 ${file})` : `cannot read ${file}: ${(err as Error).message}`);
  }
  if (size > MAX_SPEC_BYTES) return single(path, `${file} is ${size} bytes, over the ${MAX_SPEC_BYTES / 1048576} MiB limit for a ClusterSpec; is this the right file?`);
  const result = parseSpec(readFileSync(path));
  return { path, ...result };
}

function single(path: string, message: string): LoadedSpec {
  return { path, diagnostics: [{ code: 'input.read', severity: 'error', message, path: '(document)', line: 1, column: 1, endLine: 1, endColumn: 1 }] };
}

/** Prints `file:line:col: severity: message` lines; returns true when there are errors. */
export function reportDiagnostics(loaded: LoadedSpec, file: string, io: CliIo, quietWarnings = false): boolean {
  let errors = 0;
  for (const d of loaded.diagnostics) {
    if (d.severity === 'error') errors++;
    if (d.severity !== 'error' && quietWarnings) continue;
    // Every diagnostic on stderr, so errors, warnings and notes stay in line order in one stream;
    // stdout carries only the command's result.
    io.err(formatDiagnostic(file, d));
  }
  return errors > 0;
}
