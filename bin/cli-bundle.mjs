// Is the prebuilt CLI (out/cli/kubedos.mjs, `npm run build:cli`) current? It is when it exists
// and none of the source files it was built from (out/cli/kubedos.inputs.json) changed since its
// build started. Anything missing or unreadable means "no": the caller runs the sources instead.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The bundle's path when it can be run, else undefined with the reason.
 * KUBEDOS_CLI_FROM_SOURCE=1 always runs the sources.
 * @returns {{ bundle?: string, why: string }}
 */
export function cliBundle(root = REPO_ROOT, env = process.env) {
  if (env.KUBEDOS_CLI_FROM_SOURCE) return { why: 'KUBEDOS_CLI_FROM_SOURCE is set' };
  const bundle = join(root, 'out', 'cli', 'kubedos.mjs');
  let record;
  try {
    statSync(bundle);
    record = JSON.parse(readFileSync(join(root, 'out', 'cli', 'kubedos.inputs.json'), 'utf8'));
  } catch {
    return { why: 'not built (npm run build:cli)' };
  }
  if (!Array.isArray(record?.inputs) || record.inputs.length === 0 || typeof record.startedMs !== 'number') return { why: 'its input list is unreadable' };
  for (const file of record.inputs) {
    let mtimeMs;
    try {
      mtimeMs = statSync(join(root, file)).mtimeMs;
    } catch {
      return { why: `${file} is gone` };
    }
    if (mtimeMs >= record.startedMs) return { why: `${file} changed since the build` };
  }
  return { bundle, why: 'current' };
}

/**
 * Whether argv only asks for help or the version, the way main() (main/cli/main.ts) reads it:
 * nothing, --help, -h or help -> the top help (exit 2 for nothing, else 0); --version or -V;
 * COMMAND ... with --help or -h among its arguments -> that command's help. Anything else
 * (including an unknown command) is left to main().
 * @returns {{ kind: 'top' | 'version' | 'command', command?: string, exitCode: number } | undefined}
 */
export function helpRequest(argv) {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') return { kind: 'top', exitCode: name ? 0 : 2 };
  if (name === '--version' || name === '-V') return { kind: 'version', exitCode: 0 };
  if (!name.startsWith('-') && (rest.includes('--help') || rest.includes('-h'))) return { kind: 'command', command: name, exitCode: 0 };
  return undefined;
}
