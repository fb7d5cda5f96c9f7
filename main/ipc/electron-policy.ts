// What the Electron window may load, navigate to and be started with, as pure decisions (the
// Electron main wires them to session/web-contents events; tests call them directly).
import { lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { APP_ORIGIN } from './electron-ipc';

const SCHEME = APP_ORIGIN.slice(0, APP_ORIGIN.indexOf('://'));

/**
 * Whether a request may leave the renderer: our own scheme, devtools, our blob: workers, and
 * data: only for images and fonts (the CSP's img-src/font-src) — never a data: document, frame or script.
 */
export function requestAllowed(url: string, resourceType?: string): boolean {
  if (url.startsWith(`${SCHEME}://`) || url.startsWith('devtools://') || url.startsWith(`blob:${SCHEME}://`)) return true;
  if (url.startsWith('data:')) return resourceType === 'image' || resourceType === 'font';
  return false;
}

/** Whether any frame (top or sub) may navigate to `url`: only pages of our own origin. */
export function navigationAllowed(url: string): boolean {
  return url.startsWith(`${APP_ORIGIN}/`);
}

/**
 * The ClusterSpec named on the command line, if any: the first positional argument (not a
 * switch such as --foo=x.yaml) ending in .yaml/.yml that names an existing regular file. Not
 * "any argv ending in .yaml": Chromium and Electron switches are not spec paths.
 */
export function specFromArgv(argv: readonly string[], cwd: string = process.cwd()): string | undefined {
  const positional = argv.filter((a) => !a.startsWith('-'));
  const candidate = positional.find((a) => /\.ya?ml$/i.test(a));
  if (!candidate) return undefined;
  const path = resolve(cwd, candidate);
  try {
    return lstatSync(path).isFile() ? path : undefined;
  } catch {
    return undefined;
  }
}
