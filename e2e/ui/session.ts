// One browser session of the workbench for the UI tests: the renderer built, a server started
// (`kubedos serve` as a child, or an in-process bridge when a test needs the engine's hooks),
// Debian's chromium on it through playwright-core, the page connected to the engine; screenshots
// at the two sizes and in the two colour schemes, named `<name>-<w>x<h>-<scheme>.png`; and the
// teardown in the right order (the browser, then the server). Built on harness.ts.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { Bridge, BridgeOptions } from '../../main/ipc/ws-bridge';
import { startBridge } from '../../main/ipc/ws-bridge';
import type { Served, ServeOptions } from './harness';
import { ensureRendererBuilt, launchChromium, OUTPUT, REPO, startServe } from './harness';

/** What a session needs of its server: where the workbench is, and how to stop it. */
export interface WorkbenchServer {
  url: string;
  stop(): Promise<void>;
}

export interface UiSession<S extends WorkbenchServer = WorkbenchServer> {
  server: S;
  /** The browser's context (cookies, permissions, more pages). */
  context: BrowserContext;
  page: Page;
  /** Uncaught errors of the page, console errors, and requests that left the server's origin. */
  pageErrors: string[];
  consoleErrors: string[];
  foreignRequests: string[];
  /** Closes the browser, then stops the server; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Builds the renderer when stale, starts the server, opens the workbench in chromium and waits
 * for the engine's WebSocket. When anything fails on the way, what was started is stopped.
 */
export async function openSession<S extends WorkbenchServer>(start: () => Promise<S>): Promise<UiSession<S>> {
  ensureRendererBuilt();
  const server = await start();
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      try {
        await browser?.close();
      } finally {
        await server.stop();
      }
    })());
  try {
    browser = await launchChromium();
    const page = await browser.context.newPage();
    const origin = new URL(server.url).origin;
    const s: UiSession<S> = { server, context: browser.context, page, pageErrors: [], consoleErrors: [], foreignRequests: [], close };
    page.on('pageerror', (e) => s.pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && s.consoleErrors.push(m.text()));
    page.on('request', (r) => !r.url().startsWith(origin) && !/^(data|blob):/.test(r.url()) && s.foreignRequests.push(r.url()));
    await page.goto(server.url);
    await page.getByTestId('connection').filter({ hasText: 'engine · websocket' }).waitFor({ timeout: 30_000 });
    return s;
  } catch (err) {
    await close();
    throw err;
  }
}

/** A session on `kubedos serve --port 0 --workspace WORKSPACE [ARGS]` (see startServe). */
export function serveSession(args: string[] = [], workspace?: string, options: ServeOptions = {}): Promise<UiSession<Served>> {
  return openSession(() => startServe(args, workspace, options));
}

export type BridgeServer = Bridge & WorkbenchServer;

/** A session on the WebSocket bridge started in this process (for the engine's test hooks). */
export function bridgeSession(options: Omit<BridgeOptions, 'rendererDir'>): Promise<UiSession<BridgeServer>> {
  return openSession(async () => {
    const bridge = await startBridge({ rendererDir: join(REPO, 'out/renderer'), ...options });
    return Object.assign(bridge, { stop: () => bridge.close() });
  });
}

export type Scheme = 'dark' | 'light';
/** The two window sizes every view is photographed at. */
export const SIZES = [
  [1440, 900],
  [1280, 720],
] as const;
const [DEFAULT_WIDTH, DEFAULT_HEIGHT] = SIZES[0];

export async function colorScheme(page: Page): Promise<Scheme> {
  return (await page.evaluate(() => document.documentElement.getAttribute('data-mantine-color-scheme'))) === 'light' ? 'light' : 'dark';
}

/** Switches the app's colour scheme with its shortcut (the toggle button may be behind a dialog). */
export async function setColorScheme(page: Page, want: Scheme): Promise<void> {
  if ((await colorScheme(page)) === want) return;
  // The shortcut is not heard from inside a text field.
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.keyboard.press('Control+Shift+L');
  const deadline = Date.now() + 5000;
  while ((await colorScheme(page)) !== want) {
    if (Date.now() > deadline) throw new Error(`the colour scheme did not switch to ${want} after Ctrl+Shift+L`);
    await page.waitForTimeout(50);
  }
}

/** e2e/output/screens/<prefix>/ (shots makes it when it writes there). */
export function screensDir(prefix: string): string {
  return join(OUTPUT, 'screens', prefix);
}

export interface ShotOptions {
  /** 'current' (default): the scheme the page has; 'both': dark and light, then back to where it was. */
  schemes?: 'current' | 'both';
  /** Run after each resize, before the picture (e.g. scroll a part into view). */
  prepare?: (width: number, height: number) => Promise<void>;
  /** Wait after the resize for the layout to settle, in ms (300 unless told). */
  settleMs?: number;
}

/**
 * `<dir>/<name>-<w>x<h>-<scheme>.png` at 1440x900 and 1280x720, the pointer parked at the bottom
 * so no hover shows; then the page is back at 1440x900 in the scheme it had. Returns the paths.
 */
export async function shots(page: Page, dir: string, name: string, o: ShotOptions = {}): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const initial = await colorScheme(page);
  const schemes: Scheme[] = o.schemes === 'both' ? [initial, initial === 'dark' ? 'light' : 'dark'] : [initial];
  const paths: string[] = [];
  for (const scheme of schemes) {
    await setColorScheme(page, scheme);
    for (const [w, h] of SIZES) {
      await page.setViewportSize({ width: w, height: h });
      await o.prepare?.(w, h);
      await page.mouse.move(w / 2, h - 10);
      await page.waitForTimeout(o.settleMs ?? 300);
      const path = join(dir, `${name}-${w}x${h}-${scheme}.png`);
      await page.screenshot({ path });
      paths.push(path);
    }
  }
  await setColorScheme(page, initial);
  await page.setViewportSize({ width: DEFAULT_WIDTH, height: DEFAULT_HEIGHT });
  return paths;
}
