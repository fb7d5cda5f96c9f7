// Transport 2: `kubedos serve`. An HTTP server on 127.0.0.1 only, serving the built renderer,
// and a WebSocket endpoint at /bridge carrying the same contract as Electron IPC. The URL printed
// at start carries a random bootstrap token that works ONCE: opening it sets an HttpOnly,
// SameSite=Strict session cookie and redirects to the same page without the token (so it is not
// left in the address bar or the history). The socket needs that session; Host and Origin must
// be this server (no DNS rebinding, no other web page driving the engine). Every inbound frame
// is validated; a malformed one gets an error reply and the connection stays up.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, relative, resolve, sep, isAbsolute } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { RawData } from 'ws';
import type { EventChannel, EventOf, ServerFrame } from '../../common/contract/index';
import { ClientFrame, encodeError, MAX_FRAME_BYTES, PayloadError } from '../../common/contract/index';
import { dispatch } from './dispatch';
import type { Workbench, WorkbenchOptions } from './workbench';
import { createWorkbench } from './workbench';
import { RENDERER_MIME, rendererCsp } from './renderer-content';

export const BRIDGE_PATH = '/bridge';
export const LOOPBACK = '127.0.0.1';
/** Open bridge sockets at once (a browser tab holds one). */
export const MAX_CLIENTS = 16;

export interface BridgeOptions extends Omit<WorkbenchOptions, 'emit' | 'transport' | 'pickOpenPath' | 'pickSavePath'> {
  rendererDir: string;
  port?: number;
  /** Fixed bootstrap token for tests; random (32 bytes, base64url) otherwise. Valid for one exchange. */
  token?: string;
}

export interface Bridge {
  url: string;
  port: number;
  token: string;
  workbench: Workbench;
  close(): Promise<void>;
}


/** The CSP of the served renderer: the shared one, plus this bridge's WebSocket. */
export function contentSecurityPolicy(port: number): string {
  return rendererCsp([`ws://${LOOPBACK}:${port}`, `ws://localhost:${port}`]);
}

export function rendererBuilt(rendererDir: string): boolean {
  return existsSync(join(rendererDir, 'index.html'));
}

export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const rendererDir = resolve(options.rendererDir);
  if (!rendererBuilt(rendererDir)) {
    throw Object.assign(new Error(`the renderer is not built: ${join(rendererDir, 'index.html')} is missing`), { hint: 'build it with `npm run build` (electron-vite build), then run kubedos serve again' });
  }
  const token = options.token ?? randomBytes(32).toString('base64url');
  const tokenBytes = Buffer.from(token);
  let tokenUsed = false;
  const sessions = new Set<string>();
  const clients = new Set<WebSocket>();
  let port = 0;
  // Cookies are not per-port: the name carries it, so two servers never see each other's session.
  const cookieName = (): string => `kubedos_session_${port}`;
  const sessionOf = (req: IncomingMessage): string | undefined => {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === cookieName()) return v.join('=');
    }
    return undefined;
  };
  const hasSession = (req: IncomingMessage): boolean => {
    const sid = sessionOf(req);
    if (!sid) return false;
    const given = Buffer.from(sid);
    for (const s of sessions) {
      const b = Buffer.from(s);
      if (b.length === given.length && timingSafeEqual(b, given)) return true;
    }
    return false;
  };
  /** The one exchange of the bootstrap token for a session. */
  const redeem = (given: string): string | undefined => {
    const g = Buffer.from(given);
    if (tokenUsed || g.length !== tokenBytes.length || !timingSafeEqual(g, tokenBytes)) return undefined;
    tokenUsed = true;
    const sid = randomBytes(32).toString('base64url');
    sessions.add(sid);
    return sid;
  };

  const emit = <C extends EventChannel>(channel: C, payload: EventOf<C>): void => {
    const frame = JSON.stringify({ kind: 'event', channel, payload } satisfies ServerFrame);
    for (const ws of clients) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
  };
  const workbench = createWorkbench({ ...options, transport: 'websocket', emit });

  const allowedHosts = (): Set<string> => new Set([`${LOOPBACK}:${port}`, `localhost:${port}`]);
  const allowedOrigins = (): Set<string> => new Set([`http://${LOOPBACK}:${port}`, `http://localhost:${port}`]);

  const server: Server = createServer((req, res) => serveStatic(req, res));
  function securityHeaders(res: ServerResponse): void {
    res.setHeader('Content-Security-Policy', contentSecurityPolicy(port));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cache-Control', 'no-store');
  }
  function serveStatic(req: IncomingMessage, res: ServerResponse): void {
    securityHeaders(res);
    if (!allowedHosts().has(req.headers.host ?? '')) return plain(res, 421, 'misdirected request: this server only answers to 127.0.0.1\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed\n');
    let pathname: string;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://${LOOPBACK}`);
      pathname = decodeURIComponent(url.pathname);
    } catch {
      return plain(res, 400, 'bad request\n');
    }
    const given = url.searchParams.get('token');
    if (given !== null) {
      const sid = redeem(given);
      if (!sid) {
        return plain(res, 401, hasSession(req) ? 'this link was used already; your session is open: go to / \n' : 'this link is not valid (it works once): restart kubedos serve for a new one\n');
      }
      res.setHeader('Set-Cookie', `${cookieName()}=${sid}; Path=/; HttpOnly; SameSite=Strict`);
      res.writeHead(303, { Location: url.pathname });
      return void res.end();
    }
    if (pathname.includes('\u0000')) return plain(res, 400, 'bad request\n');
    const rel = pathname === '/' ? 'index.html' : normalize(pathname).replace(/^[/\\]+/, '');
    const file = resolve(rendererDir, rel);
    const within = relative(rendererDir, file);
    if (within.startsWith(`..${sep}`) || within === '..' || isAbsolute(within)) return plain(res, 404, 'not found\n');
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) return plain(res, 404, 'not found\n');
      size = st.size;
    } catch {
      return plain(res, 404, 'not found\n');
    }
    res.writeHead(200, { 'Content-Type': RENDERER_MIME[extname(file).toLowerCase()] ?? 'application/octet-stream', 'Content-Length': size });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://${LOOPBACK}`);
    } catch {
      return refuse(400, 'Bad Request');
    }
    if (url.pathname !== BRIDGE_PATH) return refuse(404, 'Not Found');
    if (!allowedHosts().has(req.headers.host ?? '')) return refuse(421, 'Misdirected Request');
    if (!allowedOrigins().has(req.headers.origin ?? '')) return refuse(403, 'Forbidden');
    if (!hasSession(req)) return refuse(401, 'Unauthorized');
    if (clients.size >= MAX_CLIENTS) return refuse(503, 'Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  wss.on('connection', (ws: WebSocket) => {
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
    ws.on('error', () => clients.delete(ws));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      void handleFrame(ws, data, isBinary);
    });
  });

  async function handleFrame(ws: WebSocket, data: RawData, isBinary: boolean): Promise<void> {
    const reply = (frame: ServerFrame): void => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
    };
    if (isBinary) return reply({ kind: 'reply', id: -1, ...encodeError(new PayloadError('binary frames are not part of the contract; send JSON text', [])) });
    let value: unknown;
    try {
      value = JSON.parse(data.toString());
    } catch {
      return reply({ kind: 'reply', id: -1, ...encodeError(new PayloadError('frame is not JSON', [])) });
    }
    const frame = ClientFrame.safeParse(value);
    if (!frame.success) {
      const id = typeof (value as { id?: unknown })?.id === 'number' && Number.isSafeInteger((value as { id: number }).id) && (value as { id: number }).id >= 0 ? (value as { id: number }).id : -1;
      const issues = frame.error.issues.slice(0, 50).map((i) => ({ path: i.path.map(String).join('.') || '(frame)', message: i.message }));
      return reply({ kind: 'reply', id, ...encodeError(new PayloadError(`malformed frame: ${issues[0]?.path}: ${issues[0]?.message}`, issues)) });
    }
    const envelope = await dispatch(workbench.handlers, frame.data.channel, frame.data.payload);
    reply({ kind: 'reply', id: frame.data.id, ...envelope });
  }

  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(options.port ?? 0, LOOPBACK, () => {
      server.off('error', rejectListen);
      resolveListen();
    });
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://${LOOPBACK}:${port}/?token=${token}`,
    port,
    token,
    workbench,
    async close() {
      for (const ws of clients) ws.terminate();
      await workbench.dispose();
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text);
}
