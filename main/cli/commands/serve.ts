// `kubedos serve`: the workbench in any browser. Serves the built renderer and the WebSocket
// bridge on 127.0.0.1 only, guarded by a random token that is printed in the URL.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { rendererBuilt, startBridge } from '../../ipc/ws-bridge';
import { makePrivateDir, workspaceRoot } from '../../workspace';
import { rendererBuildDir } from '../../paths';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';

/** out/renderer of this checkout (electron-vite build output). */
export function defaultRendererDir(): string {
  return rendererBuildDir();
}

export const serveCommand: CliCommand = {
  name: 'serve',
  summary: 'serve the workbench UI to a browser on 127.0.0.1 (token-guarded WebSocket bridge)',
  usage: 'kubedos serve [--port N] [--workspace DIR] [--renderer DIR] [SPEC]',
  help: [
    'Prints a URL with a one-time token; open it in a browser on this machine. Only 127.0.0.1',
    'is bound. The browser may open and save .yaml files directly inside the workspace folder',
    '(no subfolders, no dot-files, no links), and SPEC itself — never the rest of SPEC\'s folder.',
    '  --port N          listen port (default 0 = any free port)',
    '  --workspace DIR   a folder dedicated to specs (default: $KUBEDOS_WORKSPACE/specs,',
    '                    i.e. ~/.kubedos/specs)',
    '  --renderer DIR    the built renderer (default: out/renderer; build it with `npm run build`)',
    '  SPEC              a ClusterSpec file to open at start',
    'Stop with Ctrl-C.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      port: { type: 'string', short: 'p' },
      workspace: { type: 'string' },
      renderer: { type: 'string' },
    });
    if (positionals.length > 1) throw new UsageError('at most one SPEC');
    const port = values.port === undefined ? 0 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${values.port}`);
    const specArg = positionals[0];
    const specPath = specArg ? resolve(io.cwd, specArg) : undefined;
    if (specPath && !/\.ya?ml$/i.test(specPath)) throw new UsageError('SPEC must be a .yaml or .yml file');
    // The workspace is a dedicated folder, never SPEC's own folder: a spec in $HOME must not open
    // $HOME (its .config, .ssh, .github…) to the browser (security issue 16, item 4).
    const workspace = values.workspace ? resolve(io.cwd, values.workspace) : join(workspaceRoot(io.env), 'specs');
    if (!existsSync(workspace)) makePrivateDir(workspace);
    const rendererDir = values.renderer ? resolve(io.cwd, values.renderer) : defaultRendererDir();
    if (!rendererBuilt(rendererDir)) {
      io.err(`kubedos serve: the workbench UI is not built (${join(rendererDir, 'index.html')} is missing)`);
      io.err('build it once with `npm run build` (electron-vite build; no Electron binary needed), then run kubedos serve again');
      return 1;
    }
    const bridge = await startBridge({ rendererDir, port, workspace, ...(specPath ? { specPath } : {}) });
    io.out(`kubedos workbench: ${bridge.url}`);
    io.out(`workspace ${workspace}${specPath ? `, opening ${specPath}` : ''}; only 127.0.0.1 is bound; the token guards the bridge. Ctrl-C stops.`);
    await new Promise<void>((r) => {
      if (io.signal.aborted) return r();
      io.signal.addEventListener('abort', () => r(), { once: true });
    });
    await bridge.close();
    io.out('kubedos serve: stopped');
    return 0;
  },
};
