// Where the app's own files are — the one place that answers it (docs/architecture.md).
// From a checkout (the CLI, tests, `electron-vite dev`) payload/ sits beside package.json. A
// packaged app (electron-builder.yml: extraResources) carries payload/ outside the asar, at
// <process.resourcesPath>/payload; the code itself is inside app.asar, where no payload is.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface AppLayout {
  /** Electron's resources folder (process.resourcesPath); undefined in plain Node. */
  resourcesPath?: string;
  /** A file of the running code: this module, or the bundle it was built into. */
  moduleFile: string;
}

function currentLayout(): AppLayout {
  const resourcesPath = (process as { resourcesPath?: string }).resourcesPath;
  return { moduleFile: fileURLToPath(import.meta.url), ...(resourcesPath ? { resourcesPath } : {}) };
}

/**
 * The folder holding package.json above the running code: the checkout for main/paths.ts run
 * by tsx and for out/main/index.js alike (a fixed '../..' would be right for only one of them).
 */
export function appRoot(layout: AppLayout = currentLayout()): string {
  let dir = dirname(layout.moduleFile);
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${layout.moduleFile}: cannot tell where the app is installed`);
    dir = up;
  }
}

/**
 * The payload baked into every image. $KUBEDOS_PAYLOAD_DIR when set (a copy of payload/ to build
 * from, e.g. the upgrade VM test's N+1 with one file changed: the checkout itself is never
 * edited). Packaged: <resourcesPath>/payload. Otherwise (plain Node, or Electron started from a
 * checkout, whose resourcesPath is Electron's own and holds no payload): <checkout>/payload.
 */
export function payloadDir(layout: AppLayout = currentLayout(), env: NodeJS.ProcessEnv = process.env): string {
  const override = env.KUBEDOS_PAYLOAD_DIR;
  if (override) {
    const dir = resolve(override);
    if (!existsSync(join(dir, 'firstboot'))) throw new Error(`KUBEDOS_PAYLOAD_DIR=${override}: ${dir} holds no firstboot/, it is not a copy of payload/ (unset it to use the app's own)`);
    return dir;
  }
  if (layout.resourcesPath) {
    const packaged = join(layout.resourcesPath, 'payload');
    if (existsSync(packaged)) return packaged;
  }
  const checkout = join(appRoot(layout), 'payload');
  if (existsSync(checkout)) return checkout;
  throw new Error(
    `payload/ not found: looked in ${layout.resourcesPath ? `${join(layout.resourcesPath, 'payload')} and ` : ''}${checkout} (a packaged app carries it under its resources folder)`,
  );
}

/**
 * The local QEMU network hub, a plain Node script run as its own process (qemu-local). It stays
 * a file of the checkout, main/substrate/l2-hub.mjs, whether the engine runs from source (tsx)
 * or from a bundle (out/cli/kubedos.mjs, out/main/index.js), so it is found from the app root.
 */
export function l2HubScript(layout: AppLayout = currentLayout()): string {
  return join(appRoot(layout), 'main', 'substrate', 'l2-hub.mjs');
}

/** The built renderer (`electron-vite build` output) that `kubedos serve` serves by default. */
export function rendererBuildDir(layout: AppLayout = currentLayout()): string {
  return join(appRoot(layout), 'out', 'renderer');
}
