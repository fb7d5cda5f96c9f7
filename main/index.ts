// Electron main: one hardened window on our own kubedos:// origin, the contract registered on
// ipcMain, and an app menu whose accelerators send commands to the renderer.
//
// Hardening: contextIsolation, sandbox and webSecurity on, nodeIntegration off; the page is
// served from kubedos://app (a privileged standard scheme reading out/renderer only) with a
// strict CSP header; every request to another origin is cancelled (data: only for images and
// fonts); navigation of any frame, window.open, <webview> and permission prompts are denied; IPC
// answers only our window's top frame; fuses (electron-builder.yml) disable run-as-node,
// NODE_OPTIONS and --inspect and load only the integrity-checked app.asar. Decisions live in
// ipc/electron-policy.ts.
//
// CSP note: `worker-src 'self' blob:` is what Monaco needs — its editor worker and the
// monaco-yaml worker are bundled files started with `new Worker(url)`, and Chromium may wrap
// module workers in blob: URLs. No `unsafe-eval` is needed (Monaco ESM does not eval), and
// `style-src 'unsafe-inline'` is needed because Mantine and Monaco inject <style> elements.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve, sep, isAbsolute, extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, net, protocol, session } from 'electron';
import type { MenuItemConstructorOptions, Rectangle } from 'electron';
import { z } from 'zod';
import type { AppCommand } from '../common/contract/index';
import { createWorkbench } from './ipc/workbench';
import type { Workbench } from './ipc/workbench';
import { APP_ORIGIN, eventSender, registerIpcHandlers, trustedSender } from './ipc/electron-ipc';
import { navigationAllowed, requestAllowed, specFromArgv } from './ipc/electron-policy';
import { RENDERER_MIME, rendererCsp } from './ipc/renderer-content';
import { workspaceRoot } from './workspace';

const here = dirname(fileURLToPath(import.meta.url));
const RENDERER_DIR = resolve(here, '../renderer');
const PRELOAD = resolve(here, '../preload/index.cjs');
const SCHEME = 'kubedos';

export const ELECTRON_CSP = rendererCsp();

protocol.registerSchemesAsPrivileged([{ scheme: SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

const WindowState = z.object({
  bounds: z.object({ x: z.number().int(), y: z.number().int(), width: z.number().int().min(640), height: z.number().int().min(480) }),
  maximized: z.boolean(),
});
type WindowState = z.infer<typeof WindowState>;
const stateFile = (): string => join(app.getPath('userData'), 'window-state.json');

function readWindowState(): WindowState | undefined {
  try {
    const parsed = WindowState.safeParse(JSON.parse(readFileSync(stateFile(), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function rememberWindowState(win: BrowserWindow): void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const save = (): void => {
    if (win.isDestroyed()) return;
    const state: WindowState = { bounds: win.getNormalBounds() as Rectangle, maximized: win.isMaximized() };
    try {
      mkdirSync(dirname(stateFile()), { recursive: true });
      writeFileSync(stateFile(), JSON.stringify(state));
    } catch {
      // Losing the window position is not worth an error dialog.
    }
  };
  const later = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(save, 400);
  };
  win.on('resize', later);
  win.on('move', later);
  win.on('close', save);
}


/** kubedos://app/<path> -> a file under out/renderer, nothing else. */
export async function serveRenderer(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.host !== 'app') return new Response('not found', { status: 404 });
  const rel = url.pathname === '/' ? 'index.html' : normalize(decodeURIComponent(url.pathname)).replace(/^[/\\]+/, '');
  const file = resolve(RENDERER_DIR, rel);
  const within = relative(RENDERER_DIR, file);
  if (within.startsWith(`..${sep}`) || within === '..' || isAbsolute(within)) return new Response('not found', { status: 404 });
  const res = await net.fetch(pathToFileURL(file).toString());
  if (!res.ok) return new Response('not found', { status: 404 });
  return new Response(res.body, {
    status: 200,
    headers: { 'Content-Type': RENDERER_MIME[extname(file).toLowerCase()] ?? 'application/octet-stream', 'Content-Security-Policy': ELECTRON_CSP, 'X-Content-Type-Options': 'nosniff' },
  });
}

let mainWindow: BrowserWindow | undefined;
let workbench: Workbench | undefined;

const sendEvent = eventSender((channel, payload) => mainWindow?.webContents.send(channel, payload));

function send(command: AppCommand): void {
  sendEvent('app.command', { command });
}

function buildMenu(): Menu {
  const isMac = process.platform === 'darwin';
  const item = (label: string, accelerator: string, command: AppCommand): MenuItemConstructorOptions => ({ label, accelerator, click: () => send(command) });
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: '&File',
      submenu: [
        item('New from Template…', 'CmdOrCtrl+N', 'spec.new'),
        item('Open Spec…', 'CmdOrCtrl+O', 'spec.open'),
        item('Save Spec', 'CmdOrCtrl+S', 'spec.save'),
        item('Save Spec As…', 'CmdOrCtrl+Shift+S', 'spec.saveAs'),
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { label: '&Edit', submenu: [{ role: 'undo' }, { role: 'redo' }, { type: 'separator' }, { role: 'cut' }, { role: 'copy' }, { role: 'paste' }, { role: 'selectAll' }] },
    {
      label: '&View',
      submenu: [
        item('Spec', 'CmdOrCtrl+1', 'view.spec'),
        item('Topology', 'CmdOrCtrl+2', 'view.topology'),
        item('Wiring', 'CmdOrCtrl+3', 'view.wiring'),
        item('Pipeline', 'CmdOrCtrl+4', 'view.pipeline'),
        item('Artifacts', 'CmdOrCtrl+5', 'view.artifacts'),
        item('Drills', 'CmdOrCtrl+6', 'view.drills'),
        item('Deploy', 'CmdOrCtrl+7', 'view.deploy'),
        item('Recovery', 'CmdOrCtrl+8', 'view.recovery'),
        { type: 'separator' },
        item('Toggle Light/Dark', 'CmdOrCtrl+Shift+L', 'theme.toggle'),
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { role: 'togglefullscreen' },
        ...(app.isPackaged ? [] : [{ role: 'toggleDevTools' as const }]),
      ],
    },
    { label: '&Pipeline', submenu: [item('Run Plan Pipeline', 'CmdOrCtrl+Enter', 'pipeline.run')] },
    { role: 'windowMenu' },
  ];
  return Menu.buildFromTemplate(template);
}

function harden(): void {
  // Nothing but our own scheme (and devtools) is ever loaded: no remote content.
  session.defaultSession.webRequest.onBeforeRequest((details, callback) => {
    callback({ cancel: !requestAllowed(details.url, details.resourceType) });
  });
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-navigate', (event, url) => {
      if (!navigationAllowed(url)) event.preventDefault();
    });
    // Subframes too (will-navigate only sees the top frame).
    contents.on('will-frame-navigate', (event) => {
      if (!navigationAllowed(event.url)) event.preventDefault();
    });
    contents.on('will-redirect', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });
}

function createWindow(): void {
  const state = readWindowState();
  const win = new BrowserWindow({
    width: state?.bounds.width ?? 1440,
    height: state?.bounds.height ?? 900,
    ...(state ? { x: state.bounds.x, y: state.bounds.y } : {}),
    minWidth: 960,
    minHeight: 600,
    title: "Kube'd'OS Foundry",
    show: false,
    backgroundColor: '#1a1b1e',
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
      devTools: !app.isPackaged,
    },
  });
  if (state?.maximized) win.maximize();
  rememberWindowState(win);
  win.once('ready-to-show', () => win.show());
  win.on('closed', () => {
    mainWindow = undefined;
  });
  mainWindow = win;
  void win.loadURL(`${APP_ORIGIN}/index.html`);
}

async function start(): Promise<void> {
  await app.whenReady();
  harden();
  protocol.handle(SCHEME, serveRenderer);
  const specArg = specFromArgv(process.argv.slice(app.isPackaged ? 1 : 2));
  workbench = createWorkbench({
    transport: 'electron',
    workspace: join(workspaceRoot(), 'specs'),
    ...(specArg ? { specPath: specArg } : {}),
    emit: sendEvent,
    pickOpenPath: async () => {
      const r = await dialog.showOpenDialog({ title: 'Open ClusterSpec', properties: ['openFile'], filters: [{ name: 'ClusterSpec', extensions: ['yaml', 'yml'] }] });
      return r.canceled ? undefined : r.filePaths[0];
    },
    pickSavePath: async (suggested) => {
      const r = await dialog.showSaveDialog({ title: 'Save ClusterSpec', ...(suggested ? { defaultPath: suggested } : {}), filters: [{ name: 'ClusterSpec', extensions: ['yaml', 'yml'] }] });
      return r.canceled ? undefined : r.filePath;
    },
  });
  registerIpcHandlers(ipcMain, workbench.handlers, trustedSender(() => mainWindow?.webContents.id));
  Menu.setApplicationMenu(buildMenu());
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
}

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
app.on('before-quit', () => {
  void workbench?.dispose();
});
/** Resolves when the app is up (tests of the hardening await it with a fake electron module). */
export const started = start();
