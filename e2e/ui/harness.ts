// Test fixtures for the browser e2e suite: build the renderer when it is missing or older than
// its sources (CI runs on a clean clone), start `kubedos serve` as a child process on a free
// port, and drive Debian's chromium through playwright-core.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';

export const REPO = resolve(import.meta.dirname, '../..');
export const OUTPUT = join(REPO, 'e2e/output');
export const CHROMIUM = '/usr/bin/chromium';
const RENDERER_INDEX = join(REPO, 'out/renderer/index.html');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (/\.(ts|tsx|css|html|json)$/.test(entry.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs `electron-vite build` when out/renderer is missing or stale. */
export function ensureRendererBuilt(): void {
  const built = existsSync(RENDERER_INDEX) ? statSync(RENDERER_INDEX).mtimeMs : 0;
  const sources = Math.max(newestMtime(join(REPO, 'renderer')), newestMtime(join(REPO, 'common')), statSync(join(REPO, 'electron.vite.config.ts')).mtimeMs);
  if (built > sources) return;
  const r = spawnSync(process.execPath, [join(REPO, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'], {
    cwd: REPO,
    env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' },
    encoding: 'utf8',
    timeout: 240_000,
  });
  if (r.status !== 0 || !existsSync(RENDERER_INDEX)) {
    throw new Error(`electron-vite build failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ''}):\n${(r.stderr || r.stdout || '').slice(-3000)}\nrun \`npm run build\` to see the whole output`);
  }
}

export interface Served {
  url: string;
  origin: string;
  token: string;
  workspace: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** Added to (or, when undefined, removed from) the child's environment. */
  env?: Record<string, string | undefined>;
  /** Keep the workspace directory on stop (it is the caller's, not a temp dir). */
  keepWorkspace?: boolean;
}

/** `kubedos serve --port 0 --workspace <tmp> [SPEC]`; resolves with the printed URL. */
export async function startServe(args: string[] = [], workspace = mkdtempSync(join(tmpdir(), 'kubedos-e2e-ws-')), options: ServeOptions = {}): Promise<Served> {
  const env: NodeJS.ProcessEnv = { ...process.env, KUBEDOS_WORKSPACE: workspace };
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = spawn(process.execPath, [join(REPO, 'bin/kubedos.mjs'), 'serve', '--port', '0', '--workspace', workspace, ...args], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`kubedos serve printed no URL within 60 s:\n${out}`)), 60_000);
    const check = (): void => {
      const m = /kubedos workbench: (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kubedos serve exited with ${code} before printing its URL:\n${out}`));
    });
  });
  const parsed = new URL(url);
  return {
    url,
    origin: parsed.origin,
    token: parsed.searchParams.get('token') ?? '',
    workspace,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (!options.keepWorkspace) rmSync(workspace, { recursive: true, force: true });
    },
  };
}

/** Chromium with a fresh profile directory (removed on close). */
export async function launchChromium(): Promise<{ context: BrowserContext; userDataDir: string; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/setup-host.sh installs it)`);
  const userDataDir = mkdtempSync(join(tmpdir(), 'kubedos-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    userDataDir,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(OUTPUT, { recursive: true });
  const path = join(OUTPUT, `${name}.png`);
  await page.screenshot({ path });
  return path;
}
