// A browser-less client of `kubedos serve` for the attack suite: opens the printed URL like a
// browser would (following the bootstrap exchange when the server offers one) and talks to the
// bridge with the same Origin a page of the server would send.
import WebSocket from 'ws';

export interface BridgeClient {
  request(channel: string, payload: unknown): Promise<{ result?: unknown; error?: { message: string } }>;
  close(): void;
}

/** Opens `url` (the one `kubedos serve` printed); returns the session cookie if the server set one. */
export async function openPrintedUrl(url: string): Promise<string | undefined> {
  const res = await fetch(url, { redirect: 'manual' });
  await res.arrayBuffer();
  const cookie = res.headers.get('set-cookie');
  return cookie ? cookie.split(';')[0] : undefined;
}

/** Connects to the bridge: with the session cookie when there is one, else with the URL's token. */
export async function connectBridge(url: string, cookie: string | undefined): Promise<BridgeClient> {
  const u = new URL(url);
  const target = `ws://${u.host}/bridge${cookie ? '' : `?token=${u.searchParams.get('token') ?? ''}`}`;
  const ws = new WebSocket(target, { origin: `http://${u.host}`, ...(cookie ? { headers: { cookie } } : {}) });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  let id = 0;
  const waiting = new Map<number, (r: { result?: unknown; error?: { message: string } }) => void>();
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString()) as { kind: string; id: number; result?: unknown; error?: { message: string } };
    if (f.kind === 'reply') waiting.get(f.id)?.(f);
  });
  return {
    request(channel, payload) {
      const n = ++id;
      return new Promise((resolve) => {
        waiting.set(n, resolve);
        ws.send(JSON.stringify({ kind: 'request', id: n, channel, payload }));
      });
    },
    close: () => ws.close(),
  };
}
