// The hardening of the Electron main, checked with a fake `electron` module (the Electron
// binary cannot run here): window flags, the kubedos:// file handler, navigation, window.open,
// permissions, remote requests, the menu's commands, IPC registration and window state.
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type * as MainIndex from './index';

const fake = vi.hoisted(() => {
  const userData = `${process.env.TMPDIR ?? '/tmp'}/kubedos-electron-fake-${process.pid}`;
  process.env.KUBEDOS_WORKSPACE = `${userData}/workspace`;
  const state = {
    userData,
    privileged: [] as unknown[],
    protocolHandlers: new Map<string, (req: Request) => Promise<Response>>(),
    ipcHandlers: new Map<string, (...args: unknown[]) => unknown>(),
    appHandlers: new Map<string, (...args: unknown[]) => void>(),
    windows: [] as { options: Record<string, unknown>; url?: string; sent: [string, unknown][]; handlers: Map<string, (...a: unknown[]) => void>; maximized: boolean }[],
    beforeRequest: undefined as undefined | ((details: { url: string }, cb: (r: { cancel: boolean }) => void) => void),
    permission: undefined as undefined | ((wc: unknown, permission: string, cb: (ok: boolean) => void) => void),
    permissionCheck: undefined as undefined | (() => boolean),
    menuTemplate: [] as { label?: string; submenu?: { label?: string; accelerator?: string; click?: () => void }[] }[],
    fetched: [] as string[],
  };
  return state;
});

vi.mock('electron', () => {
  class BrowserWindow {
    static getAllWindows = () => fake.windows;
    webContents: { id: number; send: (c: string, p: unknown) => void };
    private record;
    constructor(options: Record<string, unknown>) {
      this.record = { options, sent: [] as [string, unknown][], handlers: new Map<string, (...a: unknown[]) => void>(), maximized: false } as (typeof fake.windows)[number];
      fake.windows.push(this.record);
      this.webContents = { id: 41, send: (c, p) => this.record.sent.push([c, p]) };
    }
    on(event: string, h: (...a: unknown[]) => void) {
      this.record.handlers.set(event, h);
    }
    once(event: string, h: (...a: unknown[]) => void) {
      this.record.handlers.set(event, h);
    }
    maximize() {
      this.record.maximized = true;
    }
    isMaximized() {
      return this.record.maximized;
    }
    isDestroyed() {
      return false;
    }
    getNormalBounds() {
      return { x: 10, y: 20, width: 1300, height: 800 };
    }
    loadURL(url: string) {
      this.record.url = url;
      return Promise.resolve();
    }
    show() {}
  }
  return {
    app: {
      whenReady: () => Promise.resolve(),
      getPath: () => fake.userData,
      isPackaged: false,
      on: (event: string, h: (...a: unknown[]) => void) => fake.appHandlers.set(event, h),
      quit: () => {},
    },
    BrowserWindow,
    dialog: { showOpenDialog: async () => ({ canceled: true, filePaths: [] }), showSaveDialog: async () => ({ canceled: true }) },
    ipcMain: { handle: (c: string, h: (...a: unknown[]) => unknown) => fake.ipcHandlers.set(c, h), removeHandler: (c: string) => fake.ipcHandlers.delete(c) },
    Menu: { buildFromTemplate: (t: typeof fake.menuTemplate) => ((fake.menuTemplate = t), {}), setApplicationMenu: () => {} },
    net: {
      fetch: async (url: string) => {
        fake.fetched.push(url);
        const { readFile } = await import('node:fs/promises');
        const { fileURLToPath } = await import('node:url');
        try {
          return new Response(await readFile(fileURLToPath(url)));
        } catch {
          return new Response('missing', { status: 404 });
        }
      },
    },
    protocol: {
      registerSchemesAsPrivileged: (s: unknown[]) => fake.privileged.push(...s),
      handle: (scheme: string, h: (req: Request) => Promise<Response>) => fake.protocolHandlers.set(scheme, h),
    },
    session: {
      defaultSession: {
        webRequest: { onBeforeRequest: (h: typeof fake.beforeRequest) => (fake.beforeRequest = h) },
        setPermissionRequestHandler: (h: typeof fake.permission) => (fake.permission = h),
        setPermissionCheckHandler: (h: typeof fake.permissionCheck) => (fake.permissionCheck = h),
      },
    },
  };
});

let mod: typeof MainIndex;
beforeAll(async () => {
  mod = await import('./index');
  await mod.started;
});
afterAll(() => rmSync(fake.userData, { recursive: true, force: true }));

describe('Electron main hardening', () => {
  it('opens one sandboxed, context-isolated window without Node on our own scheme', () => {
    expect(fake.windows).toHaveLength(1);
    const prefs = fake.windows[0]!.options.webPreferences as Record<string, unknown>;
    expect(prefs).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, nodeIntegrationInWorker: false, webSecurity: true, webviewTag: false, allowRunningInsecureContent: false });
    expect(String(prefs.preload)).toMatch(/out\/preload\/index\.cjs$|preload\/index\.cjs$/);
    expect(fake.windows[0]!.url).toBe('kubedos://app/index.html');
    expect(fake.privileged).toEqual([{ scheme: 'kubedos', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
  });

  it('serves only files under out/renderer, with the CSP', async () => {
    const handler = fake.protocolHandlers.get('kubedos')!;
    // Under test, main/index.ts runs from main/, so its renderer directory is ../renderer.
    const rendererDir = resolve(import.meta.dirname, '../renderer');
    for (const escape of ['kubedos://app/..%2f..%2fpackage.json', 'kubedos://app/%2e%2e/%2e%2e/package.json', 'kubedos://app/../../etc/passwd']) {
      const res = await handler(new Request(escape));
      expect(res.status, escape).toBe(404);
    }
    expect((await handler(new Request('kubedos://other/index.html'))).status).toBe(404);
    // Whatever was looked up stayed inside the renderer directory.
    for (const url of fake.fetched) expect(fileURLToPath(url).startsWith(`${rendererDir}/`), url).toBe(true);
    const index = await handler(new Request('kubedos://app/index.html'));
    expect(fake.fetched.at(-1)).toBe(`file://${rendererDir}/index.html`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toBe(mod.ELECTRON_CSP);
    expect(mod.ELECTRON_CSP).toContain("worker-src 'self' blob:");
    expect(mod.ELECTRON_CSP).not.toContain('unsafe-eval');
    expect(mod.ELECTRON_CSP).not.toMatch(/https?:/);
  });

  it('cancels remote requests, denies permissions, navigation and window.open', () => {
    const decide = (url: string): boolean => {
      let cancel: boolean | undefined;
      fake.beforeRequest!({ url }, (r) => (cancel = r.cancel));
      return cancel!;
    };
    expect(decide('https://cdn.example.invalid/monaco.js')).toBe(true);
    expect(decide('http://127.0.0.1:8080/')).toBe(true);
    expect(decide('file:///etc/passwd')).toBe(true);
    expect(decide('kubedos://app/assets/editor.worker.js')).toBe(false);
    // data: only for images and fonts, never a document or a script.
    const decideAs = (url: string, resourceType: string): boolean => {
      let cancel: boolean | undefined;
      fake.beforeRequest!({ url, resourceType } as { url: string }, (r) => (cancel = r.cancel));
      return cancel!;
    };
    expect(decideAs('data:text/html,<script>alert(1)</script>', 'mainFrame')).toBe(true);
    expect(decideAs('data:text/javascript,alert(1)', 'script')).toBe(true);
    expect(decideAs('data:image/png;base64,iVBORw0KGgo=', 'image')).toBe(false);
    let granted: boolean | undefined;
    fake.permission!({}, 'media', (ok) => (granted = ok));
    expect(granted).toBe(false);
    expect(fake.permissionCheck!()).toBe(false);

    const contents = { handlers: new Map<string, (e: { preventDefault(): void }, url?: string) => void>(), openHandler: undefined as undefined | (() => { action: string }) };
    fake.appHandlers.get('web-contents-created')!({}, {
      on: (ev: string, h: (e: { preventDefault(): void }, url?: string) => void) => contents.handlers.set(ev, h),
      setWindowOpenHandler: (h: () => { action: string }) => (contents.openHandler = h),
    });
    const prevented = (ev: string, url?: string): boolean => {
      let p = false;
      contents.handlers.get(ev)!({ preventDefault: () => (p = true) }, url);
      return p;
    };
    expect(prevented('will-navigate', 'https://example.invalid/')).toBe(true);
    expect(prevented('will-navigate', 'kubedos://app/index.html')).toBe(false);
    expect(prevented('will-redirect')).toBe(true);
    // Subframes: will-frame-navigate carries the URL on the event.
    const frameNav = (url: string): boolean => {
      let p = false;
      contents.handlers.get('will-frame-navigate')!({ preventDefault: () => (p = true), url } as { preventDefault(): void });
      return p;
    };
    expect(frameNav('https://example.invalid/')).toBe(true);
    expect(frameNav('kubedos://app/index.html')).toBe(false);
    expect(prevented('will-attach-webview')).toBe(true);
    expect(contents.openHandler!()).toEqual({ action: 'deny' });
  });

  it('registers the contract on ipcMain and refuses other senders', async () => {
    expect([...fake.ipcHandlers.keys()]).toContain('kubedos:spec.parse');
    const h = fake.ipcHandlers.get('kubedos:spec.templates')!;
    const ours = { sender: { id: 41 }, senderFrame: { url: 'kubedos://app/index.html', parent: null } };
    expect(await h(ours, {})).toHaveProperty('result');
    expect(await h({ sender: { id: 41 }, senderFrame: { url: 'https://evil.invalid/' } }, {})).toHaveProperty('error');
    expect(await h(ours, { unexpected: true })).toHaveProperty('error');
  });

  it('has menu accelerators that send validated commands to the window', () => {
    const items = fake.menuTemplate.flatMap((m) => m.submenu ?? []);
    const save = items.find((i) => i.accelerator === 'CmdOrCtrl+S')!;
    expect(save.label).toBe('Save Spec');
    expect(items.map((i) => i.accelerator).filter(Boolean)).toEqual(expect.arrayContaining(['CmdOrCtrl+N', 'CmdOrCtrl+O', 'CmdOrCtrl+1', 'CmdOrCtrl+6', 'CmdOrCtrl+Enter']));
    save.click!();
    expect(fake.windows[0]!.sent.at(-1)).toEqual(['kubedos:app.command', { command: 'spec.save' }]);
  });

  it('remembers the window bounds and maximized state', async () => {
    const win = fake.windows[0]!;
    win.maximized = true;
    win.handlers.get('close')!();
    const saved = JSON.parse(readFileSync(join(fake.userData, 'window-state.json'), 'utf8'));
    expect(saved).toEqual({ bounds: { x: 10, y: 20, width: 1300, height: 800 }, maximized: true });
  });
});
